//! The queue: claims, leases, the per-practice due summary and the SMS quota.

use super::*;

pub(super) async fn concurrent_claimers_never_get_the_same_notification(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let rows: Vec<NotificationRow> = (0..500)
        .map(|i| {
            let practice = if i % 2 == 0 { "a" } else { "b" };
            let due = now - SignedDuration::from_secs(i % 97);
            let mut n = notification(practice, &format!("n{i:03}"), "2025-01-01T00:00:00Z");
            n.due_at = due;
            n
        })
        .collect();
    insert_notifications(&store, &rows).await;

    let lease_until = now + SignedDuration::from_mins(5);
    let mut claimers = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut claimed = Vec::new();
            loop {
                let batch = store.claim_due(now, &owner, lease_until, 7).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(
                    batch.windows(2).all(|w| w[0].due_at <= w[1].due_at),
                    "most overdue first"
                );
                for n in &batch {
                    assert_eq!(n.status, Status::Sending);
                    assert_eq!(n.lease_owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(n.lease_until, Some(lease_until));
                    assert_eq!(n.attempts, 1);
                    assert_eq!(n.updated_at, now);
                }
                claimed.extend(batch.into_iter().map(|n| (n.practice_id, n.key)));
                tokio::task::yield_now().await;
            }
            claimed
        }));
    }
    let mut per_row: HashMap<(String, String), usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *per_row.entry(id).or_default() += 1;
        }
    }
    assert_eq!(per_row.len(), 500, "every due row is claimed");
    assert!(per_row.values().all(|&n| n == 1), "no row is claimed twice");
    assert!(
        store
            .claim_due(now, "late", lease_until, 100)
            .await
            .unwrap()
            .is_empty()
    );

    let mut tx = store.begin().await.unwrap();
    let sending = NotificationFilter {
        status: Some(Status::Sending),
        limit: 1000,
        ..Default::default()
    };
    let stored_a = tx.list_notifications("a", &sending).await.unwrap();
    let stored_b = tx.list_notifications("b", &sending).await.unwrap();
    assert_eq!(
        stored_a.len() + stored_b.len(),
        500,
        "the claims were committed"
    );
    tx.commit().await.unwrap();
}

