//! Admin → Users (site admins only): every account with its flags, and
//! forms to create one, enable/disable, verify, give or take the site-admin
//! role and reset a password — through [`crate::user_admin`], as
//! `/xapi/users` does. A new or reset password is never put back on a page.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_model::encode_segment;

use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::User;
use crate::user_admin::{self, Flag, NewAccount};

type PageResult = Result<Response, WebError>;

const USERS_HREF: &str = "/app/admin/users";

struct UserLine {
    username: String,
    href: String,
    name: String,
    email: String,
    enabled: bool,
    verified: bool,
    admin: bool,
}

impl From<&User> for UserLine {
    fn from(user: &User) -> Self {
        Self {
            username: user.username.clone(),
            href: format!("{USERS_HREF}/{}", encode_segment(&user.username)),
            name: format!("{} {}", user.first_name, user.last_name)
                .trim()
                .to_owned(),
            email: user.email.clone(),
            enabled: user.enabled,
            verified: user.verified,
            admin: user.is_admin,
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin_users.html")]
struct UsersPage {
    layout: Layout,
    notice: Option<String>,
    users: Vec<UserLine>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// Fixed texts: a link names the change, never its own words.
fn notice(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "created" => "The account was created.",
        "enabled" => "The account was enabled.",
        "disabled" => "The account was disabled; its sessions have ended.",
        "verified" => "The account was marked verified.",
        "unverified" => "The account was marked unverified.",
        "admin" => "The account is now a site admin.",
        "unadmin" => "The account is no longer a site admin.",
        "password" => "The password was reset; the account's sessions have ended.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// `/app/admin/users`.
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    require_login(&caller)?;
    let users = user_admin::list(&state, &caller).await?;
    let layout = Layout::new(&state, &caller, "Users")
        .crumb("Projects", "/app/projects")
        .crumb("Admin", USERS_HREF);
    let rendered = UsersPage {
        layout,
        notice: notice(query.done.as_deref()),
        users: users.iter().map(UserLine::from).collect(),
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    username: String,
    password: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    /// Checkboxes: present when ticked.
    admin: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let account = NewAccount {
        username: form.username.trim().to_owned(),
        password: form.password,
        email: form.email.trim().to_owned(),
        first_name: form.first_name.trim().to_owned(),
        last_name: form.last_name.trim().to_owned(),
        enabled: true,
        verified: true,
        admin: form.admin.is_some(),
    };
    user_admin::create(&state, &caller, account).await?;
    Ok(see_other(&format!("{USERS_HREF}?done=created")))
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    /// enable, disable, verify, unverify, admin, unadmin or password.
    action: String,
    password: Option<String>,
}

pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(username): Path<String>,
    Form(form): Form<ChangeForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let (flag, on, done) = match form.action.as_str() {
        "enable" => (Flag::Enabled, true, "enabled"),
        "disable" => (Flag::Enabled, false, "disabled"),
        "verify" => (Flag::Verified, true, "verified"),
        "unverify" => (Flag::Verified, false, "unverified"),
        "admin" => (Flag::Admin, true, "admin"),
        "unadmin" => (Flag::Admin, false, "unadmin"),
        "password" => {
            user_admin::require_admin(&caller)?;
            let password = form.password.unwrap_or_default();
            user_admin::reset_password(&state, &caller, &username, &password).await?;
            return Ok(see_other(&format!("{USERS_HREF}?done=password")));
        }
        other => {
            return Err(WebError(ApiError::BadRequest(format!(
                "unknown action {other:?}; use enable, disable, verify, unverify, admin, unadmin or password"
            ))));
        }
    };
    user_admin::set_flag(&state, &caller, &username, flag, on).await?;
    Ok(see_other(&format!("{USERS_HREF}?done={done}")))
}
