//! Site user management for site admins: the rules behind `/xapi/users`
//! and the Admin → Users page. Disabling an account or resetting its
//! password ends its sessions and forgets its cached credentials; a
//! password is never returned or logged.

use crate::access::Caller;
use crate::archive::{Error, Result};
use crate::state::AppState;
use crate::store::{NewUser, User};

/// A new account as an admin describes it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub enabled: bool,
    pub verified: bool,
    pub admin: bool,
}

/// A flag of an account an admin switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Enabled,
    Verified,
    Admin,
}

pub fn require_admin(caller: &Caller) -> Result<()> {
    caller.require_user()?;
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Forbidden: only site administrators manage users".to_owned(),
        ))
    }
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<User>> {
    require_admin(caller)?;
    Ok(state.store().users().await?)
}

fn check_username(username: &str) -> Result<()> {
    if username.is_empty()
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    {
        return Err(Error::Invalid(format!(
            "invalid username {username:?}: use letters, digits, '_', '-', '.', '@'"
        )));
    }
    Ok(())
}

async fn hash(state: &AppState, password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::Invalid("password must not be empty".to_owned()));
    }
    state
        .hasher()
        .hash(password)
        .await
        .map_err(|_| {
            Error::Conflict("the server is busy checking passwords; try again in a moment".into())
        })?
        .map_err(Error::Internal)
}

/// Creates an account; a name in use is a conflict.
pub async fn create(state: &AppState, caller: &Caller, account: NewAccount) -> Result<User> {
    require_admin(caller)?;
    check_username(&account.username)?;
    let hash = hash(state, &account.password).await?;
    let new = NewUser {
        username: account.username.clone(),
        email: account.email,
        first_name: account.first_name,
        last_name: account.last_name,
        enabled: account.enabled,
        verified: account.verified,
        is_admin: account.admin,
    };
    state
        .store()
        .create_user(&new, &hash)
        .await?
        .ok_or_else(|| Error::Conflict(format!("user {} already exists", account.username)))
}

/// Switches one flag of `username`. An admin cannot disable or demote
/// their own account (the site would be left without its last way in).
pub async fn set_flag(
    state: &AppState,
    caller: &Caller,
    username: &str,
    flag: Flag,
    on: bool,
) -> Result<()> {
    require_admin(caller)?;
    let own = caller.username() == Some(username);
    if own && !on && flag != Flag::Verified {
        return Err(Error::Invalid(
            "you cannot disable or demote your own account; ask another site admin".to_owned(),
        ));
    }
    let store = state.store();
    let found = match flag {
        Flag::Enabled => store.set_user_enabled(username, on).await?,
        Flag::Verified => store.set_user_verified(username, on).await?,
        Flag::Admin => store.set_user_admin(username, on).await?,
    };
    if !found {
        return Err(Error::not_found(format!("user {username}")));
    }
    state.credentials().forget(&format!("user:{username}"));
    Ok(())
}

/// Sets a new password; every session of the account ends.
pub async fn reset_password(
    state: &AppState,
    caller: &Caller,
    username: &str,
    password: &str,
) -> Result<()> {
    let me = caller.require_user()?;
    if !caller.is_admin() && me.username != username {
        return Err(Error::Forbidden(
            "Forbidden: only site administrators change other accounts".to_owned(),
        ));
    }
    let hash = hash(state, password).await?;
    if !state.store().set_password_hash(username, &hash).await? {
        return Err(Error::not_found(format!("user {username}")));
    }
    state.credentials().forget(&format!("user:{username}"));
    Ok(())
}
