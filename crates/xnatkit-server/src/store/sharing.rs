//! Subjects and experiments shared into other projects (XNAT's
//! `xnat:projectShare`: the object stays owned by its project) and the
//! labels they carry there.
//!
//! An object keeps its owning project; a share row makes it visible in one
//! more project under a label of that project. A label names one object per
//! project, owned or shared: `UNIQUE (project, label)` on the share tables
//! covers shares against shares, and [`check_label_free`] (called by every
//! writer of labels inside its transaction, after [`lock_project_labels`])
//! covers owned labels against shared ones.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::error::{DatabaseError, ErrorKind};

use super::hierarchy::{experiment_from, subject_from};
use super::{Experiment, Store, Subject, int, now_ms, text};

/// The kind of object a share is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    Subject,
    Experiment,
}

/// One project an object is shared into, with its label there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub project: String,
    pub label: String,
    pub created: i64,
    pub created_by: String,
}

/// What [`Store::share`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareOutcome {
    Created,
    /// Already shared there; the label changed.
    Relabelled,
    /// Already shared there with this label.
    Unchanged,
    /// Another object (owned or shared) has this label in the project.
    LabelTaken,
}

/// The SQL of one kind; literal strings so every query stays a `&'static str`.
struct Sql {
    list: &'static str,
    one: &'static str,
    insert: &'static str,
    relabel: &'static str,
    delete: &'static str,
    shared_label: &'static str,
    owned_label: &'static str,
}

const SUBJECT_SQL: Sql = Sql {
    list: "SELECT project, label, created, created_by FROM subject_shares WHERE subject_id = $1 ORDER BY project",
    one: "SELECT project, label, created, created_by FROM subject_shares WHERE subject_id = $1 AND project = $2",
    insert: "INSERT INTO subject_shares (subject_id, project, label, created, created_by) VALUES ($1, $2, $3, $4, $5)",
    relabel: "UPDATE subject_shares SET label = $1 WHERE subject_id = $2 AND project = $3",
    delete: "DELETE FROM subject_shares WHERE subject_id = $1 AND project = $2",
    shared_label: "SELECT subject_id AS id FROM subject_shares WHERE project = $1 AND label = $2",
    owned_label: "SELECT id FROM subjects WHERE project = $1 AND label = $2",
};

const EXPERIMENT_SQL: Sql = Sql {
    list: "SELECT project, label, created, created_by FROM experiment_shares WHERE experiment_id = $1 ORDER BY project",
    one: "SELECT project, label, created, created_by FROM experiment_shares WHERE experiment_id = $1 AND project = $2",
    insert: "INSERT INTO experiment_shares (experiment_id, project, label, created, created_by) VALUES ($1, $2, $3, $4, $5)",
    relabel: "UPDATE experiment_shares SET label = $1 WHERE experiment_id = $2 AND project = $3",
    delete: "DELETE FROM experiment_shares WHERE experiment_id = $1 AND project = $2",
    shared_label: "SELECT experiment_id AS id FROM experiment_shares WHERE project = $1 AND label = $2",
    owned_label: "SELECT id FROM experiments WHERE project = $1 AND label = $2",
};

impl ShareKind {
    fn sql(self) -> &'static Sql {
        match self {
            Self::Subject => &SUBJECT_SQL,
            Self::Experiment => &EXPERIMENT_SQL,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Experiment => "experiment",
        }
    }
}

const SUBJECTS_SHARED_INTO: &str = "SELECT s.id, s.project, s.label, s.created, s.created_by, \
     sh.project AS share_project, sh.label AS share_label, sh.created AS share_created, sh.created_by AS share_created_by \
     FROM subject_shares sh JOIN subjects s ON s.id = sh.subject_id WHERE sh.project = $1 ORDER BY sh.label";
const SHARED_SUBJECT_BY_LABEL: &str = "SELECT s.id, s.project, s.label, s.created, s.created_by, \
     sh.project AS share_project, sh.label AS share_label, sh.created AS share_created, sh.created_by AS share_created_by \
     FROM subject_shares sh JOIN subjects s ON s.id = sh.subject_id WHERE sh.project = $1 AND sh.label = $2";
const EXPERIMENTS_SHARED_INTO: &str = "SELECT e.*, \
     sh.project AS share_project, sh.label AS share_label, sh.created AS share_created, sh.created_by AS share_created_by \
     FROM experiment_shares sh JOIN experiments e ON e.id = sh.experiment_id WHERE sh.project = $1 ORDER BY sh.label";
const SHARED_EXPERIMENT_BY_LABEL: &str = "SELECT e.*, \
     sh.project AS share_project, sh.label AS share_label, sh.created AS share_created, sh.created_by AS share_created_by \
     FROM experiment_shares sh JOIN experiments e ON e.id = sh.experiment_id WHERE sh.project = $1 AND sh.label = $2";

