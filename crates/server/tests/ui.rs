//! The web interface over real HTTP: sessions, CSRF, roles, tenant isolation and escaping. The
//! browser tests (e2e/) show the same pages work in Chromium; these pin the security rules
//! exactly, on a simulated clock.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Reply, TestApp, parse_reply, spawn_app, spawn_app_with};
use jiff::SignedDuration;
use rappel_engine::Role;
use rappel_server::{ServerConfig, SignInLimits};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "un-mot-de-passe-solide";

impl TestApp {
    async fn page(&self, cookie: Option<&str>, path: &str) -> Reply {
        let mut headers = vec![];
        let cookie_header = cookie.map(|c| format!("rappel_session={c}"));
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c.as_str()));
        }
        self.send("GET", path, None, &headers, None).await
    }

    async fn form(&self, cookie: Option<&str>, path: &str, body: &str) -> Reply {
        self.form_with(cookie, path, body, &[]).await
    }

    async fn form_with(
        &self,
        cookie: Option<&str>,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let cookie_header = cookie.map(|c| format!("rappel_session={c}"));
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c.as_str()));
        }
        headers.extend_from_slice(extra);
        self.send("POST", path, None, &headers, Some(body.as_bytes()))
            .await
    }

    /// Signs in; returns the session token and the page's CSRF token.
    async fn sign_in(&self, email: &str) -> (String, String) {
        let reply = self
            .form(
                None,
                "/connexion",
                &format!("email={email}&password={PASSWORD}"),
            )
            .await;
        assert_eq!(reply.status, 303, "{}", reply.text());
        let cookie = reply.header("set-cookie").expect("a session cookie");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        let token = cookie
            .trim_start_matches("rappel_session=")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let home = self.page(Some(&token), "/").await;
        assert_eq!(home.status, 200);
        let csrf = csrf_of(&home.text());
        (token, csrf)
    }
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token");
    page[at + 20..].split('"').next().unwrap().to_string()
}

async fn app_with_users() -> TestApp {
    add_users(spawn_app().await).await
}

/// Sign-in limits that never get in the way: for the tests of what lies behind them.
fn unlimited_sign_ins() -> ServerConfig {
    ServerConfig {
        sign_in: SignInLimits {
            per_address_burst: 10_000,
            global_burst: 10_000,
            hash_wait: Duration::from_secs(300),
            ..SignInLimits::default()
        },
        ..ServerConfig::default()
    }
}

async fn add_users(app: TestApp) -> TestApp {
    app.engine
        .create_user(
            &app.practice,
            "Admin@Cabinet.test",
            "Alice",
            Role::Admin,
            PASSWORD,
        )
        .await
        .unwrap();
    app.engine
        .create_user(
            &app.practice,
            "accueil@cabinet.test",
            "Samia",
            Role::Secretariat,
            PASSWORD,
        )
        .await
        .unwrap();
    app
}

#[tokio::test]
async fn pages_need_a_session_and_send_strangers_to_sign_in() {
    let app = app_with_users().await;
    let reply = app.page(None, "/envoyes?statut=failed").await;
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        Some("/connexion?suite=%2Fenvoyes%3Fstatut%3Dfailed")
    );
    let reply = app.page(Some("forged-token"), "/").await;
    assert_eq!(reply.status, 303);
    // Security headers on every page, the sign-in page included.
    let sign_in = app.page(None, "/connexion").await;
    assert_eq!(sign_in.status, 200);
    let csp = sign_in.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(sign_in.header("x-frame-options"), Some("DENY"));
    app.stop().await;
}

