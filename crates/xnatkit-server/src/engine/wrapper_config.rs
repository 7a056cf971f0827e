//! Wrapper configurations as the Container Service keeps them: the site's
//! and each project's `CommandConfiguration` for a wrapper, stored as the
//! JSON the API took, and the wrapper as configured for a project — what a
//! launch and the launch form resolve, so a project's `default-value`
//! fills an input its users leave out and its output `label` names the
//! resource a run files.
//!
//! Who may do what follows XNAT: the site's configuration is read by any
//! user and set by administrators; a project's is read by those who may
//! edit the project's data and set by its owners. Setting a configuration
//! enables the wrapper there unless `enable=false` is given (it never
//! disables one).

use xnatkit_engine::configuration;
use xnatkit_model::container::CommandConfiguration;

use super::commands::{FoundWrapper, wrapper};
use crate::access::Action;
use crate::archive::{Actor, Error, Result, checked_project};
use crate::state::AppState;

/// Where a configuration applies.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Site,
    Project(&'a str),
}

impl Scope<'_> {
    fn project(&self) -> Option<&str> {
        match self {
            Scope::Site => None,
            Scope::Project(p) => Some(p),
        }
    }

    /// The stored row's project column (`""` is the site).
    fn key(&self) -> &str {
        self.project().unwrap_or("")
    }
}

/// Checks the caller may read (`write == false`) or change the
/// configuration at `scope`.
async fn check(actor: &Actor<'_>, scope: Scope<'_>, write: bool) -> Result<()> {
    actor.caller.require_user()?;
    match scope {
        Scope::Site if write && !actor.caller.is_admin() => Err(Error::Forbidden(
            "Forbidden: only site administrators configure a wrapper for the site; project owners configure it for their project (/xapi/projects/P/wrappers/ID/config)".to_owned(),
        )),
        Scope::Site => Ok(()),
        Scope::Project(p) => {
            let action = if write { Action::Manage } else { Action::Edit };
            checked_project(actor, p, action).await?;
            Ok(())
        }
    }
}

async fn stored(
    state: &AppState,
    wrapper_id: i64,
    project: &str,
) -> Result<Option<CommandConfiguration>> {
    state
        .store()
        .wrapper_config(wrapper_id, project)
        .await?
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                Error::Internal(format!(
                    "stored configuration of wrapper {wrapper_id} does not parse: {e}"
                ))
            })
        })
        .transpose()
}

/// The site's and then `project`'s stored settings for a wrapper, merged
/// (without the command's own values).
async fn settings(
    state: &AppState,
    wrapper_id: i64,
    project: Option<&str>,
) -> Result<CommandConfiguration> {
    let mut merged = stored(state, wrapper_id, "").await?.unwrap_or_default();
    if let Some(p) = project
        && let Some(over) = stored(state, wrapper_id, p).await?
    {
        configuration::overlay(&mut merged, &over);
    }
    Ok(merged)
}

/// `GET …/config`: the command's own values with the site's (and for a
/// project, the project's) settings laid over them.
pub async fn get(
    actor: &Actor<'_>,
    wrapper_id: i64,
    scope: Scope<'_>,
) -> Result<CommandConfiguration> {
    let found = wrapper(actor.state, wrapper_id).await?;
    check(actor, scope, false).await?;
    let mut config = configuration::base(&found.command.command, &found.wrapper);
    configuration::overlay(
        &mut config,
        &settings(actor.state, wrapper_id, scope.project()).await?,
    );
    Ok(config)
}

/// `POST …/config`: stores `config` at `scope` (replacing what was there)
/// after checking it names only the wrapper's inputs and outputs; enables
/// the wrapper there when `enable`.
pub async fn set(
    actor: &Actor<'_>,
    wrapper_id: i64,
    scope: Scope<'_>,
    config: &CommandConfiguration,
    enable: bool,
) -> Result<()> {
    let found = wrapper(actor.state, wrapper_id).await?;
    check(actor, scope, true).await?;
    configuration::validate(&found.command.command, &found.wrapper, config)
        .map_err(Error::Invalid)?;
    let json = serde_json::to_string(config)
        .map_err(|e| Error::Internal(format!("configuration JSON: {e}")))?;
    let store = actor.state.store();
    store
        .set_wrapper_config(wrapper_id, scope.key(), &json)
        .await?;
    if enable {
        store
            .set_wrapper_enabled(wrapper_id, scope.key(), true)
            .await?;
    }
    Ok(())
}

/// `DELETE …/config`: removes the configuration at `scope` (the command's
/// own values, or the site's for a project, apply again).
pub async fn delete(actor: &Actor<'_>, wrapper_id: i64, scope: Scope<'_>) -> Result<()> {
    wrapper(actor.state, wrapper_id).await?;
    check(actor, scope, true).await?;
    if !actor
        .state
        .store()
        .delete_wrapper_config(wrapper_id, scope.key())
        .await?
    {
        return Err(Error::NotFound(format!(
            "wrapper {wrapper_id} has no configuration for {}",
            scope
                .project()
                .map_or_else(|| "the site".to_owned(), |p| format!("project {p}"))
        )));
    }
    Ok(())
}

/// `found` as configured for `project` (the site alone when `None`): the
/// site's and the project's settings applied to its command and wrapper.
/// Launches and launch forms resolve this.
pub async fn configured(
    state: &AppState,
    found: &FoundWrapper,
    project: Option<&str>,
) -> Result<FoundWrapper> {
    let settings = settings(state, found.wrapper_id, project).await?;
    let mut configured = found.clone();
    if settings != CommandConfiguration::default() {
        configuration::apply(
            &mut configured.command.command,
            &mut configured.wrapper,
            &settings,
        );
    }
    Ok(configured)
}
