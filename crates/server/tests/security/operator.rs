//! Rows 6 and 7: the SMS test send, the plan and the quota belong to the operator.

use super::*;

pub(super) async fn test_sms(app: &TestApp, to: &str) -> Reply {
    app.json(
        "POST",
        "/v1/test-send",
        &json!({"kind": "reminder", "channel": "sms", "to": to}),
    )
    .await
}

#[tokio::test]
async fn a_test_sms_goes_only_to_french_numbers_and_stops_at_the_daily_cap() {
    let app = spawn_app().await;
    for abroad in ["+44 7700 900123", "+1 415 555 0100", "+225 07 00 00 00 00"] {
        let problem = test_sms(&app, abroad).await.problem(422);
        assert_eq!(problem["field"], "to", "{abroad}: {problem}");
    }
    // Overseas France is France.
    assert_eq!(test_sms(&app, "+262 692 12 34 56").await.status, 202);
    for _ in 1..TEST_SMS_PER_DAY {
        let r = test_sms(&app, "06 12 34 56 78").await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "channel", "{problem}");
    let sms = |app: &TestApp| {
        app.recorder
            .sent()
            .iter()
            .filter(|r| r.message.channel == rappel_domain::notification::Channel::Sms)
            .count()
    };
    assert_eq!(sms(&app) as i64, TEST_SMS_PER_DAY);
    // The next day (practice time), the cap starts again.
    app.clock
        .set(app.engine.now() + jiff::SignedDuration::from_hours(24));
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    // Test SMS count in the month's usage, as any SMS does.
    let meter = app.engine.sms_meter(&app.practice).await.unwrap();
    assert_eq!(meter.messages, TEST_SMS_PER_DAY + 1);
    app.stop().await;
}

#[tokio::test]
async fn a_test_sms_counts_against_the_quota() {
    let mut settings = Map::new();
    settings.insert("plan".into(), json!("essentiel"));
    settings.insert("sms_quota_per_month".into(), json!(2));
    let app = spawn_app_from(Setup {
        preset: "maddie",
        settings,
        ..Setup::default()
    })
    .await;
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "channel");
    assert!(
        problem["detail"].as_str().unwrap().contains("quota"),
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sender_names_that_impersonate_public_services_are_refused() {
    let app = spawn_app().await;
    let before = app.settings().await["sms_sender"].clone();
    for sender in [
        "AMELI",
        "Ameli",
        "A M E L I",
        "CPAM",
        "IMPOTS",
        "DGFIP",
        "CAF",
        "LaPoste",
    ] {
        let problem = app
            .json("PATCH", "/v1/settings", &json!({"sms_sender": sender}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "sms_sender", "{sender}: {problem}");
    }
    assert_eq!(app.settings().await["sms_sender"], before);
    let r = app
        .json("PATCH", "/v1/settings", &json!({"sms_sender": "Cabinet A"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.stop().await;
    // A sender stored before names were checked (written here straight to the store) stops
    // the test send too.
    let app = spawn_app().await;
    let mut legacy = Map::new();
    legacy.insert("sms_sender".into(), json!("AMELI"));
    let mut tx = app.engine.store().begin().await.unwrap();
    tx.update_practice_settings(&app.practice, &legacy)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "sms_sender");
    assert!(app.recorder.sent().is_empty());
    app.stop().await;
}

// ---- row 7: the plan and the quota are the operator's ------------------------------------------

pub(super) async fn maddie_app() -> TestApp {
    let mut settings = Map::new();
    settings.insert("plan".into(), json!("essentiel"));
    settings.insert("sms_quota_per_month".into(), json!(50));
    spawn_app_from(Setup {
        preset: "maddie",
        settings,
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_practice_key_cannot_change_its_plan_or_quota_but_the_operator_can() {
    let app = maddie_app().await;
    let problem = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"plan": "pro", "sms_quota_per_month": 100000000}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "plan", "{problem}");
    let problem = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"sms_quota_per_month": 100000000}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "sms_quota_per_month", "{problem}");
    // Nor through an event.
    let problem = app
        .post_events(&json!({"type": "settings.updated", "plan": "pro"}))
        .await
        .problem(422);
    assert!(
        problem["field"].as_str().unwrap().ends_with("plan"),
        "{problem}"
    );
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "essentiel");
    assert_eq!(settings["sms_quota_per_month"], 50);
    // Sending back what was read is no change, and is accepted with the other settings.
    let r = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"plan": "essentiel", "sms_quota_per_month": 50, "sms_sender": "Cabinet"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The operator's way (`rappel practice set`).
    let mut patch = Map::new();
    patch.insert("plan".into(), json!("pro"));
    patch.insert("sms_quota_per_month".into(), json!(500));
    app.engine
        .set_operator_settings(&app.practice, &patch)
        .await
        .unwrap();
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "pro");
    assert_eq!(settings["sms_quota_per_month"], 500);
    app.stop().await;
}

#[tokio::test]
async fn the_web_interface_shows_the_plan_and_ignores_a_forged_one() {
    let app = maddie_app().await;
    app.engine
        .create_user(
            &app.practice,
            "admin@cabinet.test",
            "Alice",
            rappel_engine::Role::Admin,
            "un-mot-de-passe-solide",
        )
        .await
        .unwrap();
    let origin = format!("http://{}", app.addr);
    let form = |path: &str, body: String, cookie: Option<String>| {
        let origin = origin.clone();
        let path = path.to_string();
        let app = &app;
        async move {
            let mut headers = vec![
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
                ("Origin", origin),
            ];
            if let Some(cookie) = cookie {
                headers.push(("Cookie", format!("rappel_session={cookie}")));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.send("POST", &path, None, &headers, Some(body.as_bytes()))
                .await
        }
    };
    let reply = form(
        "/connexion",
        "email=admin@cabinet.test&password=un-mot-de-passe-solide".into(),
        None,
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let token = reply
        .header("set-cookie")
        .unwrap()
        .trim_start_matches("rappel_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cookie = format!("rappel_session={token}");
    let page = app
        .send("GET", "/parametres", None, &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        !html.contains("name=\"opt.plan\"") && !html.contains("name=\"opt.sms_quota_per_month\""),
        "the plan and quota are not form fields"
    );
    assert!(
        html.contains("fixé par l'opérateur"),
        "shown as the operator's"
    );
    let at = html.find("name=\"_csrf\" value=\"").unwrap();
    let csrf = html[at + 20..].split('"').next().unwrap().to_string();
    let reply = form(
        "/parametres",
        format!("_csrf={csrf}&opt.plan=pro&opt.sms_quota_per_month=100000000"),
        Some(token),
    )
    .await;
    assert!(reply.status < 500, "{}", reply.text());
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "essentiel");
    assert_eq!(settings["sms_quota_per_month"], 50);
    app.stop().await;
}
