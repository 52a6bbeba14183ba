//! `rappel practice set`: the operator sets a practice's plan and SMS quota (issue 13, row 7),
//! which the practice's own key and web interface cannot change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "rappel-practice-set-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary in `dir`, on the SQLite database there.
fn rappel(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rappel"))
        .current_dir(dir)
        .env(
            "RAPPEL_DATABASE_URL",
            format!("sqlite://{}", dir.join("rappel.db").display()),
        )
        .env("RAPPEL_OUTBOX_DIR", dir.join("outbox"))
        .env("RAPPEL_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_operator_sets_the_plan_and_the_quota_and_bad_values_are_named() {
    let dir = temp_dir();
    assert!(rappel(&dir, &["migrate"]).status.success());
    // `rappel migrate` closes its connections: the database file alone is the whole database,
    // with no write-ahead log left beside it.
    assert!(dir.join("rappel.db").exists());
    for leftover in ["rappel.db-wal", "rappel.db-shm"] {
        assert!(!dir.join(leftover).exists(), "{leftover} left behind");
    }
    let created = json(&rappel(
        &dir,
        &["practice", "create", "Cabinet M", "--preset", "maddie"],
    ));
    let id = created["id"].as_str().unwrap();

    let set = json(&rappel(
        &dir,
        &[
            "practice",
            "set",
            "--id",
            id,
            "--plan",
            "essentiel",
            "--sms-quota",
            "120",
        ],
    ));
    assert_eq!(
        set,
        serde_json::json!({"plan": "essentiel", "sms_quota_per_month": 120})
    );
    // Stored: a later change of the quota alone keeps the plan.
    let set = json(&rappel(
        &dir,
        &["practice", "set", "--id", id, "--sms-quota", "none"],
    ));
    assert_eq!(
        set,
        serde_json::json!({"plan": "essentiel", "sms_quota_per_month": null})
    );

    let bad_plan = rappel(&dir, &["practice", "set", "--id", id, "--plan", "gold"]);
    assert_eq!(bad_plan.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_plan.stderr).contains("plan"),
        "{}",
        String::from_utf8_lossy(&bad_plan.stderr)
    );
    let bad_quota = rappel(
        &dir,
        &["practice", "set", "--id", id, "--sms-quota", "lots"],
    );
    assert_eq!(bad_quota.status.code(), Some(2));
    let unknown = rappel(&dir, &["practice", "set", "--id", "nope", "--plan", "pro"]);
    assert_eq!(unknown.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
