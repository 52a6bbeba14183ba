//! `Engine::replace_patient` (`PUT /v1/patients/{id}`) in one transaction: an erased id is
//! refused, and the push subscriptions the patient's browsers added are carried over — also
//! when one is added at the same moment from another process sharing the PostgreSQL database
//! (issue 14: three transactions lost it before).

use rappel_domain::contact::Contact;
use rappel_domain::facts::{Patient, PushSubscription};
use rappel_engine::{Engine, EngineError, SimClock};
use rappel_store::Store;
use rappel_test_support::engine::{engine_on, with_postgres};

fn clock() -> SimClock {
    SimClock::new("2026-03-02T09:00:00+01:00".parse().unwrap())
}

fn jeanne(first_name: &str) -> Patient {
    Patient {
        id: "p1".into(),
        first_name: first_name.into(),
        last_name: "Dupont".into(),
        mobile: Contact::from_input("+33612345678"),
        ..Patient::default()
    }
}

fn subscription(n: usize) -> PushSubscription {
    PushSubscription {
        endpoint: format!("https://push.example.org/send/{n}"),
        p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM".into(),
        auth: "tBHItJI5svbpez7KI4CCXg".into(),
    }
}

async fn replacing_keeps_subscriptions_and_refuses_an_erased_id(a: &Engine, b: &Engine) {
    let practice = a
        .create_practice("Cabinet", "doctolib", "Europe/Paris", Default::default())
        .await
        .unwrap()
        .id;
    a.replace_patient(&practice, jeanne("Jeanne"))
        .await
        .unwrap();
    // Each round: the practice software replaces the patient on one node while her browser
    // adds a subscription on the other.
    for n in 0..20 {
        let name = format!("Jeanne {n}");
        let added = subscription(n);
        let (replaced, added) = tokio::join!(
            a.replace_patient(&practice, jeanne(&name)),
            b.put_push_subscription(&practice, "p1", &added),
        );
        replaced.unwrap();
        added.unwrap();
    }
    let stored = a.patient(&practice, "p1").await.unwrap();
    assert_eq!(stored.first_name, "Jeanne 19");
    let mut endpoints: Vec<String> = stored
        .push_subscriptions
        .iter()
        .map(|s| s.endpoint.clone())
        .collect();
    endpoints.sort();
    let mut expected: Vec<String> = (0..20).map(|n| subscription(n).endpoint).collect();
    expected.sort();
    assert_eq!(endpoints, expected, "a subscription was lost");

    // The patient's answer to the practice software carries them too.
    let (_, answered) = a
        .replace_patient(&practice, jeanne("Jeanne"))
        .await
        .unwrap();
    assert_eq!(answered.push_subscriptions.len(), 20);

    a.erase_patient(&practice, "p1").await.unwrap();
    let refused = a
        .replace_patient(&practice, jeanne("Jeanne"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, EngineError::Invalid { field, .. } if field == "id"),
        "{refused}"
    );
    assert!(a.patient(&practice, "p1").await.is_err());
}

#[tokio::test]
async fn on_sqlite() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let engine = engine_on(store, &clock());
    replacing_keeps_subscriptions_and_refuses_an_erased_id(&engine, &engine.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_with_two_engines() {
    with_postgres("rappel_test_replace", |url| async move {
        let clock = clock();
        let a = Store::connect(&url).await.unwrap();
        a.migrate().await.unwrap();
        let b = Store::connect(&url).await.unwrap();
        replacing_keeps_subscriptions_and_refuses_an_erased_id(
            &engine_on(a, &clock),
            &engine_on(b, &clock),
        )
        .await;
    })
    .await;
}
