-- Issue 18 (session 23): a claim writes the lease only. A row being sent is stored `pending`
-- with its lease (`lease_owner` not null) and read back as `sending` (`stored_status` in
-- crates/store/src/imp/notifications.rs); a pending row is stored without a lease. The claim
-- used to write `status = 'sending'`, which moved each claimed row from the entries of
-- `notifications_pending` to those of `notifications_sending`; the row now keeps its one entry,
-- the claim finds an expired lease in `notifications_pending` (the rows in flight sit at its
-- head, at most the batches being sent), and the lease's own index goes. On PostgreSQL the
-- same change makes the claim a HOT update (migrations/postgres/0024).
UPDATE notifications SET lease_owner = NULL, lease_until = NULL
WHERE status = 'pending' AND (lease_owner IS NOT NULL OR lease_until IS NOT NULL);
UPDATE notifications SET status = 'pending', lease_owner = COALESCE(lease_owner, '')
WHERE status = 'sending';
DROP INDEX notifications_sending;
