//! `rappel simulate`: a scenario run through the real engine — the same planner, reconciliation,
//! dispatch decisions, quota and tasks as the server — on a private in-memory SQLite store, a
//! simulated clock and channels that accept every message (SCENARIOS.md).

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rappel_channels::Recorder;
use rappel_store::{NotificationFilter, Status, Store};
use serde::Serialize;

use crate::answers::{LinkAction, LinkPage};
use crate::scenario::{
    AnswerOutcomeName, LinkActionName, PatientEvent, Scenario, ScenarioError, ScenarioEvent,
    last_link_token,
};
use crate::timeline::format_instant;
use crate::{Clock, Engine, EngineConfig, EngineError, SimClock, Transports};

const PRACTICE: &str = "sim";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimDelivery {
    pub at: String,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub appointments: Vec<String>,
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub auto_resend: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimSuppressed {
    pub at: String,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub appointments: Vec<String>,
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimInbox {
    pub at: String,
    #[serde(rename = "box")]
    pub inbox: String,
    pub document: Option<String>,
    pub title: String,
    pub text: String,
}

/// A message still planned at the end of the simulated period (`rappel explain` shows them).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimPlanned {
    pub at: String,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub appointments: Vec<String>,
    pub document: Option<String>,
}

/// What a patient's answer (`patient.link`) did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimAnswer {
    pub at: String,
    pub appointment: String,
    pub action: LinkActionName,
    pub outcome: AnswerOutcomeName,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SimOutput {
    pub deliveries: Vec<SimDelivery>,
    pub suppressed: Vec<SimSuppressed>,
    pub inbox: Vec<SimInbox>,
    /// The patients' answers, in time order (none: the key is left out).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub answers: Vec<SimAnswer>,
    #[serde(skip)]
    pub planned: Vec<SimPlanned>,
    #[serde(skip)]
    pub timezone: Option<String>,
}

/// Runs a scenario. Errors point at the scenario's lines (`file:line: reason`).
pub async fn simulate(file: &str, scenario: &Scenario) -> Result<SimOutput, ScenarioError> {
    let fail = |line: usize, e: EngineError| scenario.error(file, line, e.to_string());
    let internal = |e: EngineError| scenario.error(file, 1, format!("internal error: {e}"));
    let store = Store::connect("sqlite::memory:")
        .await
        .map_err(|e| internal(e.into()))?;
    store.migrate().await.map_err(|e| internal(e.into()))?;
    let clock = SimClock::new(scenario.start);
    let recorder = Recorder::default();
    recorder.set_now(scenario.start);
    let engine = Engine::new(
        store.clone(),
        Arc::new(clock.clone()),
        Transports::all(Arc::new(recorder.clone())),
        EngineConfig {
            public_url: "https://rappel.example".into(),
            worker_id: "simulate".into(),
            ..EngineConfig::default()
        },
    );
    engine
        .create_practice_with_id(
            PRACTICE,
            "Cabinet (simulation)",
            &scenario.preset,
            None,
            &scenario.timezone,
            scenario.settings.clone(),
        )
        .await
        .map_err(|e| {
            let key = match &e {
                EngineError::Invalid { field, .. } if field.starts_with("settings") => "[settings]",
                EngineError::Invalid { field, .. } if field == "timezone" => "timezone",
                _ => "preset",
            };
            fail(line_of_text(&scenario.source, key), e)
        })?;
    for (i, p) in scenario.practitioners.iter().enumerate() {
        engine
            .put_practitioner(PRACTICE, p)
            .await
            .map_err(|e| fail(scenario.nth_header_line("[[practitioners]]", i), e))?;
    }
    for (i, m) in scenario.motives.iter().enumerate() {
        engine
            .put_motive(PRACTICE, m)
            .await
            .map_err(|e| fail(scenario.nth_header_line("[[motives]]", i), e))?;
    }
    for (i, p) in scenario.patients.iter().enumerate() {
        engine
            .put_patient(PRACTICE, p)
            .await
            .map_err(|e| fail(scenario.nth_header_line("[[patients]]", i), e))?;
    }
    for (i, t) in scenario.tasks.iter().enumerate() {
        engine
            .put_task(PRACTICE, t)
            .await
            .map_err(|e| fail(scenario.nth_header_line("[[tasks]]", i), e))?;
    }
    let mut answers = Vec::new();
    let tz =
        TimeZone::get(&scenario.timezone).map_err(|e| scenario.error(file, 1, e.to_string()))?;
    drive(
        &engine,
        &clock,
        &recorder,
        &scenario.events,
        scenario.end,
        async |index, event| match event {
            ScenarioEvent::Practice(event) => {
                let done = match &event.body {
                    // A patient's SMS reply: the same path as one from a provider's webhook.
                    rappel_domain::event::EventBody::PatientReplied { patient, text } => engine
                        .simulated_reply(PRACTICE, patient, text, index)
                        .await
                        .map(|_| ()),
                    _ => engine
                        .ingest(PRACTICE, std::slice::from_ref(event))
                        .await
                        .map(|_| ()),
                };
                done.map_err(|e| Stop::Scenario(fail(scenario.event_line(index), e)))
            }
            ScenarioEvent::Patient(PatientEvent::Link {
                at,
                appointment,
                action,
            }) => {
                let outcome = match last_link_token(&recorder, appointment) {
                    None => AnswerOutcomeName::NoLink,
                    Some(token) => {
                        let choice = match action {
                            LinkActionName::Confirm => LinkAction::Confirm,
                            LinkActionName::Cancel => LinkAction::Cancel,
                        };
                        outcome_name(&engine.answer_by_link(&token, choice).await?)
                    }
                };
                answers.push(SimAnswer {
                    at: format_instant(*at, &tz),
                    appointment: appointment.clone(),
                    action: *action,
                    outcome,
                });
                Ok(())
            }
        },
    )
    .await
    .map_err(|stop| match stop {
        Stop::Scenario(e) => e,
        Stop::Engine(e) => internal(e),
    })?;
    let output = collect(&engine, PRACTICE, &tz).await.map_err(internal)?;
    Ok(SimOutput {
        timezone: Some(scenario.timezone.clone()),
        answers,
        ..output
    })
}

/// The name `simulate --json` gives what the page of a link said after an answer.
pub fn outcome_name(page: &LinkPage) -> AnswerOutcomeName {
    match page {
        LinkPage::Answered { already: false, .. } => AnswerOutcomeName::Done,
        LinkPage::Answered { already: true, .. } => AnswerOutcomeName::AlreadyDone,
        LinkPage::TooLate(_) => AnswerOutcomeName::TooLate,
        LinkPage::NoLongerBooked { .. } => AnswerOutcomeName::NoLongerBooked,
        LinkPage::Moved { .. } => AnswerOutcomeName::Moved,
        LinkPage::Past { .. } => AnswerOutcomeName::Past,
        LinkPage::Open(_) | LinkPage::Unknown => AnswerOutcomeName::Unknown,
    }
}

/// What every event of a scenario has: its instant.
pub trait Timed {
    fn at(&self) -> Option<Timestamp>;
}

impl Timed for rappel_domain::event::Event {
    fn at(&self) -> Option<Timestamp> {
        self.at
    }
}

impl Timed for ScenarioEvent {
    fn at(&self) -> Option<Timestamp> {
        ScenarioEvent::at(self)
    }
}

fn line_of_text(source: &str, needle: &str) -> usize {
    source
        .lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Why the simulated clock stopped early.
enum Stop {
    Scenario(ScenarioError),
    Engine(EngineError),
}

impl From<EngineError> for Stop {
    fn from(e: EngineError) -> Stop {
        Stop::Engine(e)
    }
}

/// Runs the simulated clock from its current instant to `end`: at each next instant (an event,
/// a due notification, a task occurrence) it ingests the events due then through `ingest`, runs
/// the due tasks and dispatches what is due. The server's tests drive this same loop with the
/// events posted over HTTP.
pub async fn drive<E, T>(
    engine: &Engine,
    clock: &SimClock,
    recorder: &Recorder,
    events: &[T],
    end: Timestamp,
    mut ingest: impl AsyncFnMut(usize, &T) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<EngineError>,
    T: Timed,
{
    let mut next_event = 0;
    let mut steps = 0u64;
    loop {
        let now = clock.now();
        let event_at = events.get(next_event).and_then(Timed::at);
        let due = engine
            .store()
            .next_due()
            .await
            .map_err(|e| E::from(e.into()))?;
        let task = engine.next_task_due().await?;
        let Some(next) = [event_at, due, task].into_iter().flatten().min() else {
            break;
        };
        if next >= end {
            break;
        }
        let next = next.max(now);
        clock.set(next);
        recorder.set_now(next);
        while let Some(event) = events.get(next_event)
            && event.at().is_some_and(|at| at <= next)
        {
            ingest(next_event, event).await?;
            next_event += 1;
        }
        engine.run_due_tasks().await?;
        engine.dispatch_all_due().await?;
        steps += 1;
        if steps > 1_000_000 {
            return Err(E::from(EngineError::invalid(
                "simulation",
                "the simulated clock does not advance",
            )));
        }
    }
    Ok(())
}

/// What a practice's queue and boxes hold, in the shape of `simulate --json`.
pub async fn collect(
    engine: &Engine,
    practice_id: &str,
    tz: &TimeZone,
) -> Result<SimOutput, EngineError> {
    let mut tx = engine.store().begin().await?;
    let rows = tx
        .list_notifications(
            practice_id,
            &NotificationFilter {
                limit: i64::MAX / 2,
                ..NotificationFilter::default()
            },
        )
        .await?;
    let inbox = tx.inbox(practice_id, None, true).await?;
    // What patients wrote that went to the « Messages reçus » box (not handled on receipt).
    let received: Vec<_> = tx
        .received_messages(practice_id, true, i64::MAX / 2)
        .await?
        .into_iter()
        .filter(|m| m.handled_at != Some(m.received_at))
        .collect();
    tx.commit().await?;
    let mut out = SimOutput::default();
    let mut deliveries: Vec<(Timestamp, String, SimDelivery)> = Vec::new();
    let mut suppressed: Vec<(Timestamp, String, SimSuppressed)> = Vec::new();
    let mut planned: Vec<(Timestamp, String, SimPlanned)> = Vec::new();
    for row in rows {
        let at = row.decided_at.unwrap_or(row.due_at);
        match row.status {
            Status::Sent | Status::Delivered | Status::Failed
                if row.channel != rappel_domain::notification::Channel::Inbox
                    && row.rendered.is_some() =>
            {
                deliveries.push((
                    at,
                    row.key.clone(),
                    SimDelivery {
                        at: format_instant(at, tz),
                        channel: row.channel.to_string(),
                        recipient: row.recipient.to_string(),
                        kind: sim_kind(&row),
                        appointments: row.appointments.clone(),
                        document: row.document.clone(),
                        task: row.task.clone(),
                        auto_resend: row.auto_resend,
                    },
                ));
            }
            Status::Suppressed => {
                suppressed.push((
                    at,
                    row.key.clone(),
                    SimSuppressed {
                        at: format_instant(at, tz),
                        channel: row.channel.to_string(),
                        recipient: row.recipient.to_string(),
                        kind: sim_kind(&row),
                        appointments: row.appointments.clone(),
                        document: row.document.clone(),
                        task: row.task.clone(),
                        reason: row.reason.map(|r| r.to_string()).unwrap_or_default(),
                    },
                ));
            }
            Status::Pending | Status::Sending => {
                planned.push((
                    row.due_at,
                    row.key.clone(),
                    SimPlanned {
                        at: format_instant(row.due_at, tz),
                        channel: row.channel.to_string(),
                        recipient: row.recipient.to_string(),
                        kind: sim_kind(&row),
                        appointments: row.appointments.clone(),
                        document: row.document.clone(),
                    },
                ));
            }
            _ => {}
        }
    }
    deliveries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    suppressed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    planned.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.deliveries = deliveries.into_iter().map(|(_, _, d)| d).collect();
    out.suppressed = suppressed.into_iter().map(|(_, _, d)| d).collect();
    out.planned = planned.into_iter().map(|(_, _, d)| d).collect();
    let mut inbox = inbox;
    inbox.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    out.inbox = inbox
        .into_iter()
        .map(|e| SimInbox {
            at: format_instant(e.created_at, tz),
            inbox: e.inbox,
            document: e.document,
            title: e.title,
            text: e.text,
        })
        .collect();
    let mut received = received;
    received.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    out.inbox.extend(received.into_iter().map(|m| SimInbox {
        at: format_instant(m.received_at, tz),
        inbox: "received".into(),
        document: None,
        title: "Message reçu".into(),
        text: m.body,
    }));
    Ok(out)
}

/// A delivery's kind in the output: `reply` for the answer to a patient's SMS (two_way.rs),
/// which no planner kind describes.
fn sim_kind(row: &rappel_store::NotificationRow) -> String {
    if row.rule == crate::two_way::REPLY_RULE {
        "reply".into()
    } else {
        row.kind.to_string()
    }
}

/// The human-readable timeline, one line per entry, in French for a practice manager.
pub fn human(output: &SimOutput, explain: bool) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    let subject = |apps: &[String], doc: &Option<String>| {
        let mut s = String::new();
        if !apps.is_empty() {
            s.push_str(&format!(" RDV {}", apps.join(", ")));
        }
        if let Some(d) = doc {
            s.push_str(&format!(" document {d}"));
        }
        s
    };
    for d in &output.deliveries {
        let resend = if d.auto_resend {
            " (renvoi automatique)"
        } else {
            ""
        };
        lines.push((
            d.at.clone(),
            format!(
                "{}  envoyé      {:<6} → {:<18} {}{}{}",
                d.at,
                d.channel,
                d.recipient,
                d.kind,
                subject(&d.appointments, &d.document),
                resend
            ),
        ));
    }
    for s in &output.suppressed {
        let reason = rappel_domain::notification::Reason::parse(&s.reason)
            .map(|r| r.french())
            .unwrap_or("");
        lines.push((
            s.at.clone(),
            format!(
                "{}  NON envoyé  {:<6} → {:<18} {}{} : {} ({})",
                s.at,
                s.channel,
                s.recipient,
                s.kind,
                subject(&s.appointments, &s.document),
                s.reason,
                reason
            ),
        ));
    }
    for a in &output.answers {
        let action = match a.action {
            LinkActionName::Confirm => "confirme",
            LinkActionName::Cancel => "annule",
        };
        let outcome = match a.outcome {
            AnswerOutcomeName::Done => "fait",
            AnswerOutcomeName::AlreadyDone => "déjà fait, rien ne change",
            AnswerOutcomeName::TooLate => "refusé : trop tard pour annuler en ligne",
            AnswerOutcomeName::NoLongerBooked => "le rendez-vous n'est plus réservé",
            AnswerOutcomeName::Moved => "le rendez-vous a été déplacé",
            AnswerOutcomeName::Past => "le rendez-vous est passé",
            AnswerOutcomeName::Unknown => "lien sans effet",
            AnswerOutcomeName::NoLink => "aucun message ne portait de lien",
        };
        lines.push((
            a.at.clone(),
            format!(
                "{}  patient     {action} par le lien RDV {} : {outcome}",
                a.at, a.appointment
            ),
        ));
    }
    for e in &output.inbox {
        let box_name = if e.inbox == "to_verify" {
            "À vérifier"
        } else {
            "Centre de notifications"
        };
        lines.push((
            e.at.clone(),
            format!(
                "{}  {}  {}{}{}",
                e.at,
                box_name,
                e.title,
                subject(&[], &e.document),
                if explain {
                    format!(" — {}", e.text)
                } else {
                    String::new()
                }
            ),
        ));
    }
    if explain {
        for p in &output.planned {
            lines.push((
                p.at.clone(),
                format!(
                    "{}  prévu       {:<6} → {:<18} {}{} (après la fin de la simulation)",
                    p.at,
                    p.channel,
                    p.recipient,
                    p.kind,
                    subject(&p.appointments, &p.document)
                ),
            ));
        }
    }
    lines.sort_by(|a, b| {
        a.0.parse::<Timestamp>()
            .ok()
            .cmp(&b.0.parse::<Timestamp>().ok())
    });
    let mut out = String::new();
    for (_, line) in lines {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} envoyé(s), {} non envoyé(s), {} entrée(s) de boîte\n",
        output.deliveries.len(),
        output.suppressed.len(),
        output.inbox.len()
    ));
    out
}
