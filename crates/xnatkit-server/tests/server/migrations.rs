//! The SQLite and PostgreSQL migrations must describe one schema: the same
//! migration files, and after running them the same tables, columns (by
//! type family and nullability) and index names. Fails as soon as one
//! backend gets a change the other lacks.

use std::collections::BTreeSet;

use sqlx::{AnyPool, Row};

use crate::harness::{fresh_postgres_database, postgres_admin_url};

/// (table, column, type family, not null)
type Column = (String, String, &'static str, bool);

fn family(declared: &str) -> &'static str {
    let declared = declared.to_ascii_lowercase();
    if declared.contains("int") {
        "integer"
    } else if declared.contains("char") || declared.contains("text") {
        "text"
    } else if declared.contains("real") || declared.contains("double") || declared.contains("float")
    {
        "real"
    } else if declared.contains("bool") {
        "boolean"
    } else {
        "other"
    }
}

fn migration_names(backend: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

async fn sqlite_schema() -> (BTreeSet<Column>, BTreeSet<String>) {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let pool = AnyPool::connect(&url).await.unwrap();
    sqlx::migrate!("migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    let mut columns = BTreeSet::new();
    for row in sqlx::query(
        "SELECT m.name AS t, p.name AS c, p.type AS ty, p.\"notnull\" AS nn, p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        let ty: String = row.get("ty");
        // SQLite's INTEGER PRIMARY KEY is never NULL, whatever it declares.
        let not_null = row.get::<i64, _>("nn") == 1 || row.get::<i64, _>("pk") > 0;
        columns.insert((row.get("t"), row.get("c"), family(&ty), not_null));
    }
    let indexes =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
    pool.close().await;
    (columns, indexes)
}

async fn postgres_schema(admin: &str) -> (BTreeSet<Column>, BTreeSet<String>) {
    let (url, name) = fresh_postgres_database(admin).await;
    let pool = AnyPool::connect(&url).await.unwrap();
    sqlx::migrate!("migrations/postgres")
        .run(&pool)
        .await
        .unwrap();
    let mut columns = BTreeSet::new();
    for row in sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, \
         is_nullable::text AS nullable FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        let ty: String = row.get("ty");
        let nullable: String = row.get("nullable");
        columns.insert((row.get("t"), row.get("c"), family(&ty), nullable == "NO"));
    }
    // Only indexes written in the migrations: PostgreSQL also names the
    // ones behind primary keys and UNIQUE constraints (`…_pkey`, `…_key`),
    // which SQLite keeps unnamed.
    let indexes = sqlx::query(
        "SELECT i.indexname::text AS name FROM pg_indexes i \
         WHERE i.schemaname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
         WHERE c.conname = i.indexname)",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.get::<String, _>("name"))
    .collect();
    pool.close().await;
    let mut admin_conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await
    .unwrap();
    (columns, indexes)
}

#[test]
fn both_backends_have_the_same_migration_files() {
    assert_eq!(migration_names("sqlite"), migration_names("postgres"));
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (sqlite_columns, sqlite_indexes) = sqlite_schema().await;
    let (pg_columns, pg_indexes) = postgres_schema(&admin).await;
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "columns differ:\n only in SQLite: {only_sqlite:#?}\n only in PostgreSQL: {only_pg:#?}"
    );
    assert_eq!(sqlite_indexes, pg_indexes, "index names differ");
    assert!(
        sqlite_columns.len() > 20 && !sqlite_indexes.is_empty(),
        "the schema was read"
    );
}
