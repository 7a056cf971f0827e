//! Users, HTTP sessions and alias tokens.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, int, now_ms, text};

/// A site user. The password hash never leaves the server.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub enabled: bool,
    pub verified: bool,
    pub is_admin: bool,
    pub failed_logins: i64,
    pub locked_until: i64,
    pub created: i64,
}

/// What `POST /xapi/users` creates.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub enabled: bool,
    pub verified: bool,
    pub is_admin: bool,
}

#[derive(Debug, Clone)]
pub struct HttpSession {
    pub id: String,
    pub username: String,
    pub created: i64,
    pub last_seen: i64,
}

#[derive(Debug, Clone)]
pub struct AliasToken {
    pub id: i64,
    pub alias: String,
    pub secret_hash: String,
    pub username: String,
    pub created: i64,
    pub expires: i64,
    pub enabled: bool,
}

fn user_from(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: int(row, "id")?,
        username: text(row, "username")?,
        password_hash: text(row, "password_hash")?,
        email: text(row, "email")?,
        first_name: text(row, "first_name")?,
        last_name: text(row, "last_name")?,
        enabled: int(row, "enabled")? != 0,
        verified: int(row, "verified")? != 0,
        is_admin: int(row, "is_admin")? != 0,
        failed_logins: int(row, "failed_logins")?,
        locked_until: int(row, "locked_until")?,
        created: int(row, "created")?,
    })
}

fn token_from(row: &AnyRow) -> Result<AliasToken, sqlx::Error> {
    Ok(AliasToken {
        id: int(row, "id")?,
        alias: text(row, "alias")?,
        secret_hash: text(row, "secret_hash")?,
        username: text(row, "username")?,
        created: int(row, "created")?,
        expires: int(row, "expires")?,
        enabled: int(row, "enabled")? != 0,
    })
}

const USER_BY_NAME: &str = "SELECT id, username, password_hash, email, first_name, last_name, enabled, verified, is_admin, failed_logins, locked_until, created FROM users WHERE username = $1";
const ALL_USERS: &str = "SELECT id, username, password_hash, email, first_name, last_name, enabled, verified, is_admin, failed_logins, locked_until, created FROM users ORDER BY username";

impl Store {
    /// Inserts a user; `None` when the username is taken.
    pub async fn create_user(
        &self,
        new: &NewUser,
        password_hash: &str,
    ) -> Result<Option<User>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(&new.username)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO users (username, password_hash, email, first_name, last_name, enabled, verified, is_admin, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&new.username)
        .bind(password_hash)
        .bind(&new.email)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(i64::from(new.enabled))
        .bind(i64::from(new.verified))
        .bind(i64::from(new.is_admin))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.user(&new.username).await
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(USER_BY_NAME)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, sqlx::Error> {
        let rows = sqlx::query(ALL_USERS).fetch_all(&self.pool).await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn user_count(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        int(&row, "n")
    }

    /// Counts a failed login; locks the account for `lock_ms` when the count
    /// reaches `max_failures`.
    pub async fn record_failed_login(
        &self,
        username: &str,
        max_failures: i64,
        lock_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = $1 RETURNING failed_logins",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row
            && int(&row, "failed_logins")? >= max_failures
        {
            sqlx::query(
                "UPDATE users SET locked_until = $1, failed_logins = 0 WHERE username = $2",
            )
            .bind(now_ms() + lock_ms)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub async fn reset_failed_logins(&self, username: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0 WHERE username = $1 AND failed_logins <> 0",
        )
        .bind(username)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn create_http_session(&self, id: &str, username: &str) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO http_sessions (id, username, created, last_seen) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(username)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn http_session(&self, id: &str) -> Result<Option<HttpSession>, sqlx::Error> {
        let row =
            sqlx::query("SELECT id, username, created, last_seen FROM http_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(HttpSession {
                id: text(&row, "id")?,
                username: text(&row, "username")?,
                created: int(&row, "created")?,
                last_seen: int(&row, "last_seen")?,
            })
        })
        .transpose()
    }

    /// The session and (if it still exists) its user in one query: every
    /// cookie-authenticated request needs both, and each separate query is a
    /// round trip to the database worker.
    pub async fn http_session_with_user(
        &self,
        id: &str,
    ) -> Result<Option<(HttpSession, Option<User>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.username AS session_user, s.created AS session_created, \
             s.last_seen AS session_last_seen, u.id, u.username, u.password_hash, u.email, \
             u.first_name, u.last_name, u.enabled, u.verified, u.is_admin, u.failed_logins, \
             u.locked_until, u.created \
             FROM http_sessions s LEFT JOIN users u ON u.username = s.username WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let session = HttpSession {
                id: text(&row, "session_id")?,
                username: text(&row, "session_user")?,
                created: int(&row, "session_created")?,
                last_seen: int(&row, "session_last_seen")?,
            };
            // A NULL user id means the LEFT JOIN found no user row.
            let user = match row.try_get::<Option<i64>, _>("id")? {
                Some(_) => Some(user_from(&row)?),
                None => None,
            };
            Ok((session, user))
        })
        .transpose()
    }

    pub async fn touch_http_session(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE http_sessions SET last_seen = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_http_session(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM http_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops sessions idle since before `idle_before`.
    pub async fn expire_http_sessions(&self, idle_before: i64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM http_sessions WHERE last_seen < $1")
            .bind(idle_before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_alias_token(
        &self,
        alias: &str,
        secret_hash: &str,
        username: &str,
        expires: i64,
    ) -> Result<AliasToken, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO alias_tokens (alias, secret_hash, username, created, expires, enabled) \
             VALUES ($1, $2, $3, $4, $5, 1) \
             RETURNING id, alias, secret_hash, username, created, expires, enabled",
        )
        .bind(alias)
        .bind(secret_hash)
        .bind(username)
        .bind(now_ms())
        .bind(expires)
        .fetch_one(&self.pool)
        .await?;
        token_from(&row)
    }

    pub async fn alias_token(&self, alias: &str) -> Result<Option<AliasToken>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, alias, secret_hash, username, created, expires, enabled FROM alias_tokens WHERE alias = $1",
        )
        .bind(alias)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }

    pub async fn disable_alias_token(&self, alias: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE alias_tokens SET enabled = 0 WHERE alias = $1")
            .bind(alias)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