fn share_from(row: &AnyRow) -> Result<Share, sqlx::Error> {
    Ok(Share {
        project: text(row, "project")?,
        label: text(row, "label")?,
        created: int(row, "created")?,
        created_by: text(row, "created_by")?,
    })
}

/// The share columns of a joined row (`share_…` aliases).
fn joined_share(row: &AnyRow) -> Result<Share, sqlx::Error> {
    Ok(Share {
        project: text(row, "share_project")?,
        label: text(row, "share_label")?,
        created: int(row, "share_created")?,
        created_by: text(row, "share_created_by")?,
    })
}

/// A label already used in a project, reported as a unique violation so
/// that callers treat it like the database's own `UNIQUE (project, label)`.
#[derive(Debug)]
pub struct LabelInUse {
    message: String,
}

impl fmt::Display for LabelInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for LabelInUse {}

impl DatabaseError for LabelInUse {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        // PostgreSQL's unique_violation, for anyone reading logs.
        Some(Cow::Borrowed("23505"))
    }

    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::UniqueViolation
    }
}

fn label_in_use(kind: ShareKind, project: &str, label: &str) -> sqlx::Error {
    sqlx::Error::Database(Box::new(LabelInUse {
        message: format!(
            "{} label {label} is already in use in project {project}",
            kind.noun()
        ),
    }))
}

