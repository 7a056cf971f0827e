//! The settle stamps of sessions built file by file over REST (see
//! `migrations/*/0015_upload_settle.sql`): stamped by every stored file,
//! claimed by compare-and-set once quiet, so one server launches the
//! session's subscriptions once per burst of uploads.

use sqlx::Row;

use super::{Owner, Store, now_ms, text};

/// How many settled sessions one sweep claims at most.
const CLAIM_BATCH: i64 = 100;

/// A session whose REST uploads have settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledSession {
    pub id: String,
    pub project: String,
    pub label: String,
}

impl Store {
    /// Stamps the session that `owner` is, or holds (a scan), with now.
    /// Resources of projects, subjects and assessors stamp nothing: they
    /// do not make a session "arrive".
    pub async fn stamp_rest_upload(&self, owner: &Owner) -> Result<(), sqlx::Error> {
        let now = now_ms();
        match owner {
            Owner::Experiment(id) => {
                sqlx::query("UPDATE experiments SET rest_upload_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id.as_str())
                    .execute(self.pool())
                    .await?;
            }
            Owner::Scan(pk) => {
                sqlx::query(
                    "UPDATE experiments SET rest_upload_at = $1 \
                     WHERE id = (SELECT experiment_id FROM scans WHERE pk = $2)",
                )
                .bind(now)
                .bind(*pk)
                .execute(self.pool())
                .await?;
            }
            Owner::Project(_) | Owner::Subject(_) | Owner::Assessor(_) => {}
        }
        Ok(())
    }

    /// Claims the sessions stamped at or before `quiet_since` (ms). A
    /// stamp renewed between the read and the claim is left for a later
    /// sweep, and of two servers sweeping at once only one claims a
    /// session.
    pub async fn claim_settled_uploads(
        &self,
        quiet_since: i64,
    ) -> Result<Vec<SettledSession>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, project, label, rest_upload_at FROM experiments \
             WHERE rest_upload_at IS NOT NULL AND rest_upload_at <= $1 \
             ORDER BY rest_upload_at LIMIT $2",
        )
        .bind(quiet_since)
        .bind(CLAIM_BATCH)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let stamp: i64 = row.try_get("rest_upload_at")?;
            let session = SettledSession {
                id: text(&row, "id")?,
                project: text(&row, "project")?,
                label: text(&row, "label")?,
            };
            let taken = sqlx::query(
                "UPDATE experiments SET rest_upload_at = NULL WHERE id = $1 AND rest_upload_at = $2",
            )
            .bind(session.id.as_str())
            .bind(stamp)
            .execute(self.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                claimed.push(session);
            }
        }
        Ok(claimed)
    }
}
