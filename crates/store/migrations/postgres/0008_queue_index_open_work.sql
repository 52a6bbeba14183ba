-- The queue's index holds open work only: rows waiting (`pending`) and rows being sent
-- (`sending`, found again when their lease expires), each by due time. Sent, failed and
-- suppressed rows, nearly all rows after a while, are not in it, so it stays as small as the
-- queue: planning a suppressed row adds no entry, and a hand-off removes one entry instead of
-- moving it. Like the index it replaces, it is not led by practice_id (ARCHITECTURE.md):
-- workers look for due work across practices.
DROP INDEX notifications_queue;
CREATE INDEX notifications_pending ON notifications (due_at) WHERE status = 'pending';
CREATE INDEX notifications_sending ON notifications (due_at) WHERE status = 'sending';
