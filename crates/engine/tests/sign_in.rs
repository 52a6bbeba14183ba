//! The sign-in lock under parallel guesses, on SQLite and on PostgreSQL with two engines (two
//! `rappel serve` processes) sharing the database: each attempt is counted before its password
//! is checked, so forty wrong passwords at once lock the account and the right one is then
//! refused (issue 13, row 1). The HTTP test of the same rule is in the server's `tests/ui/sign_in_limits.rs`.

use rappel_engine::{Engine, Role, SignIn, SimClock};
use rappel_store::Store;
use rappel_test_support::engine::{engine_on, with_postgres};
use serde_json::Map;

const PASSWORD: &str = "un-mot-de-passe-solide";

/// Forty wrong passwords at once, spread over `engines`; then the right one.
async fn forty_parallel_guesses_then_the_right_password(engines: &[Engine]) {
    let practice = engines[0]
        .create_practice("Cabinet", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    engines[0]
        .create_user(
            &practice.id,
            "alice@cabinet.test",
            "Alice",
            Role::Admin,
            PASSWORD,
        )
        .await
        .unwrap();
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..40 {
        let engine = engines[n % engines.len()].clone();
        guesses.spawn(async move {
            engine
                .sign_in("alice@cabinet.test", &format!("guess-number-{n}"))
                .await
                .unwrap()
        });
    }
    let (mut refused, mut locked) = (0, 0);
    while let Some(outcome) = guesses.join_next().await {
        match outcome.unwrap() {
            SignIn::Refused => refused += 1,
            SignIn::Locked { .. } => locked += 1,
            SignIn::Accepted { .. } => panic!("a wrong password was accepted"),
        }
    }
    assert_eq!((refused, locked), (4, 36), "five guesses, no more");
    for engine in engines {
        let right = engine
            .sign_in("alice@cabinet.test", PASSWORD)
            .await
            .unwrap();
        assert!(
            matches!(right, SignIn::Locked { .. }),
            "the right password is refused while locked: {right:?}"
        );
    }
}

fn clock() -> SimClock {
    SimClock::new("2026-03-02T08:00:00+01:00".parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_wrong_passwords_lock_the_account_on_sqlite() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    forty_parallel_guesses_then_the_right_password(&[engine_on(store, &clock())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_wrong_passwords_over_two_engines_lock_the_account_on_postgresql() {
    with_postgres("rappel_test_sign_in", |url| async move {
        let clock = clock();
        let a = Store::connect(&url).await.unwrap();
        a.migrate().await.unwrap();
        let b = Store::connect(&url).await.unwrap();
        forty_parallel_guesses_then_the_right_password(&[
            engine_on(a, &clock),
            engine_on(b, &clock),
        ])
        .await;
    })
    .await;
}