#[tokio::test]
async fn sign_in_is_case_insensitive_on_the_address_and_refuses_a_wrong_password() {
    let app = app_with_users().await;
    let wrong = app
        .form(
            None,
            "/connexion",
            "email=admin%40cabinet.test&password=nope-nope-nope",
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .text()
            .contains("Adresse email ou mot de passe incorrect.")
    );
    assert!(wrong.header("set-cookie").is_none());
    // An unknown address answers exactly the same.
    let unknown = app
        .form(
            None,
            "/connexion",
            "email=nobody%40cabinet.test&password=nope-nope-nope",
        )
        .await;
    assert_eq!(unknown.status, 401);
    assert!(
        unknown
            .text()
            .contains("Adresse email ou mot de passe incorrect.")
    );
    let (token, _) = app.sign_in("ADMIN%40cabinet.test").await;
    assert!(!token.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_for_fifteen_minutes() {
    let app = app_with_users().await;
    for attempt in 1..=5 {
        let reply = app
            .form(
                None,
                "/connexion",
                "email=admin%40cabinet.test&password=wrong-password",
            )
            .await;
        let expected = if attempt < 5 { 401 } else { 429 };
        assert_eq!(reply.status, expected, "attempt {attempt}");
    }
    // Even the right password is refused while locked.
    let locked = app
        .form(
            None,
            "/connexion",
            &format!("email=admin%40cabinet.test&password={PASSWORD}"),
        )
        .await;
    assert_eq!(locked.status, 429);
    assert!(locked.text().contains("bloqué pendant encore 15 min"));
    app.clock
        .set(app.engine.now() + SignedDuration::from_mins(16));
    app.sign_in("admin%40cabinet.test").await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_opens_a_locked_account_by_setting_a_new_password() {
    let app = app_with_users().await;
    for _ in 0..5 {
        app.form(
            None,
            "/connexion",
            "email=accueil%40cabinet.test&password=wrong-password",
        )
        .await;
    }
    let locked = app
        .form(
            None,
            "/connexion",
            &format!("email=accueil%40cabinet.test&password={PASSWORD}"),
        )
        .await;
    assert_eq!(locked.status, 429);
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    let users = app.engine.users(&app.practice).await.unwrap();
    let secretary = users.iter().find(|u| u.role == Role::Secretariat).unwrap();
    let path = format!("/utilisateurs/{}/mot-de-passe", secretary.id);
    let short = app
        .form(Some(&token), &path, &format!("_csrf={csrf}&password=court"))
        .await;
    assert_eq!(short.status, 422);
    let set = app
        .form(
            Some(&token),
            &path,
            &format!("_csrf={csrf}&password=un-tout-nouveau-mot"),
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.text());
    let reply = app
        .form(
            None,
            "/connexion",
            "email=accueil%40cabinet.test&password=un-tout-nouveau-mot",
        )
        .await;
    assert_eq!(reply.status, 303, "the lock is lifted");
    app.stop().await;
}

#[tokio::test]
async fn a_session_expires_after_twelve_hours_and_sign_out_ends_it() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    app.clock
        .set(app.engine.now() + SignedDuration::from_hours(12) + SignedDuration::from_secs(1));
    assert_eq!(app.page(Some(&token), "/").await.status, 303);

    let (token, csrf2) = app.sign_in("admin%40cabinet.test").await;
    assert_ne!(csrf, csrf2, "each session has its own CSRF token");
    let out = app
        .form(Some(&token), "/deconnexion", &format!("_csrf={csrf2}"))
        .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(app.page(Some(&token), "/").await.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    let body = "opt.sms_sender=PIRATE&opt.no_show_block_threshold=3&opt.quiet_hours_sms=21%3A00-08%3A00&opt.quiet_hours_push=&opt.quiet_hours_email=&opt.appointment_links=on&opt.appointment_links_sms=on&opt.patient_cancel_cutoff_hours=4&opt.practice_phone=&opt.history_retention_months=13";
    let missing = app.form(Some(&token), "/parametres", body).await;
    assert_eq!(missing.status, 403);
    let wrong = app
        .form(Some(&token), "/parametres", &format!("{body}&_csrf=0000"))
        .await;
    assert_eq!(wrong.status, 403);
    // The right token from another origin is refused too.
    let cross = app
        .form_with(
            Some(&token),
            "/parametres",
            &format!("{body}&_csrf={csrf}"),
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403);
    let ctx = app.engine.practice(&app.practice).await.unwrap();
    assert_eq!(ctx.settings.text("sms_sender"), Some("CABINET"));
    // A multipart body is only taken by the logo form, which checks its own field.
    let cookie = format!("rappel_session={token}");
    let users = app.engine.users(&app.practice).await.unwrap();
    let multipart = app
        .send(
            "POST",
            &format!("/utilisateurs/{}/supprimer", users[1].id),
            None,
            &[
                ("Cookie", cookie.as_str()),
                ("Content-Type", "multipart/form-data; boundary=x"),
            ],
            Some(b"--x--\r\n"),
        )
        .await;
    assert_eq!(multipart.status, 403);
    assert_eq!(app.engine.users(&app.practice).await.unwrap().len(), 2);

    let ok = app
        .form(Some(&token), "/parametres", &format!("{body}&_csrf={csrf}"))
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text());
    let ctx = app.engine.practice(&app.practice).await.unwrap();
    assert_eq!(ctx.settings.text("sms_sender"), Some("PIRATE"));
    // htmx sends the token as a header instead.
    let header = app
        .form_with(
            Some(&token),
            "/parametres",
            &body.replace("PIRATE", "LILAS"),
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(header.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn the_secretariat_reads_messages_but_cannot_change_settings_or_templates() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("accueil%40cabinet.test").await;
    for path in [
        "/",
        "/envoyes",
        "/a-verifier",
        "/notifications",
        "/patients",
    ] {
        assert_eq!(app.page(Some(&token), path).await.status, 200, "{path}");
    }
    for path in [
        "/parametres",
        "/modeles",
        "/modeles/reminder/sms",
        "/programmateur",
        "/utilisateurs",
    ] {
        let reply = app.page(Some(&token), path).await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(reply.text().contains("réservée aux administrateurs"));
    }
    let post = app
        .form(
            Some(&token),
            "/parametres",
            &format!("_csrf={csrf}&opt.sms_sender=SECRET"),
        )
        .await;
    assert_eq!(post.status, 403);
    let ctx = app.engine.practice(&app.practice).await.unwrap();
    assert_eq!(ctx.settings.text("sms_sender"), Some("CABINET"));
    app.stop().await;
}

/// Issue 13, row 8: the interface's pages read without taking the write turn (on SQLite it
/// queues behind every practice's writes), and so does checking the session of each request;
/// a forged session cookie writes nothing either.
#[tokio::test]
async fn pages_and_session_checks_write_nothing() {
    let app = app_with_users().await;
    let (token, _csrf) = app.sign_in("admin%40cabinet.test").await;
    let store = app.engine.store().clone();
    let before = store.write_transactions();
    for path in [
        "/",
        "/envoyes",
        "/a-verifier",
        "/notifications",
        "/patients",
        "/parametres",
        "/modeles",
        "/modeles/reminder/sms",
        "/programmateur",
        "/programmateur/nouvelle",
        "/utilisateurs",
    ] {
        let reply = app.page(Some(&token), path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    assert_eq!(app.page(Some("forged-token"), "/").await.status, 303);
    assert_eq!(app.page(None, "/connexion").await.status, 200);
    assert_eq!(store.write_transactions(), before, "a page wrote");
    app.stop().await;
}

#[tokio::test]
async fn a_user_never_sees_another_practices_patients() {
    let app = app_with_users().await;
    let other = app
        .engine
        .create_practice("Cabinet B", "doctolib", "Europe/Paris", Default::default())
        .await
        .unwrap();
    let patient = json!({"first_name": "Bernard", "last_name": "Secret"});
    let put = app
        .json_as(&other.api_key, "PUT", "/v1/patients/p-b", &patient)
        .await;
    assert!(put.status < 300);
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    assert_eq!(app.page(Some(&token), "/patients/p-b").await.status, 404);
    let search = app.page(Some(&token), "/patients?q=secret").await;
    assert!(!search.text().contains("Bernard"));
    app.stop().await;
}

#[tokio::test]
async fn names_and_messages_are_escaped() {
    let app = app_with_users().await;
    let patient = json!({"first_name": "<script>alert(1)</script>", "last_name": "\"><img src=x>"});
    assert!(app.json("PUT", "/v1/patients/p-x", &patient).await.status < 300);
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let page = app.page(Some(&token), "/patients/p-x").await.text();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<img src=x>"));
    app.stop().await;
}

#[tokio::test]
async fn sign_in_follows_only_local_paths() {
    let app = app_with_users().await;
    let reply = app
        .form(
            None,
            "/connexion",
            &format!("email=admin%40cabinet.test&password={PASSWORD}&suite=%2F%2Fevil.example%2F"),
        )
        .await;
    assert_eq!(reply.header("location"), Some("/"));
    let reply = app
        .form(
            None,
            "/connexion",
            &format!("email=admin%40cabinet.test&password={PASSWORD}&suite=%2Fpatients%3Fq%3Ddu"),
        )
        .await;
    assert_eq!(reply.header("location"), Some("/patients?q=du"));
    app.stop().await;
}

#[tokio::test]
async fn users_are_created_by_admins_with_a_long_enough_password() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    let short = app
        .form(
            Some(&token),
            "/utilisateurs",
            &format!(
                "_csrf={csrf}&name=Bob&email=bob%40cabinet.test&role=secretariat&password=court"
            ),
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.text().contains("au moins 10 caractères"));
    let taken = app
        .form(
            Some(&token),
            "/utilisateurs",
            &format!("_csrf={csrf}&name=Bob&email=accueil%40cabinet.test&role=secretariat&password={PASSWORD}"),
        )
        .await;
    assert_eq!(taken.status, 422);
    let ok = app
        .form(
            Some(&token),
            "/utilisateurs",
            &format!("_csrf={csrf}&name=Bob&email=bob%40cabinet.test&role=secretariat&password={PASSWORD}"),
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text());
    app.sign_in("bob%40cabinet.test").await;
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_french_page_and_an_unknown_api_path_a_problem() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let page = app.page(Some(&token), "/nulle-part").await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );
    assert!(page.text().contains("Page introuvable"), "{}", page.text());
    let api = app.page(None, "/v1/nulle-part").await;
    assert_eq!(api.status, 404);
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
    app.stop().await;
}

#[tokio::test]
async fn settings_show_no_empty_box_for_a_preset_without_options_of_its_own() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let settings = app.page(Some(&token), "/parametres").await;
    assert_eq!(settings.status, 200);
    let html = settings.text();
    // Every <fieldset> has something in it besides its legend.
    for fieldset in html.split("<fieldset>").skip(1) {
        let body = fieldset.split("</fieldset>").next().unwrap();
        let after_legend = body.split("</legend>").nth(1).unwrap_or("");
        assert!(!after_legend.trim().is_empty(), "an empty box: {body}");
    }
    app.stop().await;
}

/// A planned SMS to a landline is shown as « Ne partira pas » with its reason at once, not
/// « Prévu » until the send fails; fixing the number on the file shows it planned again.
#[tokio::test]
async fn a_planned_message_the_send_checks_would_refuse_says_so_at_once() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let put = |mobile: &'static str| {
        let app = &app;
        async move {
            let r = app
                .json(
                    "PUT",
                    "/v1/patients/p1",
                    &serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "mobile": mobile}),
                )
                .await;
            assert!(r.status == 200 || r.status == 201, "{}", r.text());
        }
    };
    put("01 23 45 67 89").await;
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &serde_json::json!({"name": "Dr Martin"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    // Booked at 08:00 for 10:00 on D: the SMS reminder is planned 10 minutes later.
    let r = app
        .post_events(&serde_json::json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-02T10:00:00+01:00", "source": "staff"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let page = app.page(Some(&token), "/patients/p1").await.text();
    assert!(page.contains("Ne partira pas"), "{page}");
    assert!(page.contains("numéro fixe"), "{page}");
    put("06 12 34 56 78").await;
    let page = app.page(Some(&token), "/patients/p1").await.text();
    assert!(!page.contains("numéro fixe"), "{page}");
    assert!(page.contains("Prévu"), "{page}");
    app.stop().await;
}

// ---- issue 13: sign-in hardening ----------------------------------------------------------------

/// A sign-in POST from the local address `source` (any of 127.0.0.0/8), on its own connection.
async fn sign_in_from(source: IpAddr, server: SocketAddr, body: &str) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut stream = socket.connect(server).await.expect("connect");
    let request = format!(
        "POST /connexion HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 2 min")
        .unwrap();
    parse_reply(&raw)
}

/// Runs `count` sign-ins at once; `source(i)` is the address the i-th comes from.
async fn parallel_sign_ins(
    app: &TestApp,
    count: usize,
    body: &str,
    source: impl Fn(usize) -> IpAddr,
) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (from, addr, body) = (source(i), app.addr, body.to_string());
        tasks.spawn(async move { sign_in_from(from, addr, &body).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.unwrap());
    }
    replies
}

