//! Image assessors: derived records of a session (QC, ROI collections,
//! processing records). They draw their accession IDs from the experiment
//! counter and their labels from the project's experiment namespace, as
//! XNAT's assessors are experiments; their files are resources with an
//! [`Owner::Assessor`] owner.

use std::collections::BTreeMap;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use xnatkit_model::{AccessionKind, accession_id};

use super::hierarchy::delete_resources_of;
use super::sharing::{check_label_free, lock_project_labels};
use super::{Owner, ShareKind, Store, int, next_counter, now_ms, text};

/// One stored assessor.
#[derive(Debug, Clone)]
pub struct Assessor {
    pub id: String,
    pub project: String,
    pub session_id: String,
    pub label: String,
    pub xsi_type: String,
    /// XPath-settable fields by their stored name (`procstatus`,
    /// `validation/status`, `date`).
    pub fields: BTreeMap<String, String>,
    /// Nested records written by the server, as XNAT's items `children`
    /// JSON; empty when none.
    pub children: String,
    pub created: i64,
    pub created_by: String,
}

/// Literal queries (sqlx accepts only `&'static str` SQL): the same
/// column list in each.
macro_rules! select_assessors {
    ($tail:literal) => {
        concat!(
            "SELECT id, project, session_id, label, xsi_type, fields, children, created, created_by FROM assessors ",
            $tail
        )
    };
}

fn assessor_from(row: &AnyRow) -> Result<Assessor, sqlx::Error> {
    let raw = text(row, "fields")?;
    let fields = serde_json::from_str(&raw)
        .map_err(|e| sqlx::Error::Decode(format!("assessor fields {raw:?}: {e}").into()))?;
    Ok(Assessor {
        id: text(row, "id")?,
        project: text(row, "project")?,
        session_id: text(row, "session_id")?,
        label: text(row, "label")?,
        xsi_type: text(row, "xsi_type")?,
        fields,
        children: text(row, "children")?,
        created: int(row, "created")?,
        created_by: text(row, "created_by")?,
    })
}

fn fields_json(fields: &BTreeMap<String, String>) -> String {
    // A map of strings always serialises.
    serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_owned())
}

/// What a new assessor is made of.
pub struct NewAssessor<'a> {
    pub project: &'a str,
    pub session_id: &'a str,
    pub label: &'a str,
    pub xsi_type: &'a str,
    pub fields: &'a BTreeMap<String, String>,
    pub children: &'a str,
    pub created_by: &'a str,
}

async fn insert_assessor(
    conn: &mut AnyConnection,
    site_id: &str,
    new: &NewAssessor<'_>,
) -> Result<String, sqlx::Error> {
    lock_project_labels(conn, new.project).await?;
    check_label_free(conn, ShareKind::Experiment, new.project, new.label, "").await?;
    let n = next_counter(conn, "experiment").await?;
    let id = accession_id(site_id, AccessionKind::Experiment, n.unsigned_abs());
    sqlx::query(
        "INSERT INTO assessors (id, project, session_id, label, xsi_type, fields, children, created, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(new.project)
    .bind(new.session_id)
    .bind(new.label)
    .bind(new.xsi_type)
    .bind(fields_json(new.fields))
    .bind(new.children)
    .bind(now_ms())
    .bind(new.created_by)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Deletes every assessor of a session with their resource rows (the
/// session's folder, which holds their files, goes with the session).
pub(super) async fn delete_assessors_of_session(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM assessors WHERE session_id = $1")
        .bind(session_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        delete_resources_of(conn, &Owner::Assessor(text(&row, "id")?)).await?;
    }
    sqlx::query("DELETE FROM assessors WHERE session_id = $1")
        .bind(session_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Creates an assessor; fails with a unique violation when the label
    /// is taken in the project by a session, a share or another assessor.
    pub async fn create_assessor(
        &self,
        site_id: &str,
        new: &NewAssessor<'_>,
    ) -> Result<String, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let id = insert_assessor(&mut tx, site_id, new).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn assessor_by_id(&self, id: &str) -> Result<Option<Assessor>, sqlx::Error> {
        let row = sqlx::query(select_assessors!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(assessor_from).transpose()
    }

    /// An assessor of `session_id` named by accession ID or label (IDs win,
    /// as for every archive path).
    pub async fn assessor_in(
        &self,
        session_id: &str,
        key: &str,
    ) -> Result<Option<Assessor>, sqlx::Error> {
        let row = sqlx::query(select_assessors!(
            "WHERE session_id = $1 AND (id = $2 OR label = $2) ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END"
        ))
        .bind(session_id)
        .bind(key)
        .fetch_all(self.pool())
        .await?;
        row.first().map(assessor_from).transpose()
    }

    /// Assessors of one session, by label.
    pub async fn assessors(&self, session_id: &str) -> Result<Vec<Assessor>, sqlx::Error> {
        let rows = sqlx::query(select_assessors!("WHERE session_id = $1 ORDER BY label"))
            .bind(session_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(assessor_from).collect()
    }

    /// Replaces an assessor's type, fields and (when given) children.
    pub async fn update_assessor(
        &self,
        id: &str,
        xsi_type: &str,
        fields: &BTreeMap<String, String>,
        children: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE assessors SET xsi_type = $1, fields = $2, children = COALESCE($3, children) WHERE id = $4",
        )
        .bind(xsi_type)
        .bind(fields_json(fields))
        .bind(children)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Renames an assessor; fails with a unique violation when the label is
    /// taken in its project.
    pub async fn rename_assessor(&self, id: &str, label: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT project FROM assessors WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let project = text(&row, "project")?;
        lock_project_labels(&mut tx, &project).await?;
        check_label_free(&mut tx, ShareKind::Experiment, &project, label, id).await?;
        sqlx::query("UPDATE assessors SET label = $1 WHERE id = $2")
            .bind(label)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Deletes an assessor and its resource rows.
    pub async fn delete_assessor(&self, id: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        delete_resources_of(&mut tx, &Owner::Assessor(id.to_owned())).await?;
        sqlx::query("DELETE FROM assessors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}
