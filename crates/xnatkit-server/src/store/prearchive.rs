//! Prearchive rows and the per-project auto-archive setting
//! (`prearchive_code`). The rows index the session folders below
//! `DATA/prearchive`; the files are only on disk.

use sqlx::any::AnyRow;

use super::{Store, int, now_ms, text};

/// Project value of sessions no rule could route.
pub const UNASSIGNED: &str = "Unassigned";

/// One prearchive session (XNAT's `xdat_search.prearchive` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrearchiveSession {
    pub id: i64,
    /// Project ID or [`UNASSIGNED`].
    pub project: String,
    /// `yyyyMMdd_HHmmssSSS`.
    pub timestamp: String,
    pub folder: String,
    pub subject: String,
    /// StudyInstanceUID.
    pub tag: String,
    pub status: String,
    pub xsi_type: String,
    pub modality: String,
    /// `YYYY-MM-DD` or empty.
    pub scan_date: String,
    /// `HH:MM:SS` or empty.
    pub scan_time: String,
    pub session_type: String,
    pub source: String,
    pub uploaded: i64,
    pub lastmod: i64,
    /// Why the last archive attempt failed (CONFLICT / ERROR).
    pub message: String,
}

/// A scan of a prearchive session, as the last build saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrearchiveScan {
    pub scan_id: String,
    pub series_uid: String,
    pub xsi_type: String,
    pub scan_type: String,
    pub series_description: String,
    pub modality: String,
    pub frames: i64,
}

/// Session-level values written when a session is (re)built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrearchiveSessionMeta {
    pub subject: String,
    pub xsi_type: String,
    pub modality: String,
    pub scan_date: String,
    pub scan_time: String,
    pub session_type: String,
}

/// `SELECT <every session column> FROM prearchive_sessions <tail>`, as a
/// literal (sqlx only takes audited static SQL).
macro_rules! select_sessions {
    ($tail:literal) => {
        concat!(
            "SELECT id, project, timestamp, folder, subject, tag, status, xsi_type, modality, scan_date, scan_time, session_type, source, uploaded, lastmod, message FROM prearchive_sessions ",
            $tail
        )
    };
}

fn session_from(row: &AnyRow) -> Result<PrearchiveSession, sqlx::Error> {
    Ok(PrearchiveSession {
        id: int(row, "id")?,
        project: text(row, "project")?,
        timestamp: text(row, "timestamp")?,
        folder: text(row, "folder")?,
        subject: text(row, "subject")?,
        tag: text(row, "tag")?,
        status: text(row, "status")?,
        xsi_type: text(row, "xsi_type")?,
        modality: text(row, "modality")?,
        scan_date: text(row, "scan_date")?,
        scan_time: text(row, "scan_time")?,
        session_type: text(row, "session_type")?,
        source: text(row, "source")?,
        uploaded: int(row, "uploaded")?,
        lastmod: int(row, "lastmod")?,
        message: text(row, "message")?,
    })
}

fn scan_from(row: &AnyRow) -> Result<PrearchiveScan, sqlx::Error> {
    Ok(PrearchiveScan {
        scan_id: text(row, "scan_id")?,
        series_uid: text(row, "series_uid")?,
        xsi_type: text(row, "xsi_type")?,
        scan_type: text(row, "scan_type")?,
        series_description: text(row, "series_description")?,
        modality: text(row, "modality")?,
        frames: int(row, "frames")?,
    })
}

/// True when `err` is a unique-constraint violation (a lost race for a name).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// The `prearchive_code` of a project that never set one.
pub const DEFAULT_PREARCHIVE_CODE: i64 = 4;

impl Store {
    /// The project's `prearchive_code`: 0 manual, 4 auto-archive (the
    /// default, as XNAT 1.8's `defaultProjectAutoArchiveSetting`), 5
    /// auto-archive with overwrite.
    pub async fn prearchive_code(&self, project: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT code FROM project_prearchive_codes WHERE project = $1")
            .bind(project)
            .fetch_optional(self.pool())
            .await?;
        row.map_or(Ok(DEFAULT_PREARCHIVE_CODE), |r| int(&r, "code"))
    }

