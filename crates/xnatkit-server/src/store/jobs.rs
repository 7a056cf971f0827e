//! The pipeline engine's rows: commands and their wrappers, where wrappers
//! are enabled, the job queue with its history, `wrk:workflowData` rows
//! and Event Service subscriptions.
//!
//! The queue is claimed by compare-and-set: a worker moves a job from
//! `Created` to `Running` with `WHERE status = 'Created'`, recording its
//! instance ID, and only the one whose update touched the row runs it —
//! on PostgreSQL a second server's update waits for the first to commit
//! and then matches nothing. Every later move (finish, kill) is likewise
//! applied only from the state it expects, in one transaction with its
//! history entry and the workflow row.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, int, now_ms, text};

#[derive(Debug, Clone)]
pub struct CommandRow {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub builtin: bool,
    pub json: String,
}

#[derive(Debug, Clone)]
pub struct WrapperRow {
    pub id: i64,
    pub command_id: i64,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub command_id: i64,
    pub wrapper_id: i64,
    pub project: String,
    pub username: String,
    pub status: String,
    pub status_time: i64,
    pub root_uri: String,
    pub params: String,
    pub resolved: String,
    pub workflow_id: i64,
    pub bulk_id: String,
    pub claimed_by: String,
    pub backend: String,
    pub kill_requested: bool,
    pub exit_code: String,
    pub message: String,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub status: String,
    pub entity_type: String,
    pub entity_id: String,
    pub time_recorded: i64,
    pub message: String,
    pub exit_code: String,
}

#[derive(Debug, Clone)]
pub struct WorkflowRow {
    pub id: i64,
    pub data_id: String,
    pub data_type: String,
    pub scan_id: String,
    pub project: String,
    pub pipeline_name: String,
    pub status: String,
    pub launch_time: i64,
    pub step_time: i64,
    pub create_user: String,
    pub job_id: String,
    pub step_description: String,
    pub percentage_complete: String,
    pub details: String,
}

#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: i64,
    pub name: String,
    pub project: String,
    pub event_type: String,
    pub event_status: String,
    pub wrapper_id: i64,
    pub active: bool,
    pub json: String,
    pub created_by: String,
}

/// A job to queue, with its workflow row.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub command_id: i64,
    pub wrapper_id: i64,
    pub project: String,
    pub username: String,
    pub root_uri: String,
    pub params: String,
    pub resolved: String,
    pub bulk_id: String,
    pub pipeline_name: String,
    /// The session's accession ID (`wrk:workflowData/ID`).
    pub data_id: String,
    pub data_type: String,
    pub scan_id: String,
}

/// Who records a status move, as the container history's `entity-type`.
#[derive(Debug, Clone, Copy)]
pub enum Entity {
    System,
    User,
    Event,
}

impl Entity {
    fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Event => "event",
        }
    }
}

/// `SELECT id, command_id, wrapper_id, project, username, status, status_time, root_uri, params, resolved, workflow_id, bulk_id, claimed_by, backend, kill_requested, exit_code, message, created FROM jobs` followed by `tail`, as a literal (sqlx takes only static SQL).
macro_rules! select_jobs {
    ($tail:literal) => {
        concat!("SELECT id, command_id, wrapper_id, project, username, status, status_time, root_uri, params, resolved, workflow_id, bulk_id, claimed_by, backend, kill_requested, exit_code, message, created FROM jobs ", $tail)
    };
}

/// The joins and conditions of [`Store::run_page`]: `$1` project, `$2`
/// session accession ID (empty: any), `$3` status (empty: any).
macro_rules! run_page_from {
    () => {
        "LEFT JOIN workflows w ON w.id = j.workflow_id LEFT JOIN experiments e ON e.id = w.data_id LEFT JOIN subjects s ON s.id = e.subject_id WHERE j.project = $1 AND ($2 = '' OR w.data_id = $2) AND ($3 = '' OR j.status = $3)"
    };
}

