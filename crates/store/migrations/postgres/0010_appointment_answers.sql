-- The patient answers back (issue 16). A reminder or a confirmation carries a link to
-- `/r/{token}` where the patient confirms or cancels; only the SHA-256 of the token is kept, the
-- token itself exists in the message alone. `start_ms` is the start the message announced, so a
-- link of a moved appointment can say so; the link expires at that start.
CREATE TABLE appointment_links (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    token_hash TEXT NOT NULL,
    appointment_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, token_hash)
);

-- A patient opens `/r/{token}` with no practice in the URL: like document_links_token, this
-- index is not led by practice_id. Tokens are 96 random bits, so it is unique and selective.
CREATE UNIQUE INDEX appointment_links_token ON appointment_links (token_hash);
CREATE INDEX appointment_links_patient ON appointment_links (practice_id, patient_id);

-- The patient's latest answer about an appointment (`confirmed` or `cancelled`), by which
-- channel (`link` or `sms`) and when; `start_ms` is the start it answered, so that a move makes
-- the answer stale (the patient has not answered about the new time).
CREATE TABLE appointment_answers (
    practice_id TEXT NOT NULL REFERENCES practices (id),
    appointment_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    channel TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (practice_id, appointment_id)
);
CREATE INDEX appointment_answers_patient ON appointment_answers (practice_id, patient_id);
