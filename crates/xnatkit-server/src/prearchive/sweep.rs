//! XNAT's session rebuilder: a RECEIVING session (gradual uploads) that got
//! no new file for a while is built (READY), and archived when its project
//! auto-archives (`prearchive_code` 4 or 5).

use std::time::Duration;

use super::actions::{self, ArchiveRequest};
use super::build::rebuild;
use crate::access::Caller;
use crate::import::Overwrite;
use crate::state::AppState;
use crate::store::{UNASSIGNED, now_ms};

/// How often RECEIVING sessions are looked at (XNAT: 60 s).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Quiet time after which a RECEIVING session is built (XNAT: 5 min).
pub const RECEIVING_IDLE: Duration = Duration::from_secs(300);

/// Runs forever; abort the task to stop it.
pub async fn sweep_receiving(state: AppState) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        build_stale(&state, RECEIVING_IDLE).await;
    }
}

/// Builds every RECEIVING session quiet for at least `idle`.
pub async fn build_stale(state: &AppState, idle: Duration) {
    let cutoff = now_ms().saturating_sub(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
    let stale = match state.store().stale_receiving_sessions(cutoff).await {
        Ok(stale) => stale,
        Err(err) => {
            tracing::warn!("listing RECEIVING prearchive sessions failed: {err}");
            return;
        }
    };
    for session in stale {
        if let Err(err) = rebuild(state, &session).await {
            tracing::warn!("building prearchive session {}: {err}", session.folder);
            continue;
        }
        if session.project == UNASSIGNED {
            continue;
        }
        let code = state
            .store()
            .prearchive_code(&session.project)
            .await
            .unwrap_or(0);
        if code < 4 {
            continue;
        }
        // Auto-archive runs as the site admin, as XNAT's rebuilder does.
        let admin = match state.store().user("admin").await {
            Ok(user) => Caller {
                user,
                session_id: None,
            },
            Err(err) => {
                tracing::warn!("auto-archive: cannot load the admin user: {err}");
                continue;
            }
        };
        let request = ArchiveRequest {
            project: None,
            subject: None,
            label: None,
            overwrite: if code == 5 {
                Overwrite::Replace
            } else {
                Overwrite::Append
            },
        };
        if let Err(err) = actions::archive(state, &admin, &session, &request).await {
            tracing::warn!(
                "auto-archiving prearchive session {}: {err}",
                session.folder
            );
        }
    }
}
