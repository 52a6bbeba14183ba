-- Issue 18 (session 16): the tables written for every booking, message and delivery report no
-- longer check, row by row, that their practice exists. PostgreSQL checks a foreign key with a
-- query per inserted row that locks the practice's row (FOR KEY SHARE): every concurrent
-- writer of a practice locks that one row, which takes a multixact as soon as two of them
-- overlap. The check was about half the time of an insert of 250 appointment links (1.7–2.3 of
-- 3.6–3.8 ms, EXPLAIN ANALYZE on a bench database), and PostgreSQL ingestion ran 6,102 -> 6,974
-- bookings/s without it (medians of three, in alternation).
--
-- What the check guarded cannot happen: every write names a practice that the request or the
-- claim has just read (an API key, a session, a link's route, a claimed row), and practices are
-- never deleted. The other tables keep their foreign keys, and SQLite keeps all of them (its
-- check is one lookup in the same process, and dropping one means rebuilding the table).
ALTER TABLE notifications DROP CONSTRAINT notifications_practice_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_practice_id_fkey;
ALTER TABLE appointments DROP CONSTRAINT appointments_practice_id_fkey;
ALTER TABLE patients DROP CONSTRAINT patients_practice_id_fkey;
ALTER TABLE appointment_links DROP CONSTRAINT appointment_links_practice_id_fkey;
ALTER TABLE delivery_reports DROP CONSTRAINT delivery_reports_practice_id_fkey;
