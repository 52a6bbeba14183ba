//! Scenario files (SCENARIOS.md): parsing with file/line errors, and the `[expect]` checker.

use jiff::Timestamp;
use rappel_domain::event::Event;
use rappel_domain::facts::{Motive, Patient, Practitioner};
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::task::TaskDef;
use serde::{Deserialize, Serialize};
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
    pub events: Vec<ScenarioEvent>,
    #[serde(default)]
    pub tasks: Vec<TaskDef>,
    /// For checkers; `simulate` ignores it.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// The source, to point at lines in later errors.
    #[serde(skip)]
    pub source: String,
}

/// One `[[events]]` entry: what the practice software tells Rappel (an [`Event`], exactly as
/// `POST /v1/events` takes it), or what a patient does (issue 16), which no API key can say.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScenarioEvent {
    Practice(Event),
    Patient(PatientEvent),
}

/// What a patient does in a scenario. `patient.link`: the patient opens the link of the last
/// message that carried one about `appointment` and confirms or cancels there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum PatientEvent {
    #[serde(rename = "patient.link")]
    Link {
        at: Timestamp,
        appointment: String,
        action: LinkActionName,
    },
}

/// The patient's choice on the page of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkActionName {
    Confirm,
    Cancel,
}

/// The event types a patient's answer adds to those of [`rappel_domain::event::EVENT_TYPES`].
pub const PATIENT_EVENT_TYPES: &[&str] = &["patient.link"];

impl ScenarioEvent {
    pub fn at(&self) -> Option<Timestamp> {
        match self {
            ScenarioEvent::Practice(event) => event.at,
            ScenarioEvent::Patient(PatientEvent::Link { at, .. }) => Some(*at),
        }
    }
}

impl<'de> Deserialize<'de> for ScenarioEvent {
    /// By its `type`: a patient's event, or else the practice software's, so that each is
    /// refused with its own words (an unknown field, a misspelt action or event type).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let patient = value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| PATIENT_EVENT_TYPES.contains(&t));
        if patient {
            serde_json::from_value(value)
                .map(ScenarioEvent::Patient)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(ScenarioEvent::Practice)
                .map_err(D::Error::custom)
        }
    }
}

/// The token of the `/r/` link in the last message that `recorder` handed off about
/// `appointment` (its identity key names it: `a:APPT/…`, or `p:…/FIRST-APPT` for an SMS about
/// one appointment), if that message carried one.
pub fn last_link_token(recorder: &rappel_channels::Recorder, appointment: &str) -> Option<String> {
    recorder.sent().into_iter().rev().find_map(|recorded| {
        let key = &recorded.message.id;
        let about = match key.split_once(':') {
            Some(("a", rest)) => rest.split('/').next() == Some(appointment),
            Some(("p", rest)) => rest.rsplit('/').next() == Some(appointment),
            _ => false,
        };
        if !about {
            return None;
        }
        let text = &recorded.message.text;
        let start = text.find("/r/")? + 3;
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (token.len() == 16).then_some(token)
    })
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
            let Some(at) = event.at() else {
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

/// A scenario's `[expect]` (SCENARIOS.md), typed so that a misspelt key or value
/// (`[[expect.suppresed]]`, `chanel = "sms"`, `kind = "remider"`) is refused with its line
/// instead of silently checking nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Deliveries not listed are an error (default true).
    #[serde(default = "yes")]
    pub exact: bool,
    /// The scenario must be refused with an error containing this text.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub deliveries: Vec<ExpectedMessage>,
    #[serde(default)]
    pub suppressed: Vec<ExpectedMessage>,
    #[serde(default)]
    pub inbox: Vec<ExpectedInbox>,
    /// What the patients' answers (`patient.link`) did.
    #[serde(default)]
    pub answers: Vec<ExpectedAnswer>,
}

/// One expected answer of a patient: every field given must match.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LinkActionName>,
    /// `done`, `already_done`, `too_late`, `no_longer_booked`, `moved`, `past`, `unknown`, or
    /// `no_link` (no message carried a link about the appointment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<AnswerOutcomeName>,
}

/// What an answer did, as `simulate --json` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerOutcomeName {
    Done,
    AlreadyDone,
    TooLate,
    NoLongerBooked,
    Moved,
    Past,
    Unknown,
    NoLink,
}

fn yes() -> bool {
    true
}

/// One expected delivery or suppression: every field given must match.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointments: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_resend: Option<bool>,
    /// Suppressions only: the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// `[from, to)`: the instant lies in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<[Timestamp; 2]>,
}

/// The practice's boxes: the two of the policy, and « Messages reçus » (what patients wrote
/// back by SMS that a person must read).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InboxName {
    ToVerify,
    Notifications,
    Received,
}

/// One expected entry of a box.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedInbox {
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<[Timestamp; 2]>,
}

