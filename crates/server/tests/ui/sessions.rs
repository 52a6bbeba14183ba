//! Sessions, passwords, roles, CSRF and tenants in the web interface.

use super::*;

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
