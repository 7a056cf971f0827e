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
    /// The alias token that opened the session, if one did.
    pub token_alias: Option<String>,
    /// For token sessions: the token's expiry while it is still enabled,
    /// `None` once it is disabled or gone (the session must end then).
    pub token_expires: Option<i64>,
}

impl HttpSession {
    /// False once the alias token that opened the session was invalidated
    /// or has expired.
    pub fn credential_alive(&self, now: i64) -> bool {
        self.token_alias.is_none() || self.token_expires.is_some_and(|expires| expires >= now)
    }
}

/// What counting one login attempt (before verifying it) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptClaim {
    /// Within the limit: verify the credentials.
    Granted,
    /// Locked, or the limit is used up by attempts not yet known to have
    /// failed: refuse without verifying.
    Refused,
    /// No such user or alias.
    Unknown,
}

/// Whose failed attempts a statement counts: an account's (`users`) or an
/// alias token's (`alias_tokens`). The two tables keep the same rules, so
/// the statements differ only in their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptCounter {
    Account,
    Token,
}

impl AttemptCounter {
    /// Counts one attempt (see [`Store::claim_attempt`]).
    fn claim_sql(self) -> &'static str {
        match self {
            Self::Account => CLAIM_USER_ATTEMPT,
            Self::Token => CLAIM_TOKEN_ATTEMPT,
        }
    }

    /// Clears the count and any lock (a verified secret).
    fn reset_sql(self) -> &'static str {
        match self {
            Self::Account => {
                "UPDATE users SET failed_logins = 0, locked_until = 0 \
                 WHERE username = $1 AND (failed_logins <> 0 OR locked_until <> 0)"
            }
            Self::Token => {
                "UPDATE alias_tokens SET failed_attempts = 0, locked_until = 0 \
                 WHERE alias = $1 AND (failed_attempts <> 0 OR locked_until <> 0)"
            }
        }
    }

    /// Clears the count of a remembered secret unless locked ($2 = now) or
    /// out of attempts ($3 = the limit); no row changed = refuse.
    fn accept_remembered_sql(self) -> &'static str {
        match self {
            Self::Account => {
                "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE username = $1 \
                 AND locked_until <= $2 AND (failed_logins < $3 OR locked_until <> 0)"
            }
            Self::Token => {
                "UPDATE alias_tokens SET failed_attempts = 0, locked_until = 0 WHERE alias = $1 \
                 AND locked_until <= $2 AND (failed_attempts < $3 OR locked_until <> 0)"
            }
        }
    }
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
    /// Secret guesses counted since the last success (see
    /// [`Store::claim_token_attempt`]).
    pub failed_attempts: i64,
    pub locked_until: i64,
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
        failed_attempts: int(row, "failed_attempts")?,
        locked_until: int(row, "locked_until")?,
    })
}

/// Binds: $1 key, $2 now, $3 max attempts, $4 lock end. SET expressions see
/// the row as it was before the update (on both backends), and the row lock
/// makes parallel claims count one after another.
const CLAIM_USER_ATTEMPT: &str = "UPDATE users SET \
     failed_logins = CASE WHEN locked_until > $2 THEN failed_logins + 1 \
                          WHEN locked_until <> 0 THEN 1 \
                          ELSE failed_logins + 1 END, \
     locked_until = CASE WHEN locked_until > $2 THEN locked_until \
                         WHEN locked_until <> 0 THEN CASE WHEN $3 <= 1 THEN $4 ELSE 0 END \
                         WHEN failed_logins + 1 >= $3 THEN $4 \
                         ELSE 0 END \
     WHERE username = $1 RETURNING failed_logins AS attempts";

