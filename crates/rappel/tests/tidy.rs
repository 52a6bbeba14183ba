//! Tidy checks over the workspace's sources (after rust-analyzer's `tidy.rs`): the architecture
//! invariants of ARCHITECTURE.md that the compiler cannot see, checked on every test run.
//!
//! - `domain` never reads the clock and does no I/O, and depends on no runtime, database or
//!   HTTP crate.
//! - Only `store` depends on sqlx or writes SQL: every other crate, its sources and its tests.
//! - The server and the binary reach the store only through the engine: no `Engine::store()`
//!   (public only with the engine's `test-support` feature, which only dev-dependencies enable),
//!   no store transaction, no store of their own; the binary does not even depend on
//!   `rappel-store` (its tests do).

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

/// The code of a file without its `#[cfg(test)]` module and comments: what ships.
fn shipped(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn offenders(dir: &str, patterns: &[&str], allowed: &[&str]) -> Vec<String> {
    let root = workspace();
    let mut found = Vec::new();
    for (path, text) in sources(&root.join(dir)) {
        let relative = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let code = shipped(&text);
        for pattern in patterns {
            if code.contains(pattern) && !allowed.iter().any(|a| relative.ends_with(a)) {
                found.push(format!("{relative}: `{pattern}`"));
            }
        }
    }
    found
}

#[test]
fn the_domain_reads_no_clock_and_does_no_io() {
    let found = offenders(
        "crates/domain/src",
        &[
            "Timestamp::now",
            "Zoned::now",
            "Date::today",
            "SystemTime",
            "Instant::now",
            "Utc::now",
            "Local::now",
            "std::fs",
            "std::net",
            "std::env",
            "tokio",
            "sqlx",
            "reqwest",
            "getrandom",
        ],
        &[],
    );
    assert!(
        found.is_empty(),
        "the domain must stay pure:\n{}",
        found.join("\n")
    );
    let manifest = std::fs::read_to_string(workspace().join("crates/domain/Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("");
    for forbidden in ["tokio", "sqlx", "reqwest", "axum", "lettre", "hyper"] {
        assert!(
            !dependencies
                .lines()
                .any(|l| l.trim_start().starts_with(forbidden)),
            "crates/domain depends on {forbidden}"
        );
    }
}

/// Every crate of the workspace but the store.
fn crates_but_the_store() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "store")
        .collect();
    found.sort();
    found
}

#[test]
fn only_the_store_speaks_sql() {
    let crates = crates_but_the_store();
    for krate in ["domain", "channels", "engine", "server", "rappel"] {
        assert!(
            crates.iter().any(|c| c == krate),
            "crates/{krate} is missing"
        );
    }
    for krate in &crates {
        let manifest =
            std::fs::read_to_string(workspace().join(format!("crates/{krate}/Cargo.toml")))
                .unwrap();
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with("sqlx")),
            "crates/{krate} depends on sqlx"
        );
        let found = offenders(
            &format!("crates/{krate}/src"),
            &[
                "sqlx::",
                "SELECT ",
                "INSERT INTO",
                "UPDATE notifications",
                "DELETE FROM",
            ],
            &[],
        );
        assert!(
            found.is_empty(),
            "SQL outside the store:\n{}",
            found.join("\n")
        );
        // Tests too: they reach the database through the store's API, never through sqlx.
        let tests = workspace().join(format!("crates/{krate}/tests"));
        if tests.exists() {
            let found = offenders(&format!("crates/{krate}/tests"), &["sqlx::"], &["tidy.rs"]);
            assert!(
                found.is_empty(),
                "sqlx outside the store:\n{}",
                found.join("\n")
            );
        }
    }
}

/// The `[dependencies]` section of a crate's manifest (not its dev-dependencies).
fn dependencies(krate: &str) -> String {
    let manifest =
        std::fs::read_to_string(workspace().join(format!("crates/{krate}/Cargo.toml"))).unwrap();
    manifest
        .split("\n[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("")
        .to_string()
}

/// `crates/test-support` reaches past every rule above (it opens stores, serves the router, binds
/// sockets) because it is test plumbing: it must never ship. It is unpublished, no crate depends
/// on it outside its dev-dependencies, and no `src/` names it (a `#[cfg(test)]` module would get
/// a second copy of its own crate's types through it: see the crate's lib.rs).
#[test]
fn the_test_support_crate_serves_tests_only() {
    let manifest =
        std::fs::read_to_string(workspace().join("crates/test-support/Cargo.toml")).unwrap();
    assert!(
        manifest.lines().any(|l| l.trim() == "publish = false"),
        "crates/test-support must say `publish = false`"
    );
    for krate in crates_but_the_store()
        .into_iter()
        .chain(["store".to_string()])
    {
        assert!(
            !dependencies(&krate).contains("rappel-test-support"),
            "crates/{krate} depends on rappel-test-support outside its dev-dependencies"
        );
        if krate == "test-support" {
            continue;
        }
        // Unit tests included: the whole text, not only what ships.
        for (path, text) in sources(&workspace().join(format!("crates/{krate}/src"))) {
            assert!(
                !text.contains("rappel_test_support"),
                "{}: test helpers in a crate's src/",
                path.display()
            );
        }
    }
}

#[test]
fn the_server_and_the_binary_go_through_the_engine() {
    let patterns = [".store()", "Store::", ".begin()", ".begin_read()"];
    let found = offenders("crates/server/src", &patterns, &[]);
    assert!(
        found.is_empty(),
        "the server reaches the store itself:\n{}",
        found.join("\n")
    );
    let found = offenders(
        "crates/rappel/src",
        &[&patterns[..], &["rappel_store"]].concat(),
        &[],
    );
    assert!(
        found.is_empty(),
        "the binary reaches the store itself:\n{}",
        found.join("\n")
    );
    assert!(
        !dependencies("rappel")
            .lines()
            .any(|l| l.trim_start().starts_with("rappel-store")),
        "the binary depends on rappel-store: it goes through the engine"
    );
    for krate in ["server", "rappel"] {
        assert!(
            !dependencies(krate).contains("test-support"),
            "crates/{krate} enables the engine's test-support outside its dev-dependencies"
        );
    }
}