fn statuses(replies: &[Reply]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for reply in replies {
        *counts.entry(reply.status).or_insert(0) += 1;
    }
    counts
}

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused() {
    let app = add_users(spawn_app_with(unlimited_sign_ins()).await).await;
    let replies = parallel_sign_ins(
        &app,
        40,
        "email=admin%40cabinet.test&password=wrong-password",
        |_| LOCALHOST,
    )
    .await;
    let counts = statuses(&replies);
    // Each attempt is counted before its password is checked: four are refused as wrong, the
    // fifth locks the account, and every later one finds it locked.
    assert_eq!(counts.get(&401), Some(&4), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&36), "{counts:?}");
    let right = app
        .form(
            None,
            "/connexion",
            &format!("email=admin%40cabinet.test&password={PASSWORD}"),
        )
        .await;
    assert_eq!(right.status, 429, "{}", right.text());
    assert!(right.text().contains("bloqué pendant encore 15 min"));
    assert!(right.header("set-cookie").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_hostile_suite_after_sign_in_lands_on_this_site_and_never_fails() {
    let app = app_with_users().await;
    for (suite, expected) in [
        ("%2F%09%2Fevil.example%2F", "/"),
        ("%2F%0D%0A%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2F%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2Fpatients%3Fq%3Dl%C3%A9a", "/patients?q=l%C3%A9a"),
    ] {
        let reply = app
            .form(
                None,
                "/connexion",
                &format!("email=admin%40cabinet.test&password={PASSWORD}&suite={suite}"),
            )
            .await;
        assert_eq!(reply.status, 303, "{suite}: {}", reply.text());
        assert_eq!(reply.header("location"), Some(expected), "{suite}");
    }
    // A NUL anywhere in a form is refused before anything else (the forms' NUL guard): a clear
    // page, no session, no redirect, never a 500.
    let nul = app
        .form(
            None,
            "/connexion",
            &format!("email=admin%40cabinet.test&password={PASSWORD}&suite=%2F%00"),
        )
        .await;
    assert_eq!(nul.status, 422, "{}", nul.text());
    assert!(nul.header("location").is_none());
    assert!(nul.header("set-cookie").is_none());
    // The sign-in page that carries such a `suite` renders too.
    let page = app.page(None, "/connexion?suite=%2F%09%2F%00evil").await;
    assert_eq!(page.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_sign_in_form_sent_from_another_site_is_refused() {
    let app = app_with_users().await;
    let body = format!("email=admin%40cabinet.test&password={PASSWORD}");
    let foreign = app
        .form_with(
            None,
            "/connexion",
            &body,
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    assert!(foreign.header("set-cookie").is_none());
    let opaque = app
        .form_with(None, "/connexion", &body, &[("Origin", "null")])
        .await;
    assert_eq!(opaque.status, 403);
    // Without an Origin, a foreign Referer is refused just the same.
    let referred = app
        .form_with(
            None,
            "/connexion",
            &body,
            &[("Referer", "https://evil.example/piege.html")],
        )
        .await;
    assert_eq!(referred.status, 403);
    assert!(referred.header("set-cookie").is_none());
    // The form of this site signs in.
    let origin = format!("http://{}", app.addr);
    let referer = format!("http://{}/connexion", app.addr);
    let ours = app
        .form_with(
            None,
            "/connexion",
            &body,
            &[("Origin", &origin), ("Referer", &referer)],
        )
        .await;
    assert_eq!(ours.status, 303, "{}", ours.text());
    assert!(ours.header("set-cookie").is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_parallel_sign_ins_from_one_address_are_mostly_refused_before_any_hash() {
    let app = app_with_users().await;
    let replies = parallel_sign_ins(
        &app,
        300,
        "email=admin%40cabinet.test&password=wrong-password",
        |_| LOCALHOST,
    )
    .await;
    let counts = statuses(&replies);
    let burst = SignInLimits::default().per_address_burst as usize;
    // Only the address's burst (and what refilled meanwhile) reaches the engine; the rest is
    // refused by the rate limit, with a Retry-After, before any hash.
    let limited: Vec<&Reply> = replies
        .iter()
        .filter(|r| {
            r.text()
                .contains("Trop de tentatives de connexion en peu de temps")
        })
        .collect();
    assert!(limited.len() >= 300 - burst - 5, "{counts:?}");
    assert!(limited.iter().all(|r| r.status == 429));
    assert!(limited.iter().all(|r| r.header("retry-after").is_some()));
    assert_eq!(counts.values().sum::<usize>(), 300);
    assert!(!counts.contains_key(&500), "{counts:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_from_many_addresses_meet_the_global_limit() {
    let app = add_users(
        spawn_app_with(ServerConfig {
            sign_in: SignInLimits {
                global_burst: 30,
                global_per_second: 1.0,
                hash_wait: Duration::from_secs(300),
                ..SignInLimits::default()
            },
            ..ServerConfig::default()
        })
        .await,
    )
    .await;
    // 120 addresses, one attempt each: no address reaches its own limit.
    let replies = parallel_sign_ins(
        &app,
        120,
        "email=nobody%40cabinet.test&password=wrong-password",
        |i| IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, i as u8 + 1)),
    )
    .await;
    let counts = statuses(&replies);
    let limited = replies
        .iter()
        .filter(|r| r.status == 429 && r.header("retry-after").is_some())
        .count();
    // The global burst (30) and what refilled meanwhile got through; the address, unknown,
    // then locked like a real account would (429 without Retry-After).
    assert!(
        (120 - 30 - 10..=120 - 30).contains(&limited),
        "{limited}: {counts:?}"
    );
    assert_eq!(counts.get(&401), Some(&4), "{counts:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_beyond_the_hash_slots_wait_briefly_then_get_503_with_retry_after() {
    let app = add_users(
        spawn_app_with(ServerConfig {
            sign_in: SignInLimits {
                per_address_burst: 10_000,
                global_burst: 10_000,
                concurrent_hashes: 1,
                hash_wait: Duration::from_millis(1),
                ..SignInLimits::default()
            },
            ..ServerConfig::default()
        })
        .await,
    )
    .await;
    let replies = parallel_sign_ins(
        &app,
        60,
        "email=nobody%40cabinet.test&password=wrong-password",
        |_| LOCALHOST,
    )
    .await;
    let counts = statuses(&replies);
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(busy.len() >= 30, "one hash at a time: {counts:?}");
    assert!(busy.iter().all(|r| r.header("retry-after") == Some("2")));
    assert!(busy[0].text().contains("Trop de connexions en cours"));
    assert!(counts.get(&401).is_some_and(|n| *n >= 1), "{counts:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answers_as_a_real_account_and_locks_alike() {
    let app = app_with_users().await;
    let mut answers = Vec::new();
    for email in ["admin%40cabinet.test", "personne%40cabinet.test"] {
        let mut replies = Vec::new();
        for _ in 0..6 {
            let reply = app
                .form(
                    None,
                    "/connexion",
                    &format!("email={email}&password=wrong-password"),
                )
                .await;
            // The form echoes the address typed; everything else must be identical.
            let text = reply
                .text()
                .replace("admin@cabinet.test", "ADDRESS")
                .replace("personne@cabinet.test", "ADDRESS");
            replies.push((reply.status, text));
        }
        answers.push(replies);
    }
    let (real, unknown) = (&answers[0], &answers[1]);
    assert_eq!(
        real.iter().map(|r| r.0).collect::<Vec<_>>(),
        [401, 401, 401, 401, 429, 429]
    );
    for (attempt, (a, b)) in real.iter().zip(unknown).enumerate() {
        assert_eq!(a, b, "attempt {}", attempt + 1);
    }
    assert!(
        unknown[5]
            .1
            .contains("ce compte est bloqué pendant encore 15 min")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_password_reset_or_a_deleted_user_ends_their_open_sessions() {
    let app = app_with_users().await;
    let (secretary, _) = app.sign_in("accueil%40cabinet.test").await;
    let (admin, csrf) = app.sign_in("admin%40cabinet.test").await;
    assert_eq!(app.page(Some(&secretary), "/").await.status, 200);
    let users = app.engine.users(&app.practice).await.unwrap();
    let id = &users
        .iter()
        .find(|u| u.role == Role::Secretariat)
        .unwrap()
        .id;
    let set = app
        .form(
            Some(&admin),
            &format!("/utilisateurs/{id}/mot-de-passe"),
            &format!("_csrf={csrf}&password=un-tout-nouveau-mot"),
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.text());
    let old = app.page(Some(&secretary), "/").await;
    assert_eq!(old.status, 303, "the old cookie no longer opens a page");
    assert_eq!(old.header("location"), Some("/connexion"));
    assert_eq!(
        app.page(Some(&admin), "/").await.status,
        200,
        "the admin stays"
    );

    // Deleting a user ends their sessions too.
    let reply = app
        .form(
            None,
            "/connexion",
            "email=accueil%40cabinet.test&password=un-tout-nouveau-mot",
        )
        .await;
    assert_eq!(reply.status, 303);
    let cookie = reply.header("set-cookie").unwrap();
    let token = cookie["rappel_session=".len()..].split(';').next().unwrap();
    assert_eq!(app.page(Some(token), "/").await.status, 200);
    let deleted = app
        .form(
            Some(&admin),
            &format!("/utilisateurs/{id}/supprimer"),
            &format!("_csrf={csrf}"),
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.text());
    assert_eq!(app.page(Some(token), "/").await.status, 303);
    app.stop().await;
}

/// The practice's language, not the code's: names instead of ids, and what a rule does instead
/// of its id.
#[tokio::test]
async fn pages_name_people_and_say_what_each_rule_does() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &serde_json::json!({"name": "Dr Martin", "email": "martin@cabinet.test"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1",
            &serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .post_events(&serde_json::json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-05T10:00:00+01:00", "source": "online"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let appointment = app.page(Some(&token), "/rendez-vous/a1").await.text();
    assert!(appointment.contains("Jeanne Dupont"), "{appointment}");
    assert!(appointment.contains("Dr Martin"), "{appointment}");
    let dashboard = app.page(Some(&token), "/").await.text();
    assert!(dashboard.contains("Praticien : Dr Martin"), "{dashboard}");
    let reminder = app
        .page(
            Some(&token),
            "/envoyes/a%3Aa1%2Freminder_email_d1%2Femail%2Fpatient%3Ap1%2F2026-03-05",
        )
        .await
        .text();
    assert!(
        reminder.contains("Rappel de rendez-vous par email, la veille entre 14:00 et 16:00"),
        "{reminder}"
    );
    assert!(!reminder.contains("reminder_email_d1"), "{reminder}");
    // Once sent, the detail says where it went.
    app.engine.dispatch_all_due().await.unwrap();
    let confirmation = app
        .page(
            Some(&token),
            "/envoyes/a%3Aa1%2Fconfirmation_email%2Femail%2Fpatient%3Ap1",
        )
        .await
        .text();
    assert!(
        confirmation.contains("Envoyé à : </strong>jeanne@example.org"),
        "{confirmation}"
    );
    app.stop().await;
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    body.finish()
}

/// Dr Martin, Jeanne Dupont (email and mobile) and her appointment `a1` booked online for
/// Thursday 5 March 2026 at 10:00.
async fn martin_and_dupont(app: &TestApp) {
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &json!({"name": "Dr Martin", "email": "martin@cabinet.test"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1",
            &json!({"first_name": "Jeanne", "last_name": "Dupont",
                    "email": "jeanne@example.org", "mobile": "06 12 34 56 78"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .post_events(&json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-05T10:00:00+01:00", "source": "online"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[tokio::test]
async fn the_template_editor_turns_text_with_fields_into_both_parts_of_an_email() {
    use rappel_domain::notification::{Channel, Kind};
    use rappel_domain::template::Locale;
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;

    // Only what the practice's policy sends is listed (Doctolib: no document by email).
    let list = app.page(Some(&token), "/modeles").await.text();
    assert!(list.contains("/modeles/reminder/sms"), "{list}");
    assert!(!list.contains("/modeles/document/email"), "{list}");

    // The default SMS reads as French with fields, not as template code.
    let sms = app.page(Some(&token), "/modeles/reminder/sms").await.text();
    assert!(
        sms.contains("{Cabinet} : Nous vous rappelons votre rendez-vous : {Rendez-vous}. Confirmer ou annuler : {Lien de réponse}"),
        "{sms}"
    );
    assert!(sms.contains("data-insert=\"{Prénom}\""), "{sms}");
    assert!(sms.contains("<code>{Heure}</code>"), "{sms}");

    let subject = "Votre rendez-vous du {Date du rendez-vous}";
    let body = "Bonjour {Prénom},\n\nÀ {Heure} avec {Praticien}.\nPlan : https://exemple.fr/plan\n\n{Cabinet}";
    let saved = app
        .form(
            Some(&token),
            "/modeles/reminder/email?langue=fr",
            &form_body(&[
                ("_csrf", &csrf),
                ("mode", "simple"),
                ("objet", subject),
                ("corps", body),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let view = app
        .engine
        .get_template(&app.practice, Kind::Reminder, Channel::Email, Locale::Fr)
        .await
        .unwrap();
    assert_eq!(view.overridden, ["subject", "text", "html"]);
    let rendered = app
        .engine
        .preview_template(
            &app.practice,
            Kind::Reminder,
            Channel::Email,
            Locale::Fr,
            &view.parts,
        )
        .await
        .unwrap();
    let output = |part: &str| {
        rendered
            .iter()
            .find(|p| p.part == part)
            .and_then(|p| p.output.clone())
            .unwrap()
    };
    assert!(
        output("subject").starts_with("Votre rendez-vous du "),
        "{rendered:?}"
    );
    let text = output("text");
    assert!(
        text.starts_with("Bonjour Jeanne,\n\nÀ 09h30 avec "),
        "{text}"
    );
    let html = output("html");
    assert!(
        html.contains("<p style=\"margin:0 0 16px;\">\nBonjour Jeanne,\n</p>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://exemple.fr/plan\" style=\"color:#1f4e79;\">"),
        "{html}"
    );

    // The page shows the text back, with the email's HTML in a sandboxed frame of this origin.
    let page = app
        .page(Some(&token), "/modeles/reminder/email?langue=fr")
        .await
        .text();
    assert!(page.contains("Bonjour {Prénom},"), "{page}");
    assert!(page.contains("personnalisé par le cabinet"), "{page}");
    assert!(
        page.contains("<iframe") && page.contains("sandbox=\"\""),
        "{page}"
    );
    let frame_at = page.find("/modeles/reminder/email/apercu.html?").unwrap();
    let frame_src = page[frame_at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let frame = app.page(Some(&token), &frame_src).await;
    assert_eq!(frame.status, 200);
    let csp = frame.header("content-security-policy").unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(frame.header("x-frame-options"), Some("SAMEORIGIN"));
    assert!(frame.text().contains("Bonjour Jeanne,"), "{}", frame.text());
    // Every other page still refuses to be framed.
    let other = app.page(Some(&token), "/modeles").await;
    assert_eq!(other.header("x-frame-options"), Some("DENY"));

    // An unknown field is refused at its line, in French; the saved template stays.
    let refused = app
        .form(
            Some(&token),
            "/modeles/reminder/email?langue=fr",
            &form_body(&[
                ("_csrf", &csrf),
                ("mode", "simple"),
                ("objet", subject),
                ("corps", "Bonjour,\n{Prenom}"),
            ]),
        )
        .await;
    assert_eq!(refused.status, 422);
    let text = refused.text();
    assert!(
        text.contains("Ligne 2 : « {Prenom} » n&#39;est pas un champ connu")
            || text.contains("Ligne 2 : « {Prenom} » n'est pas un champ connu"),
        "{text}"
    );
    let still = app
        .engine
        .get_template(&app.practice, Kind::Reminder, Channel::Email, Locale::Fr)
        .await
        .unwrap();
    assert_eq!(still.parts, view.parts);
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_shows_appointments_recipients_and_times_and_moves_by_day() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;

    let today = app.page(Some(&token), "/").await.text();
    for expected in [
        "Jour suivant",
        "Jour précédent",
        "type=\"date\"",
        "RDV du 05/03/2026 à 10:00 avec Dr Martin",
        "Praticien : Dr Martin",
        "martin@cabinet.test",
        "jeanne@example.org",
        "Prévu à",
        "Parti à",
    ] {
        assert!(today.contains(expected), "{expected} in {today}");
    }
    // Sent: the actual time beside the planned one.
    app.engine.dispatch_all_due().await.unwrap();
    let sent = app.page(Some(&token), "/").await.text();
    assert!(sent.contains("data-label=\"Parti à\">08:00"), "{sent}");

    // The eve of the appointment, by the date picker's field.
    let eve = app.page(Some(&token), "/?jour=2026-03-04").await.text();
    assert!(eve.contains("Mercredi 4 mars 2026"), "{eve}");
    assert!(eve.contains("Rappel de rendez-vous"), "{eve}");
    assert!(eve.contains("href=\"/?jour=2026-03-05\""), "{eve}");
    assert!(eve.contains("href=\"/?jour=2026-03-03\""), "{eve}");
    let empty = app.page(Some(&token), "/?jour=2026-04-20").await.text();
    assert!(empty.contains("Aucun message prévu ce jour-là."), "{empty}");
    let bad = app.page(Some(&token), "/?jour=demain").await;
    assert_eq!(bad.status, 200);
    assert!(bad.text().contains("Date non reconnue"), "{}", bad.text());
    app.stop().await;
}

#[tokio::test]
async fn tasks_pick_practitioners_from_a_list_and_get_their_id_from_their_name() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;
    let form = app
        .page(Some(&token), "/programmateur/nouvelle")
        .await
        .text();
    assert!(form.contains("name=\"praticien.dr1\""), "{form}");
    assert!(form.contains(">Dr Martin</label>"), "{form}");
    assert!(!form.contains("name=\"id\""), "{form}");
    let fields = |label: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("label", label.to_string()),
            ("type", "missed_appointments".to_string()),
            ("first_date", "2026-03-02".to_string()),
            ("every", "day".to_string()),
            ("time", "18:00".to_string()),
            ("range_from", "-1".to_string()),
            ("range_to", "-1".to_string()),
            ("channel", "sms".to_string()),
            ("active", "on".to_string()),
            ("praticien.dr1", "on".to_string()),
        ]
    };
    for expected in ["absences-de-la-veille", "absences-de-la-veille-2"] {
        let pairs = fields("Absences de la veille");
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .form(Some(&token), "/programmateur", &form_body(&pairs))
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(
            r.header("location"),
            Some(format!("/programmateur/{expected}?ok=tache").as_str())
        );
    }
    let tasks = app.engine.list_tasks(&app.practice).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[0].definition.practitioners.as_deref(),
        Some(&["dr1".to_string()][..])
    );
    let edit = app
        .page(Some(&token), "/programmateur/absences-de-la-veille")
        .await
        .text();
    assert!(edit.contains("name=\"praticien.dr1\" checked"), "{edit}");
    app.stop().await;
}

#[tokio::test]
async fn the_appointment_box_finds_appointments_by_the_patients_name() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;
    let by_id = app.page(Some(&token), "/rendez-vous?id=a1").await;
    assert_eq!(by_id.status, 303);
    assert_eq!(by_id.header("location"), Some("/rendez-vous/a1"));
    let by_name = app.page(Some(&token), "/rendez-vous?id=dupont").await;
    assert_eq!(by_name.status, 200);
    let text = by_name.text();
    assert!(text.contains("Jeanne Dupont"), "{text}");
    assert!(
        text.contains("href=\"/rendez-vous/a1\">RDV du 05/03/2026 à 10:00 avec Dr Martin"),
        "{text}"
    );
    let none = app
        .page(Some(&token), "/rendez-vous?id=Zorglub")
        .await
        .text();
    assert!(
        none.contains("Aucun patient ni rendez-vous ne correspond"),
        "{none}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_patient_s_answer_shows_on_the_timeline_and_the_dashboard() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    for (path, body) in [
        (
            "/v1/practitioners/dr1",
            serde_json::json!({"name": "Dr Martin"}),
        ),
        (
            "/v1/patients/p1",
            serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org"}),
        ),
    ] {
        let r = app.json("PUT", path, &body).await;
        assert!(r.status < 300, "{}", r.text());
    }
    // Tomorrow and the day after: both within the dashboard's week.
    for (id, start) in [
        ("a1", "2026-03-03T10:00:00+01:00"),
        ("a2", "2026-03-04T10:00:00+01:00"),
    ] {
        let r = app
            .post_events(&serde_json::json!({
                "type": "appointment.booked", "id": id, "patient": "p1", "practitioner": "dr1",
                "start": start, "source": "staff"
            }))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let now = app.engine.now();
    app.engine
        .confirm_appointment(&app.practice, "a1", rappel_engine::AnswerChannel::Sms, now)
        .await
        .unwrap();
    app.engine
        .cancel_appointment_for_patient(
            &app.practice,
            "a2",
            rappel_engine::AnswerChannel::Link,
            now,
        )
        .await
        .unwrap();
    let a1 = app.page(Some(&token), "/rendez-vous/a1").await.text();
    assert!(a1.contains("Réponse du patient"), "{a1}");
    assert!(a1.contains("Présence confirmée par le patient le"), "{a1}");
    assert!(a1.contains("par SMS"), "{a1}");
    let a2 = app.page(Some(&token), "/rendez-vous/a2").await.text();
    assert!(a2.contains("par le patient"), "{a2}");
    assert!(a2.contains("Annulé par le patient le"), "{a2}");
    let dashboard = app.page(Some(&token), "/").await.text();
    assert!(dashboard.contains("Réponses des patients"), "{dashboard}");
    assert!(
        dashboard.contains("href=\"/rendez-vous/a1\""),
        "{dashboard}"
    );
    assert!(dashboard.contains("Annulé par le patient"), "{dashboard}");
    // The settings page offers the new options with their French labels.
    let settings = app.page(Some(&token), "/parametres").await.text();
    for label in [
        "Liens « Confirmer » et « Annuler » dans les rappels et confirmations",
        "Le patient peut annuler jusqu&#39;à (heures avant le rendez-vous)",
        "Téléphone du cabinet",
    ] {
        assert!(
            settings.contains(label) || settings.contains(&label.replace("&#39;", "'")),
            "{label} missing"
        );
    }
    app.stop().await;
}
