//! The to-verify inbox, scheduled tasks and their runs.

use super::*;

pub(super) async fn inbox_insert_deduplicates_and_resolve_happens_once(store: Store) {
    with_practices(&store, &["a"]).await;
    let entry = |id: &str, inbox: &str, created: &str| InboxRow {
        practice_id: "a".into(),
        id: id.to_string(),
        inbox: inbox.to_string(),
        document: Some("d1".into()),
        patient_id: Some("p1".into()),
        title: "Document non consulté".into(),
        text: "Le patient n'a pas ouvert le document.".into(),
        created_at: at(created),
        resolved_at: None,
    };
    let first = entry("i1", "to_verify", "2025-03-01T09:00:00Z");
    let second = entry("i2", "to_verify", "2025-03-02T09:00:00Z");
    let mut centre = entry("i3", "centre", "2025-03-03T09:00:00Z");
    centre.document = None;
    centre.patient_id = None;

    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_inbox(&first).await.unwrap());
    assert!(
        !tx.insert_inbox(&InboxRow {
            title: "autre".into(),
            ..first.clone()
        })
        .await
        .unwrap()
    );
    assert!(tx.insert_inbox(&second).await.unwrap());
    assert!(tx.insert_inbox(&centre).await.unwrap());

    let ids_of = |rows: Vec<InboxRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(tx.inbox("a", None, false).await.unwrap()),
        ["i3", "i2", "i1"],
        "newest first"
    );
    assert_eq!(
        tx.inbox("a", Some("to_verify"), false).await.unwrap(),
        vec![second.clone(), first.clone()]
    );

    let resolved_at = at("2025-03-04T09:00:00Z");
    assert!(tx.resolve_inbox("a", "i1", resolved_at).await.unwrap());
    assert!(
        !tx.resolve_inbox("a", "i1", at("2025-03-05T09:00:00Z"))
            .await
            .unwrap()
    );
    assert!(!tx.resolve_inbox("a", "nope", resolved_at).await.unwrap());
    assert_eq!(
        ids_of(tx.inbox("a", Some("to_verify"), false).await.unwrap()),
        ["i2"]
    );
    let with_resolved = tx.inbox("a", Some("to_verify"), true).await.unwrap();
    assert_eq!(
        with_resolved[1],
        InboxRow {
            resolved_at: Some(resolved_at),
            ..first
        }
    );
    assert_eq!(
        ids_of(tx.inbox("a", Some("centre"), true).await.unwrap()),
        ["i3"]
    );
    tx.commit().await.unwrap();
}

