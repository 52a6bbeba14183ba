//! The scenario files are the planner's acceptance tests (STYLE.md): every file in the project's
//! own `scenarios/` folder, and in `../shared/scenarios/` when that folder is present, runs
//! through `simulate` and must satisfy its `[expect]` section. Each file is its own test, named
//! by its folder and file, so one failing file hides no other
//! (`cargo test -p rappel-engine --test scenarios -- doctolib_` runs some of them).

use std::path::Path;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use rappel_engine::scenario::{Scenario, check};
use rappel_engine::simulate::simulate;
use rappel_test_support::scenarios::scenario_files;

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
