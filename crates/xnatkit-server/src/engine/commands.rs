//! Commands and wrappers: registration (site admins only; the built-ins
//! at every start), reading them back in XNAT's shape with their IDs,
//! enabling wrappers per site and per project, and what a project can
//! launch. A wrapper runs only where it is enabled for the site and for
//! the project, as at XNAT; the built-ins are enabled for the site when
//! first registered, projects switch them on themselves.

use std::collections::BTreeMap;

use xnatkit_engine::Command;
use xnatkit_model::container::{CommandSummaryForContext, ProjectEnabledReport, Wrapper};

use crate::access::{Action, Caller};
use crate::archive::{Actor, Error, Result, checked_project};
use crate::state::AppState;
use crate::store::{CommandRow, WrapperRow};

/// A command as stored, with the IDs of it and its wrappers filled in.
#[derive(Debug, Clone)]
pub struct StoredCommand {
    pub row: CommandRow,
    pub command: Command,
}

fn parse(row: &CommandRow, wrappers: &[WrapperRow]) -> Result<Command> {
    let mut command: Command = serde_json::from_str(&row.json)
        .map_err(|e| Error::Internal(format!("stored command {} does not parse: {e}", row.id)))?;
    command.id = Some(row.id);
    for wrapper in &mut command.xnat {
        wrapper.id = wrappers
            .iter()
            .find(|w| w.command_id == row.id && w.name == wrapper.name)
            .map(|w| w.id);
    }
    Ok(command)
}

/// The JSON stored for `command`: without IDs (they live in the rows).
fn stored_json(command: &Command) -> Result<String> {
    let mut bare = command.clone();
    bare.id = None;
    for wrapper in &mut bare.xnat {
        wrapper.id = None;
    }
    serde_json::to_string(&bare).map_err(|e| Error::Internal(format!("command JSON: {e}")))
}

fn wrapper_names(command: &Command) -> Vec<String> {
    command.xnat.iter().map(|w| w.name.clone()).collect()
}

