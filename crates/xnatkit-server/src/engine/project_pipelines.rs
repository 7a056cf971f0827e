//! A project's pipelines as its Manage tab shows them: each command
//! wrapper, whether it is enabled in the project and whether it runs on
//! every archived session (a `SessionEvent` subscription of the Event
//! Service). The switches go through the same functions as
//! `/xapi/projects/P/wrappers/W/enabled` and
//! `/xapi/projects/P/events/subscription`.

use super::commands;
use super::events::{self, ACTION_PREFIX, EventFilter, SESSION_EVENT, Subscription};
use crate::archive::{Actor, Result};

/// One wrapper in a project.
#[derive(Debug, Clone)]
pub struct ProjectPipeline {
    pub wrapper_id: i64,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub on_archive: bool,
}

/// Every wrapper with its project switches (the caller must be allowed to
/// read the project's subscriptions; owners see all of them).
pub async fn list(actor: &Actor<'_>, project: &str) -> Result<Vec<ProjectPipeline>> {
    let store = actor.state.store();
    let subs = store.subscriptions(Some(project)).await?;
    let mut out = Vec::new();
    for row in store.wrappers().await? {
        let found = commands::wrapper(actor.state, row.id).await?;
        let (_, enabled) = commands::enabled(actor.state, row.id, Some(project)).await?;
        let on_archive = subs
            .iter()
            .any(|s| s.wrapper_id == row.id && s.active && s.event_type == SESSION_EVENT);
        out.push(ProjectPipeline {
            wrapper_id: row.id,
            name: row.name.clone(),
            description: found.wrapper.description.clone().unwrap_or_default(),
            enabled,
            on_archive,
        });
    }
    Ok(out)
}

/// Sets wrapper `wrapper_id` in `project`: enabled or not, and running on
/// every archived session or not (which needs it enabled). Owners only.
pub async fn set(
    actor: &Actor<'_>,
    project: &str,
    wrapper_id: i64,
    enabled: bool,
    on_archive: bool,
) -> Result<()> {
    let on_archive = on_archive && enabled;
    commands::set_enabled(actor, wrapper_id, Some(project), enabled).await?;
    let existing: Vec<i64> = actor
        .state
        .store()
        .subscriptions(Some(project))
        .await?
        .into_iter()
        .filter(|s| s.wrapper_id == wrapper_id && s.event_type == SESSION_EVENT)
        .map(|s| s.id)
        .collect();
    if on_archive && existing.is_empty() {
        let sub = Subscription {
            action_key: format!("{ACTION_PREFIX}{wrapper_id}"),
            event_filter: EventFilter {
                event_type: SESSION_EVENT.to_owned(),
                status: "CREATED".to_owned(),
                ..EventFilter::default()
            },
            active: Some(true),
            ..Subscription::default()
        };
        events::subscribe(actor, project, sub).await?;
    } else if on_archive {
        for id in existing {
            events::set_active(actor, id, true).await?;
        }
    } else {
        for id in existing {
            events::delete(actor, Some(project), id).await?;
        }
    }
    Ok(())
}
