//! The file-move journal (`file_moves` table): how a file and its row change
//! together or not at all.
//!
//! Every operation that puts bytes into the archive follows one protocol
//! (driven by [`crate::file_moves`]):
//!
//! 1. when the bytes come from somewhere that must get them back on failure
//!    (a prearchive session, a staging folder), the moves are journaled as
//!    `pending` *before* anything is moved ([`Store::journal_pending`]);
//! 2. the bytes are moved (or written) under a hidden in-flight name next to
//!    their final name, fsynced;
//! 3. the rows (files with size and MD5, and whatever else the operation
//!    records) are committed in one transaction that also marks the journal
//!    entries `committed` ([`mark_committed`]) — this commit is the point of
//!    no return;
//! 4. the in-flight files are renamed to their final names, the directories
//!    fsynced, and the journal entries deleted ([`Store::journal_forget`]).
//!
//! Start-up recovery ([`crate::recovery`]) reads what is left: `pending`
//! entries are rolled back (bytes moved back to their source, or dropped
//! when they were written fresh), `committed` entries are rolled forward
//! (renamed into place). Both are idempotent: an entry whose in-flight file
//! is gone is already done. A file under its final name therefore always
//! has the bytes its row describes.
//!
//! Paths are stored relative to the data directory.

use sqlx::AnyConnection;

use super::{Store, now_ms, text};

/// Journal state before the operation's rows are committed.
pub const PENDING: &str = "pending";
/// Journal state once the operation's rows are committed.
pub const COMMITTED: &str = "committed";

/// One journaled file move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMove {
    /// Where the bytes came from; empty when they were written fresh.
    pub source: String,
    /// The hidden in-flight name they wait under.
    pub temp: String,
    /// Their final name.
    pub dest: String,
}

/// What the transaction that commits an operation's rows records in the
/// journal: its op ID, and the fresh files not journaled before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalCommit {
    pub op: String,
    pub fresh: Vec<FileMove>,
}

/// A journal entry as recovery reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub op: String,
    pub state: String,
    pub file: FileMove,
}

async fn insert_entries(
    conn: &mut AnyConnection,
    op: &str,
    state: &str,
    moves: &[FileMove],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for file in moves {
        sqlx::query(
            "INSERT INTO file_moves (op, state, source, temp, dest, created) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(op)
        .bind(state)
        .bind(&file.source)
        .bind(&file.temp)
        .bind(&file.dest)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks the entries of the operation committed, inside the transaction
/// that commits its rows; its fresh files (bytes written fresh, never
/// journaled as pending: if the commit fails there is nothing to give back,
/// and recovery removes in-flight files it has no entry for) are recorded
/// directly as committed.
pub(crate) async fn mark_committed(
    conn: &mut AnyConnection,
    commit: &JournalCommit,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE file_moves SET state = $1 WHERE op = $2")
        .bind(COMMITTED)
        .bind(&commit.op)
        .execute(&mut *conn)
        .await?;
    insert_entries(conn, &commit.op, COMMITTED, &commit.fresh).await
}

impl Store {
    /// Journals `moves` of `op` as pending, before any of them happens.
    pub async fn journal_pending(&self, op: &str, moves: &[FileMove]) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        insert_entries(&mut tx, op, PENDING, moves).await?;
        tx.commit().await
    }

    /// Drops the entries of `op` once its files are where they belong.
    pub async fn journal_forget(&self, op: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM file_moves WHERE op = $1")
            .bind(op)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every entry left in the journal, in the order they were written.
    pub async fn journal_entries(&self) -> Result<Vec<JournalEntry>, sqlx::Error> {
        let rows = sqlx::query("SELECT op, state, source, temp, dest FROM file_moves ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(JournalEntry {
                    op: text(row, "op")?,
                    state: text(row, "state")?,
                    file: FileMove {
                        source: text(row, "source")?,
                        temp: text(row, "temp")?,
                        dest: text(row, "dest")?,
                    },
                })
            })
            .collect()
    }
}
