//! Sign-in hardening (issue 13): parallel attempts, lockouts, global limits, hostile redirects.

use super::*;

/// A sign-in POST from the local address `source` (any of 127.0.0.0/8), on its own connection.
pub(super) async fn sign_in_from(source: IpAddr, server: SocketAddr, body: &str) -> Reply {
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
pub(super) async fn parallel_sign_ins(
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

pub(super) fn statuses(replies: &[Reply]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for reply in replies {
        *counts.entry(reply.status).or_insert(0) += 1;
    }
    counts
}

pub(super) const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

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
