-- Authentication hardening (issue 10).
--
-- http_sessions.token_alias: the alias token that opened a session, so
-- invalidating or expiring the token ends the sessions it opened.
-- alias_tokens.failed_attempts / locked_until: per-alias guessing lockout,
-- counted the same way as users.failed_logins (before the secret is hashed).

ALTER TABLE http_sessions ADD COLUMN token_alias TEXT;
ALTER TABLE alias_tokens ADD COLUMN failed_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alias_tokens ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
CREATE INDEX http_sessions_token_alias ON http_sessions (token_alias);
CREATE INDEX http_sessions_username ON http_sessions (username);
