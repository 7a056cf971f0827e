//! Project accessibility (`/data/projects/P/accessibility[/LEVEL]`) and
//! project users (`/data/projects/P/users[/ROLE/USER]`). Changing either
//! needs the owner role (or site admin); reading them needs the project to
//! be visible. Member e-mail addresses are shown to owners and site admins
//! only; adding a name answers the same whether or not it is an account.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use xnatkit_model::resultset::row;
use xnatkit_model::{Accessibility, ProjectRole};

use super::Ctx;
use super::render::table;
use crate::access::Action;
use crate::archive::project_access;
use crate::error::ApiError;
use crate::routes::text;

/// Handles the path if it is one of ours; `Ok(None)` otherwise.
pub(crate) async fn try_dispatch(
    ctx: &Ctx,
    segments: &[String],
) -> Result<Option<Response>, ApiError> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["projects", project, "accessibility", rest @ ..] if rest.len() <= 1 => {
            accessibility(ctx, project, rest.first().copied())
                .await
                .map(Some)
        }
        ["projects", project, "users"] => list_users(ctx, project).await.map(Some),
        ["projects", project, "users", role, username] => {
            set_role(ctx, project, role, username).await.map(Some)
        }
        _ => Ok(None),
    }
}

async fn load(
    ctx: &Ctx,
    id: &str,
) -> Result<(crate::store::Project, crate::access::Access), ApiError> {
    let project = ctx
        .state
        .store()
        .project(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {id}")))?;
    let access = project_access(&ctx.actor(), &project).await?;
    Ok((project, access))
}

async fn accessibility(ctx: &Ctx, id: &str, level: Option<&str>) -> Result<Response, ApiError> {
    let (project, access) = load(ctx, id).await?;
    let what = format!("project {}", project.id);
    access.check(Action::ReadProject, &what)?;
    match (&ctx.method, level) {
        (&Method::PUT | &Method::POST, Some(level)) => {
            access.check(Action::Manage, &what)?;
            let level: Accessibility =
                level
                    .parse()
                    .map_err(|e: xnatkit_model::access::UnknownValue| {
                        ApiError::BadRequest(e.to_string())
                    })?;
            ctx.state
                .store()
                .set_accessibility(&project.id, level)
                .await?;
            Ok(text(StatusCode::OK, level.as_str()))
        }
        (&Method::GET | &Method::HEAD, _) => {
            Ok(text(StatusCode::OK, project.accessibility.as_str()))
        }
        _ => Err(ApiError::BadRequest(
            "use PUT /data/projects/{P}/accessibility/{private|protected|public}".to_owned(),
        )),
    }
}

async fn list_users(ctx: &Ctx, id: &str) -> Result<Response, ApiError> {
    let (project, access) = load(ctx, id).await?;
    let what = format!("project {}", project.id);
    access.check(Action::ReadData, &what)?;
    // E-mail addresses are for the people who manage membership (owners,
    // site admins); other members get the column (clients read it) empty.
    let shows_email = access.check(Action::Manage, &what).is_ok();
    let store = ctx.state.store();
    let mut rows = Vec::new();
    for member in store.project_roles(&project.id).await? {
        let user = store.user(&member.username).await?;
        let (first, last, email) = user
            .map(|u| (u.first_name, u.last_name, u.email))
            .unwrap_or_default();
        let email = if shows_email { email } else { String::new() };
        rows.push(row([
            ("login", member.username.clone()),
            ("firstname", first),
            ("lastname", last),
            ("email", email),
            ("role", member.role.as_str().to_owned()),
            ("displayname", member.role.display_name().to_owned()),
            (
                "GROUP_ID",
                format!("{}_{}", project.id, member.role.as_str()),
            ),
        ]));
    }
    Ok(table(
        "Users",
        &[
            "login",
            "firstname",
            "lastname",
            "email",
            "role",
            "displayname",
            "GROUP_ID",
        ],
        rows,
        &ctx.params,
    ))
}

async fn set_role(ctx: &Ctx, id: &str, role: &str, username: &str) -> Result<Response, ApiError> {
    let (project, access) = load(ctx, id).await?;
    let what = format!("project {}", project.id);
    access.check(Action::ReadProject, &what)?;
    access.check(Action::Manage, &what)?;
    let role: ProjectRole = role
        .parse()
        .map_err(|e: xnatkit_model::access::UnknownValue| ApiError::BadRequest(e.to_string()))?;
    let store = ctx.state.store();
    match ctx.method {
        Method::PUT | Method::POST => {
            // A name that is no account gets the same answer as a real one,
            // as in XNAT (which e-mails an invitation instead): the answer
            // must not tell an owner which names exist on the site.
            if store.user(username).await?.is_some() {
                store.set_project_role(&project.id, username, role).await?;
            }
            Ok(text(StatusCode::OK, ""))
        }
        Method::DELETE => {
            if store.project_role(&project.id, username).await? != Some(role) {
                return Err(ApiError::not_found(format!(
                    "user {username} is not {} of project {}",
                    role.as_str(),
                    project.id
                )));
            }
            let owners = store
                .project_roles(&project.id)
                .await?
                .into_iter()
                .filter(|r| r.role == ProjectRole::Owner)
                .count();
            if role == ProjectRole::Owner && owners <= 1 {
                return Err(ApiError::Conflict(format!(
                    "cannot remove the last owner of project {}",
                    project.id
                )));
            }
            store.remove_project_role(&project.id, username).await?;
            Ok(text(StatusCode::OK, ""))
        }
        _ => Err(ApiError::BadRequest(
            "use PUT or DELETE /data/projects/{P}/users/{role}/{user}".to_owned(),
        )),
    }
}
