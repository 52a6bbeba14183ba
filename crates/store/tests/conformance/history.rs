//! Delivery reports, retention and appointment links.

use super::*;

/// Practice a's notifications in pages of two, each page starting after the previous page's
/// last (due_at, key), in either order.
pub(super) async fn pages_of_two(
    tx: &mut rappel_store::Tx,
    newest_first: bool,
) -> Vec<Vec<String>> {
    let mut filter = NotificationFilter {
        limit: 2,
        newest_first,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = tx.list_notifications("a", &filter).await.unwrap();
        let Some(last) = page.last() else {
            return pages;
        };
        filter.cursor = Some((last.due_at, last.key.clone()));
        pages.push(page.iter().map(|r| r.key.clone()).collect());
    }
}

pub(super) async fn delivery_reports_are_kept_once_each_oldest_first_and_erased_with_the_patient(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let report = |practice: &str, at_text: &str, outcome: &str, detail: &str| {
        rappel_store::DeliveryReportRow {
            practice_id: practice.into(),
            notification_key: "k1".into(),
            patient_id: "p1".into(),
            at: at(at_text),
            source: "dsn".into(),
            outcome: outcome.into(),
            detail: Some(detail.into()),
        }
    };
    let mut tx = store.begin().await.unwrap();
    let later = report("a", "2025-03-10T09:30:00Z", "failed", "5.1.1 user unknown");
    let earlier = report("a", "2025-03-10T09:10:00Z", "delayed", "4.4.1 try again");
    assert!(tx.insert_delivery_report(&later).await.unwrap());
    assert!(tx.insert_delivery_report(&earlier).await.unwrap());
    // The same report received again is stored once, whenever it comes.
    let mut again = later.clone();
    again.at = at("2025-03-10T10:00:00Z");
    assert!(!tx.insert_delivery_report(&again).await.unwrap());
    assert!(
        tx.insert_delivery_report(&report("b", "2025-03-10T09:00:00Z", "failed", "x"))
            .await
            .unwrap()
    );
    let listed = tx.delivery_reports("a", "k1").await.unwrap();
    assert_eq!(listed, vec![earlier, later]);
    assert_eq!(tx.delivery_reports("b", "k1").await.unwrap().len(), 1);
    assert!(tx.delivery_reports("a", "k2").await.unwrap().is_empty());
    // A provider's words may quote the patient's address: erasure forgets them, in that
    // practice only.
    tx.upsert_patient(
        "a",
        &patient("p1", "Jeanne", "Dupont"),
        at("2025-03-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(
        tx.erase_patient("a", "p1", at("2025-03-11T00:00:00Z"))
            .await
            .unwrap()
    );
    assert!(tx.delivery_reports("a", "k1").await.unwrap().is_empty());
    assert_eq!(tx.delivery_reports("b", "k1").await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

pub(super) async fn history_older_than_the_horizon_goes_in_batches_and_open_work_stays(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let horizon = at("2025-01-01T00:00:00Z");
    let finished = |practice: &str, key: &str, due: &str, status: Status| {
        let mut row = notification(practice, key, due);
        row.status = status;
        row.decided_at = Some(at(due) + SignedDuration::from_mins(5));
        row.rendered = Some("Bonjour Jeanne, rappel de votre rendez-vous".into());
        row
    };
    let mut rows = vec![
        finished("a", "old-sent", "2024-06-01T08:00:00Z", Status::Sent),
        finished(
            "a",
            "old-delivered",
            "2024-06-02T08:00:00Z",
            Status::Delivered,
        ),
        finished("a", "old-failed", "2024-06-03T08:00:00Z", Status::Failed),
        finished(
            "a",
            "old-suppressed",
            "2024-06-04T08:00:00Z",
            Status::Suppressed,
        ),
        // Decided after the horizon although due before it: kept.
        {
            let mut row = finished("a", "decided-late", "2024-12-31T23:00:00Z", Status::Sent);
            row.decided_at = Some(at("2025-01-01T00:30:00Z"));
            row
        },
        finished("a", "recent", "2025-02-01T08:00:00Z", Status::Sent),
        // Another practice's old rows: not this call's.
        finished("b", "old-sent", "2024-06-01T08:00:00Z", Status::Sent),
    ];
    // Open work whatever its age stays: a planned and a claimed message.
    rows.push(notification("a", "old-pending", "2024-05-01T08:00:00Z"));
    let mut sending = notification("a", "old-sending", "2024-05-02T08:00:00Z");
    sending.status = Status::Sending;
    rows.push(sending);
    insert_notifications(&store, &rows).await;

    let mut tx = store.begin().await.unwrap();
    for (practice, key) in [("a", "old-sent"), ("a", "recent"), ("b", "old-sent")] {
        let report = rappel_store::DeliveryReportRow {
            practice_id: practice.into(),
            notification_key: key.into(),
            patient_id: "p1".into(),
            at: at("2024-06-01T09:00:00Z"),
            source: "twilio".into(),
            outcome: "delivered".into(),
            detail: None,
        };
        assert!(tx.insert_delivery_report(&report).await.unwrap());
    }
    for (id, resolved) in [
        ("handled-old", Some("2024-04-01T09:00:00Z")),
        ("handled-recent", Some("2025-01-15T09:00:00Z")),
        ("open-old", None),
    ] {
        let item = InboxRow {
            practice_id: "a".into(),
            id: id.into(),
            inbox: "to_verify".into(),
            document: None,
            patient_id: Some("p1".into()),
            title: "Email refusé".into(),
            text: "L'adresse n'existe pas.".into(),
            created_at: at("2024-03-01T09:00:00Z"),
            resolved_at: None,
        };
        assert!(tx.insert_inbox(&item).await.unwrap());
        if let Some(when) = resolved {
            assert!(tx.resolve_inbox("a", id, at(when)).await.unwrap());
        }
    }
    let delivery = |id: &str, created: &str, status: rappel_store::DeliveryStatus| {
        rappel_store::WebhookDelivery {
            practice_id: "a".into(),
            id: id.into(),
            event_type: "notification.sent".into(),
            payload: json!({"id": id}),
            attempts: 1,
            next_attempt_at: at(created),
            status,
            last_error: None,
            created_at: at(created),
        }
    };
    use rappel_store::DeliveryStatus::{Delivered, Failed, Pending};
    for d in [
        delivery("w-old-delivered", "2024-06-01T08:00:00Z", Delivered),
        delivery("w-old-failed", "2024-06-01T08:00:00Z", Failed),
        delivery("w-old-pending", "2024-06-01T08:00:00Z", Pending),
        delivery("w-recent", "2025-02-01T08:00:00Z", Delivered),
    ] {
        assert!(tx.insert_webhook_delivery(&d).await.unwrap());
    }
    // Received SMS: handled long ago goes, handled recently and never handled stay.
    for (id, handled) in [
        ("r-handled-old", Some("2024-04-01T09:00:00Z")),
        ("r-handled-recent", Some("2025-01-20T09:00:00Z")),
        ("r-open-old", None),
    ] {
        let message = rappel_store::ReceivedMessageRow {
            practice_id: "a".into(),
            id: id.into(),
            patient_id: "p1".into(),
            appointment_id: None,
            provider: "twilio".into(),
            keyword: None,
            body: "Je serai en retard".into(),
            received_at: at("2024-03-01T09:00:00Z"),
            handled_at: handled.map(at),
        };
        assert!(tx.insert_received_message(&message).await.unwrap());
    }
    // Appointment links: expired before the horizon goes.
    for (hash, expires) in [
        ("h-old", "2024-06-01T08:00:00Z"),
        ("h-recent", "2025-03-01T08:00:00Z"),
    ] {
        tx.insert_appointment_link(&rappel_store::AppointmentLink {
            practice_id: "a".into(),
            token_hash: hash.into(),
            appointment_id: "a1".into(),
            patient_id: "p1".into(),
            start: at(expires),
            expires_at: at(expires),
            created_at: at("2024-05-01T08:00:00Z"),
        })
        .await
        .unwrap();
    }
    // The last SMS to a number: a send before the horizon no longer routes a reply.
    tx.record_sms_sent(
        "+33611111111",
        "a",
        "p1",
        "old-sent",
        at("2024-06-01T08:00:00Z"),
    )
    .await
    .unwrap();
    tx.record_sms_sent(
        "+33622222222",
        "a",
        "p2",
        "recent",
        at("2025-02-01T08:00:00Z"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Batches of two: the four old finished messages take two full batches and an empty one.
    let mut batches = Vec::new();
    loop {
        let mut tx = store.begin().await.unwrap();
        let purged = tx.purge_history("a", horizon, 2).await.unwrap();
        tx.commit().await.unwrap();
        batches.push(purged);
        if !purged.filled(2) {
            break;
        }
    }
    let total = batches
        .iter()
        .fold(rappel_store::Purged::default(), |mut sum, b| {
            sum += *b;
            sum
        });
    assert_eq!(batches.len(), 3, "{batches:?}");
    assert_eq!(
        total,
        rappel_store::Purged {
            notifications: 4,
            delivery_reports: 1,
            inbox_entries: 1,
            webhook_deliveries: 2,
            received_messages: 1,
            appointment_links: 1,
            sms_last_sent: 1,
        }
    );

    let mut tx = store.begin_read().await.unwrap();
    for key in ["old-sent", "old-delivered", "old-failed", "old-suppressed"] {
        assert!(tx.notification("a", key).await.unwrap().is_none(), "{key}");
    }
    for key in ["decided-late", "recent", "old-pending", "old-sending"] {
        assert!(tx.notification("a", key).await.unwrap().is_some(), "{key}");
    }
    assert!(tx.notification("b", "old-sent").await.unwrap().is_some());
    assert!(
        tx.delivery_reports("a", "old-sent")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.delivery_reports("a", "recent").await.unwrap().len(), 1);
    assert_eq!(tx.delivery_reports("b", "old-sent").await.unwrap().len(), 1);
    let mut inbox: Vec<String> = tx
        .inbox("a", None, true)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    inbox.sort();
    assert_eq!(inbox, ["handled-recent", "open-old"]);
    let mut webhooks: Vec<String> = tx
        .webhook_deliveries("a", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    webhooks.sort();
    assert_eq!(webhooks, ["w-old-pending", "w-recent"]);
    let mut received: Vec<String> = tx
        .received_messages("a", true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    received.sort();
    assert_eq!(received, ["r-handled-recent", "r-open-old"]);
    assert!(
        tx.appointment_link_by_hash("h-old")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tx.appointment_link_by_hash("h-recent")
            .await
            .unwrap()
            .is_some()
    );
    assert!(tx.last_sms_to("+33611111111").await.unwrap().is_none());
    assert!(tx.last_sms_to("+33622222222").await.unwrap().is_some());
    tx.commit().await.unwrap();
    // The purged link's route went with it: its hash is free again.
    let mut tx = store.begin().await.unwrap();
    tx.insert_appointment_link(&rappel_store::AppointmentLink {
        practice_id: "b".into(),
        token_hash: "h-old".into(),
        appointment_id: "a9".into(),
        patient_id: "p9".into(),
        start: at("2025-06-01T08:00:00Z"),
        expires_at: at("2025-06-01T08:00:00Z"),
        created_at: at("2025-05-01T08:00:00Z"),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

pub(super) async fn appointment_links_and_answers_round_trip_and_are_erased_with_the_patient(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let link = |practice: &str, hash: &str| rappel_store::AppointmentLink {
        practice_id: practice.into(),
        token_hash: hash.into(),
        appointment_id: "a1".into(),
        patient_id: "p1".into(),
        start: at("2025-03-12T09:00:00Z"),
        expires_at: at("2025-03-12T09:00:00Z"),
        created_at: at("2025-03-10T12:00:00Z"),
    };
    let answer = |practice: &str, answer: &str, at_text: &str| rappel_store::AppointmentAnswerRow {
        practice_id: practice.into(),
        appointment_id: "a1".into(),
        patient_id: "p1".into(),
        answer: answer.into(),
        channel: "link".into(),
        start: at("2025-03-12T09:00:00Z"),
        at: at(at_text),
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_appointment_link(&link("a", "h-a")).await.unwrap();
    tx.insert_appointment_link(&link("b", "h-b")).await.unwrap();
    tx.commit().await.unwrap();
    // A token hash is unique across practices: the link names no practice.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_appointment_link(&link("b", "h-a")).await.is_err());
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.appointment_link_by_hash("h-a").await.unwrap(),
        Some(link("a", "h-a"))
    );
    assert_eq!(tx.appointment_link_by_hash("h-x").await.unwrap(), None);
    // The latest answer replaces the one before.
    tx.put_appointment_answer(&answer("a", "confirmed", "2025-03-10T13:00:00Z"))
        .await
        .unwrap();
    tx.put_appointment_answer(&answer("a", "cancelled", "2025-03-10T14:00:00Z"))
        .await
        .unwrap();
    tx.put_appointment_answer(&answer("b", "confirmed", "2025-03-10T13:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.appointment_answer("a", "a1").await.unwrap(),
        Some(answer("a", "cancelled", "2025-03-10T14:00:00Z"))
    );
    assert_eq!(
        tx.appointment_answers_between("a", at("2025-03-12T00:00:00Z"), at("2025-03-13T00:00:00Z"))
            .await
            .unwrap(),
        vec![answer("a", "cancelled", "2025-03-10T14:00:00Z")]
    );
    assert!(
        tx.appointment_answers_between("a", at("2025-03-13T00:00:00Z"), at("2025-03-14T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    // Erasure forgets the patient's links and answers, in that practice only.
    tx.upsert_patient(
        "a",
        &patient("p1", "Jeanne", "Dupont"),
        at("2025-03-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(
        tx.erase_patient("a", "p1", at("2025-03-11T00:00:00Z"))
            .await
            .unwrap()
    );
    assert_eq!(tx.appointment_link_by_hash("h-a").await.unwrap(), None);
    assert_eq!(tx.appointment_answer("a", "a1").await.unwrap(), None);
    assert!(tx.appointment_link_by_hash("h-b").await.unwrap().is_some());
    assert!(tx.appointment_answer("b", "a1").await.unwrap().is_some());
    tx.commit().await.unwrap();
}
