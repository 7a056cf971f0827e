//! Resources (file collections owned by a project, subject, experiment,
//! scan or image assessor) and the files in them, with size and MD5 of the stored bytes.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::journal::{JournalCommit, mark_committed};
use super::{Store, int, now_ms, text};

/// The object a resource hangs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Project(String),
    Subject(String),
    Experiment(String),
    /// A scan, by its row key.
    Scan(i64),
    /// An image assessor, by its accession ID.
    Assessor(String),
}

impl Owner {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Project(_) => "project",
            Self::Subject(_) => "subject",
            Self::Experiment(_) => "experiment",
            Self::Scan(_) => "scan",
            Self::Assessor(_) => "assessor",
        }
    }

    /// Reads the `(owner_kind, owner_key)` pair a row stores.
    pub fn from_stored(kind: &str, key: String) -> Result<Self, sqlx::Error> {
        match kind {
            "project" => Ok(Self::Project(key)),
            "subject" => Ok(Self::Subject(key)),
            "experiment" => Ok(Self::Experiment(key)),
            "assessor" => Ok(Self::Assessor(key)),
            "scan" => key
                .parse()
                .map(Self::Scan)
                .map_err(|_| sqlx::Error::Decode(format!("bad scan key {key:?}").into())),
            other => Err(sqlx::Error::Decode(
                format!("unknown resource owner kind {other:?}").into(),
            )),
        }
    }

    pub fn key(&self) -> String {
        match self {
            Self::Project(k) | Self::Subject(k) | Self::Experiment(k) | Self::Assessor(k) => {
                k.clone()
            }
            Self::Scan(pk) => pk.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: i64,
    pub owner: Owner,
    pub project: String,
    pub label: String,
    pub format: String,
    pub content: String,
    pub tags: String,
    /// Folder relative to the data directory.
    pub dir: String,
    pub file_count: i64,
    pub file_size: i64,
}

#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: i64,
    pub resource_id: i64,
    /// Path inside the resource, '/'-separated.
    pub path: String,
    pub size: i64,
    pub md5: String,
    pub format: String,
    pub content: String,
    pub tags: String,
}

/// A file already committed to disk, to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub size: i64,
    pub md5: String,
    pub format: String,
    pub content: String,
    pub tags: String,
}

fn resource_from(row: &AnyRow) -> Result<Resource, sqlx::Error> {
    Ok(Resource {
        id: int(row, "id")?,
        owner: Owner::from_stored(&text(row, "owner_kind")?, text(row, "owner_key")?)?,
        project: text(row, "project")?,
        label: text(row, "label")?,
        format: text(row, "format")?,
        content: text(row, "content")?,
        tags: text(row, "tags")?,
        dir: text(row, "dir")?,
        file_count: int(row, "file_count")?,
        file_size: int(row, "file_size")?,
    })
}

fn file_from(row: &AnyRow) -> Result<FileRow, sqlx::Error> {
    Ok(FileRow {
        id: int(row, "id")?,
        resource_id: int(row, "resource_id")?,
        path: text(row, "path")?,
        size: int(row, "size")?,
        md5: text(row, "md5")?,
        format: text(row, "format")?,
        content: text(row, "content")?,
        tags: text(row, "tags")?,
    })
}

/// `path/` and its length in characters, for an exact, case-sensitive
/// prefix match as `substr(path, 1, len) = prefix` on both backends. Not
/// `LIKE`: there `_` and `%` of a user's name are wildcards (and SQLite's
/// ignores ASCII case), so deleting `data_1` also took `dataX1/` and
/// `DATA_1/`. `substr` counts characters on SQLite and PostgreSQL alike.
fn folder_prefix(path: &str) -> (String, i64) {
    let prefix = format!("{path}/");
    let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
    (prefix, chars)
}

// CAST keeps the aggregates BIGINT on PostgreSQL (SUM would be NUMERIC,
// which the Any driver cannot carry).
const RESOURCES_OF_OWNER: &str = "SELECT r.id, r.owner_kind, r.owner_key, r.project, r.label, r.format, r.content, r.tags, r.dir, \
     CAST(COUNT(f.id) AS BIGINT) AS file_count, CAST(COALESCE(SUM(f.size), 0) AS BIGINT) AS file_size \
     FROM resources r LEFT JOIN files f ON f.resource_id = r.id \
     WHERE r.owner_kind = $1 AND r.owner_key = $2 \
     GROUP BY r.id, r.owner_kind, r.owner_key, r.project, r.label, r.format, r.content, r.tags, r.dir ORDER BY r.id";
const FILES_OF_RESOURCE: &str = "SELECT id, resource_id, path, size, md5, format, content, tags FROM files WHERE resource_id = $1 ORDER BY path";
const FILE_BY_PATH: &str = "SELECT id, resource_id, path, size, md5, format, content, tags FROM files WHERE resource_id = $1 AND path = $2";

