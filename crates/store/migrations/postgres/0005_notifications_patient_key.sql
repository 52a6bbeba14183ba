-- The patient's notifications are read ordered by key (reconciliation input). With the index on
-- (practice_id, patient_id) alone, SQLite chose the primary key (practice_id, key) to avoid a sort
-- and scanned every notification of the practice for each re-plan: ingestion slowed down as the
-- queue grew. Ending the index with the key serves both the filter and the order.
DROP INDEX notifications_patient;
CREATE INDEX notifications_patient ON notifications (practice_id, patient_id, key);
