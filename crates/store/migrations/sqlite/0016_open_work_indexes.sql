-- Issue 18: indexes that the planners cannot pick for the wrong query.
--
-- Every index of notifications is led by practice_id (0012, 0015), so that each one serves a
-- query of one practice. Without statistics (a fresh database, a table that grew since its last
-- ANALYZE, or SQLite, which has none unless asked), the planners then saw several indexes that
-- match `practice_id = $1` equally well and could take any of them. They took the provider's:
-- PostgreSQL's cached plan for reading many patients' notifications scanned the practice's every
-- row for each patient (ingestion fell from about 4,600 to 180 bookings a second on 100,000
-- notifications), and SQLite read every row of the practice to find its earliest lease.
--
-- The provider's and the document's indexes now hold only the rows that have one, so they serve
-- `provider_id = $2` and `document = $2` (which imply IS NOT NULL) and nothing else.
DROP INDEX notifications_provider;
CREATE INDEX notifications_provider ON notifications (practice_id, provider_id)
    WHERE provider_id IS NOT NULL;
DROP INDEX notifications_document;
CREATE INDEX notifications_document ON notifications (practice_id, document)
    WHERE document IS NOT NULL;

-- The leased rows' index is ordered by the lease's end, the instant at which such a row becomes
-- claimable again: the summary reads a practice's earliest lease end (`ORDER BY lease_until
-- LIMIT 1`) and the claim looks for expired leases (`lease_until < now`) from it. Ordered by due
-- time, it served neither.
DROP INDEX notifications_sending;
CREATE INDEX notifications_sending ON notifications (practice_id, lease_until)
    WHERE status = 'sending';
