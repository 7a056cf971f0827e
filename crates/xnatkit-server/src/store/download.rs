//! What the "Download images" dialog chooses from, computed in SQL: the
//! sessions a filter matches (all of them, resolved on the server rather
//! than sent back as thousands of checkboxes), the scan types and scan
//! formats among them with their counts, and XNAT's "Additional
//! Resources" (session resources by label) and "Assessments" (assessors by
//! type) with theirs.

use super::browse::{SESSION_MATCH, like_pattern};
use super::{Store, int, text};

/// Which of a project's sessions: the table's filter text, optionally one
/// subject (its label in the project).
#[derive(Debug, Clone, Copy)]
pub struct SessionFilter<'a> {
    pub project: &'a str,
    pub filter: &'a str,
    pub subject: &'a str,
}

/// One session to download, with its labels in the project.
#[derive(Debug, Clone)]
pub struct DownloadSession {
    pub id: String,
    pub label: String,
    pub subject_label: String,
}

/// A value with how many scans carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub value: String,
    pub count: i64,
}

/// The subject condition appended to [`SESSION_MATCH`]: `$4` empty means
/// every subject.
const SUBJECT_MATCH: &str = " AND ($4 = '' OR v.subject_label = $4)";

impl Store {
    /// Every session the filter matches, by subject then label.
    pub async fn download_sessions(
        &self,
        filter: &SessionFilter<'_>,
    ) -> Result<Vec<DownloadSession>, sqlx::Error> {
        self.download_sessions_up_to(filter, i64::MAX).await
    }

    /// How many sessions the filter matches (the dialog's "All N").
    pub async fn download_session_count(
        &self,
        filter: &SessionFilter<'_>,
    ) -> Result<i64, sqlx::Error> {
        let pattern = like_pattern(filter.filter);
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n {SESSION_MATCH}{SUBJECT_MATCH}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.project)
            .bind(&pattern)
            .bind(&pattern)
            .bind(filter.subject)
            .fetch_one(&self.pool)
            .await?;
        int(&row, "n")
    }

    /// The first `limit` sessions the filter matches, by subject then label.
    pub async fn download_sessions_up_to(
        &self,
        filter: &SessionFilter<'_>,
        limit: i64,
    ) -> Result<Vec<DownloadSession>, sqlx::Error> {
        let pattern = like_pattern(filter.filter);
        let sql = format!(
            "SELECT v.id, v.label, v.subject_label {SESSION_MATCH}{SUBJECT_MATCH} \
             ORDER BY v.subject_label, v.label LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.project)
            .bind(&pattern)
            .bind(&pattern)
            .bind(filter.subject)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DownloadSession {
                    id: text(row, "id")?,
                    label: text(row, "label")?,
                    subject_label: text(row, "subject_label")?,
                })
            })
            .collect()
    }

    /// (scan types, scan formats) among the matching sessions' scans, each
    /// with its count of scans. A scan without a type counts under "".
    pub async fn download_choices(
        &self,
        filter: &SessionFilter<'_>,
    ) -> Result<(Vec<Counted>, Vec<Counted>), sqlx::Error> {
        let pattern = like_pattern(filter.filter);
        let types_sql = format!(
            "SELECT c.type AS value, CAST(COUNT(*) AS BIGINT) AS n FROM scans c \
             WHERE c.experiment_id IN (SELECT v.id {SESSION_MATCH}{SUBJECT_MATCH}) \
             GROUP BY c.type ORDER BY c.type"
        );
        let formats_sql = format!(
            "SELECT r.label AS value, CAST(COUNT(*) AS BIGINT) AS n FROM resources r \
             JOIN scans c ON r.owner_kind = 'scan' AND r.owner_key = CAST(c.pk AS TEXT) \
             WHERE c.experiment_id IN (SELECT v.id {SESSION_MATCH}{SUBJECT_MATCH}) \
             GROUP BY r.label ORDER BY r.label"
        );
        let types = self.counted(types_sql, filter, &pattern).await?;
        let formats = self.counted(formats_sql, filter, &pattern).await?;
        Ok((types, formats))
    }

    /// (session resource labels, assessor types) among the matching
    /// sessions, each with how many resources or assessors carry it: XNAT's
    /// "Additional Resources" and "Assessments".
    pub async fn download_extras(
        &self,
        filter: &SessionFilter<'_>,
    ) -> Result<(Vec<Counted>, Vec<Counted>), sqlx::Error> {
        let pattern = like_pattern(filter.filter);
        let resources_sql = format!(
            "SELECT r.label AS value, CAST(COUNT(*) AS BIGINT) AS n FROM resources r \
             WHERE r.owner_kind = 'experiment' \
             AND r.owner_key IN (SELECT v.id {SESSION_MATCH}{SUBJECT_MATCH}) \
             GROUP BY r.label ORDER BY r.label"
        );
        let assessors_sql = format!(
            "SELECT a.xsi_type AS value, CAST(COUNT(*) AS BIGINT) AS n FROM assessors a \
             WHERE a.session_id IN (SELECT v.id {SESSION_MATCH}{SUBJECT_MATCH}) \
             GROUP BY a.xsi_type ORDER BY a.xsi_type"
        );
        let resources = self.counted(resources_sql, filter, &pattern).await?;
        let assessors = self.counted(assessors_sql, filter, &pattern).await?;
        Ok((resources, assessors))
    }

    /// `value, n` rows of `sql` (bound like [`SESSION_MATCH`] +
    /// [`SUBJECT_MATCH`]) as counted values.
    async fn counted(
        &self,
        sql: String,
        filter: &SessionFilter<'_>,
        pattern: &str,
    ) -> Result<Vec<Counted>, sqlx::Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.project)
            .bind(pattern)
            .bind(pattern)
            .bind(filter.subject)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Counted {
                    value: text(row, "value")?,
                    count: int(row, "n")?,
                })
            })
            .collect()
    }
}
