-- A practice's own message templates (issue 4), and its outbound webhooks. The same text for
-- SQLite and PostgreSQL; every key and index is led by practice_id.

-- One row per templated part (`subject`, `text`, `html`) of a kind × channel × locale that the
-- practice rewrote; a part without a row uses the built-in template.
CREATE TABLE templates (
    practice_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    locale TEXT NOT NULL,
    part TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, kind, channel, locale, part)
);

-- Where the practice software wants status changes posted, and the Standard Webhooks key
-- (`whsec_…`) that signs them.
CREATE TABLE webhook_endpoints (
    practice_id TEXT NOT NULL PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The outbound webhook queue. An event is written in the transaction that records the status it
-- reports; `next_attempt_at` is also the lease of a delivery being attempted (claiming pushes it
-- forward), so a worker that dies mid-delivery leaves it due again, like the notification queue.
CREATE TABLE webhook_deliveries (
    practice_id TEXT NOT NULL,
    id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (practice_id, status, next_attempt_at);
