-- What each letter cost (issue 5), in euro cents, recorded at hand-off from the provider's answer
-- or the configured tariff. NULL for every other message and for letters sent before this column.
ALTER TABLE notifications ADD COLUMN cost_cents BIGINT;

-- The month's postal spend reads the costed rows of one practice by hand-off instant. Partial, so
-- that the queue's other rows (nearly all of them) cost this index nothing.
CREATE INDEX notifications_cost ON notifications (practice_id, decided_at) WHERE cost_cents IS NOT NULL;

-- A practice's logo (SPEC.md: the email header of staff bookings, the letterhead of letters),
-- already resized to fit 150 x 75 px and re-encoded as PNG by the engine: a few kilobytes, kept as
-- base64 text because text is what sqlx::Any carries the same way on both backends.
CREATE TABLE practice_logos (
    practice_id TEXT NOT NULL PRIMARY KEY,
    png_base64 TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