/// Which runs a page lists.
#[derive(Debug, Clone, Copy)]
pub struct RunPageQuery<'a> {
    pub project: &'a str,
    /// A session's accession ID, or empty for every session.
    pub session: &'a str,
    /// A job status (`Running`, `Complete`, …), or empty for all.
    pub status: &'a str,
    pub limit: i64,
    pub offset: i64,
}

/// A run with what its page row shows besides the job.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub job: JobRow,
    /// The session's accession ID (`wrk:workflowData/ID`).
    pub session_id: String,
    /// The scan it ran on, empty for a session-level run.
    pub scan_id: String,
    /// Labels of the session and its subject; empty once it was deleted.
    pub session_label: String,
    pub subject_label: String,
    /// When it started running (ms), 0 if it never did.
    pub started: i64,
}

/// One page of runs and how many match in all.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub rows: Vec<RunRow>,
    pub total: i64,
}

fn job_from(row: &AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: int(row, "id")?,
        command_id: int(row, "command_id")?,
        wrapper_id: int(row, "wrapper_id")?,
        project: text(row, "project")?,
        username: text(row, "username")?,
        status: text(row, "status")?,
        status_time: int(row, "status_time")?,
        root_uri: text(row, "root_uri")?,
        params: text(row, "params")?,
        resolved: text(row, "resolved")?,
        workflow_id: int(row, "workflow_id")?,
        bulk_id: text(row, "bulk_id")?,
        claimed_by: text(row, "claimed_by")?,
        backend: text(row, "backend")?,
        kill_requested: int(row, "kill_requested")? != 0,
        exit_code: text(row, "exit_code")?,
        message: text(row, "message")?,
        created: int(row, "created")?,
    })
}

/// `SELECT id, data_id, data_type, scan_id, project, pipeline_name, status, launch_time, step_time, create_user, job_id, step_description, percentage_complete, details FROM workflows` followed by `tail`, as a literal (sqlx takes only static SQL).
macro_rules! select_workflows {
    ($tail:literal) => {
        concat!("SELECT id, data_id, data_type, scan_id, project, pipeline_name, status, launch_time, step_time, create_user, job_id, step_description, percentage_complete, details FROM workflows ", $tail)
    };
}

fn workflow_from(row: &AnyRow) -> Result<WorkflowRow, sqlx::Error> {
    Ok(WorkflowRow {
        id: int(row, "id")?,
        data_id: text(row, "data_id")?,
        data_type: text(row, "data_type")?,
        scan_id: text(row, "scan_id")?,
        project: text(row, "project")?,
        pipeline_name: text(row, "pipeline_name")?,
        status: text(row, "status")?,
        launch_time: int(row, "launch_time")?,
        step_time: int(row, "step_time")?,
        create_user: text(row, "create_user")?,
        job_id: text(row, "job_id")?,
        step_description: text(row, "step_description")?,
        percentage_complete: text(row, "percentage_complete")?,
        details: text(row, "details")?,
    })
}

/// `SELECT id, name, project, event_type, event_status, wrapper_id, active, json, created_by FROM event_subscriptions` followed by `tail`, as a literal (sqlx takes only static SQL).
macro_rules! select_subscriptions {
    ($tail:literal) => {
        concat!("SELECT id, name, project, event_type, event_status, wrapper_id, active, json, created_by FROM event_subscriptions ", $tail)
    };
}

fn subscription_from(row: &AnyRow) -> Result<SubscriptionRow, sqlx::Error> {
    Ok(SubscriptionRow {
        id: int(row, "id")?,
        name: text(row, "name")?,
        project: text(row, "project")?,
        event_type: text(row, "event_type")?,
        event_status: text(row, "event_status")?,
        wrapper_id: int(row, "wrapper_id")?,
        active: int(row, "active")? != 0,
        json: text(row, "json")?,
        created_by: text(row, "created_by")?,
    })
}

fn command_from(row: &AnyRow) -> Result<CommandRow, sqlx::Error> {
    Ok(CommandRow {
        id: int(row, "id")?,
        name: text(row, "name")?,
        version: text(row, "version")?,
        builtin: int(row, "builtin")? != 0,
        json: text(row, "json")?,
    })
}

