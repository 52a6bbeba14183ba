//! Rows 2 and 3 of the audit: server-side request forgery.

use super::*;

/// The audit's URLs, and the other spellings of a private address a browser understands.
pub(super) const PRIVATE_URLS: &[&str] = &[
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://0x7f000001/hook",
    "https://127.1/hook",
    "https://0177.0.0.1/hook",
    "https://2130706433/hook",
    "https://localhost./hook",
    "https://localhost/hook",
    "https://10.0.0.8/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://[fd12::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://0.0.0.0/hook",
];

#[tokio::test]
async fn webhook_urls_to_private_addresses_or_with_userinfo_are_refused_naming_url() {
    let app = app_with(NetPolicy::default()).await;
    for url in PRIVATE_URLS {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url", "{url}: {problem}");
    }
    for url in [
        "https://user:secret@hooks.example.org/hook",
        "https://user@hooks.example.org/hook",
        "http://hooks.example.org/hook",
        "ftp://hooks.example.org/hook",
    ] {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url", "{url}: {problem}");
    }
    assert_eq!(app.get("/v1/webhook").await.status, 404, "nothing stored");
    // A public https URL is accepted (its name need not resolve from here).
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": "https://hooks.example.org/rappel"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.stop().await;
}

#[tokio::test]
async fn the_operator_allowance_admits_loopback_and_events_reach_it() {
    let app = app_with(NetPolicy::loopback_for_tests()).await;
    let (addr, seen) = receiver().await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{addr}/hook")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Still not the metadata service, nor a private network: the allowance is for loopback.
    for url in ["http://169.254.169.254/x", "http://10.0.0.8/x"] {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url");
    }
    app.one_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    app.engine.deliver_webhooks().await.unwrap();
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the receiver got the event"
    );
    for d in app.deliveries().await {
        assert_eq!(d["status"], "delivered", "{d}");
    }
    app.stop().await;
}

/// DNS rebinding and URLs stored before the check: the request itself goes only to checked
/// addresses, so an endpoint stored with a loopback address is refused when the event leaves,
/// the receiver listening there gets nothing, and the error does not say what is listening.
#[tokio::test]
async fn at_send_time_a_private_address_is_refused_and_nothing_reaches_it() {
    let app = app_with(NetPolicy::default()).await;
    let (addr, seen) = receiver().await;
    let port = addr.port();
    let mut tx = app.engine.store().begin().await.unwrap();
    tx.put_webhook_endpoint(&WebhookEndpoint {
        practice_id: app.practice.clone(),
        url: format!("https://127.1:{port}/hook"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: app.engine.now(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.one_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    app.engine.deliver_webhooks().await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "nothing reached loopback");
    let deliveries = app.deliveries().await;
    assert!(!deliveries.is_empty());
    for d in deliveries {
        assert_eq!(d["status"], "failed", "{d}");
        let error = d["last_error"].as_str().unwrap();
        assert!(error.contains("not a public one"), "{error}");
        assert!(!error.contains(&port.to_string()), "{error}");
    }
    app.stop().await;
}

/// A closed port and a port where something that is not HTTP listens give the very same
/// error: the deliveries' `last_error` is no port scanner.
#[tokio::test]
async fn a_closed_port_and_an_open_one_read_the_same_in_last_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = open.accept().await {
            drop(socket);
        }
    });
    let mut errors = Vec::new();
    for addr in [closed, open_addr] {
        let app = app_with(NetPolicy::loopback_for_tests()).await;
        let r = app
            .json(
                "PUT",
                "/v1/webhook",
                &json!({"url": format!("http://{addr}/hook")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        app.one_booking().await;
        app.engine.dispatch_all_due().await.unwrap();
        app.engine.deliver_webhooks().await.unwrap();
        let deliveries = app.deliveries().await;
        let error = deliveries[0]["last_error"].as_str().unwrap().to_string();
        assert!(!error.contains(&addr.port().to_string()), "{error}");
        assert!(!error.contains("os error"), "{error}");
        errors.push(error);
        app.stop().await;
    }
    assert_eq!(errors[0], errors[1]);
    assert!(errors[0].contains("unreachable"), "{}", errors[0]);
}

#[tokio::test]
async fn push_subscriptions_and_push_test_sends_to_private_addresses_are_refused() {
    let app = app_with(NetPolicy::default()).await;
    app.one_booking().await;
    let keys = json!({
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg"
    });
    for endpoint in PRIVATE_URLS {
        let problem = app
            .json(
                "PUT",
                "/v1/patients/p1/push-subscriptions",
                &json!({"endpoint": endpoint, "keys": keys}),
            )
            .await
            .problem(422);
        assert_eq!(problem["field"], "endpoint", "{endpoint}: {problem}");
        let problem = app
            .json(
                "POST",
                "/v1/test-send",
                &json!({"kind": "reminder", "channel": "push", "to": endpoint,
                        "p256dh": keys["p256dh"], "auth": keys["auth"]}),
            )
            .await
            .problem(422);
        assert_eq!(problem["field"], "to", "{endpoint}: {problem}");
    }
    let problem = app
        .json(
            "PUT",
            "/v1/patients/p1/push-subscriptions",
            &json!({"endpoint": "https://me:pw@fcm.googleapis.com/fcm/send/x", "keys": keys}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "endpoint");
    assert!(
        app.recorder.sent().iter().all(|r| r.message.push.is_none()),
        "no push message left"
    );
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1/push-subscriptions",
            &json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.stop().await;
}
