//! Notifications: every column, the provider id, listings, counts and batch reads and writes.

use super::*;

pub(super) async fn notifications_insert_update_and_read_back_every_column(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut full = notification("a", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    full.kind = Kind::PractitionerMove;
    full.channel = Channel::Email;
    full.recipient = Recipient::Practitioner("dr-martin".into());
    full.appointments = vec!["a1".into(), "a2".into()];
    full.document = Some("d1".into());
    full.task = Some("birthday".into());
    full.auto_resend = true;
    full.window_end = Some(at("2025-03-10T09:00:00Z"));
    full.status = Status::Suppressed;
    full.reason = Some(Reason::QuotaExhausted);
    full.decided_at = Some(at("2025-03-09T09:00:01.234Z"));
    full.attempts = 3;
    full.lease_owner = Some("worker-1".into());
    full.lease_until = Some(at("2025-03-09T09:05:00Z"));
    full.last_error = Some("timeout".into());
    full.rendered = Some(json!({"subject": "Rappel", "text": "Bonjour"}));
    full.provider_id = Some("msg-42".into());
    let bare = notification(
        "a",
        "p1/confirmation/sms/patient:p1",
        "2025-03-01T09:00:00Z",
    );

    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&full).await.unwrap();
    tx.insert_notification(&bare).await.unwrap();
    assert_eq!(
        tx.notification("a", &full.key).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        tx.notification("a", &bare.key).await.unwrap(),
        Some(bare.clone())
    );
    assert_eq!(tx.notification("a", "nope").await.unwrap(), None);
    tx.commit().await.unwrap();

    // A duplicate key is an error (the caller decides between insert and update).
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_notification(&bare).await.is_err());
    drop(tx);

    let mut updated = bare.clone();
    updated.status = Status::Sent;
    updated.attempts = 1;
    updated.provider_id = Some("msg-43".into());
    updated.rendered = Some(json!({"text": "Rappel : RDV demain"}));
    updated.due_at = at("2025-03-01T10:00:00Z");
    updated.updated_at = at("2025-03-01T10:00:02Z");
    updated.created_at = at("2030-01-01T00:00:00Z"); // never written by an update
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&updated).await.unwrap();
    let read = tx.notification("a", &bare.key).await.unwrap().unwrap();
    assert_eq!(
        read,
        NotificationRow {
            created_at: bare.created_at,
            ..updated
        }
    );

    let mut cleared = full.clone();
    cleared.reason = None;
    cleared.rendered = None;
    cleared.window_end = None;
    cleared.lease_owner = None;
    tx.update_notification(&cleared).await.unwrap();
    assert_eq!(
        tx.notification("a", &full.key).await.unwrap(),
        Some(cleared.clone())
    );

    let scope = tx.patient_notifications("a", "p1").await.unwrap();
    assert_eq!(
        keys(&scope),
        [bare.key.as_str(), full.key.as_str()],
        "by key"
    );
    assert!(
        tx.patient_notifications("a", "p2")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

pub(super) async fn a_notification_is_found_by_its_provider_id_in_any_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut in_a = notification("a", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    in_a.status = Status::Sent;
    in_a.provider_id = Some("SM-a".into());
    let mut in_b = notification("b", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    in_b.status = Status::Sent;
    in_b.provider_id = Some("SM-b".into());
    let never_sent = notification(
        "b",
        "p1/confirmation/sms/patient:p1",
        "2025-03-01T09:00:00Z",
    );
    insert_notifications(&store, &[in_a.clone(), in_b.clone(), never_sent]).await;

    let mut tx = store.begin().await.unwrap();
    // A delivery report names no practice: the provider id alone finds the row.
    assert_eq!(
        tx.notification_by_provider_id("SM-a").await.unwrap(),
        Some(in_a.clone())
    );
    assert_eq!(
        tx.notification_by_provider_id("SM-b").await.unwrap(),
        Some(in_b)
    );
    assert_eq!(tx.notification_by_provider_id("SM-c").await.unwrap(), None);
    // Exact match only: no prefix, no case folding.
    assert_eq!(tx.notification_by_provider_id("SM-").await.unwrap(), None);
    assert_eq!(tx.notification_by_provider_id("sm-a").await.unwrap(), None);

    // A new attempt's id replaces the old one.
    let mut retried = in_a;
    retried.provider_id = Some("SM-a2".into());
    tx.update_notification(&retried).await.unwrap();
    assert_eq!(tx.notification_by_provider_id("SM-a").await.unwrap(), None);
    assert_eq!(
        tx.notification_by_provider_id("SM-a2").await.unwrap(),
        Some(retried)
    );
    tx.commit().await.unwrap();
}

pub(super) async fn notification_list_filters_and_pages_by_due_time_then_key(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut rows = Vec::new();
    for (key, due, status, channel, kind) in [
        (
            "k5",
            "2025-03-03T09:00:00Z",
            Status::Sent,
            Channel::Sms,
            Kind::Reminder,
        ),
        (
            "k1",
            "2025-03-01T09:00:00Z",
            Status::Pending,
            Channel::Sms,
            Kind::Reminder,
        ),
        (
            "k3",
            "2025-03-02T09:00:00Z",
            Status::Sent,
            Channel::Email,
            Kind::Confirmation,
        ),
        (
            "k2",
            "2025-03-02T09:00:00Z",
            Status::Sent,
            Channel::Sms,
            Kind::Confirmation,
        ),
        (
            "k4",
            "2025-03-02T09:00:00Z",
            Status::Failed,
            Channel::Sms,
            Kind::Reminder,
        ),
    ] {
        let mut n = notification("a", key, due);
        n.status = status;
        n.channel = channel;
        n.kind = kind;
        rows.push(n);
    }
    insert_notifications(&store, &rows).await;

    let mut tx = store.begin().await.unwrap();
    let all = NotificationFilter {
        limit: 100,
        ..NotificationFilter::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &all).await.unwrap()),
        ["k1", "k2", "k3", "k4", "k5"]
    );

    let sent = NotificationFilter {
        status: Some(Status::Sent),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &sent).await.unwrap()),
        ["k2", "k3", "k5"]
    );
    let sms_sent = NotificationFilter {
        channel: Some(Channel::Sms),
        ..sent.clone()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &sms_sent).await.unwrap()),
        ["k2", "k5"]
    );
    let reminders = NotificationFilter {
        kind: Some(Kind::Reminder),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &reminders).await.unwrap()),
        ["k1", "k4", "k5"]
    );
    let since = NotificationFilter {
        since: Some(at("2025-03-02T09:00:00Z")),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &since).await.unwrap()),
        ["k2", "k3", "k4", "k5"]
    );

    // Pages of two, each starting after the previous page's last (due_at, key); the newest
    // first pages backwards the same way.
    assert_eq!(
        pages_of_two(&mut tx, false).await,
        [vec!["k1", "k2"], vec!["k3", "k4"], vec!["k5"]]
    );
    assert_eq!(
        pages_of_two(&mut tx, true).await,
        [vec!["k5", "k4"], vec!["k3", "k2"], vec!["k1"]]
    );
    let zero = NotificationFilter {
        limit: 0,
        ..Default::default()
    };
    assert!(tx.list_notifications("a", &zero).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

/// Keys page in the order of their bytes on every store, whatever the database's collation:
/// capitals before small letters, an accented letter after both (migration 0021 of PostgreSQL;
/// a database in French sorted them as a dictionary does, and a cursor then named a place in
/// another order than SQLite's).
pub(super) async fn keys_page_in_the_order_of_their_bytes(store: Store) {
    with_practices(&store, &["a"]).await;
    let rows: Vec<NotificationRow> = ["é", "b", "B", "a", "Z"]
        .iter()
        .map(|key| notification("a", key, "2025-03-01T09:00:00Z"))
        .collect();
    insert_notifications(&store, &rows).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        pages_of_two(&mut tx, false).await,
        [vec!["B", "Z"], vec!["a", "b"], vec!["é"]]
    );
    assert_eq!(
        pages_of_two(&mut tx, true).await,
        [vec!["é", "b"], vec!["a", "Z"], vec!["B"]]
    );
    tx.commit().await.unwrap();
}

