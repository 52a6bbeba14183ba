//! The scenario files (STYLE.md: the planner's acceptance tests), which the engine's suite runs
//! through `simulate` and the server's replays through the HTTP API.

use std::path::{Path, PathBuf};

/// (test name, path) of every scenario file: `project/NAME` for the project's own `scenarios/`
/// folder, `shared/NAME` for `../shared/scenarios/` when that folder is present; sorted.
pub fn scenario_files() -> Vec<(String, PathBuf)> {
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
