//! Conformance of the web interface's tables (users, sessions) and the dashboard's counts: every
//! test runs, unchanged, on a SQLite file, a private in-memory SQLite database and a fresh
//! PostgreSQL database (the harness of `common/mod.rs`).

use jiff::Timestamp;
use rappel_store::{PracticeRow, SessionRow, Store, UserRow};
use serde_json::Map;

mod common;
use common::*;

conformance!(
    logins_are_unique_across_practices_and_users_are_scoped,
    sessions_expire_and_end_with_their_user,
    sign_in_attempts_and_passwords_are_recorded,
    sign_in_attempts_are_counted_before_the_check_and_the_limit_sets_the_lock,
    a_new_password_ends_the_users_sessions,
    a_deleted_users_login_is_free_again_in_any_practice,
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

fn user(practice: &str, id: &str, login: &str) -> UserRow {
    UserRow {
        practice_id: practice.into(),
        id: id.into(),
        login: login.into(),
        name: format!("User {id}"),
        role: "admin".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        failed_attempts: 0,
        locked_until: None,
        created_at: at("2026-03-01T08:00:00Z"),
    }
}

async fn logins_are_unique_across_practices_and_users_are_scoped(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.insert_user(&user("a", "u1", "alice@a.test"))
            .await
            .unwrap()
    );
    assert!(
        tx.insert_user(&user("a", "u2", "bob@a.test"))
            .await
            .unwrap()
    );
    // The same login in another practice is refused: a sign-in must find one account.
    assert!(
        !tx.insert_user(&user("b", "u3", "alice@a.test"))
            .await
            .unwrap()
    );
    assert!(
        tx.insert_user(&user("b", "u1", "carol@b.test"))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let found = tx.user_by_login("alice@a.test").await.unwrap().unwrap();
    assert_eq!(found, user("a", "u1", "alice@a.test"));
    assert!(tx.user_by_login("nobody@a.test").await.unwrap().is_none());
    // Same id, two practices: each sees its own.
    assert_eq!(
        tx.user("b", "u1").await.unwrap().unwrap().login,
        "carol@b.test"
    );
    let logins: Vec<String> = tx
        .users("a")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect();
    assert_eq!(logins, vec!["alice@a.test", "bob@a.test"]);
    assert!(tx.delete_user("a", "u2").await.unwrap());
    assert!(!tx.delete_user("a", "u2").await.unwrap());
    assert!(tx.user("a", "u2").await.unwrap().is_none());
    tx.commit().await.unwrap();
}

async fn sessions_expire_and_end_with_their_user(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&user("a", "u1", "alice@a.test"))
        .await
        .unwrap();
    for (hash, expires) in [
        ("h1", "2026-03-01T20:00:00Z"),
        ("h2", "2026-03-01T09:00:00Z"),
    ] {
        tx.insert_session(&SessionRow {
            token_hash: hash.into(),
            practice_id: "a".into(),
            user_id: "u1".into(),
            csrf: format!("csrf-{hash}"),
            created_at: at("2026-03-01T08:00:00Z"),
            expires_at: at(expires),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let noon = at("2026-03-01T12:00:00Z");
    let mut tx = store.begin().await.unwrap();
    let live = tx.session("h1", noon).await.unwrap().unwrap();
    assert_eq!(live.csrf, "csrf-h1");
    assert_eq!(live.expires_at, at("2026-03-01T20:00:00Z"));
    assert!(tx.session("h2", noon).await.unwrap().is_none(), "expired");
    assert!(tx.session("h3", noon).await.unwrap().is_none(), "unknown");
    // Ending one session also sweeps the expired ones.
    tx.delete_session("nothing", noon).await.unwrap();
    assert!(
        tx.session("h2", at("2026-03-01T08:30:00Z"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(tx.session("h1", noon).await.unwrap().is_some());
    // Deleting the user ends their sessions.
    tx.delete_user("a", "u1").await.unwrap();
    assert!(tx.session("h1", noon).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

async fn sign_in_attempts_and_passwords_are_recorded(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&user("a", "u1", "alice@a.test"))
        .await
        .unwrap();
    let lock = at("2026-03-01T12:15:00Z");
    tx.set_user_attempts("a", "u1", 4, Some(lock))
        .await
        .unwrap();
    let locked = tx.user("a", "u1").await.unwrap().unwrap();
    assert_eq!(
        (locked.failed_attempts, locked.locked_until),
        (4, Some(lock))
    );
    assert!(
        tx.set_user_password("a", "u1", "$argon2id$new")
            .await
            .unwrap()
    );
    let reset = tx.user("a", "u1").await.unwrap().unwrap();
    assert_eq!(reset.password_hash, "$argon2id$new");
    assert_eq!((reset.failed_attempts, reset.locked_until), (0, None));
    assert!(!tx.set_user_password("a", "nobody", "x").await.unwrap());
    tx.commit().await.unwrap();
}

async fn sign_in_attempts_are_counted_before_the_check_and_the_limit_sets_the_lock(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&user("a", "u1", "alice@a.test"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let now = at("2026-03-01T12:00:00Z");
    let lock = at("2026-03-01T12:15:00Z");
    let mut tx = store.begin().await.unwrap();
    for expected in 1..=2 {
        let row = tx
            .count_sign_in_attempt("alice@a.test", now, 3, lock)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.failed_attempts, row.locked_until), (expected, None));
    }
    // The third attempt reaches the limit: the lock is set before its password is checked.
    let third = tx
        .count_sign_in_attempt("alice@a.test", now, 3, lock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((third.failed_attempts, third.locked_until), (3, Some(lock)));
    // While locked nothing is counted, and an unknown login finds nothing.
    assert!(
        tx.count_sign_in_attempt("alice@a.test", now, 3, lock)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tx.count_sign_in_attempt("nobody@a.test", now, 3, lock)
            .await
            .unwrap()
            .is_none()
    );
    let row = tx.user("a", "u1").await.unwrap().unwrap();
    assert_eq!((row.failed_attempts, row.locked_until), (3, Some(lock)));
    // Once the lock has run out, counting starts again from one.
    let later = at("2026-03-01T12:20:00Z");
    let row = tx
        .count_sign_in_attempt("alice@a.test", later, 3, at("2026-03-01T12:35:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.failed_attempts, row.locked_until), (1, None));
    tx.reset_user_attempts("a", "u1").await.unwrap();
    let row = tx.user("a", "u1").await.unwrap().unwrap();
    assert_eq!((row.failed_attempts, row.locked_until), (0, None));
    tx.commit().await.unwrap();
}

async fn a_new_password_ends_the_users_sessions(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&user("a", "u1", "alice@a.test"))
        .await
        .unwrap();
    tx.insert_user(&user("a", "u2", "bob@a.test"))
        .await
        .unwrap();
    for (hash, user_id) in [("h1", "u1"), ("h2", "u2")] {
        tx.insert_session(&SessionRow {
            token_hash: hash.into(),
            practice_id: "a".into(),
            user_id: user_id.into(),
            csrf: format!("csrf-{hash}"),
            created_at: at("2026-03-01T08:00:00Z"),
            expires_at: at("2026-03-01T20:00:00Z"),
        })
        .await
        .unwrap();
    }
    let noon = at("2026-03-01T12:00:00Z");
    assert!(
        tx.set_user_password("a", "u1", "$argon2id$new")
            .await
            .unwrap()
    );
    assert!(tx.session("h1", noon).await.unwrap().is_none());
    assert!(
        tx.session("h2", noon).await.unwrap().is_some(),
        "another user's session stays open"
    );
    tx.commit().await.unwrap();
}

/// The login's route (issue 18) goes with the user: another practice may then take the login,
/// and the first practice no longer finds it.
async fn a_deleted_users_login_is_free_again_in_any_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.insert_user(&user("a", "u1", "alice@a.test"))
            .await
            .unwrap()
    );
    assert!(
        !tx.insert_user(&user("b", "u9", "alice@a.test"))
            .await
            .unwrap()
    );
    assert!(tx.delete_user("a", "u1").await.unwrap());
    assert!(
        tx.user_by_login("alice@a.test").await.unwrap().is_none(),
        "gone with its user"
    );
    assert!(
        tx.insert_user(&user("b", "u9", "alice@a.test"))
            .await
            .unwrap()
    );
    let found = tx.user_by_login("alice@a.test").await.unwrap().unwrap();
    assert_eq!((found.practice_id.as_str(), found.id.as_str()), ("b", "u9"));
    tx.commit().await.unwrap();
}