pub(super) async fn appointment_and_document_notifications_match_exact_ids(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut grouped = notification("a", "n-grouped", "2025-03-02T09:00:00Z");
    grouped.appointments = vec!["a1".into(), "a10".into()];
    let mut prefix = notification("a", "n-prefix", "2025-03-01T09:00:00Z");
    prefix.appointments = vec!["a10".into()];
    let mut single = notification("a", "n-single", "2025-03-01T08:00:00Z");
    single.appointments = vec!["a1".into()];
    let mut wild = notification("a", "n-wild", "2025-03-01T08:00:00Z");
    wild.appointments = vec!["a_1%\"x".into()];
    let mut letter = notification("a", "n-doc", "2025-03-01T08:00:00Z");
    letter.appointments = Vec::new();
    letter.kind = Kind::Document;
    letter.document = Some("d1".into());
    let mut other_letter = letter.clone();
    other_letter.key = "n-doc-10".into();
    other_letter.document = Some("d10".into());
    // The rows about an appointment are looked for among its patient's only.
    let mut other_patient = notification("a", "n-other-patient", "2025-03-01T07:00:00Z");
    other_patient.patient_id = "p2".into();
    insert_notifications(
        &store,
        &[
            grouped,
            prefix,
            single,
            wild,
            letter,
            other_letter,
            other_patient,
        ],
    )
    .await;

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        keys(&tx.appointment_notifications("a", "p1", "a1").await.unwrap()),
        ["n-single", "n-grouped"]
    );
    assert_eq!(
        keys(
            &tx.appointment_notifications("a", "p1", "a10")
                .await
                .unwrap()
        ),
        ["n-prefix", "n-grouped"]
    );
    assert_eq!(
        keys(
            &tx.appointment_notifications("a", "p1", "a_1%\"x")
                .await
                .unwrap()
        ),
        ["n-wild"]
    );
    assert_eq!(
        keys(&tx.appointment_notifications("a", "p2", "a1").await.unwrap()),
        ["n-other-patient"]
    );
    assert!(
        tx.appointment_notifications("a", "p1", "a")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.appointment_notifications("a", "p1", "a_1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys(&tx.document_notifications("a", "d1").await.unwrap()),
        ["n-doc"]
    );
    assert!(
        tx.document_notifications("a", "d2")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

pub(super) async fn notification_counts_group_by_status_and_channel(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut rows = Vec::new();
    for (practice, key, status, channel) in [
        ("a", "1", Status::Pending, Channel::Sms),
        ("a", "2", Status::Pending, Channel::Sms),
        ("a", "3", Status::Sent, Channel::Email),
        ("b", "1", Status::Pending, Channel::Sms),
        ("b", "2", Status::Suppressed, Channel::Push),
    ] {
        let mut n = notification(practice, key, "2025-03-01T09:00:00Z");
        n.status = status;
        n.channel = channel;
        rows.push(n);
    }
    insert_notifications(&store, &rows).await;
    let mut tx = store.begin().await.unwrap();
    let row = |s: &str, c: &str, n: i64| (s.to_string(), c.to_string(), n);
    assert_eq!(
        tx.notification_counts(Some("a")).await.unwrap(),
        [row("pending", "sms", 2), row("sent", "email", 1)]
    );
    assert_eq!(
        tx.notification_counts(None).await.unwrap(),
        [
            row("pending", "sms", 3),
            row("sent", "email", 1),
            row("suppressed", "push", 1)
        ]
    );
    assert!(
        tx.notification_counts(Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}
/// Ingestion and dispatch read and write whole batches; each batch function must answer exactly
/// what a loop over its single-row counterpart answers, across chunk boundaries and practices.
pub(super) async fn batch_reads_and_writes_answer_as_their_single_row_counterparts(store: Store) {
    with_practices(&store, &["a", "b", "c"]).await;
    let now = at("2025-02-01T00:00:00Z");
    let since = at("2025-03-01T00:00:00Z");
    let mut tx = store.begin().await.unwrap();
    for (id, first) in [("p1", "Jean"), ("p2", "Marie"), ("p3", "Paul")] {
        tx.upsert_patient("a", &patient(id, first, "Dupont"), now)
            .await
            .unwrap();
    }
    tx.upsert_patient("b", &patient("p9", "Autre", "Cabinet"), now)
        .await
        .unwrap();
    tx.erase_patient("a", "p3", now).await.unwrap();
    let dr = Practitioner {
        id: "dr-martin".into(),
        name: "Dr Martin".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &dr).await.unwrap();
    let consultation = Motive {
        id: "consultation".into(),
        name: "Consultation".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &consultation).await.unwrap();
    // Ids the practice software chose, with what PostgreSQL's array literal (the lookups' one
    // parameter) gives a meaning to: each is found as itself, and `NULL` is not a null.
    let odd = [
        "NULL",
        "q\"uote",
        "back\\slash",
        "com,ma",
        "{brace}",
        " space ",
        "é-ü",
        "",
    ];
    for id in odd {
        tx.upsert_patient("c", &patient(id, "Odd", "Id"), now)
            .await
            .unwrap();
    }
    let odd_ids: Vec<String> = odd.iter().map(|id| id.to_string()).collect();
    let mut found: Vec<String> = tx
        .patients_by_id("c", &odd_ids)
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.id)
        .collect();
    found.sort();
    let mut expected = odd_ids.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert!(
        tx.patients_by_id("c", &["null".into(), "quote".into(), "com".into()])
            .await
            .unwrap()
            .is_empty()
    );

    // Patients: 1,200 ids (three chunks), three that exist, one of them erased.
    let mut asked: Vec<String> = (0..1200).map(|i| format!("x{i}")).collect();
    asked.extend(["p1", "p3", "p9", "p1"].map(String::from));
    let mut found = tx.patients_by_id("a", &asked).await.unwrap();
    found.sort_by(|x, y| x.0.id.cmp(&y.0.id));
    assert_eq!(
        found,
        [
            (tx.patient("a", "p1").await.unwrap().unwrap(), false),
            (
                Patient {
                    id: "p3".into(),
                    ..Patient::default()
                },
                true
            ),
        ]
    );
    assert_eq!(
        tx.practitioners_by_id("a", &["dr-martin".into(), "nobody".into()])
            .await
            .unwrap(),
        [dr]
    );
    assert!(
        tx.practitioners_by_id("b", &["dr-martin".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tx.motives_by_id("a", &["consultation".into()])
            .await
            .unwrap(),
        [consultation]
    );
    assert!(tx.motives_by_id("a", &[]).await.unwrap().is_empty());

    // Appointments written together read back as written one by one; an upsert replaces.
    let mut a1 = appointment("a1", "p1", "2025-03-10T09:00:00Z");
    let a2 = appointment("a2", "p1", "2025-03-05T09:00:00Z");
    let a3 = appointment("a3", "p2", "2025-03-07T09:00:00Z");
    // Before `since`, but cancelled after it: still part of the patient's open work.
    let mut old = appointment("a4", "p2", "2025-02-20T09:00:00Z");
    old.status = AppointmentStatus::Cancelled {
        at: at("2025-03-02T00:00:00Z"),
        by: CancelledBy::Patient,
        excused: false,
    };
    let gone = appointment("a5", "p2", "2025-02-10T09:00:00Z");
    tx.upsert_appointment("a", &a1, now).await.unwrap();
    a1.start = at("2025-03-11T09:00:00Z");
    tx.upsert_appointments(
        "a",
        &[
            a1.clone(),
            a2.clone(),
            a3.clone(),
            old.clone(),
            gone.clone(),
        ],
        now,
    )
    .await
    .unwrap();
    tx.upsert_appointment("b", &appointment("a9", "p9", "2025-03-10T09:00:00Z"), now)
        .await
        .unwrap();
    for a in [&a1, &a2, &a3, &old, &gone] {
        assert_eq!(tx.appointment("a", &a.id).await.unwrap().as_ref(), Some(a));
    }
    let mut by_id = tx
        .appointments_by_id("a", &["a1".into(), "a3".into(), "a9".into()])
        .await
        .unwrap();
    by_id.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(by_id, [a1.clone(), a3.clone()]);
    let patients: Vec<String> = ["p1", "p2", "p9"].map(String::from).to_vec();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_appointments("a", p, since).await.unwrap());
    }
    assert_eq!(
        tx.appointments_of_patients("a", &patients, since)
            .await
            .unwrap(),
        one_by_one
    );
    assert_eq!(ids(&one_by_one, |a| &a.id), ["a2", "a1", "a4", "a3"]);

    // Documents.
    tx.upsert_document("a", &document("d2", "p2", "2025-02-03T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d0", "p1", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_documents("a", p).await.unwrap());
    }
    assert_eq!(
        tx.documents_of_patients("a", &patients).await.unwrap(),
        one_by_one
    );
    assert_eq!(ids(&one_by_one, |d| &d.id), ["d0", "d1", "d2"]);

    // Events: numbers continue those handed out one by one.
    let body = json!({"n": 1});
    assert_eq!(tx.insert_event("a", now, now, "x", &body).await.unwrap(), 1);
    let later = at("2025-02-01T00:00:05Z");
    let new = NewEvent {
        at: now,
        received_at: later,
        event_type: "y",
        body: &body,
    };
    let many: Vec<NewEvent<'_>> = (0..450).map(|_| new.clone()).collect();
    let seqs = tx.insert_events("a", &many).await.unwrap();
    assert_eq!(seqs, (2..=451).collect::<Vec<i64>>());
    assert!(tx.insert_events("a", &[]).await.unwrap().is_empty());
    assert_eq!(
        tx.insert_event("a", now, now, "x", &body).await.unwrap(),
        452
    );
    let events = tx.events("a", 450, 1).await.unwrap();
    assert_eq!(events[0].seq, 451);
    assert_eq!(events[0].event_type, "y");
    assert_eq!(events[0].received_at, later);
    assert_eq!(events[0].body, body);
    assert_eq!(tx.insert_events("b", &many[..2]).await.unwrap(), [1, 2]);

    // Notifications: 450 rows (two statements), every column, both patients.
    let rows: Vec<NotificationRow> = (0..450)
        .map(|i| {
            let mut n = notification("a", &format!("k{i:03}"), "2025-03-09T09:00:00Z");
            if i % 2 == 1 {
                n.patient_id = "p2".into();
                n.window_end = Some(at("2025-03-10T09:00:00Z"));
                n.document = Some("d2".into());
                n.rendered = Some(json!({"text": format!("n°{i}")}));
                n.attempts = i;
                n.reason = Some(Reason::QuotaExhausted);
                n.status = Status::Suppressed;
            }
            n
        })
        .collect();
    tx.insert_notifications(&rows).await.unwrap();
    tx.insert_notification(&notification("b", "k001", "2025-03-09T09:00:00Z"))
        .await
        .unwrap();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_notifications("a", p).await.unwrap());
    }
    assert_eq!(one_by_one.len(), 450);
    assert_eq!(
        tx.notifications_of_patients("a", &patients).await.unwrap(),
        one_by_one
    );
    for n in [&rows[0], &rows[1], &rows[449]] {
        assert_eq!(
            tx.notification("a", &n.key).await.unwrap().as_ref(),
            Some(n)
        );
    }
    tx.commit().await.unwrap();

    // A duplicate key is an error, as for one row (and spoils the transaction on PostgreSQL).
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_notifications(&rows[..1]).await.is_err());
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let mut updated: Vec<NotificationRow> = rows
        .iter()
        .map(|n| {
            let mut u = n.clone();
            u.status = Status::Sent;
            u.reason = None;
            u.window_end = None;
            u.document = None;
            u.rendered = Some(json!({"text": "envoyé"}));
            u.provider_id = Some(format!("prov-{}", n.key));
            u.lease_owner = Some("w1".into());
            u.lease_until = Some(at("2025-03-09T09:01:00Z"));
            u.decided_at = Some(at("2025-03-09T09:00:00.5Z"));
            u.attempts = n.attempts + 1;
            u.updated_at = at("2025-03-09T09:00:01Z");
            u.created_at = at("2030-01-01T00:00:00Z"); // never written by an update
            u
        })
        .collect();
    // A row that does not exist is left alone, as `update_notification` leaves it.
    updated.push(notification("a", "nowhere", "2025-03-09T09:00:00Z"));
    tx.update_notifications(&updated).await.unwrap();
    tx.update_notifications(&[]).await.unwrap();
    assert_eq!(tx.notification("a", "nowhere").await.unwrap(), None);
    for (n, u) in rows.iter().zip(&updated) {
        assert_eq!(
            tx.notification("a", &n.key).await.unwrap().unwrap(),
            NotificationRow {
                created_at: n.created_at,
                ..u.clone()
            }
        );
    }
    assert_eq!(
        tx.notification("b", "k001").await.unwrap().unwrap().status,
        Status::Pending,
        "the other practice's row with the same key is untouched"
    );

    // A dispatch outcome writes its own columns only; the planner's stay as stored.
    let stored = tx.notification("a", "k001").await.unwrap().unwrap();
    let mut outcome = stored.clone();
    outcome.status = Status::Failed;
    outcome.reason = Some(Reason::WindowPassed);
    outcome.decided_at = None;
    outcome.attempts = 9;
    outcome.lease_owner = None;
    outcome.lease_until = None;
    outcome.last_error = Some("refusé".into());
    outcome.rendered = None;
    outcome.provider_id = None;
    outcome.updated_at = at("2025-03-09T10:00:00Z");
    let mut planner = outcome.clone();
    planner.patient_id = "p9".into();
    planner.rule = "other".into();
    planner.recipient = Recipient::Patient("p9".into());
    planner.appointments = vec!["a9".into()];
    planner.document = Some("d9".into());
    planner.due_at = at("2030-01-01T00:00:00Z");
    planner.window_end = Some(at("2030-01-02T00:00:00Z"));
    planner.created_at = at("2030-01-01T00:00:00Z");
    tx.update_notification_outcomes(&[planner]).await.unwrap();
    assert_eq!(
        tx.notification("a", "k001").await.unwrap().unwrap(),
        outcome
    );
    tx.commit().await.unwrap();
}
