-- Every report a provider sent about a message after its hand-off (an SMS delivery report, a
-- bounce or DSN, an email service's event), with its time and code: the message's history shows
-- them all, not only the status they left. `id` names the report (source, outcome, detail), so a
-- report received twice is stored once. `patient_id` lets erasure forget them with the rest.
CREATE TABLE delivery_reports (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    notification_key TEXT NOT NULL,
    id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (practice_id, notification_key, id)
);
