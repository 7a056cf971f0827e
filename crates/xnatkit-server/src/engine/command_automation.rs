//! The Container Service's legacy Command Automation
//! (`/xapi/commandeventmapping`, deprecated at XNAT by the Event Service
//! but still what XNAT 1.7-era setup scripts call): each mapping is kept
//! as an Event Service subscription ([`super::events`]) marked with its
//! legacy event type, so it launches exactly as a subscription does, shows
//! among the project's subscriptions, and `convert` only drops the mark.
//!
//! `SessionArchived` maps to `SessionEvent`, `ScanArchived` to `ScanEvent`
//! (status `CREATED`), as XNAT's own conversion does. `Merged` is refused:
//! this server never merges into an archived session, so it would never
//! fire. A mapping needs a project (XNAT's site-wide mappings would run on
//! every project's data; subscribe per project instead).

use serde_json::Value;
use xnatkit_model::container::CommandEventMapping;

use super::commands;
use super::events::{self, ACTION_PREFIX, EventFilter, SCAN_EVENT, SESSION_EVENT, Subscription};
use crate::archive::{Actor, Error, Result};
use crate::store::SubscriptionRow;

/// The key in a subscription's JSON that marks it as a legacy mapping.
const LEGACY_KEY: &str = "command-event-mapping";

fn event_of(legacy: &str) -> Result<&'static str> {
    match legacy {
        "SessionArchived" => Ok(SESSION_EVENT),
        "ScanArchived" => Ok(SCAN_EVENT),
        "Merged" => Err(Error::Invalid(
            "event-type Merged never fires here (sessions are not merged after archiving); use SessionArchived or ScanArchived".to_owned(),
        )),
        "" => Err(Error::Invalid(
            "Event type must be defined and cannot be empty: use SessionArchived or ScanArchived".to_owned(),
        )),
        other => Err(Error::Invalid(format!(
            "event-type {other:?} is not known; use SessionArchived or ScanArchived"
        ))),
    }
}

/// The mapping a subscription row stands for, if it is one.
async fn mapping_of(
    actor: &Actor<'_>,
    row: &SubscriptionRow,
) -> Result<Option<CommandEventMapping>> {
    let sub = events::render(row);
    let Some(Value::String(legacy)) = sub.extra.get(LEGACY_KEY) else {
        return Ok(None);
    };
    let found = commands::wrapper(actor.state, row.wrapper_id).await?;
    Ok(Some(CommandEventMapping {
        id: Some(row.id),
        command_id: found.command.row.id,
        xnat_command_wrapper: found.wrapper.name,
        project: Some(row.project.clone()),
        event_type: legacy.clone(),
        subscription_user_name: Some(row.created_by.clone()),
        enabled: Some(row.active),
    }))
}

/// `POST /xapi/commandeventmapping`: the mapping, stored as a subscription
/// of its project (its owners or admins), enabled.
pub async fn create(
    actor: &Actor<'_>,
    mapping: &CommandEventMapping,
) -> Result<CommandEventMapping> {
    actor.caller.require_user()?;
    let event_type = event_of(mapping.event_type.trim())?;
    let project = mapping
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::Invalid(
                "the mapping names no project; a mapping runs on one project's archived data (give \"project\")".to_owned(),
            )
        })?;
    let found = commands::wrapper_of_command(
        actor.state,
        mapping.command_id,
        &mapping.xnat_command_wrapper,
    )
    .await?;
    let mut sub = Subscription {
        name: format!(
            "{project}-{}-{}",
            mapping.event_type.trim(),
            found.wrapper.name
        ),
        active: Some(true),
        action_key: format!("{ACTION_PREFIX}{}", found.wrapper_id),
        event_filter: EventFilter {
            event_type: event_type.to_owned(),
            status: "CREATED".to_owned(),
            project_ids: vec![project.to_owned()],
            ..EventFilter::default()
        },
        act_as_event_user: Some(false),
        ..Subscription::default()
    };
    sub.extra.insert(
        LEGACY_KEY.to_owned(),
        Value::String(mapping.event_type.trim().to_owned()),
    );
    let (_, id) = events::subscribe(actor, project, sub).await?;
    get(actor, id).await
}

/// `GET /xapi/commandeventmapping`: the mappings of projects the caller
/// may read (not those converted to subscriptions).
pub async fn list(actor: &Actor<'_>) -> Result<Vec<CommandEventMapping>> {
    let mut out = Vec::new();
    for row in actor.state.store().subscriptions(None).await? {
        if events::can_read(actor, &row.project).await?
            && let Some(mapping) = mapping_of(actor, &row).await?
        {
            out.push(mapping);
        }
    }
    Ok(out)
}

/// Mapping `id` with its subscription row, or 404 (also for a
/// subscription that is no mapping).
async fn mapping_row(actor: &Actor<'_>, id: i64) -> Result<(SubscriptionRow, CommandEventMapping)> {
    let row = events::get(actor, None, id).await?;
    let mapping = mapping_of(actor, &row)
        .await?
        .ok_or_else(|| Error::NotFound(format!("No command-event mapping with ID {id}")))?;
    Ok((row, mapping))
}

pub async fn get(actor: &Actor<'_>, id: i64) -> Result<CommandEventMapping> {
    Ok(mapping_row(actor, id).await?.1)
}

pub async fn delete(actor: &Actor<'_>, id: i64) -> Result<()> {
    mapping_row(actor, id).await?;
    events::delete(actor, None, id).await
}

pub async fn set_enabled(actor: &Actor<'_>, id: i64, enabled: bool) -> Result<()> {
    mapping_row(actor, id).await?;
    events::set_active(actor, id, enabled).await
}

/// `POST …/{id}/convert`: the mapping becomes a plain Event Service
/// subscription (it already runs as one).
pub async fn convert(actor: &Actor<'_>, id: i64) -> Result<()> {
    let (row, _) = mapping_row(actor, id).await?;
    events::require_manage(actor, &row.project).await?;
    let mut sub: Subscription = serde_json::from_str(&row.json)
        .map_err(|e| Error::Internal(format!("stored subscription {id} does not parse: {e}")))?;
    sub.extra.remove(LEGACY_KEY);
    let json = serde_json::to_string(&sub)
        .map_err(|e| Error::Internal(format!("subscription JSON: {e}")))?;
    actor.state.store().set_subscription_json(id, &json).await?;
    Ok(())
}
