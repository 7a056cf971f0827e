-- Several servers may share one PostgreSQL database and one data folder.
-- Journal entries and transient prearchive claims record the instance ID
-- of the server that made them, so that start-up recovery of one server
-- rolls back or finishes only what belongs to servers that are gone (see
-- src/recovery.rs). Empty: made before this column existed, by a server
-- that is gone.
ALTER TABLE file_moves ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE prearchive_sessions ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';

-- Facts about the shared data folder that start-up recovery keeps between
-- runs of several servers; archive_walk_owed: 1 while a server that is gone
-- left work behind that only an archive walk can recover.
CREATE TABLE recovery_flags (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
