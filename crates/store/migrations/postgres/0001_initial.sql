-- Rappel's schema, PostgreSQL flavour. Keep it in step with ../sqlite/0001_initial.sql: the same
-- tables, columns, keys and indexes, only the type names may differ.
--
-- Conventions (crates/store/src/lib.rs): instants are BIGINT epoch milliseconds, booleans BIGINT
-- 0/1, structured facts JSON text. Every primary key and index is led by practice_id so that the
-- schema can be sharded by practice (SPEC.md "Scale"); the only exception is the queue index
-- notifications_queue, which workers use to find due work across practices.

CREATE TABLE practices (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    preset TEXT NOT NULL,
    policy TEXT,
    timezone TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The last sequence number handed out by the practice's event log. Incrementing it in place
    -- takes the practice row's write lock, so two transactions never get the same number.
    last_event_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    key_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, key_id)
);

CREATE TABLE practitioners (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (practice_id, id)
);

CREATE TABLE motives (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (practice_id, id)
);

CREATE TABLE patients (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    -- Lower-cased names, email and mobile, for the staff's patient search.
    search TEXT NOT NULL,
    erased BIGINT NOT NULL DEFAULT 0,
    erased_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, id)
);

CREATE TABLE appointments (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    -- The latest change of status or of time and place (NULL for a booked, never moved one).
    status_at_ms BIGINT,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, id)
);
CREATE INDEX appointments_patient ON appointments (practice_id, patient_id, start_ms);
CREATE INDEX appointments_start ON appointments (practice_id, start_ms);

CREATE TABLE documents (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    sent_at_ms BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (practice_id, id)
);
CREATE INDEX documents_patient ON documents (practice_id, patient_id, sent_at_ms);
CREATE INDEX documents_sent_at ON documents (practice_id, sent_at_ms);

CREATE TABLE events (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (practice_id, seq)
);

CREATE TABLE idempotency_keys (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, key)
);

CREATE TABLE notifications (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    key TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    appointments TEXT NOT NULL,
    document TEXT,
    task TEXT,
    auto_resend BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    window_end BIGINT,
    status TEXT NOT NULL,
    reason TEXT,
    decided_at BIGINT,
    attempts BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    rendered TEXT,
    provider_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, key)
);
CREATE INDEX notifications_patient ON notifications (practice_id, patient_id);
CREATE INDEX notifications_due ON notifications (practice_id, due_at, key);
CREATE INDEX notifications_document ON notifications (practice_id, document);
-- The one index not led by practice_id: workers look for due work across every practice.
CREATE INDEX notifications_queue ON notifications (status, due_at);

CREATE TABLE sms_usage (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    month TEXT NOT NULL,
    messages BIGINT NOT NULL DEFAULT 0,
    segments BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (practice_id, month)
);

CREATE TABLE inbox (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    inbox TEXT NOT NULL,
    document TEXT,
    patient_id TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    PRIMARY KEY (practice_id, id)
);
CREATE INDEX inbox_by_box ON inbox (practice_id, inbox, created_at);

CREATE TABLE tasks (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    definition TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, id)
);

CREATE TABLE task_runs (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    task_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    scheduled_for BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (practice_id, task_id, occurrence)
);
CREATE INDEX task_runs_latest ON task_runs (practice_id, task_id, scheduled_for);
