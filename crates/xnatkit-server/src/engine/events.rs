//! Runs on archive: Event Service subscriptions (`SessionEvent` or
//! `ScanEvent`, status `CREATED`, action
//! `org.nrg.containers.services.CommandActionProvider:{wrapperId}`) and the
//! hook [`session_archived`], called from the one place every archiving
//! path goes through (`import::archive::archive_study`: the import
//! service, the C-STORE receiver, the prearchive's archive action and the
//! auto-archive sweep). Sessions built file by file over REST have no such
//! moment: every stored file stamps its session, and [`settle_rest_uploads`]
//! calls the hook once no file has arrived for the settle time — the
//! C-STORE receiver's idle rule applied to uploads. A subscription launches
//! as the user who created it.
//!
//! A scan-level wrapper subscribed to a session event runs once per scan
//! of the session, which makes "convert every archived session to NIfTI"
//! one subscription. A launch that is refused (a scan without DICOM, a
//! NIFTI resource that exists already) is logged and skipped: archiving
//! never fails because of a subscription.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::commands;
use super::launch::{LaunchRequest, launch};
use crate::access::{Action, Caller};
use crate::archive::{Actor, Error, Result, checked_project, project_access};
use crate::state::AppState;
use crate::store::{Entity, SubscriptionRow};

/// The action-key prefix of a container launch.
pub const ACTION_PREFIX: &str = "org.nrg.containers.services.CommandActionProvider:";
pub const SESSION_EVENT: &str = "org.nrg.xnat.eventservice.events.SessionEvent";
pub const SCAN_EVENT: &str = "org.nrg.xnat.eventservice.events.ScanEvent";

/// A subscription as clients send and read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Subscription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub action_key: String,
    #[serde(default)]
    pub event_filter: EventFilter,
    #[serde(default)]
    pub act_as_event_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_owner: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventFilter {
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub project_ids: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn short_type(event_type: &str) -> &str {
    event_type.rsplit('.').next().unwrap_or(event_type)
}

/// Records a subscription for `project` (its owners or admins).
pub async fn subscribe(
    actor: &Actor<'_>,
    project: &str,
    mut sub: Subscription,
) -> Result<(String, i64)> {
    let user = actor.caller.require_user()?.username.clone();
    checked_project(actor, project, Action::Manage).await?;
    let wrapper_id: i64 = sub
        .action_key
        .strip_prefix(ACTION_PREFIX)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "action-key must be {ACTION_PREFIX}WRAPPER_ID (a container launch); got {:?}",
                sub.action_key
            ))
        })?;
    commands::wrapper(actor.state, wrapper_id).await?;
    let kind = short_type(&sub.event_filter.event_type);
    if kind != "SessionEvent" && kind != "ScanEvent" {
        return Err(Error::Invalid(format!(
            "event-filter.event-type must be {SESSION_EVENT} or {SCAN_EVENT}; got {:?}",
            sub.event_filter.event_type
        )));
    }
    let status = if sub.event_filter.status.is_empty() {
        "CREATED".to_owned()
    } else {
        sub.event_filter.status.clone()
    };
    if status != "CREATED" {
        return Err(Error::Invalid(format!(
            "event-filter.status {status:?} is not supported; use CREATED (the object was archived)"
        )));
    }
    if sub.name.trim().is_empty() {
        sub.name = format!("{project}-{kind}-{wrapper_id}");
    }
    sub.event_filter.project_ids = vec![project.to_owned()];
    sub.event_filter.status = status.clone();
    let active = sub.active.unwrap_or(true);
    let json = serde_json::to_string(&sub)
        .map_err(|e| Error::Internal(format!("subscription JSON: {e}")))?;
    let event_type = if kind == "ScanEvent" {
        SCAN_EVENT
    } else {
        SESSION_EVENT
    };
    let id = actor
        .state
        .store()
        .insert_subscription(
            &sub.name, project, event_type, &status, wrapper_id, active, &json, &user,
        )
        .await?;
    Ok((sub.name, id))
}

/// A stored subscription in the shape clients read.
pub fn render(row: &SubscriptionRow) -> Subscription {
    let mut sub: Subscription = serde_json::from_str(&row.json).unwrap_or_default();
    sub.id = Some(row.id);
    sub.name = row.name.clone();
    sub.active = Some(row.active);
    sub.action_key = format!("{ACTION_PREFIX}{}", row.wrapper_id);
    sub.event_filter.event_type = row.event_type.clone();
    sub.event_filter.status = row.event_status.clone();
    sub.event_filter.project_ids = vec![row.project.clone()];
    sub.subscription_owner = Some(row.created_by.clone());
    sub
}

/// Subscriptions the caller may see: of `project`, or of every project
/// they may read.
pub async fn list(actor: &Actor<'_>, project: Option<&str>) -> Result<Vec<Subscription>> {
    let mut out = Vec::new();
    for row in actor.state.store().subscriptions(project).await? {
        if can_read(actor, &row.project).await? {
            out.push(render(&row));
        }
    }
    Ok(out)
}

