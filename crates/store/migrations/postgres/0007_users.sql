-- People who sign in to the practice's web interface, and their sessions.
--
-- Two more exceptions to "every key is led by practice_id" (ARCHITECTURE.md): a sign-in names
-- an email address before anyone knows the practice, so the login is unique across practices
-- (users_login); and a session cookie carries only its token, found by its hash (the primary key
-- of user_sessions). Both rows still carry practice_id, and every query after them is scoped.

CREATE TABLE users (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    -- Lower-cased email address, the login.
    login TEXT NOT NULL,
    name TEXT NOT NULL,
    -- `admin` or `secretariat`.
    role TEXT NOT NULL,
    -- Argon2id PHC string.
    password_hash TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, id)
);
CREATE UNIQUE INDEX users_login ON users (login);

CREATE TABLE user_sessions (
    -- SHA-256 of the cookie's token: a copy of the database does not sign anyone in.
    token_hash TEXT NOT NULL PRIMARY KEY,
    practice_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- The token every form of this session must carry (CSRF).
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (practice_id, user_id) REFERENCES users (practice_id, id) ON DELETE CASCADE
);
CREATE INDEX user_sessions_user ON user_sessions (practice_id, user_id);
