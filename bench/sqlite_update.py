#!/usr/bin/env python3
"""What one single-row UPDATE of a dispatch's outcome costs SQLite, by table layout.

Issue 18, session 19: SQLite's dispatch is bound by its one write turn, and the record's
single-row `UPDATE notifications SET status = ?, …` is the largest part of it (18–23 µs a row in
`RAPPEL_LOG=sqlx::query=debug` statement logs). This script builds a table of the shape of
`notifications` (100,000 rows of about 300 bytes, the same primary key and indexes) with
Python's own `sqlite3`, then times 20 transactions of 500 single-row updates that write a sent
outcome (status, lease, a 215-byte audit copy…), for:

- the rowid table with the primary key's index (what Rappel has) and a `WITHOUT ROWID` table;
- rows updated where they lie together (as a claim's rows do, placed by due minute) or scattered;
- with every index, without the partial ones, without any secondary index.

It prints microseconds a row, the median of `--rounds` rounds. Usage:
`python3 bench/sqlite_update.py [--rounds 3]` (no package to install; about a minute a round).
"""

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time

ROWS = 100_000
BATCH = 500
BATCHES = 20
INDEXES = {
    "patient": "CREATE INDEX n_patient ON n (practice_id, patient_id, key)",
    "due": "CREATE INDEX n_due ON n (practice_id, due_at, key)",
    "pending": "CREATE INDEX n_pending ON n (practice_id, due_at) WHERE status = 'pending'",
    "sending": "CREATE INDEX n_sending ON n (practice_id, lease_until) WHERE status = 'sending'",
    "provider": "CREATE INDEX n_provider ON n (practice_id, provider_id) "
    "WHERE provider_id IS NOT NULL",
}
PARTIAL = ["pending", "sending", "provider"]
UPDATE = (
    "UPDATE n SET status = ?, reason = ?, decided_at = ?, attempts = ?, lease_owner = ?, "
    "lease_until = ?, last_error = ?, rendered = ?, provider_id = ?, updated_at = ? "
    "WHERE practice_id = ? AND key = ?"
)


def key(i):
    return f"a:appt{i:06d}/confirmation/email/rule-confirmation"


def table(path, without_rowid, drop):
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -16000")
    db.execute(
        "CREATE TABLE n (practice_id TEXT NOT NULL, key TEXT NOT NULL, patient_id TEXT, "
        "due_at INT, status TEXT, reason TEXT, decided_at INT, attempts INT, lease_owner TEXT, "
        "lease_until INT, last_error TEXT, rendered BLOB, provider_id TEXT, updated_at INT, "
        "planned TEXT, PRIMARY KEY (practice_id, key))"
        + (" WITHOUT ROWID" if without_rowid else "")
    )
    for name, sql in INDEXES.items():
        if name not in drop:
            db.execute(sql)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO n VALUES ('pr1', ?, ?, ?, 'sending', NULL, NULL, 1, 'worker', 5, NULL, "
        "NULL, NULL, 1, ?)",
        [(key(i), f"p{i}", 1000 + i, "x" * 250) for i in range(ROWS)],
    )
    db.execute("COMMIT")
    return db


def time_updates(db, batches):
    copy = os.urandom(215)
    started = time.perf_counter()
    for keys in batches:
        db.execute("BEGIN")
        db.executemany(
            UPDATE,
            [("sent", None, 7, 1, None, None, None, copy, None, 8, "pr1", k) for k in keys],
        )
        db.execute("COMMIT")
    return (time.perf_counter() - started) / (BATCH * BATCHES) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    order = list(range(ROWS))
    random.Random(1).shuffle(order)
    together = [[key(i) for i in range(20_000 + b * BATCH, 20_000 + (b + 1) * BATCH)]
                for b in range(BATCHES)]
    scattered = [sorted(key(i) for i in order[b * BATCH:(b + 1) * BATCH])
                 for b in range(BATCHES)]
    cases = [
        ("rowid, rows together, every index", False, [], together),
        ("rowid, rows scattered, every index", False, [], scattered),
        ("WITHOUT ROWID, rows together, every index", True, [], together),
        ("WITHOUT ROWID, rows scattered, every index", True, [], scattered),
        ("rowid, rows together, no partial index", False, PARTIAL, together),
        ("rowid, rows together, no secondary index", False, list(INDEXES), together),
    ]
    results = {name: [] for name, *_ in cases}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "update.db")
        for _ in range(args.rounds):
            for name, without_rowid, drop, batches in cases:
                db = table(path, without_rowid, drop)
                results[name].append(time_updates(db, batches))
                db.close()
    print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows, {BATCHES} × {BATCH} single-row updates")
    for name, values in results.items():
        runs = " / ".join(f"{v:.1f}" for v in values)
        print(f"{statistics.median(values):6.1f} µs a row  {name}  ({runs})")


if __name__ == "__main__":
    main()
