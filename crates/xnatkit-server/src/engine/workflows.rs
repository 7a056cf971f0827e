//! `wrk:workflowData` rows as XNAT's workflow services list them: every
//! launch wrote one (`pipeline_name` = the wrapper name, `ID` = the
//! session, `scan_id` for scan roots, `jobID` = the bulk launch), and its
//! status follows the job's. pyxnat's `Pipeline.status()` reads them
//! through `/data/services/workflows/NAME`.

use xnatkit_model::Row;

use crate::access::Action;
use crate::archive::{Actor, Error, Result, project_access};
use crate::store::WorkflowRow;

/// The columns, in XNAT's spelling.
pub const COLUMNS: [&str; 14] = [
    "wrk_workflowData_id",
    "ID",
    "data_type",
    "scan_id",
    "ExternalID",
    "pipeline_name",
    "status",
    "launch_time",
    "current_step_launch_time",
    "create_user",
    "jobID",
    "step_description",
    "percentageComplete",
    "details",
];

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

pub fn row(w: &WorkflowRow) -> Row {
    let pairs = [
        ("wrk_workflowData_id", w.id.to_string()),
        ("ID", w.data_id.clone()),
        ("data_type", w.data_type.clone()),
        ("scan_id", w.scan_id.clone()),
        ("ExternalID", w.project.clone()),
        ("pipeline_name", w.pipeline_name.clone()),
        ("status", w.status.clone()),
        ("launch_time", time_text(w.launch_time)),
        ("current_step_launch_time", time_text(w.step_time)),
        ("create_user", w.create_user.clone()),
        ("jobID", w.job_id.clone()),
        ("step_description", w.step_description.clone()),
        ("percentageComplete", w.percentage_complete.clone()),
        ("details", w.details.clone()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Workflows the caller may read, filtered as the services do.
/// `experiment` may be the session's ID or, with `project`, its label.
pub async fn list(
    actor: &Actor<'_>,
    pipeline: Option<&str>,
    project: Option<&str>,
    experiment: Option<&str>,
) -> Result<Vec<WorkflowRow>> {
    let store = actor.state.store();
    let data_id = match (experiment, project) {
        (Some(e), Some(p)) => match store.experiment_by_label(p, e).await? {
            Some(found) => Some(found.id),
            None => Some(e.to_owned()),
        },
        (Some(e), None) => Some(e.to_owned()),
        _ => None,
    };
    let mut readable: std::collections::BTreeMap<String, bool> = Default::default();
    let mut out = Vec::new();
    for w in store
        .workflows(pipeline, data_id.as_deref(), project)
        .await?
    {
        let ok = match readable.get(&w.project) {
            Some(v) => *v,
            None => {
                let v = match store.project(&w.project).await? {
                    Some(found) => project_access(actor, &found)
                        .await?
                        .check(Action::ReadData, "project")
                        .is_ok(),
                    None => false,
                };
                readable.insert(w.project.clone(), v);
                v
            }
        };
        if ok {
            out.push(w);
        }
    }
    Ok(out)
}

pub async fn get(actor: &Actor<'_>, id: i64) -> Result<WorkflowRow> {
    let not_found = || Error::NotFound(format!("No workflow with ID {id}"));
    let w = actor
        .state
        .store()
        .workflow(id)
        .await?
        .ok_or_else(not_found)?;
    let Some(project) = actor.state.store().project(&w.project).await? else {
        return Err(not_found());
    };
    if project_access(actor, &project)
        .await?
        .check(Action::ReadData, "project")
        .is_err()
    {
        return Err(not_found());
    }
    Ok(w)
}
