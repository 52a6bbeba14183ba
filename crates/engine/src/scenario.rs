//! Scenario files (SCENARIOS.md): parsing with file/line errors, and the `[expect]` checker.

use jiff::Timestamp;
use rappel_domain::event::Event;
use rappel_domain::facts::{Motive, Patient, Practitioner};
use rappel_domain::task::TaskDef;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::simulate::SimOutput;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub preset: String,
    #[serde(default = "paris")]
    pub timezone: String,
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub practitioners: Vec<Practitioner>,
    #[serde(default)]
    pub motives: Vec<Motive>,
    #[serde(default)]
    pub patients: Vec<Patient>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub tasks: Vec<TaskDef>,
    /// For checkers; `simulate` ignores it.
    #[serde(default)]
    pub expect: Option<toml::Table>,
    /// The source, to point at lines in later errors.
    #[serde(skip)]
    pub source: String,
}

fn paris() -> String {
    "Europe/Paris".into()
}

/// A malformed scenario: the file, the line and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl Scenario {
    pub fn parse(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let error = |line: usize, reason: String| ScenarioError {
            file: file.to_string(),
            line,
            reason,
        };
        let mut scenario: Scenario = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| line_of(source, s.start)).unwrap_or(1);
            error(line, e.message().trim().to_string())
        })?;
        scenario.source = source.to_string();
        if scenario.end <= scenario.start {
            return Err(error(
                scenario.line_of_key("end"),
                "`end` must come after `start`".into(),
            ));
        }
        let mut previous: Option<Timestamp> = None;
        for (i, event) in scenario.events.iter().enumerate() {
            let line = scenario.event_line(i);
            let Some(at) = event.at else {
                return Err(error(line, "every event needs `at`".into()));
            };
            if previous.is_some_and(|p| at < p) {
                return Err(error(line, "events must be in time order".into()));
            }
            if at < scenario.start {
                return Err(error(
                    line,
                    "this event happens before the scenario's `start`".into(),
                ));
            }
            previous = Some(at);
        }
        Ok(scenario)
    }

    /// The line of the `i`-th `[[events]]` table.
    pub fn event_line(&self, index: usize) -> usize {
        self.nth_header_line("[[events]]", index)
    }

    pub fn nth_header_line(&self, header: &str, index: usize) -> usize {
        let mut offset = 0;
        let mut seen = 0;
        for line in self.source.split_inclusive('\n') {
            if line.trim() == header {
                if seen == index {
                    return line_of(&self.source, offset);
                }
                seen += 1;
            }
            offset += line.len();
        }
        1
    }

    fn line_of_key(&self, key: &str) -> usize {
        self.source
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|i| i + 1)
            .unwrap_or(1)
    }

    pub fn error(&self, file: &str, line: usize, reason: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Checks a simulation's output against the scenario's `[expect]`; returns what does not hold.
pub fn check(expect: &toml::Table, output: &SimOutput) -> Vec<String> {
    let mut failures = Vec::new();
    let exact = expect
        .get("exact")
        .and_then(toml::Value::as_bool)
        .unwrap_or(true);
    let deliveries = json_rows(&output.deliveries);
    let suppressed = json_rows(&output.suppressed);
    let inbox = json_rows(&output.inbox);
    let mut matched = vec![false; deliveries.len()];
    for (i, want) in tables(expect, "deliveries").iter().enumerate() {
        let hits: Vec<usize> = deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| matches(want, d))
            .map(|(j, _)| j)
            .collect();
        if hits.len() != 1 {
            failures.push(format!(
                "expect.deliveries[{i}] {} matched {} deliveries (want exactly 1)",
                toml::to_string(want).unwrap_or_default().replace('\n', " "),
                hits.len()
            ));
        }
        for j in hits {
            matched[j] = true;
        }
    }
    if exact {
        for (d, m) in deliveries.iter().zip(&matched) {
            if !m {
                failures.push(format!("unexpected delivery {d}"));
            }
        }
    }
    for (i, want) in tables(expect, "suppressed").iter().enumerate() {
        if !suppressed.iter().any(|s| matches(want, s)) {
            failures.push(format!(
                "expect.suppressed[{i}] {} is missing",
                toml::to_string(want).unwrap_or_default().replace('\n', " ")
            ));
        }
    }
    for (i, want) in tables(expect, "inbox").iter().enumerate() {
        if !inbox.iter().any(|s| matches(want, s)) {
            failures.push(format!(
                "expect.inbox[{i}] {} is missing",
                toml::to_string(want).unwrap_or_default().replace('\n', " ")
            ));
        }
    }
    failures
}

fn json_rows<T: serde::Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter()
        .map(|r| serde_json::to_value(r).expect("rows serialize"))
        .collect()
}

fn tables(expect: &toml::Table, key: &str) -> Vec<toml::Table> {
    expect
        .get(key)
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
        .unwrap_or_default()
}

fn matches(want: &toml::Table, actual: &Value) -> bool {
    want.iter().all(|(key, value)| {
        if key == "between" {
            let Some([from, to]) = value
                .as_array()
                .and_then(|a| <&[toml::Value; 2]>::try_from(a.as_slice()).ok())
            else {
                return false;
            };
            let parse = |v: &toml::Value| v.as_str().and_then(|s| s.parse::<Timestamp>().ok());
            let at = actual
                .get("at")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Timestamp>().ok());
            return match (parse(from), parse(to), at) {
                (Some(f), Some(t), Some(at)) => at >= f && at < t,
                _ => false,
            };
        }
        let want: Value = serde_json::to_value(value).unwrap_or(Value::Null);
        actual.get(key) == Some(&want)
    })
}