/// Finds the resource of `owner` with `label`, creating it when missing:
/// parallel first uploads into one new resource all end up with the same
/// row (ON CONFLICT DO NOTHING, then select; same SQL on SQLite and
/// PostgreSQL). Returns its ID and whether this call created it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_resource(
    conn: &mut AnyConnection,
    owner: &Owner,
    project: &str,
    label: &str,
    format: &str,
    content: &str,
    tags: &str,
    dir: &str,
) -> Result<(i64, bool), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO resources (owner_kind, owner_key, project, label, format, content, tags, dir, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (owner_kind, owner_key, label) DO NOTHING RETURNING id",
    )
    .bind(owner.kind())
    .bind(owner.key())
    .bind(project)
    .bind(label)
    .bind(format)
    .bind(content)
    .bind(tags)
    .bind(dir)
    .bind(now_ms())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok((int(&row, "id")?, true));
    }
    let existing = sqlx::query(
        "SELECT id FROM resources WHERE owner_kind = $1 AND owner_key = $2 AND label = $3",
    )
    .bind(owner.kind())
    .bind(owner.key())
    .bind(label)
    .fetch_one(&mut *conn)
    .await?;
    Ok((int(&existing, "id")?, false))
}

/// Records files (replacing rows with the same path).
pub(super) async fn insert_files(
    conn: &mut AnyConnection,
    resource_id: i64,
    files: &[NewFile],
) -> Result<(), sqlx::Error> {
    for file in files {
        sqlx::query("DELETE FROM files WHERE resource_id = $1 AND path = $2")
            .bind(resource_id)
            .bind(&file.path)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO files (resource_id, path, size, md5, format, content, tags, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(resource_id)
        .bind(&file.path)
        .bind(file.size)
        .bind(&file.md5)
        .bind(&file.format)
        .bind(&file.content)
        .bind(&file.tags)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    pub async fn resources(&self, owner: &Owner) -> Result<Vec<Resource>, sqlx::Error> {
        let rows = sqlx::query(RESOURCES_OF_OWNER)
            .bind(owner.kind())
            .bind(owner.key())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(resource_from).collect()
    }

    /// Finds a resource of `owner` by label, or by numeric ID as clients
    /// also address them.
    pub async fn resource(
        &self,
        owner: &Owner,
        key: &str,
    ) -> Result<Option<Resource>, sqlx::Error> {
        let all = self.resources(owner).await?;
        let by_label = all.iter().find(|r| r.label == key).cloned();
        Ok(by_label.or_else(|| {
            key.parse::<i64>()
                .ok()
                .and_then(|id| all.into_iter().find(|r| r.id == id))
        }))
    }

    /// One file of the resource `key` (label first, else numeric ID, as
    /// [`Store::resource`] decides) with the folder of that resource, in one
    /// query. The single-file download path uses it instead of `resource` +
    /// `file`: that pair costs two database round trips and `resource`
    /// aggregates the size of every file of the owner on each call.
    pub async fn resource_file(
        &self,
        owner: &Owner,
        key: &str,
        path: &str,
    ) -> Result<Option<(String, FileRow)>, sqlx::Error> {
        let id = key.parse::<i64>().ok();
        let rows = sqlx::query(
            "SELECT r.id AS r_id, r.label AS r_label, r.dir AS r_dir, \
             f.id, f.resource_id, f.path, f.size, f.md5, f.format, f.content, f.tags \
             FROM resources r LEFT JOIN files f ON f.resource_id = r.id AND f.path = $3 \
             WHERE r.owner_kind = $1 AND r.owner_key = $2 AND (r.label = $4 OR r.id = $5)",
        )
        .bind(owner.kind())
        .bind(owner.key())
        .bind(path)
        .bind(key)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut by_label = None;
        let mut by_id = None;
        for row in &rows {
            if text(row, "r_label")? == key {
                by_label = Some(row);
            } else if id == Some(int(row, "r_id")?) {
                by_id = Some(row);
            }
        }
        // The label match wins even when it lacks the file: the ID match is a
        // different resource and must not answer for it.
        let Some(row) = by_label.or(by_id) else {
            return Ok(None);
        };
        // A NULL file id means the LEFT JOIN found no such file.
        if row.try_get::<Option<i64>, _>("id")?.is_none() {
            return Ok(None);
        }
        Ok(Some((text(row, "r_dir")?, file_from(row)?)))
    }

    /// Insert-or-get of a resource (see `insert_resource`): its ID, and
    /// whether this call created it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_resource(
        &self,
        owner: &Owner,
        project: &str,
        label: &str,
        format: &str,
        content: &str,
        tags: &str,
        dir: &str,
    ) -> Result<(i64, bool), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let created =
            insert_resource(&mut tx, owner, project, label, format, content, tags, dir).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn update_resource(
        &self,
        id: i64,
        format: Option<&str>,
        content: Option<&str>,
        tags: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        // One statement: an absent attribute keeps its stored value.
        sqlx::query(
            "UPDATE resources SET format = COALESCE($1, format), \
             content = COALESCE($2, content), tags = COALESCE($3, tags) WHERE id = $4",
        )
        .bind(format)
        .bind(content)
        .bind(tags)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_resource(&self, id: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM files WHERE resource_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM resources WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn files(&self, resource_id: i64) -> Result<Vec<FileRow>, sqlx::Error> {
        let rows = sqlx::query(FILES_OF_RESOURCE)
            .bind(resource_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(file_from).collect()
    }

    pub async fn file(&self, resource_id: i64, path: &str) -> Result<Option<FileRow>, sqlx::Error> {
        let row = sqlx::query(FILE_BY_PATH)
            .bind(resource_id)
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(file_from).transpose()
    }

    /// Records files in one transaction that also commits their journal
    /// entries (see [`super::journal`]): after it, the files' bytes are
    /// theirs even if the process dies before renaming them into place.
    pub async fn record_files(
        &self,
        resource_id: i64,
        files: &[NewFile],
        commit: &JournalCommit,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        insert_files(&mut tx, resource_id, files).await?;
        mark_committed(&mut tx, self.instance(), commit).await?;
        tx.commit().await
    }

    /// Deletes the resource when it holds no file rows (a resource created
    /// for an upload that failed, unless a parallel upload has used it
    /// meanwhile). True when it was deleted.
    pub async fn delete_resource_if_empty(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM resources WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM files WHERE resource_id = $1)",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A resource by its ID (its `file_count` and `file_size` are left 0:
    /// the callers only need where it is and what it is called).
    pub async fn resource_by_id(&self, id: i64) -> Result<Option<Resource>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT r.id, r.owner_kind, r.owner_key, r.project, r.label, r.format, r.content, r.tags, r.dir, \
             CAST(0 AS BIGINT) AS file_count, CAST(0 AS BIGINT) AS file_size FROM resources r WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(resource_from).transpose()
    }

    /// Every resource folder with the resource's ID (for recovery).
    pub async fn all_resource_dirs(&self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, dir FROM resources")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((int(r, "id")?, text(r, "dir")?)))
            .collect()
    }

    /// (ID, resource ID, path, size) of every file row (for recovery).
    pub async fn all_file_facts(&self) -> Result<Vec<(i64, i64, String, i64)>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, resource_id, path, size FROM files")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    int(r, "id")?,
                    int(r, "resource_id")?,
                    text(r, "path")?,
                    int(r, "size")?,
                ))
            })
            .collect()
    }

    /// Corrects a file row to the bytes on disk (recovery's reconciliation).
    pub async fn correct_file(&self, id: i64, size: i64, md5: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE files SET size = $1, md5 = $2 WHERE id = $3")
            .bind(size)
            .bind(md5)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes file rows by ID (rows whose file is gone).
    pub async fn delete_file_rows(&self, ids: &[i64]) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query("DELETE FROM files WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Removes file rows whose path is `path` or lies below `path/`.
    pub async fn delete_files_under(
        &self,
        resource_id: i64,
        path: &str,
    ) -> Result<u64, sqlx::Error> {
        let (prefix, prefix_chars) = folder_prefix(path);
        let done = sqlx::query(
            "DELETE FROM files WHERE resource_id = $1 AND (path = $2 OR substr(path, 1, CAST($4 AS INTEGER)) = $3)",
        )
        .bind(resource_id)
        .bind(path)
        .bind(prefix)
        .bind(prefix_chars)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// How many file rows lie below the folder `path/` (the file `path`
    /// itself not counted).
    pub async fn count_files_below(
        &self,
        resource_id: i64,
        path: &str,
    ) -> Result<i64, sqlx::Error> {
        let (prefix, prefix_chars) = folder_prefix(path);
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM files \
             WHERE resource_id = $1 AND substr(path, 1, CAST($3 AS INTEGER)) = $2",
        )
        .bind(resource_id)
        .bind(prefix)
        .bind(prefix_chars)
        .fetch_one(&self.pool)
        .await?;
        int(&row, "n")
    }

    /// Every resource folder of a project (for deleting its files).
    pub async fn resource_dirs_of_project(
        &self,
        project: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query("SELECT dir FROM resources WHERE project = $1")
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| text(r, "dir")).collect()
    }
}

impl Store {
    /// True when some resource already stores its files in `dir`.
    pub async fn resource_dir_in_use(&self, dir: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT id FROM resources WHERE dir = $1")
            .bind(dir)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