/// Checks a simulation's output against the scenario's `[expect]`; returns what does not hold.
pub fn check(expect: &Expect, output: &SimOutput) -> Vec<String> {
    let mut failures = Vec::new();
    let deliveries = json_rows(&output.deliveries);
    let suppressed = json_rows(&output.suppressed);
    let inbox = json_rows(&output.inbox);
    let mut matched = vec![false; deliveries.len()];
    for (i, want) in expect.deliveries.iter().enumerate() {
        let want = Wanted::new(want, want.between);
        let hits: Vec<usize> = deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| want.matches(d))
            .map(|(j, _)| j)
            .collect();
        if hits.len() != 1 {
            failures.push(format!(
                "expect.deliveries[{i}] {} matched {} deliveries (want exactly 1)",
                want.fields,
                hits.len()
            ));
        }
        for j in hits {
            matched[j] = true;
        }
    }
    if expect.exact {
        for (d, m) in deliveries.iter().zip(&matched) {
            if !m {
                failures.push(format!("unexpected delivery {d}"));
            }
        }
    }
    for (i, want) in expect.suppressed.iter().enumerate() {
        let want = Wanted::new(want, want.between);
        if !suppressed.iter().any(|s| want.matches(s)) {
            failures.push(format!("expect.suppressed[{i}] {} is missing", want.fields));
        }
    }
    let answers = json_rows(&output.answers);
    for (i, want) in expect.answers.iter().enumerate() {
        let want = Wanted::new(want, None);
        if !answers.iter().any(|a| want.matches(a)) {
            failures.push(format!("expect.answers[{i}] {} is missing", want.fields));
        }
    }
    for (i, want) in expect.inbox.iter().enumerate() {
        let want = Wanted::new(want, want.between);
        if !inbox.iter().any(|s| want.matches(s)) {
            failures.push(format!("expect.inbox[{i}] {} is missing", want.fields));
        }
    }
    failures
}

fn json_rows<T: serde::Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter()
        .map(|r| serde_json::to_value(r).expect("rows serialize"))
        .collect()
}

/// An expectation as the output's JSON fields it must equal, and the span its `at` must lie in.
struct Wanted {
    fields: Value,
    between: Option<[Timestamp; 2]>,
}

impl Wanted {
    fn new(want: &impl Serialize, between: Option<[Timestamp; 2]>) -> Wanted {
        let mut fields = serde_json::to_value(want).expect("expectations serialize");
        if let Some(map) = fields.as_object_mut() {
            map.remove("between");
        }
        Wanted { fields, between }
    }

    fn matches(&self, actual: &Value) -> bool {
        if let Some([from, to]) = self.between {
            let at = actual
                .get("at")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Timestamp>().ok());
            if !at.is_some_and(|at| at >= from && at < to) {
                return false;
            }
        }
        self.fields
            .as_object()
            .is_none_or(|m| m.iter().all(|(key, want)| actual.get(key) == Some(want)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "preset = \"doctolib\"\nstart = \"2026-03-01T08:00:00+01:00\"\nend = \"2026-03-02T08:00:00+01:00\"\n";

    fn parse(expect: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse("x.toml", &format!("{HEAD}{expect}"))
    }

    #[test]
    fn a_misspelt_expectation_table_is_refused_with_its_line() {
        let error =
            parse("\n[expect]\nexact = true\n\n[[expect.suppresed]]\nkind = \"reminder\"\n")
                .unwrap_err();
        assert_eq!(error.file, "x.toml");
        assert_eq!(error.line, 8, "{error}");
        assert!(error.reason.contains("suppresed"), "{error}");
    }

    #[test]
    fn a_misspelt_field_or_value_in_an_expectation_is_refused() {
        let field = parse("[[expect.deliveries]]\nchanel = \"sms\"\n").unwrap_err();
        assert!(field.reason.contains("chanel"), "{field}");
        assert_eq!(field.line, 5, "{field}");
        let value = parse("[[expect.deliveries]]\nkind = \"remider\"\n").unwrap_err();
        assert!(value.reason.contains("remider"), "{value}");
        let reason = parse("[[expect.suppressed]]\nreason = \"quota\"\n").unwrap_err();
        assert!(reason.reason.contains("quota"), "{reason}");
        let between = parse("[[expect.deliveries]]\nbetween = [\"2026-03-01T08:00:00+01:00\"]\n")
            .unwrap_err();
        assert_eq!(between.line, 5, "{between}");
    }

    #[test]
    fn a_typed_expectation_matches_the_fields_it_gives() {
        let scenario = parse(
            "[[expect.deliveries]]\nchannel = \"sms\"\nkind = \"reminder\"\nbetween = [\"2026-03-01T08:00:00+01:00\", \"2026-03-01T09:00:00+01:00\"]\n",
        )
        .unwrap();
        let expect = scenario.expect.unwrap();
        assert!(expect.exact);
        let want = &expect.deliveries[0];
        let wanted = Wanted::new(want, want.between);
        let row = |at: &str, channel: &str| serde_json::json!({"at": at, "channel": channel, "kind": "reminder", "recipient": "patient:p1"});
        assert!(wanted.matches(&row("2026-03-01T08:30:00+01:00", "sms")));
        assert!(!wanted.matches(&row("2026-03-01T08:30:00+01:00", "email")));
        assert!(!wanted.matches(&row("2026-03-01T09:00:00+01:00", "sms")));
    }
}