/// May the caller read `project` (and so its subscriptions)?
pub async fn can_read(actor: &Actor<'_>, project: &str) -> Result<bool> {
    let Some(found) = actor.state.store().project(project).await? else {
        return Ok(false);
    };
    Ok(project_access(actor, &found)
        .await?
        .check(Action::ReadProject, "project")
        .is_ok())
}

/// The subscription `id`, which must belong to `project` when given.
pub async fn get(actor: &Actor<'_>, project: Option<&str>, id: i64) -> Result<SubscriptionRow> {
    let row = actor
        .state
        .store()
        .subscription(id)
        .await?
        .filter(|r| project.is_none_or(|p| p == r.project))
        .ok_or_else(|| Error::NotFound(format!("No subscription with ID {id}")))?;
    if !can_read(actor, &row.project).await? {
        return Err(Error::NotFound(format!("No subscription with ID {id}")));
    }
    Ok(row)
}

pub async fn require_manage(actor: &Actor<'_>, project: &str) -> Result<()> {
    checked_project(actor, project, Action::Manage).await?;
    Ok(())
}

pub async fn delete(actor: &Actor<'_>, project: Option<&str>, id: i64) -> Result<()> {
    let row = get(actor, project, id).await?;
    require_manage(actor, &row.project).await?;
    actor.state.store().delete_subscription(id).await?;
    Ok(())
}

pub async fn set_active(actor: &Actor<'_>, id: i64, active: bool) -> Result<()> {
    let row = get(actor, None, id).await?;
    require_manage(actor, &row.project).await?;
    actor
        .state
        .store()
        .set_subscription_active(id, active)
        .await?;
    Ok(())
}

/// The background task that turns settled REST uploads into archive
/// events: every tick it claims the sessions whose last upload is older
/// than the settle time and calls [`session_archived`] for each. The stamps
/// live in the database, so uploads that settle while the server is down
/// fire after its next start, and servers sharing a PostgreSQL fire each
/// burst once.
pub async fn settle_rest_uploads(state: AppState) {
    let settle = state.config().pipelines.upload_settle;
    let mut tick = tokio::time::interval(settle_tick(settle));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = state.shutdown().clone();
    let settle_ms = i64::try_from(settle.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let quiet_since = crate::store::now_ms().saturating_sub(settle_ms);
        let settled = match state.store().claim_settled_uploads(quiet_since).await {
            Ok(settled) => settled,
            Err(err) => {
                tracing::warn!("looking for settled REST uploads failed: {err}");
                continue;
            }
        };
        for session in settled {
            tracing::info!(
                "session {} of project {} settled after REST uploads: runs on archive",
                session.label,
                session.project
            );
            session_archived(&state, &session.project, &session.label).await;
        }
    }
}

/// How often [`settle_rest_uploads`] looks: a quarter of the settle time,
/// between 200 ms and 5 s.
fn settle_tick(settle: std::time::Duration) -> std::time::Duration {
    (settle / 4).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    )
}

/// Launches the project's active subscriptions for a session that was
/// just archived (new, or merged into). Errors are logged, never returned.
pub async fn session_archived(state: &AppState, project: &str, label: &str) {
    if let Err(err) = launch_subscriptions(state, project, label).await {
        tracing::warn!(
            "launching the subscriptions of project {project} for session {label} failed: {err}"
        );
    }
}

async fn launch_subscriptions(state: &AppState, project: &str, label: &str) -> Result<()> {
    let store = state.store();
    let subs: Vec<SubscriptionRow> = store
        .subscriptions(Some(project))
        .await?
        .into_iter()
        .filter(|s| s.active)
        .collect();
    if subs.is_empty() {
        return Ok(());
    }
    let Some(session) = store.experiment_by_label(project, label).await? else {
        return Ok(());
    };
    let scans = store.scans(&session.id).await?;
    for sub in subs {
        let found = match commands::wrapper(state, sub.wrapper_id).await {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!("subscription {} names a missing wrapper: {err}", sub.name);
                continue;
            }
        };
        let Some(root) = xnatkit_engine::resolve::root_input(&found.wrapper) else {
            continue;
        };
        let targets: Vec<String> = if root.kind == "Scan" {
            scans
                .iter()
                .map(|s| {
                    format!(
                        "/experiments/{}/scans/{}",
                        session.id,
                        xnatkit_model::encode_segment(&s.scan_id)
                    )
                })
                .collect()
        } else {
            vec![format!("/experiments/{}", session.id)]
        };
        let caller = Caller {
            user: store.user(&sub.created_by).await?,
            session_id: None,
        };
        let actor = Actor {
            state,
            caller: &caller,
        };
        let bulk_id = format!("subscription-{}", sub.id);
        for target in targets {
            let params = BTreeMap::from([(root.name.clone(), target.clone())]);
            let request = LaunchRequest {
                project: Some(project),
                wrapper: &found,
                params,
                bulk_id: bulk_id.clone(),
                entity: Entity::Event,
            };
            if let Err(err) = launch(&actor, &request).await {
                tracing::info!(
                    "subscription {} did not launch {} on {target}: {err}",
                    sub.name,
                    found.wrapper.name
                );
            }
        }
    }
    Ok(())
}
