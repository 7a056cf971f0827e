-- The file-move journal behind "acknowledged means durable" (see
-- src/store/journal.rs for the protocol). One row per file of an operation
-- that moves bytes into the archive: where the bytes came from (empty when
-- they were written fresh), the hidden in-flight name they wait under, and
-- their final name, all relative to the data directory. state 'pending':
-- the database rows of the operation are not committed yet, so start-up
-- recovery moves the bytes back (or drops fresh ones); 'committed': the rows
-- are committed, so recovery finishes the renames.
CREATE TABLE file_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    temp TEXT NOT NULL,
    dest TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX file_moves_by_op ON file_moves (op);