    pub async fn set_prearchive_code(&self, project: &str, code: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM project_prearchive_codes WHERE project = $1")
            .bind(project)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO project_prearchive_codes (project, code) VALUES ($1, $2)")
            .bind(project)
            .bind(code)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Sessions of one project (or all), newest first.
    pub async fn prearchive_sessions(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<PrearchiveSession>, sqlx::Error> {
        let rows = match project {
            Some(p) => {
                sqlx::query(select_sessions!(
                    "WHERE project = $1 ORDER BY timestamp DESC, folder"
                ))
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(select_sessions!("ORDER BY project, timestamp DESC, folder"))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(session_from).collect()
    }

    pub async fn prearchive_session(
        &self,
        project: &str,
        timestamp: &str,
        folder: &str,
    ) -> Result<Option<PrearchiveSession>, sqlx::Error> {
        let row = sqlx::query(select_sessions!(
            "WHERE project = $1 AND timestamp = $2 AND folder = $3"
        ))
        .bind(project)
        .bind(timestamp)
        .bind(folder)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(session_from).transpose()
    }

    pub async fn prearchive_session_by_id(
        &self,
        id: i64,
    ) -> Result<Option<PrearchiveSession>, sqlx::Error> {
        let row = sqlx::query(select_sessions!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// The newest session of `project` for study `tag` in folder `folder`
    /// whose status lets new instances in (XNAT appends to it rather than
    /// starting another one).
    pub async fn receiving_prearchive_session(
        &self,
        project: &str,
        tag: &str,
        folder: &str,
    ) -> Result<Option<PrearchiveSession>, sqlx::Error> {
        let row = sqlx::query(select_sessions!("WHERE project = $1 AND tag = $2 AND folder = $3 \
             AND status IN ('RECEIVING', 'READY', 'CONFLICT', 'ERROR') ORDER BY timestamp DESC LIMIT 1"))
        .bind(project)
        .bind(tag)
        .bind(folder)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// Inserts a new row; `Ok(None)` when (project, timestamp, folder) is taken.
    pub async fn insert_prearchive_session(
        &self,
        project: &str,
        timestamp: &str,
        folder: &str,
        tag: &str,
        status: &str,
        source: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO prearchive_sessions (project, timestamp, folder, tag, status, source, uploaded, lastmod) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(project)
        .bind(timestamp)
        .bind(folder)
        .bind(tag)
        .bind(status)
        .bind(source)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await;
        match inserted {
            Ok(row) => Ok(Some(int(&row, "id")?)),
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_prearchive_status(
        &self,
        id: i64,
        status: &str,
        message: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE prearchive_sessions SET status = $1, message = $2, lastmod = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a status from `from` to `to` only if it is still `from`;
    /// returns whether this call made the change (a cheap row lock).
    pub async fn swap_prearchive_status(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut changed = false;
        for status in from {
            let done = sqlx::query(
                "UPDATE prearchive_sessions SET status = $1, lastmod = $2 WHERE id = $3 AND status = $4",
            )
            .bind(to)
            .bind(now_ms())
            .bind(id)
            .bind(*status)
            .execute(self.pool())
            .await?;
            if done.rows_affected() > 0 {
                changed = true;
                break;
            }
        }
        Ok(changed)
    }

    /// Writes what a build found: session values and the complete scan list.
    pub async fn write_prearchive_build(
        &self,
        id: i64,
        meta: &PrearchiveSessionMeta,
        scans: &[PrearchiveScan],
        status: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE prearchive_sessions SET subject = $1, xsi_type = $2, modality = $3, scan_date = $4, \
             scan_time = $5, session_type = $6, status = $7, message = '', lastmod = $8 WHERE id = $9",
        )
        .bind(&meta.subject)
        .bind(&meta.xsi_type)
        .bind(&meta.modality)
        .bind(&meta.scan_date)
        .bind(&meta.scan_time)
        .bind(&meta.session_type)
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM prearchive_scans WHERE session_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for scan in scans {
            sqlx::query(
                "INSERT INTO prearchive_scans (session_id, scan_id, series_uid, xsi_type, scan_type, series_description, modality, frames) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(&scan.scan_id)
            .bind(&scan.series_uid)
            .bind(&scan.xsi_type)
            .bind(&scan.scan_type)
            .bind(&scan.series_description)
            .bind(&scan.modality)
            .bind(scan.frames)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub async fn prearchive_scans(&self, id: i64) -> Result<Vec<PrearchiveScan>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT scan_id, series_uid, xsi_type, scan_type, series_description, modality, frames \
             FROM prearchive_scans WHERE session_id = $1",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(scan_from).collect()
    }

    pub async fn delete_prearchive_session(&self, id: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM prearchive_scans WHERE session_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM prearchive_sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Re-homes a session row (after its folder moved); `Ok(false)` when the
    /// new (project, timestamp, folder) is taken.
    pub async fn move_prearchive_session(
        &self,
        id: i64,
        project: &str,
        folder: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE prearchive_sessions SET project = $1, folder = $2, lastmod = $3 WHERE id = $4",
        )
        .bind(project)
        .bind(folder)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Store {
    /// RECEIVING sessions whose last file arrived before `cutoff_ms`.
    pub async fn stale_receiving_sessions(
        &self,
        cutoff_ms: i64,
    ) -> Result<Vec<PrearchiveSession>, sqlx::Error> {
        let rows = sqlx::query(select_sessions!(
            "WHERE status = 'RECEIVING' AND lastmod <= $1 ORDER BY lastmod"
        ))
        .bind(cutoff_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session_from).collect()
    }
}
