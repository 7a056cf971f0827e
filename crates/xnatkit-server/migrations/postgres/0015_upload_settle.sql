-- Runs on archive for sessions built file by file over REST (xnatuploader,
-- xnatutils, curl): every file stored into a session's or scan's resource
-- stamps its session with the time; once no file has arrived for the settle
-- time (`serve --upload-settle-secs`), one server claims the stamp and
-- launches the project's on-archive subscriptions, as the C-STORE receiver
-- does after its idle timeout. Kept in the database, not in memory, so a
-- restart or a second server on the same PostgreSQL neither loses nor
-- repeats one. NULL: nothing waiting.
ALTER TABLE experiments ADD COLUMN rest_upload_at BIGINT;
CREATE INDEX experiments_rest_upload_at ON experiments (rest_upload_at) WHERE rest_upload_at IS NOT NULL;