/// [`CLAIM_USER_ATTEMPT`] on an alias token.
const CLAIM_TOKEN_ATTEMPT: &str = "UPDATE alias_tokens SET \
     failed_attempts = CASE WHEN locked_until > $2 THEN failed_attempts + 1 \
                            WHEN locked_until <> 0 THEN 1 \
                            ELSE failed_attempts + 1 END, \
     locked_until = CASE WHEN locked_until > $2 THEN locked_until \
                         WHEN locked_until <> 0 THEN CASE WHEN $3 <= 1 THEN $4 ELSE 0 END \
                         WHEN failed_attempts + 1 >= $3 THEN $4 \
                         ELSE 0 END \
     WHERE alias = $1 RETURNING failed_attempts AS attempts";

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

    /// Counts a login attempt for `username` before its password is
    /// verified, in one statement, so parallel attempts cannot all pass a
    /// check made before any of them is recorded. The attempt that brings
    /// the count to `max_attempts` locks the account until `now + lock_ms`
    /// (a success before then clears it, see [`Store::login_succeeded`]);
    /// attempts beyond the count, or while locked, are refused. A lock that
    /// has run out starts a fresh count.
    pub async fn claim_login_attempt(
        &self,
        username: &str,
        max_attempts: i64,
        lock_ms: i64,
    ) -> Result<AttemptClaim, sqlx::Error> {
        self.claim_attempt(AttemptCounter::Account, username, max_attempts, lock_ms)
            .await
    }

    /// [`Store::claim_login_attempt`] for the secret of an alias token.
    pub async fn claim_token_attempt(
        &self,
        alias: &str,
        max_attempts: i64,
        lock_ms: i64,
    ) -> Result<AttemptClaim, sqlx::Error> {
        self.claim_attempt(AttemptCounter::Token, alias, max_attempts, lock_ms)
            .await
    }

    /// [`Store::claim_login_attempt`] on either counter.
    pub async fn claim_attempt(
        &self,
        counter: AttemptCounter,
        key: &str,
        max_attempts: i64,
        lock_ms: i64,
    ) -> Result<AttemptClaim, sqlx::Error> {
        let max_attempts = max_attempts.max(1);
        let now = now_ms();
        let row = sqlx::query(counter.claim_sql())
            .bind(key)
            .bind(now)
            .bind(max_attempts)
            .bind(now.saturating_add(lock_ms))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => AttemptClaim::Unknown,
            Some(row) if int(&row, "attempts")? <= max_attempts => AttemptClaim::Granted,
            Some(_) => AttemptClaim::Refused,
        })
    }

    /// A verified password: the failure count and any lock start over.
    pub async fn login_succeeded(&self, username: &str) -> Result<(), sqlx::Error> {
        self.reset_attempts(AttemptCounter::Account, username).await
    }

    /// A verified token secret: its failure count and any lock start over.
    pub async fn token_attempt_succeeded(&self, alias: &str) -> Result<(), sqlx::Error> {
        self.reset_attempts(AttemptCounter::Token, alias).await
    }

    /// A login whose password matched a recently verified one (no hash run):
    /// accepted, and the failure count cleared, unless the account is locked
    /// or `max_attempts` attempts are already counted. False = refuse.
    pub async fn accept_remembered_login(
        &self,
        user: &User,
        max_attempts: i64,
    ) -> Result<bool, sqlx::Error> {
        let counted = (user.failed_logins, user.locked_until);
        self.accept_remembered(
            AttemptCounter::Account,
            &user.username,
            counted,
            max_attempts,
        )
        .await
    }

    /// [`Store::accept_remembered_login`] for an alias token's secret.
    pub async fn accept_remembered_token(
        &self,
        token: &AliasToken,
        max_attempts: i64,
    ) -> Result<bool, sqlx::Error> {
        let counted = (token.failed_attempts, token.locked_until);
        self.accept_remembered(AttemptCounter::Token, &token.alias, counted, max_attempts)
            .await
    }

    /// A verified secret on either counter: the count and any lock start over.
    pub async fn reset_attempts(
        &self,
        counter: AttemptCounter,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(counter.reset_sql())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `counted` is the (failures, locked until) the caller read with the
    /// row; a clean row needs no write.
    async fn accept_remembered(
        &self,
        counter: AttemptCounter,
        key: &str,
        counted: (i64, i64),
        max_attempts: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let (failures, locked_until) = counted;
        if failures == 0 && locked_until <= now {
            return Ok(true);
        }
        let done = sqlx::query(counter.accept_remembered_sql())
            .bind(key)
            .bind(now)
            .bind(max_attempts.max(1))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a session for `username`; `token_alias` names the alias
    /// token it was opened with, so the session ends with the token.
    pub async fn create_http_session(
        &self,
        id: &str,
        username: &str,
        token_alias: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO http_sessions (id, username, created, last_seen, token_alias) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(username)
        .bind(now)
        .bind(now)
        .bind(token_alias)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session, (if it still exists) its user and the state of the
    /// token that opened it, in one query: every cookie-authenticated
    /// request needs them, and each separate query is a round trip to the
    /// database worker.
    pub async fn http_session_with_user(
        &self,
        id: &str,
    ) -> Result<Option<(HttpSession, Option<User>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.username AS session_user, s.created AS session_created, \
             s.last_seen AS session_last_seen, s.token_alias AS session_token, \
             t.enabled AS token_enabled, t.expires AS token_expires, \
             u.id, u.username, u.password_hash, u.email, \
             u.first_name, u.last_name, u.enabled, u.verified, u.is_admin, u.failed_logins, \
             u.locked_until, u.created \
             FROM http_sessions s LEFT JOIN users u ON u.username = s.username \
             LEFT JOIN alias_tokens t ON t.alias = s.token_alias WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let token_enabled = row.try_get::<Option<i64>, _>("token_enabled")?;
            let token_expires = row.try_get::<Option<i64>, _>("token_expires")?;
            let session = HttpSession {
                id: text(&row, "session_id")?,
                username: text(&row, "session_user")?,
                created: int(&row, "session_created")?,
                last_seen: int(&row, "session_last_seen")?,
                token_alias: row.try_get::<Option<String>, _>("session_token")?,
                token_expires: token_expires.filter(|_| token_enabled.is_some_and(|e| e != 0)),
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

    /// Sets a new password hash and ends every session of the user, in one
    /// transaction: whoever held a session with the old password is out.
    /// False when there is no such user.
    pub async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, failed_logins = 0, locked_until = 0 \
             WHERE username = $2",
        )
        .bind(password_hash)
        .bind(username)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM http_sessions WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Enables or disables an account; disabling ends its sessions in the
    /// same transaction. False when there is no such user.
    pub async fn set_user_enabled(
        &self,
        username: &str,
        enabled: bool,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET enabled = $1 WHERE username = $2")
            .bind(i64::from(enabled))
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if !enabled {
            sqlx::query("DELETE FROM http_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of `username` (account disabled, password changed).
    pub async fn delete_user_sessions(&self, username: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM http_sessions WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
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
             RETURNING id, alias, secret_hash, username, created, expires, enabled, failed_attempts, locked_until",
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
            "SELECT id, alias, secret_hash, username, created, expires, enabled, failed_attempts, locked_until FROM alias_tokens WHERE alias = $1",
        )
        .bind(alias)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }

    /// Disables the token and ends the sessions it opened, together.
    pub async fn disable_alias_token(&self, alias: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE alias_tokens SET enabled = 0 WHERE alias = $1")
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM http_sessions WHERE token_alias = $1")
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
