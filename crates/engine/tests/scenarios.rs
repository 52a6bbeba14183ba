//! The scenario files are the planner's acceptance tests (STYLE.md): every file in the project's
//! own `scenarios/` folder, and in `../shared/scenarios/` when that folder is present, runs
//! through `simulate` and must satisfy its `[expect]` section. Each file is its own test, named
//! by its folder and file, so one failing file hides no other
//! (`cargo test -p rappel-engine --test scenarios -- doctolib_` runs some of them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use rappel_engine::scenario::{Scenario, check};
use rappel_engine::simulate::simulate;

/// (test name, path) of every scenario file: `project/NAME` and `shared/NAME`.
fn scenario_files() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for (label, dir) in [
        ("project", root.join("scenarios")),
        ("shared", root.join("../shared/scenarios")),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                files.push((format!("{label}/{stem}"), path));
            }
        }
    }
    files.sort();
    files
}

fn run(file: &Path) -> Result<(), Failed> {
    let name = file.display().to_string();
    let source = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    let scenario = Scenario::parse(&name, &source).map_err(|e| e.to_string())?;
    let expect_error = scenario.expect.as_ref().and_then(|e| e.error.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match (runtime.block_on(simulate(&name, &scenario)), expect_error) {
        (Ok(output), None) => {
            let Some(expect) = &scenario.expect else {
                return Ok(());
            };
            let failures = check(expect, &output);
            if failures.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{name}:\n  {}\n  output: {}",
                    failures.join("\n  "),
                    serde_json::to_string(&output).unwrap_or_default()
                )
                .into())
            }
        }
        (Err(e), Some(want)) if e.reason.contains(&want) => Ok(()),
        (Err(e), _) => Err(e.to_string().into()),
        (Ok(_), Some(want)) => Err(format!("{name}: expected the error `{want}`").into()),
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario files found");
    let trials = files
        .into_iter()
        .map(|(name, path)| Trial::test(name, move || run(&path)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
