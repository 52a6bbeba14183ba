-- Issue 18: lookups that cannot know the practice go through a routing table keyed by the
-- looked-up value, which names the practice; every later query is scoped by that practice, and
-- the wide tables' unique keys all include practice_id (so that they can be distributed by it).
-- `kind` is `document_link` or `appointment_link` (a link's token hash), `login` (a user's lower-cased
-- email address) or `session` (a session cookie's token hash). `expires_at` is set for
-- sessions only: an expired session's route is forgotten with it. Deliberately no foreign key
-- to `practices`: on Citus this table is distributed by its own key (ARCHITECTURE.md "Citus").
CREATE TABLE lookup_routes (
    kind TEXT NOT NULL,
    lookup_key TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (kind, lookup_key)
);
CREATE INDEX lookup_routes_expiry ON lookup_routes (expires_at);

INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at)
SELECT 'document_link', token_hash, practice_id, NULL FROM document_links;
INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at)
SELECT 'appointment_link', token_hash, practice_id, NULL FROM appointment_links;
INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at)
SELECT 'login', login, practice_id, NULL FROM users;
INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at)
SELECT 'session', token_hash, practice_id, expires_at FROM user_sessions;

-- The routes now hold the uniqueness across practices.
DROP INDEX document_links_token;
DROP INDEX appointment_links_token;
DROP INDEX users_login;
CREATE UNIQUE INDEX users_login ON users (practice_id, login);

-- SQLite cannot change a primary key in place: the sessions table is rebuilt, keyed by
-- (practice_id, token_hash).
CREATE TABLE user_sessions_new (
    token_hash TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, token_hash),
    FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE
);
INSERT INTO user_sessions_new (token_hash, practice_id, user_id, csrf, created_at, expires_at)
SELECT token_hash, practice_id, user_id, csrf, created_at, expires_at FROM user_sessions;
DROP TABLE user_sessions;
ALTER TABLE user_sessions_new RENAME TO user_sessions;
CREATE INDEX user_sessions_user ON user_sessions (practice_id, user_id);
