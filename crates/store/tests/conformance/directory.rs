//! Practices, API keys, patients, appointments and documents.

use super::*;

// Tests
// ---------------------------------------------------------------------------------------------

pub(super) async fn migrating_twice_is_a_no_op_and_keeps_the_data(store: Store) {
    with_practices(&store, &["a"]).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    tx.commit().await.unwrap();
}

pub(super) async fn practices_and_api_keys_round_trip(store: Store) {
    let mut custom = practice("b");
    custom.preset = "custom".into();
    custom.policy = Some("[[rules]]\nid = \"x\"\n".into());
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), None);
    tx.insert_practice(&practice("a")).await.unwrap();
    tx.insert_practice(&custom).await.unwrap();
    tx.commit().await.unwrap();

    // A failed statement aborts the whole transaction on PostgreSQL: try it in one of its own.
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.insert_practice(&practice("a")).await.is_err(),
        "a practice id is unique"
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("b").await.unwrap(), Some(custom.clone()));
    assert_eq!(tx.practices().await.unwrap(), vec![practice("a"), custom]);

    let mut settings = Map::new();
    settings.insert("reminder_sms".into(), json!(true));
    settings.insert(
        "quiet_hours".into(),
        json!({"from": "20:00", "to": "08:00"}),
    );
    tx.update_practice_settings("a", &settings).await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap().unwrap().settings, settings);

    tx.insert_api_key("a", "k1", "hash-of-secret", at("2025-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert!(
        tx.api_key_matches("a", "k1", "hash-of-secret")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("a", "k1", "hash-of-other")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("a", "k2", "hash-of-secret")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("b", "k1", "hash-of-secret")
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
}

pub(super) async fn upserting_twice_keeps_one_row_with_the_latest_data(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let mut doctor = Practitioner {
        id: "dr-martin".into(),
        name: "Dr Martin".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    doctor.email = Contact::from_input("martin@example.org");
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    assert_eq!(tx.practitioners("a").await.unwrap(), vec![doctor.clone()]);
    assert_eq!(
        tx.practitioner("a", "dr-martin").await.unwrap(),
        Some(doctor)
    );
    assert_eq!(tx.practitioner("a", "dr-nobody").await.unwrap(), None);

    let mut motive = Motive {
        id: "consultation".into(),
        name: "Consultation".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &motive).await.unwrap();
    motive.notifications = false;
    motive.instructions = Some("Venir à jeun".into());
    tx.upsert_motive("a", &motive).await.unwrap();
    assert_eq!(tx.motives("a").await.unwrap(), vec![motive.clone()]);
    assert_eq!(tx.motive("a", "consultation").await.unwrap(), Some(motive));

    let mut jean = patient("p1", "Jean", "Dupont");
    tx.upsert_patient("a", &jean, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    jean.last_name = "Durand".into();
    jean.birth_date = Some("1980-05-17".parse().unwrap());
    tx.upsert_patient("a", &jean, at("2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(tx.all_patients("a").await.unwrap(), vec![jean.clone()]);
    assert_eq!(tx.patient("a", "p1").await.unwrap(), Some(jean));

    let mut visit = appointment("a1", "p1", "2025-03-10T09:00:00Z");
    tx.upsert_appointment("a", &visit, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    visit.start = at("2025-03-11T09:00:00Z");
    visit.version = 2;
    tx.upsert_appointment("a", &visit, at("2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.patient_history("a", "p1").await.unwrap(),
        vec![visit.clone()]
    );
    assert_eq!(tx.appointment("a", "a1").await.unwrap(), Some(visit));

    let mut letter = document("d1", "p1", "2025-02-01T00:00:00Z");
    tx.upsert_document("a", &letter).await.unwrap();
    letter.email = EmailDelivery::Delivered {
        at: at("2025-02-01T00:01:00Z"),
    };
    tx.upsert_document("a", &letter).await.unwrap();
    assert_eq!(tx.patient_documents("a", "p1").await.unwrap(), vec![letter]);
    tx.commit().await.unwrap();
}

/// The store keeps contacts as text (`data`'s JSON) and reads them back through the parsers:
/// a valid one in its type, one that does not parse kept as typed (SPEC.md decision 7).
pub(super) async fn contacts_come_back_parsed_and_one_that_does_not_parse_as_typed(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    let jean = patient("p1", "Jean", "Dupont");
    let mut typo = patient("p2", "Zoé", "Bernard");
    typo.email = Contact::from_input("zoe.example.org");
    typo.mobile = Contact::from_input("+33142334455");
    for p in [&jean, &typo] {
        tx.upsert_patient("a", p, now).await.unwrap();
    }
    let read = tx.patient("a", "p1").await.unwrap().unwrap();
    let email = read.email.as_ref().and_then(Contact::valid);
    assert_eq!(email.map(|e| e.as_str()), Some("jean@example.org"));
    assert_eq!(read, jean);
    let read = tx.patient("a", "p2").await.unwrap().unwrap();
    match &read.email {
        Some(Contact::Invalid(raw)) => assert_eq!(raw.as_str(), "zoe.example.org"),
        other => panic!("kept as typed: {other:?}"),
    }
    let landline = read.mobile.as_ref().and_then(Contact::valid);
    assert_eq!(landline.map(|n| n.e164()), Some("+33142334455"));
    assert_eq!(read.mobile.as_ref().and_then(Contact::mobile), None);
    assert_eq!(read, typo);
    tx.commit().await.unwrap();
}

pub(super) async fn patient_search_is_case_insensitive_and_escapes_wildcards(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_patient("a", &patient("p2", "Éloïse", "Martin"), now)
        .await
        .unwrap();
    let mut odd = patient("p3", "Zoé", "Bernard");
    odd.email = Contact::from_input("zoe_100%@example.org");
    odd.mobile = None;
    tx.upsert_patient("a", &odd, now).await.unwrap();

    let found = tx.search_patients("a", "DUPONT", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1"]);
    let found = tx.search_patients("a", "éLOÏSE", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p2"], "non-ASCII letters fold too");
    let found = tx.search_patients("a", "dupont jean", 10).await.unwrap();
    assert_eq!(
        ids(&found, |p| &p.id),
        ["p1"],
        "last name first also matches"
    );
    let found = tx.search_patients("a", "612345", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1", "p2"], "by mobile");
    let found = tx.search_patients("a", "jean@EXAMPLE", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1"], "by email");
    let found = tx.search_patients("a", "_100%", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p3"]);
    assert!(
        tx.search_patients("a", "j%n", 10).await.unwrap().is_empty(),
        "% is literal"
    );
    assert!(
        tx.search_patients("a", "j_an", 10)
            .await
            .unwrap()
            .is_empty(),
        "_ is literal"
    );
    assert_eq!(
        tx.search_patients("a", "example.org", 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit"
    );
    tx.commit().await.unwrap();
}

pub(super) async fn erasing_a_patient_blanks_their_data_and_removes_their_documents(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_patient("a", &patient("p2", "Marie", "Curie"), now)
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d2", "p2", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();

    assert!(!tx.is_erased("a", "p1").await.unwrap());
    assert!(tx.erase_patient("a", "p1", now).await.unwrap());
    assert!(!tx.erase_patient("a", "nobody", now).await.unwrap());
    assert!(tx.is_erased("a", "p1").await.unwrap());
    assert!(!tx.is_erased("a", "nobody").await.unwrap());
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert_eq!(ids(&tx.all_patients("a").await.unwrap(), |p| &p.id), ["p2"]);
    assert!(
        tx.search_patients("a", "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.search_patients("a", "jean", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.document("a", "d1").await.unwrap(), None);
    assert!(tx.patient_documents("a", "p1").await.unwrap().is_empty());
    assert!(
        tx.document("a", "d2").await.unwrap().is_some(),
        "other patients keep theirs"
    );

    // A late update about an erased patient must not bring their data back.
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert!(tx.is_erased("a", "p1").await.unwrap());
    assert!(
        tx.search_patients("a", "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

pub(super) async fn appointment_queries_select_by_start_and_by_change(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-03-01T00:00:00Z");
    let past = appointment("past", "p1", "2025-02-10T09:00:00Z");
    let mut late_cancel = appointment("late-cancel", "p1", "2025-02-20T09:00:00Z");
    late_cancel.status = AppointmentStatus::Cancelled {
        at: at("2025-03-02T09:00:00Z"),
        by: CancelledBy::Patient,
        excused: false,
    };
    let mut moved_back = appointment("moved-back", "p1", "2025-02-25T09:00:00Z");
    moved_back.moves.push(Move {
        at: at("2025-03-03T09:00:00Z"),
        from_start: at("2025-03-20T09:00:00Z"),
        to_start: at("2025-02-25T09:00:00Z"),
        from_location: None,
        to_location: None,
    });
    let old_cancel = {
        let mut a = appointment("old-cancel", "p1", "2025-02-21T09:00:00Z");
        a.status = AppointmentStatus::Cancelled {
            at: at("2025-02-15T09:00:00Z"),
            by: CancelledBy::Practice,
            excused: true,
        };
        a
    };
    let later = appointment("later", "p1", "2025-03-15T09:00:00Z");
    let sooner = appointment("sooner", "p1", "2025-03-05T09:00:00Z");
    let at_since = appointment("at-since", "p1", "2025-03-01T00:00:00Z");
    let other = appointment("other", "p2", "2025-03-06T09:00:00Z");
    for a in [
        &past,
        &late_cancel,
        &moved_back,
        &old_cancel,
        &later,
        &sooner,
        &at_since,
        &other,
    ] {
        tx.upsert_appointment("a", a, now).await.unwrap();
    }

    let upcoming = tx.patient_appointments("a", "p1", now).await.unwrap();
    assert_eq!(
        ids(&upcoming, |a| &a.id),
        ["late-cancel", "moved-back", "at-since", "sooner", "later"]
    );
    assert_eq!(upcoming[0], late_cancel);

    let history = tx.patient_history("a", "p1").await.unwrap();
    assert_eq!(
        ids(&history, |a| &a.id),
        [
            "past",
            "late-cancel",
            "old-cancel",
            "moved-back",
            "at-since",
            "sooner",
            "later"
        ]
    );

    let week = tx
        .appointments_between("a", at("2025-03-01T00:00:00Z"), at("2025-03-15T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        ids(&week, |a| &a.id),
        ["at-since", "sooner", "other"],
        "[from, to)"
    );

    tx.upsert_document("a", &document("d1", "p3", "2025-02-27T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d0", "p4", "2025-01-01T00:00:00Z"))
        .await
        .unwrap();
    let open = tx
        .patients_with_open_work("a", now, at("2025-02-15T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(open, ["p1", "p2", "p3"]);
    tx.commit().await.unwrap();
}

pub(super) async fn documents_round_trip_and_list_by_patient(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let mut second = document("d2", "p1", "2025-02-03T00:00:00Z");
    second.consulted_at = Some(at("2025-02-04T00:00:00Z"));
    second.email = EmailDelivery::Failed {
        at: at("2025-02-03T00:05:00Z"),
    };
    let first = document("d1", "p1", "2025-02-01T00:00:00Z");
    let other = document("d3", "p2", "2025-02-02T00:00:00Z");
    for d in [&second, &first, &other] {
        tx.upsert_document("a", d).await.unwrap();
    }
    assert_eq!(tx.document("a", "d2").await.unwrap(), Some(second.clone()));
    assert_eq!(tx.document("a", "nope").await.unwrap(), None);
    assert_eq!(
        tx.patient_documents("a", "p1").await.unwrap(),
        vec![first, second]
    );
    assert_eq!(tx.patient_documents("a", "p2").await.unwrap(), vec![other]);
    tx.commit().await.unwrap();
}
