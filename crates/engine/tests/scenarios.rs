//! The scenario files are the planner's acceptance tests (STYLE.md): every file in the project's
//! own `scenarios/` folder, and in `../shared/scenarios/` when that folder is present, runs
//! through `simulate` and must satisfy its `[expect]` section.

use std::path::{Path, PathBuf};

use rappel_engine::scenario::{Scenario, check};
use rappel_engine::simulate::simulate;

fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [root.join("scenarios"), root.join("../shared/scenarios")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_file_meets_its_expectations() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario files found");
    eprintln!("checking {} scenario files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let source = std::fs::read_to_string(file).unwrap();
        let scenario = match Scenario::parse(&name, &source) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{e}"));
                continue;
            }
        };
        let expect_error = scenario
            .expect
            .as_ref()
            .and_then(|e| e.get("error"))
            .and_then(|v| v.as_str())
            .map(String::from);
        match (simulate(&name, &scenario).await, expect_error) {
            (Ok(output), None) => {
                let Some(expect) = &scenario.expect else {
                    continue;
                };
                for f in check(expect, &output) {
                    failures.push(format!(
                        "{name}: {f}\n  output: {}",
                        serde_json::to_string(&output).unwrap()
                    ));
                }
            }
            (Err(e), Some(want)) if e.reason.contains(&want) => {}
            (Err(e), _) => failures.push(format!("{e}")),
            (Ok(_), Some(want)) => failures.push(format!("{name}: expected the error `{want}`")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
