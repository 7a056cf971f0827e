//! Projects, their accessibility and their members' roles.

use sqlx::any::AnyRow;
use xnatkit_model::{Accessibility, ProjectRole};

use super::{Owner, Store, int, now_ms, text};

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub secondary_id: String,
    pub name: String,
    pub description: String,
    pub accessibility: Accessibility,
    pub created: i64,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct ProjectRoleRow {
    pub username: String,
    pub role: ProjectRole,
}

/// Why a project could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateProjectOutcome {
    Created,
    /// Another project already uses the ID (case-insensitively).
    Taken,
    /// The ID belonged to a deleted project; XNAT never reuses those.
    Retired,
}

fn project_from(row: &AnyRow) -> Result<Project, sqlx::Error> {
    let accessibility = text(row, "accessibility")?
        .parse()
        .unwrap_or(Accessibility::Private);
    Ok(Project {
        id: text(row, "id")?,
        secondary_id: text(row, "secondary_id")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        accessibility,
        created: int(row, "created")?,
        created_by: text(row, "created_by")?,
    })
}

const PROJECT_COLUMNS_BY_ID: &str = "SELECT id, secondary_id, name, description, accessibility, created, created_by FROM projects WHERE id_lower = $1";
const ALL_PROJECTS: &str = "SELECT id, secondary_id, name, description, accessibility, created, created_by FROM projects ORDER BY id";

impl Store {
    /// Creates a project owned by `owner`.
    pub async fn create_project(
        &self,
        id: &str,
        name: &str,
        description: &str,
        accessibility: Accessibility,
        owner: &str,
    ) -> Result<CreateProjectOutcome, sqlx::Error> {
        let lower = id.to_ascii_lowercase();
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT id_lower FROM retired_project_ids WHERE id_lower = $1")
            .bind(&lower)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Ok(CreateProjectOutcome::Retired);
        }
        if sqlx::query("SELECT id FROM projects WHERE id_lower = $1")
            .bind(&lower)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Ok(CreateProjectOutcome::Taken);
        }
        sqlx::query(
            "INSERT INTO projects (id, id_lower, secondary_id, name, description, accessibility, created, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(&lower)
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(accessibility.as_str())
        .bind(now_ms())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO project_roles (project, username, role) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(owner)
            .bind(ProjectRole::Owner.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CreateProjectOutcome::Created)
    }

    /// Looks a project up by ID, case-insensitively as XNAT does.
    pub async fn project(&self, id: &str) -> Result<Option<Project>, sqlx::Error> {
        let row = sqlx::query(PROJECT_COLUMNS_BY_ID)
            .bind(id.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_from).transpose()
    }

    pub async fn projects(&self) -> Result<Vec<Project>, sqlx::Error> {
        let rows = sqlx::query(ALL_PROJECTS).fetch_all(&self.pool).await?;
        rows.iter().map(project_from).collect()
    }

    pub async fn update_project(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        secondary_id: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if let Some(name) = name {
            sqlx::query("UPDATE projects SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(description) = description {
            sqlx::query("UPDATE projects SET description = $1 WHERE id = $2")
                .bind(description)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(secondary_id) = secondary_id {
            sqlx::query("UPDATE projects SET secondary_id = $1 WHERE id = $2")
                .bind(secondary_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn set_accessibility(
        &self,
        id: &str,
        accessibility: Accessibility,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE projects SET accessibility = $1 WHERE id = $2")
            .bind(accessibility.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a project with everything in it and retires its ID.
    pub async fn delete_project(&self, id: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM files WHERE resource_id IN (SELECT id FROM resources WHERE project = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM resources WHERE project = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM custom_fields WHERE (owner_kind = 'project' AND owner_key = $1) \
             OR (owner_kind = 'subject' AND owner_key IN (SELECT id FROM subjects WHERE project = $1)) \
             OR (owner_kind = 'experiment' AND owner_key IN (SELECT id FROM experiments WHERE project = $1))",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Shares into this project, and shares of its objects elsewhere.
        sqlx::query(
            "DELETE FROM experiment_shares WHERE project = $1 \
             OR experiment_id IN (SELECT id FROM experiments WHERE project = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM subject_shares WHERE project = $1 \
             OR subject_id IN (SELECT id FROM subjects WHERE project = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM scans WHERE experiment_id IN (SELECT id FROM experiments WHERE project = $1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM assessors WHERE project = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM experiments WHERE project = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subjects WHERE project = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A wrapper's enablement and configuration for the project go
        // with it (the site's rows use project '', which no project has).
        for sql in [
            "DELETE FROM wrapper_enabled WHERE project = $1",
            "DELETE FROM wrapper_configs WHERE project = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM project_roles WHERE project = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO retired_project_ids (id_lower) VALUES ($1)")
            .bind(id.to_ascii_lowercase())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn project_role(
        &self,
        project: &str,
        username: &str,
    ) -> Result<Option<ProjectRole>, sqlx::Error> {
        let row =
            sqlx::query("SELECT role FROM project_roles WHERE project = $1 AND username = $2")
                .bind(project)
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .map(|r| text(&r, "role"))
            .transpose()?
            .and_then(|r| r.parse().ok()))
    }

    /// Every (project, role) of one user.
    pub async fn roles_of_user(
        &self,
        username: &str,
    ) -> Result<Vec<(String, ProjectRole)>, sqlx::Error> {
        let rows = sqlx::query("SELECT project, role FROM project_roles WHERE username = $1")
            .bind(username)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Ok(role) = text(&row, "role")?.parse() {
                out.push((text(&row, "project")?, role));
            }
        }
        Ok(out)
    }

    pub async fn set_project_role(
        &self,
        project: &str,
        username: &str,
        role: ProjectRole,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM project_roles WHERE project = $1 AND username = $2")
            .bind(project)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO project_roles (project, username, role) VALUES ($1, $2, $3)")
            .bind(project)
            .bind(username)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Removes a user's role; true when there was one.
    pub async fn remove_project_role(
        &self,
        project: &str,
        username: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM project_roles WHERE project = $1 AND username = $2")
            .bind(project)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn project_roles(&self, project: &str) -> Result<Vec<ProjectRoleRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT username, role FROM project_roles WHERE project = $1 ORDER BY username",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Ok(role) = text(&row, "role")?.parse() {
                out.push(ProjectRoleRow {
                    username: text(&row, "username")?,
                    role,
                });
            }
        }
        Ok(out)
    }

    /// Custom variables of any object, sorted by name.
    pub async fn custom_fields(&self, owner: &Owner) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT name, value FROM custom_fields WHERE owner_kind = $1 AND owner_key = $2 ORDER BY name",
        )
        .bind(owner.kind())
        .bind(owner.key())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "name")?, text(r, "value")?)))
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) custom variables in one transaction.
    pub async fn set_custom_fields(
        &self,
        owner: &Owner,
        changes: &[(String, Option<String>)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        for (name, value) in changes {
            sqlx::query(
                "DELETE FROM custom_fields WHERE owner_kind = $1 AND owner_key = $2 AND name = $3",
            )
            .bind(owner.kind())
            .bind(owner.key())
            .bind(name)
            .execute(&mut *tx)
            .await?;
            if let Some(value) = value {
                sqlx::query(
                    "INSERT INTO custom_fields (owner_kind, owner_key, name, value) VALUES ($1, $2, $3, $4)",
                )
                .bind(owner.kind())
                .bind(owner.key())
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }
}
