//! The event log's sequence numbers and the idempotency answers.

use super::*;

pub(super) async fn event_sequence_numbers_count_per_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let received = at("2025-02-01T00:00:01Z");
    let mut tx = store.begin().await.unwrap();
    for n in 1..=3 {
        let body = json!({"type": "appointment.booked", "n": n});
        let seq = tx
            .insert_event(
                "a",
                at("2025-02-01T00:00:00Z"),
                received,
                "appointment.booked",
                &body,
            )
            .await
            .unwrap();
        assert_eq!(seq, n);
    }
    let seq = tx
        .insert_event("b", received, received, "patient.updated", &json!({}))
        .await
        .unwrap();
    assert_eq!(seq, 1, "each practice counts from 1");
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.insert_event("a", received, received, "x", &json!(null))
            .await
            .unwrap(),
        4
    );
    let events = tx.events("a", 1, 2).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(
        events[0].body,
        json!({"type": "appointment.booked", "n": 2})
    );
    assert_eq!(events[0].event_type, "appointment.booked");
    assert_eq!(events[0].at, at("2025-02-01T00:00:00Z"));
    assert_eq!(events[0].received_at, received);
    assert_eq!(events[0].practice_id, "a");
    assert_eq!(tx.events("a", 0, 100).await.unwrap().len(), 4);
    assert_eq!(tx.events("b", 0, 100).await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

pub(super) async fn event_sequence_numbers_stay_unique_under_concurrent_writers(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                let mut tx = store.begin().await.unwrap();
                let now = at("2025-02-01T00:00:00Z");
                let seq = tx
                    .insert_event("a", now, now, "x", &json!([w, i]))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                seqs.push(seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<i64>>());
}

pub(super) async fn idempotency_answers_round_trip(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.idempotency("a", "k").await.unwrap(), None);
    let answer = json!({"id": "a1", "status": "booked"});
    tx.save_idempotency("a", "k", "h1", 201, &answer, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.idempotency("a", "k").await.unwrap(),
        Some(("h1".into(), 201, answer))
    );
    assert_eq!(tx.idempotency("b", "k").await.unwrap(), None);
    let again = json!({"error": "conflict"});
    tx.save_idempotency("a", "k", "h2", 409, &again, at("2025-02-01T00:00:01Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.idempotency("a", "k").await.unwrap(),
        Some(("h2".into(), 409, again))
    );
    tx.commit().await.unwrap();
}