/// Registers the built-in commands that are missing and refreshes those
/// whose JSON changed with this binary. Serialised across servers.
pub async fn ensure_builtins(state: &AppState) -> Result<()> {
    let store = state.store();
    let _lock = store.locks().lock("engine/builtins").await?;
    let rows = store.commands().await?;
    for command in xnatkit_engine::builtin::commands() {
        xnatkit_engine::validate(&command, true)
            .map_err(|e| Error::Internal(format!("built-in command: {e}")))?;
        let json = stored_json(&command)?;
        let version = command.version.clone().unwrap_or_default();
        match rows.iter().find(|r| r.builtin && r.name == command.name) {
            Some(row) if row.json == json => {}
            Some(row) => {
                store
                    .replace_command(
                        row.id,
                        &command.name,
                        &version,
                        &json,
                        &wrapper_names(&command),
                    )
                    .await?;
            }
            None => {
                store
                    .insert_command(
                        &command.name,
                        &version,
                        true,
                        &json,
                        &wrapper_names(&command),
                    )
                    .await?;
                for wrapper in store.wrappers().await? {
                    if command.xnat.iter().any(|w| w.name == wrapper.name)
                        && store
                            .command(wrapper.command_id)
                            .await?
                            .is_some_and(|c| c.builtin && c.name == command.name)
                    {
                        store.set_wrapper_enabled(wrapper.id, "", true).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every command, optionally filtered as `GET /xapi/commands?name=&version=&image=`.
pub async fn list(
    state: &AppState,
    name: Option<&str>,
    version: Option<&str>,
    image: Option<&str>,
) -> Result<Vec<StoredCommand>> {
    let store = state.store();
    let wrappers = store.wrappers().await?;
    let mut out = Vec::new();
    for row in store.commands().await? {
        let command = parse(&row, &wrappers)?;
        if name.is_some_and(|n| n != command.name)
            || version.is_some_and(|v| Some(v) != command.version.as_deref())
            || image.is_some_and(|i| Some(i) != command.image.as_deref())
        {
            continue;
        }
        out.push(StoredCommand { row, command });
    }
    Ok(out)
}

pub async fn get(state: &AppState, id: i64) -> Result<StoredCommand> {
    let store = state.store();
    let row = store
        .command(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("No command with ID {id}")))?;
    let command = parse(&row, &store.wrappers().await?)?;
    Ok(StoredCommand { row, command })
}

fn require_admin(caller: &Caller) -> Result<()> {
    caller.require_user()?;
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Forbidden: only site administrators register, change or delete commands".to_owned(),
        ))
    }
}

/// Registers `command` (admins only); returns its ID.
pub async fn create(actor: &Actor<'_>, command: &Command) -> Result<i64> {
    require_admin(actor.caller)?;
    xnatkit_engine::validate(command, false).map_err(|e| Error::Invalid(e.0))?;
    let json = stored_json(command)?;
    Ok(actor
        .state
        .store()
        .insert_command(
            &command.name,
            command.version.as_deref().unwrap_or_default(),
            false,
            &json,
            &wrapper_names(command),
        )
        .await?)
}

/// Replaces command `id` (admins only; the built-ins cannot be changed).
pub async fn replace(actor: &Actor<'_>, id: i64, command: &Command) -> Result<()> {
    require_admin(actor.caller)?;
    let existing = get(actor.state, id).await?;
    if existing.row.builtin {
        return Err(Error::Conflict(format!(
            "command {} is built into xnatkit and cannot be changed; register a copy under another name",
            existing.row.name
        )));
    }
    xnatkit_engine::validate(command, false).map_err(|e| Error::Invalid(e.0))?;
    let json = stored_json(command)?;
    actor
        .state
        .store()
        .replace_command(
            id,
            &command.name,
            command.version.as_deref().unwrap_or_default(),
            &json,
            &wrapper_names(command),
        )
        .await?;
    Ok(())
}

pub async fn delete(actor: &Actor<'_>, id: i64) -> Result<()> {
    require_admin(actor.caller)?;
    let existing = get(actor.state, id).await?;
    if existing.row.builtin {
        return Err(Error::Conflict(format!(
            "command {} is built into xnatkit and cannot be deleted; disable its wrappers instead",
            existing.row.name
        )));
    }
    actor.state.store().delete_command(id).await?;
    Ok(())
}

/// Adds `wrapper` to command `command_id` (admins only; not to the
/// built-ins); returns the new wrapper's ID.
pub async fn add_wrapper(actor: &Actor<'_>, command_id: i64, wrapper: &Wrapper) -> Result<i64> {
    require_admin(actor.caller)?;
    let existing = get(actor.state, command_id).await?;
    if existing.command.xnat.iter().any(|w| w.name == wrapper.name) {
        return Err(Error::Conflict(format!(
            "command {} already has a wrapper {}",
            existing.row.name, wrapper.name
        )));
    }
    let mut command = existing.command.clone();
    let mut added = wrapper.clone();
    added.id = None;
    command.xnat.push(added);
    replace(actor, command_id, &command).await?;
    Ok(wrapper_of_command(actor.state, command_id, &wrapper.name)
        .await?
        .wrapper_id)
}

/// Deletes wrapper `wrapper_id` from its command (admins only; not from
/// the built-ins), with where it was enabled.
pub async fn delete_wrapper(actor: &Actor<'_>, wrapper_id: i64) -> Result<()> {
    require_admin(actor.caller)?;
    let found = wrapper(actor.state, wrapper_id).await?;
    let mut command = found.command.command.clone();
    command.xnat.retain(|w| w.name != found.wrapper.name);
    replace(actor, found.command.row.id, &command).await
}

/// A wrapper with its command.
#[derive(Debug, Clone)]
pub struct FoundWrapper {
    pub command: StoredCommand,
    pub wrapper: Wrapper,
    pub wrapper_id: i64,
}

/// Wrapper `id`, or 404 as XNAT words it.
pub async fn wrapper(state: &AppState, id: i64) -> Result<FoundWrapper> {
    let row = state
        .store()
        .wrapper(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("No wrapper with ID {id}")))?;
    let command = get(state, row.command_id).await?;
    let wrapper = command
        .command
        .xnat
        .iter()
        .find(|w| w.name == row.name)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("No wrapper with ID {id}")))?;
    Ok(FoundWrapper {
        command,
        wrapper,
        wrapper_id: id,
    })
}

/// Wrapper `name_or_id` of command `command_id` (the
/// `/commands/{cid}/wrappers/{name}` routes accept both).
pub async fn wrapper_of_command(
    state: &AppState,
    command_id: i64,
    name_or_id: &str,
) -> Result<FoundWrapper> {
    let command = get(state, command_id).await?;
    let found = command
        .command
        .xnat
        .iter()
        .find(|w| {
            w.name == name_or_id || w.id.map(|i| i.to_string()).as_deref() == Some(name_or_id)
        })
        .and_then(|w| w.id)
        .ok_or_else(|| {
            Error::NotFound(format!("Command {command_id} has no wrapper {name_or_id}"))
        })?;
    wrapper(state, found).await
}

