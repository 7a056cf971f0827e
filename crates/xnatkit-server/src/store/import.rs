//! Database side of DICOM import into an existing archived session: scans
//! are created or updated, their `DICOM` resources found or created, and the
//! new files recorded, all in one transaction (which also commits the files'
//! journal entries, see [`super::journal`]). (New sessions go through
//! [`Store::create_session_with_scans`].)

use sqlx::AnyConnection;

use super::hierarchy::insert_scan_row;
use super::journal::{JournalCommit, mark_committed};
use super::resources::{Owner, insert_files, insert_resource};
use super::{NewScanTree, Store, int, text};

/// Finds the scan row or creates it; returns its key.
async fn scan_pk(
    conn: &mut AnyConnection,
    experiment_id: &str,
    scan: &NewScanTree,
) -> Result<i64, sqlx::Error> {
    let found = sqlx::query("SELECT pk FROM scans WHERE experiment_id = $1 AND scan_id = $2")
        .bind(experiment_id)
        .bind(&scan.scan_id)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = found {
        return int(&row, "pk");
    }
    insert_scan_row(
        conn,
        experiment_id,
        &scan.scan_id,
        scan.xsi_type.as_str(),
        &scan.attrs,
    )
    .await
}

impl Store {
    /// Adds `scans` (with their already-committed files) to an existing
    /// experiment in one transaction. A scan's frame count becomes the number
    /// of files its resource holds afterwards.
    pub async fn merge_scans_into_experiment(
        &self,
        experiment_id: &str,
        project: &str,
        scans: &[NewScanTree],
        commit: &JournalCommit,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        for scan in scans {
            let pk = scan_pk(&mut tx, experiment_id, scan).await?;
            let owner = Owner::Scan(pk);
            let (resource_id, _) = insert_resource(
                &mut tx,
                &owner,
                project,
                &scan.resource_label,
                &scan.resource_format,
                &scan.resource_content,
                "",
                &scan.resource_dir,
            )
            .await?;
            insert_files(&mut tx, resource_id, &scan.files).await?;
            let count = sqlx::query(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM files WHERE resource_id = $1",
            )
            .bind(resource_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE scans SET frames = $1 WHERE pk = $2")
                .bind(int(&count, "n")?.to_string())
                .bind(pk)
                .execute(&mut *tx)
                .await?;
        }
        mark_committed(&mut tx, commit).await?;
        tx.commit().await
    }

    /// The folder of a scan's resource with this label, if it exists.
    pub async fn scan_resource_dir(
        &self,
        scan_pk: i64,
        label: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let owner = Owner::Scan(scan_pk);
        let row = sqlx::query(
            "SELECT dir FROM resources WHERE owner_kind = $1 AND owner_key = $2 AND label = $3",
        )
        .bind(owner.kind())
        .bind(owner.key())
        .bind(label)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| text(&r, "dir")).transpose()
    }
}
