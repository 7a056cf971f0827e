//! The account flags site admins change besides `enabled` (in `auth`).

use super::Store;

impl Store {
    /// Marks an account verified or not. False when there is no such user.
    pub async fn set_user_verified(
        &self,
        username: &str,
        verified: bool,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE users SET verified = $1 WHERE username = $2")
            .bind(i64::from(verified))
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives or takes the site-admin role. False when there is no such user.
    pub async fn set_user_admin(&self, username: &str, admin: bool) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE users SET is_admin = $1 WHERE username = $2")
            .bind(i64::from(admin))
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
