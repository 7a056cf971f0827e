//! Who gets a project's archive email (`project_archive_email`).

use super::{Store, text};

impl Store {
    /// The project's archive-email recipients, sorted.
    pub async fn archive_email_recipients(
        &self,
        project: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT address FROM project_archive_email WHERE project = $1 ORDER BY address",
        )
        .bind(project)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| text(r, "address")).collect()
    }

    /// Replaces the project's recipients by `addresses` (already checked
    /// and without duplicates).
    pub async fn set_archive_email_recipients(
        &self,
        project: &str,
        addresses: &[String],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM project_archive_email WHERE project = $1")
            .bind(project)
            .execute(&mut *tx)
            .await?;
        for address in addresses {
            sqlx::query("INSERT INTO project_archive_email (project, address) VALUES ($1, $2)")
                .bind(project)
                .bind(address)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}