pub(super) async fn claim_takes_expired_leases_but_not_future_or_finished_rows(store: Store) {
    with_practices(&store, &["a"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let mut expired = notification("a", "expired", "2025-03-01T11:00:00Z");
    expired.status = Status::Sending;
    expired.attempts = 1;
    expired.lease_owner = Some("dead-worker".into());
    expired.lease_until = Some(at("2025-03-01T11:59:59Z"));
    let mut leased = notification("a", "leased", "2025-03-01T11:30:00Z");
    leased.status = Status::Sending;
    leased.attempts = 1;
    leased.lease_owner = Some("live-worker".into());
    leased.lease_until = Some(at("2025-03-01T12:00:00Z"));
    let due = notification("a", "due", "2025-03-01T12:00:00Z");
    let future = notification("a", "future", "2025-03-01T12:00:00.001Z");
    let mut sent = notification("a", "sent", "2025-03-01T10:00:00Z");
    sent.status = Status::Sent;
    let mut suppressed = notification("a", "suppressed", "2025-03-01T10:00:00Z");
    suppressed.status = Status::Suppressed;
    suppressed.reason = Some(Reason::NoMobile);
    insert_notifications(&store, &[expired, leased, due, future, sent, suppressed]).await;

    // Instants finer than the millisecond the table keeps, as a clock gives them.
    let fine = now + SignedDuration::from_nanos(456_789);
    let lease_until = now + SignedDuration::from_mins(5) + SignedDuration::from_nanos(123_456);
    let claimed = store.claim_due(fine, "w2", lease_until, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["expired", "due"]);
    assert_eq!(claimed[0].attempts, 2, "a re-claim counts another attempt");
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("w2"));
    assert_eq!(claimed[1].attempts, 1);
    // What the claim hands back is the row as stored (SQLite reads the rows before its update
    // and writes the lease into them itself).
    let mut tx = store.begin_read().await.unwrap();
    for n in &claimed {
        let stored = tx.notification("a", &n.key).await.unwrap();
        assert_eq!(stored.as_ref(), Some(n), "{}", n.key);
    }
    tx.commit().await.unwrap();

    // The limit is honoured, most overdue first.
    let later = at("2025-03-01T12:10:00Z");
    let one = store
        .claim_due(later, "w3", later + SignedDuration::from_mins(5), 1)
        .await
        .unwrap();
    assert_eq!(
        keys(&one),
        ["expired"],
        "its lease (12:05) has expired at 12:10 and it is older"
    );
    let rest = store
        .claim_due(later, "w3", later + SignedDuration::from_mins(5), 10)
        .await
        .unwrap();
    assert_eq!(keys(&rest), ["leased", "due", "future"]);
    assert!(
        store
            .claim_due(later, "w3", later, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn next_due_is_the_earliest_pending_due_time_or_lease_end(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    assert_eq!(store.next_due().await.unwrap(), None);
    let mut sent = notification("a", "sent", "2025-03-01T08:00:00Z");
    sent.status = Status::Sent;
    insert_notifications(&store, &[sent]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        None,
        "finished rows are not work"
    );

    insert_notifications(&store, &[notification("b", "p", "2025-03-01T12:00:00Z")]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T12:00:00Z"))
    );

    let mut sending = notification("a", "s", "2025-03-01T07:00:00Z");
    sending.status = Status::Sending;
    sending.lease_until = Some(at("2025-03-01T11:00:00Z"));
    insert_notifications(&store, &[sending]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T11:00:00Z"))
    );

    insert_notifications(
        &store,
        &[notification("a", "early", "2025-03-01T10:00:00Z")],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T10:00:00Z"))
    );
}

/// Issue 18: practice A has 10,000 messages due before practice B's one; B's goes in the first
/// batch, and the practices share it rather than A taking it all or B waiting for A's burst.
pub(super) async fn a_burst_in_one_practice_does_not_delay_another_practice_by_more_than_one_batch(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let burst: Vec<NotificationRow> = (0..10_000)
        .map(|i| {
            let mut n = notification("a", &format!("burst{i:05}"), "2025-03-01T08:00:00Z");
            n.due_at = at("2025-03-01T08:00:00Z") + SignedDuration::from_millis(i);
            n
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.insert_notifications(&burst).await.unwrap();
    tx.commit().await.unwrap();
    insert_notifications(
        &store,
        &[notification("b", "lonely", "2025-03-01T11:59:00Z")],
    )
    .await;

    let lease_until = now + SignedDuration::from_mins(5);
    let first = store.claim_due(now, "w", lease_until, 100).await.unwrap();
    assert_eq!(first.len(), 100, "the batch is full");
    let from_b: Vec<&str> = first
        .iter()
        .filter(|n| n.practice_id == "b")
        .map(|n| n.key.as_str())
        .collect();
    assert_eq!(from_b, ["lonely"], "B's message is in the first batch");
    assert!(
        first
            .iter()
            .filter(|n| n.practice_id == "a")
            .map(|n| n.key.as_str())
            .eq((0..99)
                .map(|i| format!("burst{i:05}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)),
        "A's share is its most overdue rows"
    );
    assert!(
        first.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "most overdue first"
    );

    // A later message of B, due while A's burst is still being worked through, waits one batch
    // at most too: B is served before A, which was served last.
    let next = now + SignedDuration::from_secs(1);
    insert_notifications(
        &store,
        &[notification("b", "second", "2025-03-01T12:00:01Z")],
    )
    .await;
    let second = store.claim_due(next, "w", lease_until, 100).await.unwrap();
    assert_eq!(second.len(), 100);
    assert_eq!(
        second.iter().filter(|n| n.practice_id == "b").count(),
        1,
        "B's second message is in the next batch"
    );
    // With one practice left, a batch is all A's.
    let third = store.claim_due(next, "w", lease_until, 100).await.unwrap();
    assert_eq!(third.len(), 100);
    assert!(third.iter().all(|n| n.practice_id == "a"));
}

/// A claim that takes all the rows it asked for leaves its practice's summary due, as there may
/// be more (a summary earlier than the truth is allowed), and spares a recomputation per batch
/// during a burst; the claim that then finds fewer rows than it asked recomputes it.
pub(super) async fn a_full_claim_leaves_the_summary_due_and_a_short_one_recomputes_it(
    store: Store,
) {
    with_practices(&store, &["a"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_mins(1);
    insert_notifications(
        &store,
        &[
            notification("a", "one", "2025-03-01T11:00:00Z"),
            notification("a", "two", "2025-03-01T11:30:00Z"),
            notification("a", "later", "2025-03-01T13:00:00Z"),
        ],
    )
    .await;
    let claimed = store.claim_due(now, "w", lease_until, 2).await.unwrap();
    assert_eq!(keys(&claimed), ["one", "two"]);
    assert!(
        store.next_due().await.unwrap().unwrap() <= now,
        "a claim that took all it asked for leaves the practice due"
    );
    assert!(
        store
            .claim_due(now, "w", lease_until, 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(lease_until),
        "the claim that found fewer rows recomputed the summary: the leases end first"
    );
}

/// A row being sent is stored `pending` with its lease (migration 0024): every read still
/// tells it from a row waiting — the row itself, the list's status filter, the counts by status
/// — and a row set back to pending loses its lease, so it does not read as being sent.
pub(super) async fn a_claimed_row_reads_as_sending_in_lists_and_counts_and_pending_again_without_its_lease(
    store: Store,
) {
    with_practices(&store, &["a"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_mins(1);
    insert_notifications(
        &store,
        &[
            notification("a", "due", "2025-03-01T11:00:00Z"),
            notification("a", "later", "2025-03-01T13:00:00Z"),
        ],
    )
    .await;
    let claimed = store.claim_due(now, "w", lease_until, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["due"]);
    assert_eq!(claimed[0].status, Status::Sending);

    let with_status = |status| NotificationFilter {
        status: Some(status),
        limit: 10,
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let sending = tx
        .list_notifications("a", &with_status(Status::Sending))
        .await
        .unwrap();
    assert_eq!(keys(&sending), ["due"]);
    assert_eq!(sending[0].status, Status::Sending);
    assert_eq!(sending[0].lease_owner.as_deref(), Some("w"));
    assert_eq!(sending[0].lease_until, Some(lease_until));
    let pending = tx
        .list_notifications("a", &with_status(Status::Pending))
        .await
        .unwrap();
    assert_eq!(keys(&pending), ["later"]);
    let counts = tx.notification_counts(Some("a")).await.unwrap();
    let count = |status: &str| {
        counts
            .iter()
            .filter(|(s, _, _)| s == status)
            .map(|(_, _, n)| n)
            .sum::<i64>()
    };
    assert_eq!((count("pending"), count("sending")), (1, 1), "{counts:?}");
    tx.commit().await.unwrap();

    // Set back to pending (a retry) with its lease still in the row: it is stored without it.
    let mut retry = claimed[0].clone();
    retry.status = Status::Pending;
    retry.due_at = now + SignedDuration::from_secs(30);
    let mut tx = store.begin().await.unwrap();
    tx.update_notification_outcomes(&[retry]).await.unwrap();
    let pending = tx
        .list_notifications("a", &with_status(Status::Pending))
        .await
        .unwrap();
    assert_eq!(keys(&pending), ["due", "later"]);
    assert_eq!(pending[0].status, Status::Pending);
    assert_eq!(pending[0].lease_owner, None);
    assert!(
        tx.list_notifications("a", &with_status(Status::Sending))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

/// The summary is never later than the truth: after claims (which recompute it), a retry set
/// back to pending, an expired lease and a row added earlier than everything else.
pub(super) async fn the_due_summary_follows_claims_retries_and_expired_leases(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_mins(1);
    insert_notifications(
        &store,
        &[
            notification("a", "due", "2025-03-01T11:00:00Z"),
            notification("a", "later", "2025-03-01T13:00:00Z"),
        ],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T11:00:00Z"))
    );

    let mut claimed = store.claim_due(now, "w", lease_until, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["due"]);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(lease_until),
        "the claimed row's lease end comes before the later row"
    );

    // The hand-off failed for now: the row is pending again, due in 30 s.
    let mut row = claimed.remove(0);
    row.status = Status::Pending;
    row.lease_owner = None;
    row.lease_until = None;
    row.due_at = now + SignedDuration::from_secs(30);
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&row).await.unwrap();
    tx.commit().await.unwrap();
    let retry = now + SignedDuration::from_secs(30);
    assert!(store.next_due().await.unwrap().unwrap() <= retry);
    assert!(
        store
            .claim_due(now, "w", lease_until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(retry),
        "an empty claim recomputes the summary"
    );

    // Claimed again, then the worker dies: the expired lease is due work.
    let claimed = store
        .claim_due(retry, "w", retry + SignedDuration::from_mins(1), 10)
        .await
        .unwrap();
    assert_eq!(keys(&claimed), ["due"]);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(retry + SignedDuration::from_mins(1))
    );
    let after = retry + SignedDuration::from_mins(2);
    let again = store
        .claim_due(after, "w2", after + SignedDuration::from_mins(1), 10)
        .await
        .unwrap();
    assert_eq!(keys(&again), ["due"]);
    assert_eq!(again[0].attempts, 3);

    // Sent: only the later row is left.
    let mut sent = again[0].clone();
    sent.status = Status::Sent;
    sent.decided_at = Some(after);
    let mut tx = store.begin().await.unwrap();
    tx.update_notification_outcomes(&[sent]).await.unwrap();
    tx.commit().await.unwrap();
    // Until its lease would have ended, the summary may still name it (earlier is allowed);
    // the claim at that instant finds nothing and corrects it.
    let lease_end = after + SignedDuration::from_mins(1);
    assert!(store.next_due().await.unwrap().unwrap() <= lease_end);
    assert!(
        store
            .claim_due(lease_end, "w", lease_end, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T13:00:00Z"))
    );

    // A row of another practice due earlier lowers the summary at once.
    insert_notifications(
        &store,
        &[notification("b", "early", "2025-03-01T12:30:00Z")],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T12:30:00Z"))
    );
}

/// Writers queue due messages one transaction at a time while three claimers race them; the
/// summary must never hide a due message (it would stay unclaimed): in the end every message was
/// claimed exactly once.
pub(super) async fn no_message_is_lost_to_the_summary_while_writers_and_claimers_race(
    store: Store,
) {
    let practices = ["a", "b", "c", "d"];
    with_practices(&store, &practices).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_hours(1);
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(practices.len()));
    let mut writers = Vec::new();
    for (w, practice) in practices.iter().enumerate() {
        let store = store.clone();
        let writing = writing.clone();
        let practice = practice.to_string();
        writers.push(tokio::spawn(async move {
            for i in 0..40i64 {
                let mut n =
                    notification(&practice, &format!("w{w}-{i:02}"), "2025-03-01T11:00:00Z");
                n.due_at = now - SignedDuration::from_secs((i * 7 + w as i64) % 60);
                let mut tx = store.begin().await.unwrap();
                tx.insert_notification(&n).await.unwrap();
                tx.commit().await.unwrap();
                tokio::task::yield_now().await;
            }
            writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    let mut claimers = Vec::new();
    for c in 0..3 {
        let store = store.clone();
        let writing = writing.clone();
        claimers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let done = writing.load(std::sync::atomic::Ordering::SeqCst) == 0;
                let batch = store
                    .claim_due(now, &format!("c{c}"), lease_until, 5)
                    .await
                    .unwrap();
                if batch.is_empty() && done {
                    return claimed;
                }
                claimed.extend(batch.into_iter().map(|n| (n.practice_id, n.key)));
                tokio::task::yield_now().await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 160, "every message was claimed");
    assert!(seen.values().all(|&n| n == 1), "none twice");
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(lease_until),
        "only the leases are left"
    );
}

pub(super) async fn sms_quota_of_two_admits_exactly_two_concurrent_messages(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut senders = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let counted = tx
                .try_consume_sms("a", "2025-03", Some(6), 3)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            counted
        }));
    }
    let mut admitted = 0;
    for sender in senders {
        admitted += usize::from(sender.await.unwrap());
    }
    assert_eq!(admitted, 2);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.sms_usage("a", "2025-03").await.unwrap(), (2, 6));
    assert_eq!(tx.sms_usage("a", "2025-04").await.unwrap(), (0, 0));
    assert_eq!(tx.sms_usage("b", "2025-03").await.unwrap(), (0, 0));
    assert!(
        tx.try_consume_sms("a", "2025-04", Some(2), 1)
            .await
            .unwrap(),
        "a new month"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-03", Some(6), 1)
            .await
            .unwrap(),
        "the limit counts billed SMS (segments), not messages"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-04", Some(2), 2)
            .await
            .unwrap(),
        "a message that would pass the limit is refused whole"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-03", Some(0), 1)
            .await
            .unwrap()
    );
    for _ in 0..3 {
        assert!(
            tx.try_consume_sms("b", "2025-03", None, 2).await.unwrap(),
            "no limit"
        );
    }
    assert_eq!(tx.sms_usage("b", "2025-03").await.unwrap(), (3, 6));
    assert_eq!(
        tx.sms_usage("a", "2025-03").await.unwrap(),
        (2, 6),
        "refusals count nothing"
    );
    tx.commit().await.unwrap();
}