pub(super) async fn task_definitions_and_runs_round_trip(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut task = TaskRow {
        practice_id: "a".into(),
        id: "birthday".into(),
        definition: json!({"id": "birthday", "every": "day", "at": "09:00"}),
        active: true,
        created_at: at("2025-01-01T00:00:00Z"),
    };
    let other = TaskRow {
        id: "recall".into(),
        active: false,
        ..task.clone()
    };
    let mut tx = store.begin().await.unwrap();
    tx.upsert_task(&task).await.unwrap();
    tx.upsert_task(&other).await.unwrap();
    task.active = false;
    task.definition = json!({"id": "birthday", "every": "day", "at": "10:00"});
    tx.upsert_task(&task).await.unwrap();
    assert_eq!(tx.task("a", "birthday").await.unwrap(), Some(task.clone()));
    assert_eq!(
        tx.tasks("a").await.unwrap(),
        vec![task.clone(), other.clone()]
    );

    assert_eq!(tx.last_task_run("a", "birthday").await.unwrap(), None);
    let run = |occurrence: &str, scheduled: &str| TaskRunRow {
        practice_id: "a".into(),
        task_id: "birthday".into(),
        occurrence: occurrence.to_string(),
        scheduled_for: at(scheduled),
        started_at: at(scheduled) + SignedDuration::from_secs(2),
        summary: json!({}),
    };
    assert!(
        tx.claim_task_run(&run("2025-03-01", "2025-03-01T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        tx.claim_task_run(&run("2025-03-03", "2025-03-03T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        tx.claim_task_run(&run("2025-03-02", "2025-03-02T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !tx.claim_task_run(&run("2025-03-02", "2025-03-02T08:00:00Z"))
            .await
            .unwrap()
    );
    let summary = json!({"planned": 3, "patients": ["p1", "p2"]});
    tx.finish_task_run("a", "birthday", "2025-03-03", &summary)
        .await
        .unwrap();

    let last = tx.last_task_run("a", "birthday").await.unwrap().unwrap();
    assert_eq!(
        last,
        TaskRunRow {
            summary,
            ..run("2025-03-03", "2025-03-03T08:00:00Z")
        }
    );
    let runs = tx.task_runs("a", "birthday", 2).await.unwrap();
    assert_eq!(
        ids(&runs, |r| &r.occurrence),
        ["2025-03-03", "2025-03-02"],
        "latest first"
    );
    assert!(tx.task_runs("a", "recall", 10).await.unwrap().is_empty());

    assert!(tx.delete_task("a", "birthday").await.unwrap());
    assert!(!tx.delete_task("a", "birthday").await.unwrap());
    assert_eq!(tx.task("a", "birthday").await.unwrap(), None);
    assert_eq!(tx.tasks("a").await.unwrap(), vec![other]);
    tx.commit().await.unwrap();
}

pub(super) async fn a_task_occurrence_is_claimed_once_even_concurrently(store: Store) {
    with_practices(&store, &["a"]).await;
    let run = TaskRunRow {
        practice_id: "a".into(),
        task_id: "birthday".into(),
        occurrence: "2025-03-01".into(),
        scheduled_for: at("2025-03-01T08:00:00Z"),
        started_at: at("2025-03-01T08:00:01Z"),
        summary: json!(null),
    };
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        let run = run.clone();
        nodes.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let won = tx.claim_task_run(&run).await.unwrap();
            tx.commit().await.unwrap();
            won
        }));
    }
    let mut winners = 0;
    for node in nodes {
        winners += usize::from(node.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub(super) async fn task_notification_counts_cover_one_run_by_status_and_reason(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let row = |practice: &str, task: &str, key: &str, status: Status, reason: Option<Reason>| {
        let mut n = notification(practice, key, "2025-03-01T08:00:00Z");
        n.kind = Kind::Task;
        n.task = Some(task.to_string());
        n.status = status;
        n.reason = reason;
        n
    };
    insert_notifications(
        &store,
        &[
            row("a", "t1", "t:t1/2025-03-01/p1/email", Status::Sent, None),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p2/email",
                Status::Suppressed,
                Some(Reason::NoEmail),
            ),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p3/email",
                Status::Suppressed,
                Some(Reason::NoEmail),
            ),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p4/email",
                Status::Suppressed,
                Some(Reason::PatientEmailDisabled),
            ),
            row("a", "t1", "t:t1/2025-03-01/p5/email", Status::Pending, None),
            // Another occurrence of the same task, one that only shares a prefix, another
            // task whose id differs only in case, and another practice: none of them counts.
            row("a", "t1", "t:t1/2025-03-02/p1/email", Status::Sent, None),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01T08:00/p1/email",
                Status::Sent,
                None,
            ),
            row("a", "T1", "t:T1/2025-03-01/p9/email", Status::Sent, None),
            row("b", "t1", "t:t1/2025-03-01/p1/email", Status::Sent, None),
            // Wildcards in the prefix are literal.
            row(
                "a",
                "t_%",
                "t:t_%/2025-03-01/p1/email",
                Status::Failed,
                None,
            ),
            row(
                "a",
                "t_%",
                "t:tx%/2025-03-01/p2/email",
                Status::Failed,
                None,
            ),
        ],
    )
    .await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.task_notification_counts("a", "t1", "t:t1/2025-03-01/")
            .await
            .unwrap(),
        vec![
            (Status::Pending, None, 1),
            (Status::Sent, None, 1),
            (Status::Suppressed, Some(Reason::NoEmail), 2),
            (Status::Suppressed, Some(Reason::PatientEmailDisabled), 1),
        ]
    );
    assert_eq!(
        tx.task_notification_counts("a", "t_%", "t:t_%/2025-03-01/")
            .await
            .unwrap(),
        vec![(Status::Failed, None, 1)]
    );
    assert!(
        tx.task_notification_counts("a", "t1", "t:t1/2025-03-05/")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}