/// Serialises label changes in one project until the transaction ends: a
/// row lock on PostgreSQL; on SQLite the write transaction already holds
/// the database lock.
pub(super) async fn lock_project_labels(
    conn: &mut AnyConnection,
    project: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE projects SET created = created WHERE id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Is `label` used in `project` by any object of this kind other than
/// `except` (owned there or shared into it)?
async fn label_taken(
    conn: &mut AnyConnection,
    kind: ShareKind,
    project: &str,
    label: &str,
    except: &str,
) -> Result<bool, sqlx::Error> {
    let sql = kind.sql();
    // Image assessors are experiments to XNAT: their labels share the
    // project's experiment namespace.
    let assessors = match kind {
        ShareKind::Experiment => Some("SELECT id FROM assessors WHERE project = $1 AND label = $2"),
        ShareKind::Subject => None,
    };
    for query in [sql.owned_label, sql.shared_label]
        .into_iter()
        .chain(assessors)
    {
        let rows = sqlx::query(query)
            .bind(project)
            .bind(label)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            if text(&row, "id")? != except {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Fails with a unique violation when `label` is taken in `project` (owned
/// or shared) by an object other than `except`. Call after
/// [`lock_project_labels`] in the transaction that writes the label.
pub(super) async fn check_label_free(
    conn: &mut AnyConnection,
    kind: ShareKind,
    project: &str,
    label: &str,
    except: &str,
) -> Result<(), sqlx::Error> {
    if label_taken(conn, kind, project, label, except).await? {
        return Err(label_in_use(kind, project, label));
    }
    Ok(())
}

impl Store {
    /// Every project `id` is shared into, by project ID.
    pub async fn shares(&self, kind: ShareKind, id: &str) -> Result<Vec<Share>, sqlx::Error> {
        let rows = sqlx::query(kind.sql().list)
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(share_from).collect()
    }

    /// A subject named by ID or label in `project`: owned there, or shared
    /// into it (then with its share). IDs win over labels, owned labels over
    /// shared ones, as for every archive path.
    pub async fn subject_in(
        &self,
        project: &str,
        key: &str,
    ) -> Result<Option<(Subject, Option<Share>)>, sqlx::Error> {
        if let Some(found) = self.subject_by_id(key).await? {
            if found.project == project {
                return Ok(Some((found, None)));
            }
            if let Some(share) = self
                .share_into(ShareKind::Subject, &found.id, project)
                .await?
            {
                return Ok(Some((found, Some(share))));
            }
        }
        if let Some(found) = self.subject_by_label(project, key).await? {
            return Ok(Some((found, None)));
        }
        Ok(self
            .shared_subject_by_label(project, key)
            .await?
            .map(|(s, share)| (s, Some(share))))
    }

    /// Like [`Self::subject_in`] for experiments.
    pub async fn experiment_in(
        &self,
        project: &str,
        key: &str,
    ) -> Result<Option<(Experiment, Option<Share>)>, sqlx::Error> {
        if let Some(found) = self.experiment_by_id(key).await? {
            if found.project == project {
                return Ok(Some((found, None)));
            }
            if let Some(share) = self
                .share_into(ShareKind::Experiment, &found.id, project)
                .await?
            {
                return Ok(Some((found, Some(share))));
            }
        }
        if let Some(found) = self.experiment_by_label(project, key).await? {
            return Ok(Some((found, None)));
        }
        Ok(self
            .shared_experiment_by_label(project, key)
            .await?
            .map(|(e, share)| (e, Some(share))))
    }

    /// The share of `id` into `project`, if there is one.
    pub async fn share_into(
        &self,
        kind: ShareKind,
        id: &str,
        project: &str,
    ) -> Result<Option<Share>, sqlx::Error> {
        let row = sqlx::query(kind.sql().one)
            .bind(id)
            .bind(project)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(share_from).transpose()
    }

    /// Is `label` free for a new (or renamed) object in `project`, among
    /// owned and shared objects of this kind other than `except`?
    pub async fn label_free(
        &self,
        kind: ShareKind,
        project: &str,
        label: &str,
        except: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        Ok(!label_taken(&mut conn, kind, project, label, except).await?)
    }

    /// Shares `id` into `project` under `label`, or changes the label of an
    /// existing share, in one transaction that also checks the label is
    /// free there. The caller has checked permissions and that `project` is
    /// not the owning project.
    pub async fn share(
        &self,
        kind: ShareKind,
        id: &str,
        project: &str,
        label: &str,
        created_by: &str,
    ) -> Result<ShareOutcome, sqlx::Error> {
        let sql = kind.sql();
        let mut tx = self.begin_write().await?;
        lock_project_labels(&mut tx, project).await?;
        let existing = sqlx::query(sql.one)
            .bind(id)
            .bind(project)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(share_from)
            .transpose()?;
        if existing.as_ref().is_some_and(|s| s.label == label) {
            return Ok(ShareOutcome::Unchanged);
        }
        if label_taken(&mut tx, kind, project, label, id).await? {
            return Ok(ShareOutcome::LabelTaken);
        }
        let outcome = if existing.is_some() {
            sqlx::query(sql.relabel)
                .bind(label)
                .bind(id)
                .bind(project)
                .execute(&mut *tx)
                .await?;
            ShareOutcome::Relabelled
        } else {
            sqlx::query(sql.insert)
                .bind(id)
                .bind(project)
                .bind(label)
                .bind(now_ms())
                .bind(created_by)
                .execute(&mut *tx)
                .await?;
            ShareOutcome::Created
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Removes the share of `id` into `project`; true when there was one.
    pub async fn unshare(
        &self,
        kind: ShareKind,
        id: &str,
        project: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(kind.sql().delete)
            .bind(id)
            .bind(project)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Subjects shared into `project`, with their share, by label there.
    pub async fn subjects_shared_into(
        &self,
        project: &str,
    ) -> Result<Vec<(Subject, Share)>, sqlx::Error> {
        let rows = sqlx::query(SUBJECTS_SHARED_INTO)
            .bind(project)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((subject_from(r)?, joined_share(r)?)))
            .collect()
    }

    /// The subject shared into `project` under `label`.
    pub async fn shared_subject_by_label(
        &self,
        project: &str,
        label: &str,
    ) -> Result<Option<(Subject, Share)>, sqlx::Error> {
        let row = sqlx::query(SHARED_SUBJECT_BY_LABEL)
            .bind(project)
            .bind(label)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|r| Ok((subject_from(r)?, joined_share(r)?)))
            .transpose()
    }

    /// Experiments shared into `project`, with their share, by label there.
    pub async fn experiments_shared_into(
        &self,
        project: &str,
    ) -> Result<Vec<(Experiment, Share)>, sqlx::Error> {
        let rows = sqlx::query(EXPERIMENTS_SHARED_INTO)
            .bind(project)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((experiment_from(r)?, joined_share(r)?)))
            .collect()
    }

    /// The experiment shared into `project` under `label`.
    pub async fn shared_experiment_by_label(
        &self,
        project: &str,
        label: &str,
    ) -> Result<Option<(Experiment, Share)>, sqlx::Error> {
        let row = sqlx::query(SHARED_EXPERIMENT_BY_LABEL)
            .bind(project)
            .bind(label)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map(|r| Ok((experiment_from(r)?, joined_share(r)?)))
            .transpose()
    }

    /// Every (object ID, project) share of this kind on the site, for the
    /// site-wide listings.
    pub async fn all_shares(&self, kind: ShareKind) -> Result<Vec<(String, String)>, sqlx::Error> {
        let query = match kind {
            ShareKind::Subject => "SELECT subject_id AS id, project FROM subject_shares",
            ShareKind::Experiment => "SELECT experiment_id AS id, project FROM experiment_shares",
        };
        let rows = sqlx::query(query).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((text(r, "id")?, text(r, "project")?)))
            .collect()
    }

    pub async fn set_experiment_status(
        &self,
        id: &str,
        status: super::ExperimentStatus,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE experiments SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_in_use_is_a_unique_violation() {
        let err = label_in_use(ShareKind::Subject, "P2", "S1");
        let db = err.as_database_error().map(|d| d.is_unique_violation());
        assert_eq!(db, Some(true));
        assert!(err.to_string().contains("S1"), "{err}");
    }
}
