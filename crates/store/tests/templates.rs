//! Conformance of the template and outbound-webhook tables: every test runs, unchanged, on a
//! SQLite file, a private in-memory SQLite database and a fresh PostgreSQL database (the harness
//! of `common/mod.rs`, shared with `conformance/`).
//!
//! PostgreSQL is not optional: `RAPPEL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) must be reachable.

use std::collections::HashSet;

use jiff::Timestamp;
use rappel_store::{
    DeliveryStatus, PracticeRow, Store, TemplateRow, WebhookDelivery, WebhookEndpoint,
};
use serde_json::{Map, json};

mod common;
use common::*;

conformance!(
    templates_are_upserted_listed_and_deleted_per_practice,
    webhook_endpoints_are_replaced_and_deleted,
    webhook_deliveries_are_queued_once_claimed_once_and_updated,
);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn with_practices(store: &Store, ids: &[&str]) {
    let mut tx = store.begin().await.unwrap();
    for id in ids {
        tx.insert_practice(&PracticeRow {
            id: id.to_string(),
            name: format!("Cabinet {id}"),
            preset: "doctolib".into(),
            policy: None,
            timezone: "Europe/Paris".into(),
            settings: Map::new(),
            created_at: at("2025-01-01T08:00:00Z"),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn template(practice: &str, part: &str, source: &str) -> TemplateRow {
    TemplateRow {
        practice_id: practice.into(),
        kind: "reminder".into(),
        channel: "email".into(),
        locale: "fr".into(),
        part: part.into(),
        source: source.into(),
        updated_at: at("2026-03-01T10:00:00Z"),
    }
}

async fn templates_are_upserted_listed_and_deleted_per_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.put_template(&template("a", "text", "v1")).await.unwrap();
    tx.put_template(&template("a", "subject", "Rappel"))
        .await
        .unwrap();
    let mut replaced = template("a", "text", "v2 — « é »");
    replaced.updated_at = at("2026-03-02T10:00:00Z");
    tx.put_template(&replaced).await.unwrap();
    tx.put_template(&template("b", "text", "other practice"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let rows = tx.templates("a").await.unwrap();
    assert_eq!(rows, vec![template("a", "subject", "Rappel"), replaced]);
    assert_eq!(
        tx.delete_templates("a", "reminder", "email", "en")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        tx.delete_templates("a", "reminder", "email", "fr")
            .await
            .unwrap(),
        2
    );
    assert!(tx.templates("a").await.unwrap().is_empty());
    assert_eq!(tx.templates("b").await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

async fn webhook_endpoints_are_replaced_and_deleted(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let endpoint = |url: &str| WebhookEndpoint {
        practice_id: "a".into(),
        url: url.into(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: at("2026-03-01T10:00:00Z"),
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.webhook_endpoint("a").await.unwrap().is_none());
    tx.put_webhook_endpoint(&endpoint("https://one.example/hook"))
        .await
        .unwrap();
    tx.put_webhook_endpoint(&endpoint("https://two.example/hook"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.webhook_endpoints().await.unwrap(),
        vec![endpoint("https://two.example/hook")]
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.webhook_endpoint("b").await.unwrap().is_none());
    assert!(tx.delete_webhook_endpoint("a").await.unwrap());
    assert!(!tx.delete_webhook_endpoint("a").await.unwrap());
    tx.commit().await.unwrap();
    assert!(store.webhook_endpoints().await.unwrap().is_empty());
}

fn delivery(practice: &str, id: &str, due: &str) -> WebhookDelivery {
    WebhookDelivery {
        practice_id: practice.into(),
        id: id.into(),
        event_type: "notification.sent".into(),
        payload: json!({"type": "notification.sent", "data": {"key": id}}),
        attempts: 0,
        next_attempt_at: at(due),
        status: DeliveryStatus::Pending,
        last_error: None,
        created_at: at(due),
    }
}

async fn webhook_deliveries_are_queued_once_claimed_once_and_updated(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    for (id, due) in [
        ("e1", "2026-03-01T10:00:00Z"),
        ("e2", "2026-03-01T10:01:00Z"),
        ("e3", "2026-03-01T12:00:00Z"),
    ] {
        assert!(
            tx.insert_webhook_delivery(&delivery("a", id, due))
                .await
                .unwrap()
        );
    }
    // The same event twice is queued once.
    assert!(
        !tx.insert_webhook_delivery(&delivery("a", "e1", "2026-03-01T10:00:00Z"))
            .await
            .unwrap()
    );
    tx.insert_webhook_delivery(&delivery("b", "e1", "2026-03-01T10:00:00Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let now = at("2026-03-01T11:00:00Z");
    let lease = at("2026-03-01T11:01:00Z");
    // Concurrent claimers never get the same delivery.
    let (one, two) = tokio::join!(
        store.claim_webhook_deliveries("a", now, lease, 1),
        store.claim_webhook_deliveries("a", now, lease, 10),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let ids: Vec<&str> = one.iter().chain(&two).map(|d| d.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(unique, HashSet::from(["e1", "e2"]));
    let claimed: Vec<WebhookDelivery> = one.into_iter().chain(two).collect();
    for d in &claimed {
        assert_eq!(d.attempts, 1);
        assert_eq!(d.next_attempt_at, lease);
        assert_eq!(d.payload["data"]["key"], d.id.as_str());
    }
    // Under lease: nothing more is due; after it, they are due again.
    assert!(
        store
            .claim_webhook_deliveries("a", now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut done = claimed[0].clone();
    done.status = DeliveryStatus::Delivered;
    let mut retry = claimed[1].clone();
    retry.last_error = Some("HTTP 500".into());
    retry.next_attempt_at = at("2026-03-01T11:05:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.update_webhook_delivery(&done).await.unwrap();
    tx.update_webhook_delivery(&retry).await.unwrap();
    tx.commit().await.unwrap();

    let again = store
        .claim_webhook_deliveries(
            "a",
            at("2026-03-01T12:30:00Z"),
            at("2026-03-01T12:31:00Z"),
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = again.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, vec![retry.id.as_str(), "e3"]);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));

    let mut tx = store.begin().await.unwrap();
    let listed = tx.webhook_deliveries("a", 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().any(|d| d.status == DeliveryStatus::Delivered));
    assert_eq!(tx.webhook_deliveries("b", 10).await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}
