-- Issue 18: every claim stays within one practice. `practice_due` holds, per practice, the
-- earliest instant at which one of its notifications may be claimable: the earliest `due_at` of
-- its pending rows, or the earliest lease end of its rows being sent. Workers find practices
-- with due work by one scan of this small table (the one documented statement across
-- practices), then claim inside one practice at a time. It is kept in the transactions that
-- write notifications (never later than the truth; earlier is allowed, and the next claim in
-- that practice recomputes it). `turn_at` is when a worker last claimed there: the practices
-- with due work take turns, least recently served first.
CREATE TABLE practice_due (
    practice_id TEXT NOT NULL PRIMARY KEY REFERENCES practices (id),
    next_due_at BIGINT,
    turn_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX practice_due_next ON practice_due (next_due_at);

-- The queue's partial indexes are now led by practice_id like every other index: a claim looks
-- inside one practice.
DROP INDEX notifications_pending;
DROP INDEX notifications_sending;
CREATE INDEX notifications_pending ON notifications (practice_id, due_at) WHERE status = 'pending';
CREATE INDEX notifications_sending ON notifications (practice_id, due_at) WHERE status = 'sending';

INSERT INTO practice_due (practice_id, next_due_at, turn_at)
SELECT p.id,
       (SELECT MIN(c.t) FROM (
          SELECT MIN(n.due_at) AS t FROM notifications n
          WHERE n.practice_id = p.id AND n.status = 'pending'
          UNION ALL
          SELECT MIN(n.lease_until) AS t FROM notifications n
          WHERE n.practice_id = p.id AND n.status = 'sending') AS c),
       0
FROM practices p;