fn wrapper_from(row: &AnyRow) -> Result<WrapperRow, sqlx::Error> {
    Ok(WrapperRow {
        id: int(row, "id")?,
        command_id: int(row, "command_id")?,
        name: text(row, "name")?,
    })
}

/// One history entry to record.
struct Step<'a> {
    status: &'a str,
    entity: Entity,
    entity_id: &'a str,
    message: &'a str,
    exit_code: &'a str,
}

async fn insert_history(
    conn: &mut sqlx::AnyConnection,
    job_id: i64,
    step: Step<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_history (job_id, status, entity_type, entity_id, time_recorded, message, exit_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(job_id)
    .bind(step.status)
    .bind(step.entity.as_str())
    .bind(step.entity_id)
    .bind(now)
    .bind(step.message)
    .bind(step.exit_code)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    // ---- commands and wrappers ----

    /// Records a command with its wrappers; returns the command's ID.
    pub async fn insert_command(
        &self,
        name: &str,
        version: &str,
        builtin: bool,
        json: &str,
        wrappers: &[String],
    ) -> Result<i64, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO commands (name, version, builtin, json, created) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(version)
        .bind(i64::from(builtin))
        .bind(json)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for wrapper in wrappers {
            sqlx::query("INSERT INTO command_wrappers (command_id, name) VALUES ($1, $2)")
                .bind(id)
                .bind(wrapper)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a command's JSON; wrappers keep their IDs by name, new
    /// names get new IDs, dropped ones go (with their enablement).
    pub async fn replace_command(
        &self,
        id: i64,
        name: &str,
        version: &str,
        json: &str,
        wrappers: &[String],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let updated =
            sqlx::query("UPDATE commands SET name = $1, version = $2, json = $3 WHERE id = $4")
                .bind(name)
                .bind(version)
                .bind(json)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let existing: Vec<WrapperRow> =
            sqlx::query("SELECT id, command_id, name FROM command_wrappers WHERE command_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(wrapper_from)
                .collect::<Result<_, _>>()?;
        for old in &existing {
            if !wrappers.contains(&old.name) {
                for sql in [
                    "DELETE FROM wrapper_enabled WHERE wrapper_id = $1",
                    "DELETE FROM wrapper_configs WHERE wrapper_id = $1",
                ] {
                    sqlx::query(sql).bind(old.id).execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM command_wrappers WHERE id = $1")
                    .bind(old.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for wrapper in wrappers {
            if !existing.iter().any(|w| &w.name == wrapper) {
                sqlx::query("INSERT INTO command_wrappers (command_id, name) VALUES ($1, $2)")
                    .bind(id)
                    .bind(wrapper)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_command(&self, id: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM wrapper_enabled WHERE wrapper_id IN (SELECT id FROM command_wrappers WHERE command_id = $1)",
            "DELETE FROM wrapper_configs WHERE wrapper_id IN (SELECT id FROM command_wrappers WHERE command_id = $1)",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM command_wrappers WHERE command_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM commands WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    pub async fn commands(&self) -> Result<Vec<CommandRow>, sqlx::Error> {
        sqlx::query("SELECT id, name, version, builtin, json FROM commands ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(command_from)
            .collect()
    }

    pub async fn command(&self, id: i64) -> Result<Option<CommandRow>, sqlx::Error> {
        sqlx::query("SELECT id, name, version, builtin, json FROM commands WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(command_from)
            .transpose()
    }

    pub async fn wrappers(&self) -> Result<Vec<WrapperRow>, sqlx::Error> {
        sqlx::query("SELECT id, command_id, name FROM command_wrappers ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(wrapper_from)
            .collect()
    }

    pub async fn wrapper(&self, id: i64) -> Result<Option<WrapperRow>, sqlx::Error> {
        sqlx::query("SELECT id, command_id, name FROM command_wrappers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(wrapper_from)
            .transpose()
    }

    /// Sets a wrapper's enablement for `project` (`""` = the site).
    pub async fn set_wrapper_enabled(
        &self,
        wrapper_id: i64,
        project: &str,
        enabled: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO wrapper_enabled (wrapper_id, project, enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (wrapper_id, project) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(wrapper_id)
        .bind(project)
        .bind(i64::from(enabled))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The recorded enablement for `project` (`""` = the site), if any.
    pub async fn wrapper_enabled(
        &self,
        wrapper_id: i64,
        project: &str,
    ) -> Result<Option<bool>, sqlx::Error> {
        sqlx::query("SELECT enabled FROM wrapper_enabled WHERE wrapper_id = $1 AND project = $2")
            .bind(wrapper_id)
            .bind(project)
            .fetch_optional(self.pool())
            .await?
            .map(|row| int(&row, "enabled").map(|v| v != 0))
            .transpose()
    }

    /// Stores a wrapper's configuration JSON for `project` (`""` = the
    /// site), replacing the one before.
    pub async fn set_wrapper_config(
        &self,
        wrapper_id: i64,
        project: &str,
        config: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO wrapper_configs (wrapper_id, project, config) VALUES ($1, $2, $3) \
             ON CONFLICT (wrapper_id, project) DO UPDATE SET config = excluded.config",
        )
        .bind(wrapper_id)
        .bind(project)
        .bind(config)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A wrapper's stored configuration JSON for `project` (`""` = the site).
    pub async fn wrapper_config(
        &self,
        wrapper_id: i64,
        project: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query("SELECT config FROM wrapper_configs WHERE wrapper_id = $1 AND project = $2")
            .bind(wrapper_id)
            .bind(project)
            .fetch_optional(self.pool())
            .await?
            .map(|row| text(&row, "config"))
            .transpose()
    }

    /// Removes a wrapper's configuration for `project` (`""` = the site);
    /// false when there was none.
    pub async fn delete_wrapper_config(
        &self,
        wrapper_id: i64,
        project: &str,
    ) -> Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM wrapper_configs WHERE wrapper_id = $1 AND project = $2")
                .bind(wrapper_id)
                .bind(project)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    // ---- jobs ----

    /// Queues a job with its workflow row and first history entry; returns
    /// (job ID, workflow ID).
    pub async fn enqueue_job(
        &self,
        job: &NewJob,
        entity: Entity,
    ) -> Result<(i64, i64), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let workflow_id: i64 = sqlx::query(
            "INSERT INTO workflows (data_id, data_type, scan_id, project, pipeline_name, status, launch_time, step_time, create_user, job_id, step_description) \
             VALUES ($1, $2, $3, $4, $5, 'Queued', $6, $6, $7, $8, 'Queued') RETURNING id",
        )
        .bind(&job.data_id)
        .bind(&job.data_type)
        .bind(&job.scan_id)
        .bind(&job.project)
        .bind(&job.pipeline_name)
        .bind(now)
        .bind(&job.username)
        .bind(&job.bulk_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let job_id: i64 = sqlx::query(
            "INSERT INTO jobs (command_id, wrapper_id, project, username, status, status_time, root_uri, params, resolved, workflow_id, bulk_id, created) \
             VALUES ($1, $2, $3, $4, 'Created', $5, $6, $7, $8, $9, $10, $5) RETURNING id",
        )
        .bind(job.command_id)
        .bind(job.wrapper_id)
        .bind(&job.project)
        .bind(&job.username)
        .bind(now)
        .bind(&job.root_uri)
        .bind(&job.params)
        .bind(&job.resolved)
        .bind(workflow_id)
        .bind(&job.bulk_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        insert_history(
            &mut tx,
            job_id,
            Step {
                status: "Created",
                entity,
                entity_id: &job.username,
                message: "",
                exit_code: "",
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((job_id, workflow_id))
    }

    /// Claims the oldest queued job for `instance` (compare-and-set, see
    /// the module doc), or `None` when there is none to claim.
    pub async fn claim_job(&self, backend: &str) -> Result<Option<JobRow>, sqlx::Error> {
        for _ in 0..8 {
            let Some(id) =
                sqlx::query("SELECT id FROM jobs WHERE status = 'Created' ORDER BY id LIMIT 1")
                    .fetch_optional(self.pool())
                    .await?
                    .map(|row| int(&row, "id"))
                    .transpose()?
            else {
                return Ok(None);
            };
            let now = now_ms();
            let mut tx = self.begin_write().await?;
            let claimed = sqlx::query(
                "UPDATE jobs SET status = 'Running', status_time = $1, claimed_by = $2, backend = $3 WHERE id = $4 AND status = 'Created'",
            )
            .bind(now)
            .bind(self.instance())
            .bind(backend)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                // Another worker took it (or it was killed) first.
                tx.rollback().await?;
                continue;
            }
            insert_history(
                &mut tx,
                id,
                Step {
                    status: "Running",
                    entity: Entity::System,
                    entity_id: self.instance(),
                    message: "",
                    exit_code: "",
                },
                now,
            )
            .await?;
            sqlx::query("UPDATE workflows SET status = 'Running', step_description = 'Running', step_time = $1 WHERE id = (SELECT workflow_id FROM jobs WHERE id = $2)")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(select_jobs!("WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return job_from(&row).map(Some);
        }
        Ok(None)
    }

    /// Moves job `id` from `from` to `to` (a terminal state) with its
    /// history entry and workflow status; false when it was not in `from`.
    #[allow(clippy::too_many_arguments)]
    pub async fn move_job(
        &self,
        id: i64,
        from: &str,
        to: &str,
        entity: Entity,
        entity_id: &str,
        exit_code: &str,
        message: &str,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE jobs SET status = $1, status_time = $2, exit_code = $3, message = $4 WHERE id = $5 AND status = $6",
        )
        .bind(to)
        .bind(now)
        .bind(exit_code)
        .bind(message)
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_history(
            &mut tx,
            id,
            Step {
                status: to,
                entity,
                entity_id,
                message,
                exit_code,
            },
            now,
        )
        .await?;
        let percent = if to == "Complete" { "100.0" } else { "" };
        sqlx::query("UPDATE workflows SET status = $1, step_description = $2, step_time = $3, percentage_complete = $4, details = $5 WHERE id = (SELECT workflow_id FROM jobs WHERE id = $6)")
            .bind(to)
            .bind(to)
            .bind(now)
            .bind(percent)
            .bind(message)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes job `id` and its history when it has ended (a compare on
    /// the status, so a job that a worker claims meanwhile stays); the
    /// workflow row stays, as XNAT keeps its workflows. False when no
    /// finished job `id` was there.
    pub async fn delete_finished_job(&self, id: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM jobs WHERE id = $1 AND status IN ('Complete', 'Failed', 'Killed')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM job_history WHERE job_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Asks the worker running job `id` to kill it.
    pub async fn request_kill(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE jobs SET kill_requested = 1 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Jobs this server runs that someone asked to kill.
    pub async fn kills_for_me(&self) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query("SELECT id FROM jobs WHERE status = 'Running' AND kill_requested = 1 AND claimed_by = $1")
            .bind(self.instance())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| int(r, "id"))
            .collect()
    }

    /// Running jobs and who runs them.
    pub async fn running_jobs(&self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        sqlx::query("SELECT id, claimed_by FROM jobs WHERE status = 'Running' ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((int(r, "id")?, text(r, "claimed_by")?)))
            .collect()
    }

    pub async fn jobs(&self, project: Option<&str>) -> Result<Vec<JobRow>, sqlx::Error> {
        let rows = match project {
            Some(p) => {
                sqlx::query(select_jobs!("WHERE project = $1 ORDER BY id"))
                    .bind(p)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query(select_jobs!("ORDER BY id"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(job_from).collect()
    }

    /// One page of a project's runs, newest first, optionally of one
    /// session (its accession ID) and one status, with the session's
    /// labels and when each run started; and how many match.
    pub async fn run_page(&self, query: &RunPageQuery<'_>) -> Result<RunPage, sqlx::Error> {
        let count = sqlx::query(concat!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM jobs j ",
            run_page_from!()
        ))
        .bind(query.project)
        .bind(query.session)
        .bind(query.status)
        .fetch_one(self.pool())
        .await?;
        let total = int(&count, "n")?;
        let rows = sqlx::query(concat!(
            "SELECT j.id, j.command_id, j.wrapper_id, j.project, j.username, j.status, j.status_time, j.root_uri, j.params, j.resolved, j.workflow_id, j.bulk_id, j.claimed_by, j.backend, j.kill_requested, j.exit_code, j.message, j.created, ",
            "COALESCE(w.data_id, '') AS data_id, COALESCE(w.scan_id, '') AS scan_id, ",
            "COALESCE(e.label, '') AS session_label, COALESCE(s.label, '') AS subject_label, ",
            "COALESCE((SELECT MIN(h.time_recorded) FROM job_history h WHERE h.job_id = j.id AND h.status = 'Running'), 0) AS started ",
            "FROM jobs j ",
            run_page_from!(),
            " ORDER BY j.id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(query.project)
        .bind(query.session)
        .bind(query.status)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(self.pool())
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(RunRow {
                    job: job_from(row)?,
                    session_id: text(row, "data_id")?,
                    scan_id: text(row, "scan_id")?,
                    session_label: text(row, "session_label")?,
                    subject_label: text(row, "subject_label")?,
                    started: int(row, "started")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(RunPage { rows, total })
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRow>, sqlx::Error> {
        sqlx::query(select_jobs!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(job_from)
            .transpose()
    }

    pub async fn job_history(&self, id: i64) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query("SELECT id, status, entity_type, entity_id, time_recorded, message, exit_code FROM job_history WHERE job_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(HistoryRow {
                    id: int(row, "id")?,
                    status: text(row, "status")?,
                    entity_type: text(row, "entity_type")?,
                    entity_id: text(row, "entity_id")?,
                    time_recorded: int(row, "time_recorded")?,
                    message: text(row, "message")?,
                    exit_code: text(row, "exit_code")?,
                })
            })
            .collect()
    }

    // ---- workflows ----

    /// Workflows, newest last, optionally of one pipeline, data object or
    /// project.
    pub async fn workflows(
        &self,
        pipeline: Option<&str>,
        data_id: Option<&str>,
        project: Option<&str>,
    ) -> Result<Vec<WorkflowRow>, sqlx::Error> {
        let rows = sqlx::query(select_workflows!("WHERE ($1 = '' OR pipeline_name = $1) AND ($2 = '' OR data_id = $2) AND ($3 = '' OR project = $3) ORDER BY id"))
        .bind(pipeline.unwrap_or(""))
        .bind(data_id.unwrap_or(""))
        .bind(project.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(workflow_from).collect()
    }

    pub async fn workflow(&self, id: i64) -> Result<Option<WorkflowRow>, sqlx::Error> {
        sqlx::query(select_workflows!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(workflow_from)
            .transpose()
    }

    // ---- event subscriptions ----

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_subscription(
        &self,
        name: &str,
        project: &str,
        event_type: &str,
        event_status: &str,
        wrapper_id: i64,
        active: bool,
        json: &str,
        created_by: &str,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO event_subscriptions (name, project, event_type, event_status, wrapper_id, active, json, created_by, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(name)
        .bind(project)
        .bind(event_type)
        .bind(event_status)
        .bind(wrapper_id)
        .bind(i64::from(active))
        .bind(json)
        .bind(created_by)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?
        .try_get("id")
    }

    pub async fn subscriptions(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
        sqlx::query(select_subscriptions!(
            "WHERE ($1 = '' OR project = $1) ORDER BY id"
        ))
        .bind(project.unwrap_or(""))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(subscription_from)
        .collect()
    }

    pub async fn subscription(&self, id: i64) -> Result<Option<SubscriptionRow>, sqlx::Error> {
        sqlx::query(select_subscriptions!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(subscription_from)
            .transpose()
    }

    pub async fn set_subscription_active(
        &self,
        id: i64,
        active: bool,
    ) -> Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("UPDATE event_subscriptions SET active = $1 WHERE id = $2")
                .bind(i64::from(active))
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Replaces a subscription's stored JSON (what clients read back).
    pub async fn set_subscription_json(&self, id: i64, json: &str) -> Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("UPDATE event_subscriptions SET json = $1 WHERE id = $2")
                .bind(json)
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0,
        )
    }

    pub async fn delete_subscription(&self, id: i64) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM event_subscriptions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }
}
