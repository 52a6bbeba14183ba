-- Two-way SMS (issue 16): what patients answer, their SMS opt-outs, and the one lookup that
-- attaches an answer to a practice.

-- The last SMS sent to each number, across practices: an incoming SMS names only the number it
-- comes from, and belongs to the practice whose message it answers. Keyed by the SHA-256 of the
-- E.164 number (not the number itself), one row per number, replaced by each newer send. This
-- is the one table not led by practice_id, like the queue's due-time indexes: the practice is
-- what the lookup finds. The second index serves the GDPR erasure of a patient.
CREATE TABLE sms_last_sent (
    number_hash TEXT NOT NULL PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices (id),
    patient_id TEXT NOT NULL,
    notification_key TEXT NOT NULL,
    sent_at BIGINT NOT NULL
);
CREATE INDEX sms_last_sent_patient ON sms_last_sent (practice_id, patient_id);

-- The opt-out register: a patient who answered STOP gets no SMS from this practice until they
-- answer START (or OUI) or the practice lifts it. `source` says who set it (`sms` for the
-- patient's reply, `api` or `ui` for the practice's own record of a request).
CREATE TABLE sms_opt_outs (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    patient_id TEXT NOT NULL,
    number TEXT NOT NULL,
    opted_out_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (practice_id, patient_id)
);

-- Every SMS a known patient sent back: keywords (handled at once, `keyword` set) and free text
-- for the « Messages reçus » box. `id` is derived from the provider and its message id, so a
-- provider calling twice stores (and answers) once.
CREATE TABLE received_messages (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    appointment_id TEXT,
    provider TEXT NOT NULL,
    keyword TEXT,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    handled_at BIGINT,
    PRIMARY KEY (practice_id, id)
);
CREATE INDEX received_messages_recent ON received_messages (practice_id, received_at);
