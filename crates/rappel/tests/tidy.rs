//! Tidy checks over the workspace's sources (after rust-analyzer's `tidy.rs`): the architecture
//! invariants of ARCHITECTURE.md that the compiler cannot see, checked on every test run.
//!
//! - `domain` never reads the clock and does no I/O, and depends on no runtime, database or
//!   HTTP crate.
//! - Only `store` depends on sqlx or writes SQL.
//! - The server opens no store transaction of its own; the binary neither, except in the places
//!   listed in [`BINARY_STORE_ACCESS`] (debt: the worker loop and the demo data move into the
//!   engine, issue 14).

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
            "SystemTime",
            "Instant::now",
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

#[test]
fn only_the_store_speaks_sql() {
    for krate in ["domain", "channels", "engine", "server", "rappel"] {
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
    }
}

/// Places of the binary that still reach the store directly. Each one is debt: the worker loop
/// (`main.rs` opens the store), the demo's data and the benchmarks'
/// throw-away databases. New code goes through the engine.
const BINARY_STORE_ACCESS: &[&str] = &[
    "crates/rappel/src/main.rs",
    "crates/rappel/src/demo.rs",
    "crates/rappel/src/bench_dispatch.rs",
    "crates/rappel/src/bench_isolation.rs",
];

#[test]
fn the_server_and_the_binary_go_through_the_engine() {
    let patterns = [".store()", "Store::connect", ".begin()", ".begin_read()"];
    let found = offenders("crates/server/src", &patterns, &[]);
    assert!(
        found.is_empty(),
        "the server reaches the store itself:\n{}",
        found.join("\n")
    );
    let found = offenders("crates/rappel/src", &patterns, BINARY_STORE_ACCESS);
    assert!(
        found.is_empty(),
        "the binary reaches the store itself:\n{}",
        found.join("\n")
    );
}
