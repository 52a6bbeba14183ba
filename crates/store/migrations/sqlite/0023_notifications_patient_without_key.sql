-- Issue 18 (session 22): `notifications_patient` loses its third column, the key (migration 0005
-- added it). Practice software books for patients in no particular order, so each notification
-- a plan inserts takes an entry at a random place of this index, and each batch's commit wrote
-- back nearly every page of it: the key (about 50 bytes of text) made the entries three times
-- as long as `(practice_id, patient_id)` alone and the index three times as many pages
-- (`rappel bench --scattered-ids`: 8,300 bookings/s against 10,600 with ids in booking order).
-- Migration 0005 added the key for a read by patient `ORDER BY key`, for which SQLite walked the
-- primary key rather than sort a patient's few rows; no statement that reads this index orders
-- by the key any more (the rows are sorted after the read, or by the outer aggregate of a batch
-- lookup), and `tests/plans.rs` checks each one still searches the patient in this index.
DROP INDEX notifications_patient;
CREATE INDEX notifications_patient ON notifications (practice_id, patient_id);
