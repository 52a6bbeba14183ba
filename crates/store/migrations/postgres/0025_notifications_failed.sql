-- Issue 18 (session 24): the failed messages of a practice, in due order, for the dashboard's
-- "recent failures" and the list's `status=failed`. Without it both walked the practice's every
-- row in `notifications_due` from their `since` (the coming weeks' planned rows included) to find
-- the few that failed. A message fails rarely, so this index holds few entries and costs the
-- queue nothing: no claim or ordinary record writes it (a partial index takes an entry only for a
-- row that satisfies its predicate). The list names the status as a literal so that both planners
-- can match the predicate (a bound parameter cannot be proved to equal 'failed').
CREATE INDEX notifications_failed ON notifications (practice_id, due_at, key)
    WHERE status = 'failed';