/// Wrapper by name anywhere (the client's `pipeline launch NAME`).
pub async fn wrapper_by_name(state: &AppState, name: &str) -> Result<FoundWrapper> {
    let rows = state.store().wrappers().await?;
    let matching: Vec<&WrapperRow> = rows.iter().filter(|w| w.name == name).collect();
    match matching.as_slice() {
        [one] => wrapper(state, one.id).await,
        [] => Err(Error::NotFound(format!("No wrapper named {name}"))),
        _ => Err(Error::Invalid(format!(
            "several commands have a wrapper named {name}; use its numeric ID"
        ))),
    }
}

/// (enabled for the site, enabled for `project`).
pub async fn enabled(
    state: &AppState,
    wrapper_id: i64,
    project: Option<&str>,
) -> Result<(bool, bool)> {
    let store = state.store();
    let site = store
        .wrapper_enabled(wrapper_id, "")
        .await?
        .unwrap_or(false);
    let project = match project {
        Some(p) => store.wrapper_enabled(wrapper_id, p).await?.unwrap_or(false),
        None => false,
    };
    Ok((site, project))
}

/// Enables or disables wrapper `wrapper_id` for the site (admins) or for
/// `project` (its owners).
pub async fn set_enabled(
    actor: &Actor<'_>,
    wrapper_id: i64,
    project: Option<&str>,
    on: bool,
) -> Result<()> {
    wrapper(actor.state, wrapper_id).await?;
    match project {
        None => require_admin(actor.caller)?,
        Some(p) => {
            checked_project(actor, p, Action::Manage).await?;
        }
    }
    let key = project.unwrap_or("");
    actor
        .state
        .store()
        .set_wrapper_enabled(wrapper_id, key, on)
        .await?;
    Ok(())
}

pub async fn project_report(
    actor: &Actor<'_>,
    wrapper_id: i64,
    project: &str,
) -> Result<ProjectEnabledReport> {
    wrapper(actor.state, wrapper_id).await?;
    checked_project(actor, project, Action::ReadProject).await?;
    let (site, proj) = enabled(actor.state, wrapper_id, Some(project)).await?;
    Ok(ProjectEnabledReport {
        enabled_for_site: site,
        enabled_for_project: proj,
        project: project.to_owned(),
    })
}

/// The root element (xsi type family) a wrapper's contexts name.
fn root_element(wrapper: &Wrapper) -> String {
    wrapper.contexts.first().cloned().unwrap_or_default()
}

/// `GET /xapi/commands/available`: wrappers that fit `xsi_type` (all when
/// `None`), with whether they are enabled for `project`.
pub async fn available(
    state: &AppState,
    project: Option<&str>,
    xsi_type: Option<&str>,
) -> Result<Vec<CommandSummaryForContext>> {
    let mut out = Vec::new();
    let mut cache: BTreeMap<i64, (bool, bool)> = BTreeMap::new();
    for stored in list(state, None, None, None).await? {
        for wrapper in &stored.command.xnat {
            let Some(wid) = wrapper.id else { continue };
            if let Some(x) = xsi_type
                && !wrapper.contexts.iter().any(|c| context_fits(c, x))
            {
                continue;
            }
            let (site, proj) = match cache.get(&wid) {
                Some(v) => *v,
                None => {
                    let v = enabled(state, wid, project).await?;
                    cache.insert(wid, v);
                    v
                }
            };
            out.push(CommandSummaryForContext {
                command_id: stored.row.id,
                command_name: stored.command.name.clone(),
                command_description: stored.command.description.clone().unwrap_or_default(),
                wrapper_id: wid,
                wrapper_name: wrapper.name.clone(),
                wrapper_description: wrapper.description.clone().unwrap_or_default(),
                wrapper_contexts: wrapper.contexts.clone(),
                image_name: stored.command.image.clone().unwrap_or_default(),
                image_type: stored.command.kind.clone().unwrap_or_default(),
                enabled: site && (project.is_none() || proj),
                root_element_name: root_element(wrapper),
            });
        }
    }
    Ok(out)
}

/// Does a wrapper context (`xnat:imageScanData`) take objects of `xsi`
/// (`xnat:mrScanData`)? The generic contexts cover their families.
pub fn context_fits(context: &str, xsi: &str) -> bool {
    if context == xsi {
        return true;
    }
    match context {
        "xnat:imageScanData" => xsi.ends_with("ScanData"),
        "xnat:imageSessionData" | "xnat:experimentData" => xsi.ends_with("SessionData"),
        _ => false,
    }
}
