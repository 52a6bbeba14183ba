//! Transactions and tenant isolation.

use super::*;

pub(super) async fn a_dropped_transaction_rolls_back(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.upsert_patient(
        "a",
        &patient("p1", "Jean", "Dupont"),
        at("2025-02-01T00:00:00Z"),
    )
    .await
    .unwrap();
    tx.insert_notification(&notification("a", "n1", "2025-03-01T00:00:00Z"))
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert_eq!(tx.notification("a", "n1").await.unwrap(), None);
    tx.commit().await.unwrap();
}

pub(super) async fn practice_b_never_sees_practice_a_rows(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T00:00:00Z");
    let mut tx = store.begin().await.unwrap();
    let doctor = Practitioner {
        id: "dr".into(),
        name: "Dr A".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    let motive = Motive {
        id: "m".into(),
        name: "M".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &motive).await.unwrap();
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_appointment("a", &appointment("a1", "p1", "2025-03-05T09:00:00Z"), now)
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-03-01T00:00:00Z"))
        .await
        .unwrap();
    tx.insert_event("a", now, now, "x", &json!({}))
        .await
        .unwrap();
    tx.save_idempotency("a", "k", "h", 200, &json!({}), now)
        .await
        .unwrap();
    let mut n = notification("a", "n1", "2025-03-04T09:00:00Z");
    n.document = Some("d1".into());
    tx.insert_notification(&n).await.unwrap();
    tx.try_consume_sms("a", "2025-03", None, 1).await.unwrap();
    tx.insert_api_key("a", "key", "hash", now).await.unwrap();
    let entry = InboxRow {
        practice_id: "a".into(),
        id: "i1".into(),
        inbox: "to_verify".into(),
        document: None,
        patient_id: Some("p1".into()),
        title: "t".into(),
        text: "x".into(),
        created_at: now,
        resolved_at: None,
    };
    tx.insert_inbox(&entry).await.unwrap();
    let task = TaskRow {
        practice_id: "a".into(),
        id: "t1".into(),
        definition: json!({}),
        active: true,
        created_at: now,
    };
    tx.upsert_task(&task).await.unwrap();
    let run = TaskRunRow {
        practice_id: "a".into(),
        task_id: "t1".into(),
        occurrence: "2025-03-01".into(),
        scheduled_for: now,
        started_at: now,
        summary: json!({}),
    };
    tx.claim_task_run(&run).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let b = "b";
    assert_eq!(tx.practitioner(b, "dr").await.unwrap(), None);
    assert!(tx.practitioners(b).await.unwrap().is_empty());
    assert_eq!(tx.motive(b, "m").await.unwrap(), None);
    assert!(tx.motives(b).await.unwrap().is_empty());
    assert_eq!(tx.patient(b, "p1").await.unwrap(), None);
    assert!(
        tx.search_patients(b, "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!tx.erase_patient(b, "p1", now).await.unwrap());
    assert!(!tx.is_erased(b, "p1").await.unwrap());
    assert!(tx.all_patients(b).await.unwrap().is_empty());
    assert_eq!(tx.appointment(b, "a1").await.unwrap(), None);
    assert!(
        tx.patient_appointments(b, "p1", now)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(tx.patient_history(b, "p1").await.unwrap().is_empty());
    let far = at("2030-01-01T00:00:00Z");
    assert!(
        tx.appointments_between(b, now, far)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.patients_with_open_work(b, now, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.document(b, "d1").await.unwrap(), None);
    assert!(tx.patient_documents(b, "p1").await.unwrap().is_empty());
    assert!(tx.events(b, 0, 100).await.unwrap().is_empty());
    assert_eq!(tx.idempotency(b, "k").await.unwrap(), None);
    assert!(tx.patient_notifications(b, "p1").await.unwrap().is_empty());
    assert_eq!(tx.notification(b, "n1").await.unwrap(), None);
    let all = NotificationFilter {
        limit: 100,
        ..Default::default()
    };
    assert!(tx.list_notifications(b, &all).await.unwrap().is_empty());
    assert!(
        tx.appointment_notifications(b, "p1", "a1")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(tx.document_notifications(b, "d1").await.unwrap().is_empty());
    assert!(tx.notification_counts(Some(b)).await.unwrap().is_empty());
    assert_eq!(tx.sms_usage(b, "2025-03").await.unwrap(), (0, 0));
    assert!(!tx.api_key_matches(b, "key", "hash").await.unwrap());
    assert!(tx.inbox(b, None, true).await.unwrap().is_empty());
    assert!(!tx.resolve_inbox(b, "i1", now).await.unwrap());
    assert_eq!(tx.task(b, "t1").await.unwrap(), None);
    assert!(tx.tasks(b).await.unwrap().is_empty());
    assert!(!tx.delete_task(b, "t1").await.unwrap());
    assert!(tx.task_runs(b, "t1", 10).await.unwrap().is_empty());
    assert_eq!(tx.last_task_run(b, "t1").await.unwrap(), None);

    // Writes under B's id leave A's rows alone.
    let mut foreign = n.clone();
    foreign.practice_id = b.into();
    foreign.status = Status::Failed;
    tx.update_notification(&foreign).await.unwrap();
    tx.finish_task_run(b, "t1", "2025-03-01", &json!({"x": 1}))
        .await
        .unwrap();
    tx.update_practice_settings(b, &Map::new()).await.unwrap();
    assert_eq!(tx.notification("a", "n1").await.unwrap(), Some(n));
    assert_eq!(tx.last_task_run("a", "t1").await.unwrap(), Some(run));
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    assert!(tx.search_patients("a", "dupont", 10).await.unwrap().len() == 1);
    assert!(tx.inbox("a", None, false).await.unwrap().len() == 1);

    // And B's own rows with the same ids are separate.
    tx.upsert_patient(b, &patient("p1", "Autre", "Personne"), now)
        .await
        .unwrap();
    assert_eq!(
        tx.patient("a", "p1").await.unwrap().unwrap().last_name,
        "Dupont"
    );
    assert_eq!(
        tx.patient(b, "p1").await.unwrap().unwrap().last_name,
        "Personne"
    );
    tx.commit().await.unwrap();

    let unique: HashSet<_> = claim_everything(&store).await;
    assert!(unique.iter().all(|(p, _)| p == "a"), "only A had a due row");
}
/// A read path that writes by mistake fails on every backend, not only on PostgreSQL or under
/// contention on SQLite; the connection it used writes again in the next write transaction; and
/// only write transactions count as writes.
pub(super) async fn a_read_transaction_refuses_writes_and_is_not_counted_as_one(store: Store) {
    with_practices(&store, &["a"]).await;
    let writes = store.write_transactions();

    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    assert!(
        tx.insert_practice(&practice("b")).await.is_err(),
        "a read transaction refuses a write"
    );
    drop(tx);
    // The same again with a commit, so that the connection returns to the pool both ways.
    let mut tx = store.begin_read().await.unwrap();
    assert!(tx.practice("b").await.unwrap().is_none());
    tx.commit().await.unwrap();
    assert_eq!(store.write_transactions(), writes, "reads are not writes");

    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&practice("b")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.write_transactions(), writes + 1);
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.practice("b").await.unwrap(), Some(practice("b")));
    tx.commit().await.unwrap();
}
