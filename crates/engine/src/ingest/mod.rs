//! Ingestion: every change — an event, a `PUT` of a patient, a settings patch — updates the facts,
//! re-plans the affected patients and reconciles, all in one transaction: a batch is applied whole
//! or not at all.

mod replan;

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use rappel_domain::event::{
    Applied, Event, EventBody, EventError, apply_to_appointment, apply_to_document,
    apply_to_patient,
};
use rappel_domain::facts::{Appointment, Motive, Patient, Practitioner};
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::settings::{Settings, is_operator_setting};
use rappel_store::{NewEvent, Status, Tx};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::facts::FactCache;
use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, EngineError, Result};

pub(crate) use self::replan::{replan, replan_many};

/// How far back the planner looks at a patient's appointments: late changes to recent ones
/// (a no-show marked the next morning) still produce their messages.
pub(crate) const LOOKBACK: SignedDuration = SignedDuration::from_hours(72);
/// Documents older than this no longer produce letters.
const DOCUMENT_LOOKBACK: SignedDuration = SignedDuration::from_hours(24 * 90);

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Events that changed something.
    pub applied: usize,
    /// Events that changed nothing (already known): replays are harmless.
    pub unchanged: usize,
    /// Sequence numbers in the event log of the applied events.
    pub seqs: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    Created,
    Updated,
    Unchanged,
}

impl Engine {
    /// Applies a batch of events atomically. An error names the event (`events[2].start`).
    ///
    /// The facts the events name are read up front, one query per table; appointments are
    /// written together, the log in one statement, and the affected patients re-planned
    /// together (see `replan_many`): a batch of hundreds of bookings costs a few round trips,
    /// not a few per event.
    pub async fn ingest(&self, practice_id: &str, events: &[Event]) -> Result<IngestReport> {
        // The ids are checked before anything is read: the same rule as the REST paths', for
        // events from the API and from scenario files alike.
        for (index, event) in events.iter().enumerate() {
            event.body.check_ids().map_err(|err| {
                let prefix = if events.len() == 1 {
                    String::new()
                } else {
                    format!("events[{index}].")
                };
                EngineError::invalid(format!("{prefix}{}", err.field()), err.reason())
            })?;
            if let EventBody::PatientReplied { .. } = event.body {
                let prefix = if events.len() == 1 {
                    String::new()
                } else {
                    format!("events[{index}].")
                };
                return Err(EngineError::invalid(
                    format!("{prefix}type"),
                    "patient.replied is a scenario event: a patient's SMS reply comes from the \
                     SMS provider's inbound webhook (/v1/webhooks/sms/{provider}/inbound)",
                ));
            }
        }
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let report = ingest_in(&mut tx, practice_id, events, now).await?;
        tx.commit().await?;
        self.work_added();
        Ok(report)
    }

    pub async fn put_practitioner(
        &self,
        practice_id: &str,
        p: &Practitioner,
    ) -> Result<PutOutcome> {
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let old = tx.practitioner(practice_id, &p.id).await?;
        let outcome = outcome(old.as_ref(), p);
        if outcome != PutOutcome::Unchanged {
            tx.upsert_practitioner(practice_id, p).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn put_motive(&self, practice_id: &str, m: &Motive) -> Result<PutOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let old = tx.motive(practice_id, &m.id).await?;
        let outcome = outcome(old.as_ref(), m);
        if outcome != PutOutcome::Unchanged {
            tx.upsert_motive(practice_id, m).await?;
            if old.is_some_and(|o| o.notifications != m.notifications) {
                replan_open(&mut tx, &ctx, now).await?;
            }
        }
        tx.commit().await?;
        self.work_added();
        Ok(outcome)
    }

    /// Creates or replaces a patient (`PUT /v1/patients/{id}`) and re-plans them.
    /// `PUT /v1/patients/{id}`: the practice software's replacement of a patient, in one
    /// transaction. An erased patient's id is refused (GDPR: nothing personal comes back under
    /// it). The push subscriptions come from the patient's browsers, not from the practice
    /// software: they are carried over from the stored patient, read under a lock, so one
    /// added while the replacement runs is never lost. Returns the patient as stored.
    pub async fn replace_patient(
        &self,
        practice_id: &str,
        mut p: Patient,
    ) -> Result<(PutOutcome, Patient)> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.is_erased(practice_id, &p.id).await? {
            return Err(EngineError::invalid(
                "id",
                format!(
                    "patient `{}` was erased (GDPR); their data cannot be recorded again under this id",
                    p.id
                ),
            ));
        }
        let old = tx.patient_for_update(practice_id, &p.id).await?;
        // Push subscriptions come from the patients' browsers and the SMS opt-out from their
        // answers, not from the practice software: a replacement of the file keeps both.
        p.push_subscriptions = old
            .as_ref()
            .map(|o| o.push_subscriptions.clone())
            .unwrap_or_default();
        p.sms_opt_out = old.as_ref().and_then(|o| o.sms_opt_out);
        let outcome = outcome(old.as_ref(), &p);
        if outcome != PutOutcome::Unchanged {
            tx.upsert_patient(practice_id, &p, now).await?;
            replan(&mut tx, &ctx, &p.id, now).await?;
        }
        tx.commit().await?;
        self.work_added();
        Ok((outcome, p))
    }

    /// Stores the patient as given, push subscriptions included (scenarios, the demo, tests).
    pub async fn put_patient(&self, practice_id: &str, p: &Patient) -> Result<PutOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let old = tx.patient_for_update(practice_id, &p.id).await?;
        let outcome = outcome(old.as_ref(), p);
        if outcome != PutOutcome::Unchanged {
            tx.upsert_patient(practice_id, p, now).await?;
            replan(&mut tx, &ctx, &p.id, now).await?;
        }
        tx.commit().await?;
        self.work_added();
        Ok(outcome)
    }

    /// GDPR erasure: personal data gone, pending messages cancelled.
    pub async fn erase_patient(&self, practice_id: &str, id: &str) -> Result<()> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let pending = tx.patient_notifications(practice_id, id).await?;
        self.erase_document_files(&mut tx, practice_id, id).await?;
        if !tx.erase_patient(practice_id, id, now).await? {
            return Err(EngineError::not_found("patient", id));
        }
        for mut row in pending.into_iter().filter(|r| r.status == Status::Pending) {
            row.status = Status::Suppressed;
            row.reason = Some(Reason::PatientErased);
            row.decided_at = Some(now);
            row.updated_at = now;
            tx.update_notification(&row).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `PATCH /v1/settings`: validates against the policy, stores, re-plans open work. The
    /// operator's settings (plan, SMS quota) are refused here.
    pub async fn update_settings(
        &self,
        practice_id: &str,
        patch: &Map<String, Value>,
    ) -> Result<Settings> {
        self.change_settings(practice_id, patch, By::Practice).await
    }

    /// The operator's settings change (`rappel practice set`, a scenario's `[settings]`): any
    /// option, [`OPERATOR_SETTINGS`](rappel_domain::settings::OPERATOR_SETTINGS) included (the
    /// plan, the SMS quota), validated against the policy, stored, and open work re-planned.
    pub async fn set_operator_settings(
        &self,
        practice_id: &str,
        patch: &Map<String, Value>,
    ) -> Result<Settings> {
        self.change_settings(practice_id, patch, By::Operator).await
    }

    async fn change_settings(
        &self,
        practice_id: &str,
        patch: &Map<String, Value>,
        by: By,
    ) -> Result<Settings> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut ctx = load_practice(&mut tx, practice_id).await?;
        let mut affected = BTreeSet::new();
        apply_settings(&mut tx, &mut ctx, patch, now, &mut affected, by).await?;
        for patient in &affected {
            replan(&mut tx, &ctx, patient, now).await?;
        }
        tx.commit().await?;
        self.work_added();
        Ok(ctx.settings)
    }
}

fn outcome<T: PartialEq>(old: Option<&T>, new: &T) -> PutOutcome {
    match old {
        None => PutOutcome::Created,
        Some(o) if o == new => PutOutcome::Unchanged,
        Some(_) => PutOutcome::Updated,
    }
}

enum Failure {
    Event(EventError),
    Engine(EngineError),
}

impl From<EventError> for Failure {
    fn from(e: EventError) -> Failure {
        Failure::Event(e)
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::Engine(e)
    }
}

impl From<rappel_store::StoreError> for Failure {
    fn from(e: rappel_store::StoreError) -> Failure {
        Failure::Engine(e.into())
    }
}

/// The state of an ingestion batch: the facts read so far, and the appointments changed but
/// not written yet.
#[derive(Default)]
struct Batch {
    facts: FactCache,
    /// Written in one statement by [`Batch::flush`], before anything reads the appointments
    /// table with SQL (a settings change's patient list, the re-planning).
    appointments: BTreeMap<String, Appointment>,
}

impl Batch {
    async fn flush(&mut self, tx: &mut Tx, practice_id: &str, now: Timestamp) -> Result<()> {
        if !self.appointments.is_empty() {
            let rows: Vec<Appointment> = std::mem::take(&mut self.appointments)
                .into_values()
                .collect();
            tx.upsert_appointments(practice_id, &rows, now).await?;
        }
        Ok(())
    }
}

/// Reads, one query per table, the facts the events name.
async fn preload(
    tx: &mut Tx,
    facts: &mut FactCache,
    practice_id: &str,
    events: &[Event],
) -> Result<()> {
    let mut patients = Vec::new();
    let mut practitioners = Vec::new();
    let mut motives = Vec::new();
    let mut appointments = Vec::new();
    for event in events {
        match &event.body {
            EventBody::AppointmentBooked {
                id,
                patient,
                practitioner,
                motive,
                ..
            } => {
                patients.push(patient);
                practitioners.push(practitioner);
                motives.extend(motive.as_ref());
                appointments.push(id);
            }
            EventBody::AppointmentMoved { id, .. }
            | EventBody::AppointmentCancelled { id, .. }
            | EventBody::AppointmentDeleted { id }
            | EventBody::AppointmentNoShow { id }
            | EventBody::AppointmentAttended { id } => appointments.push(id),
            EventBody::PatientUpdated { id, .. } => patients.push(id),
            EventBody::DocumentSent { patient, .. } => patients.push(patient),
            EventBody::SettingsUpdated { .. }
            | EventBody::DeliveryBounced { .. }
            | EventBody::DeliveryDelivered { .. }
            | EventBody::DocumentConsulted { .. }
            | EventBody::PatientReplied { .. } => {}
        }
    }
    facts
        .load(
            tx,
            practice_id,
            patients,
            practitioners,
            motives,
            appointments,
        )
        .await
}

fn is_appointment_event(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::AppointmentBooked { .. }
            | EventBody::AppointmentMoved { .. }
            | EventBody::AppointmentCancelled { .. }
            | EventBody::AppointmentDeleted { .. }
            | EventBody::AppointmentNoShow { .. }
            | EventBody::AppointmentAttended { .. }
    )
}

/// Folds one event into the stored facts; returns whether anything changed.
async fn apply_event(
    tx: &mut Tx,
    ctx: &mut PracticeCtx,
    batch: &mut Batch,
    body: &EventBody,
    at: Timestamp,
    now: Timestamp,
    affected: &mut BTreeSet<String>,
) -> std::result::Result<bool, Failure> {
    let practice_id = ctx.row.id.clone();
    let pid = practice_id.as_str();
    if !is_appointment_event(body) {
        // What follows may read the appointments table itself.
        batch.flush(tx, pid, now).await?;
    }
    let facts = &mut batch.facts;
    match body {
        EventBody::AppointmentBooked {
            id,
            patient,
            practitioner,
            motive,
            ..
        } => {
            if facts.patient(tx, pid, patient).await?.is_none() {
                return Err(EventError::UnknownReference {
                    what: "patient",
                    id: patient.clone(),
                }
                .into());
            }
            if facts.practitioner(tx, pid, practitioner).await?.is_none() {
                return Err(EventError::UnknownReference {
                    what: "practitioner",
                    id: practitioner.clone(),
                }
                .into());
            }
            if let Some(m) = motive
                && facts.motive(tx, pid, m).await?.is_none()
            {
                return Err(EventError::UnknownReference {
                    what: "motive",
                    id: m.clone(),
                }
                .into());
            }
            let current = facts.appointment(tx, pid, id).await?;
            store_appointment(batch, current.as_ref(), body, at, affected)
        }
        EventBody::AppointmentMoved { id, .. }
        | EventBody::AppointmentCancelled { id, .. }
        | EventBody::AppointmentDeleted { id }
        | EventBody::AppointmentNoShow { id }
        | EventBody::AppointmentAttended { id } => {
            let current = facts.appointment(tx, pid, id).await?;
            store_appointment(batch, current.as_ref(), body, at, affected)
        }
        EventBody::PatientUpdated { id, fields } => {
            if facts.is_erased(tx, pid, id).await? {
                return Err(EventError::Invalid {
                    field: "id",
                    reason: format!("patient `{id}` was erased"),
                }
                .into());
            }
            let current = facts.patient(tx, pid, id).await?;
            match apply_to_patient(current.as_ref(), id, fields)? {
                Applied::Unchanged => Ok(false),
                Applied::Changed(p) => {
                    tx.upsert_patient(pid, &p, now).await?;
                    facts.patient_written(&p);
                    affected.insert(p.id.clone());
                    Ok(true)
                }
            }
        }
        EventBody::SettingsUpdated { settings } => {
            let before = ctx.settings.clone();
            apply_settings(tx, ctx, settings, now, affected, By::Practice).await?;
            Ok(before != ctx.settings)
        }
        EventBody::DocumentSent { id, patient, .. } => {
            if facts.patient(tx, pid, patient).await?.is_none() {
                return Err(EventError::UnknownReference {
                    what: "patient",
                    id: patient.clone(),
                }
                .into());
            }
            let current = tx.document(pid, id).await?;
            store_document(tx, pid, current.as_ref(), body, at, affected).await
        }
        EventBody::DeliveryBounced { document } | EventBody::DeliveryDelivered { document } => {
            let current = tx.document(pid, document).await?;
            let changed = store_document(tx, pid, current.as_ref(), body, at, affected).await?;
            if changed {
                let delivered = matches!(body, EventBody::DeliveryDelivered { .. });
                mark_document_email(tx, pid, document, delivered, now).await?;
            }
            Ok(changed)
        }
        EventBody::DocumentConsulted { id } => {
            let current = tx.document(pid, id).await?;
            store_document(tx, pid, current.as_ref(), body, at, affected).await
        }
        // Refused by `Engine::ingest` before anything is read.
        EventBody::PatientReplied { .. } => Err(EventError::Invalid {
            field: "type",
            reason: "patient.replied is a scenario event".into(),
        }
        .into()),
    }
}

/// Folds an appointment event; the row is written by the batch's next flush.
fn store_appointment(
    batch: &mut Batch,
    current: Option<&Appointment>,
    body: &EventBody,
    at: Timestamp,
    affected: &mut BTreeSet<String>,
) -> std::result::Result<bool, Failure> {
    match apply_to_appointment(current, body, at)? {
        Applied::Unchanged => Ok(false),
        Applied::Changed(a) => {
            batch.facts.appointment_written(&a);
            affected.insert(a.patient.clone());
            batch.appointments.insert(a.id.clone(), a);
            Ok(true)
        }
    }
}

async fn store_document(
    tx: &mut Tx,
    pid: &str,
    current: Option<&rappel_domain::facts::Document>,
    body: &EventBody,
    at: Timestamp,
    affected: &mut BTreeSet<String>,
) -> std::result::Result<bool, Failure> {
    match apply_to_document(current, body, at)? {
        Applied::Unchanged => Ok(false),
        Applied::Changed(d) => {
            tx.upsert_document(pid, &d).await?;
            affected.insert(d.patient.clone());
            Ok(true)
        }
    }
}

/// A delivery report on a document's email updates that email's row.
async fn mark_document_email(
    tx: &mut Tx,
    pid: &str,
    document: &str,
    delivered: bool,
    now: Timestamp,
) -> Result<()> {
    for mut row in tx.document_notifications(pid, document).await? {
        if row.channel != Channel::Email || row.kind != Kind::Document {
            continue;
        }
        if !matches!(row.status, Status::Sent | Status::Delivered) {
            continue;
        }
        if delivered {
            row.status = Status::Delivered;
        } else {
            row.status = Status::Failed;
            row.last_error =
                Some("bounced: the recipient's mail server refused the message".into());
        }
        row.updated_at = now;
        tx.update_notification(&row).await?;
    }
    Ok(())
}

/// Who changes a practice's settings: the practice (its key, its events, its web interface)
/// may not change [`OPERATOR_SETTINGS`](rappel_domain::settings::OPERATOR_SETTINGS); the operator may change anything.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Practice,
    Operator,
}

async fn apply_settings(
    tx: &mut Tx,
    ctx: &mut PracticeCtx,
    patch: &Map<String, Value>,
    now: Timestamp,
    affected: &mut BTreeSet<String>,
    by: By,
) -> Result<()> {
    if by == By::Practice {
        // The value the practice already has is accepted, so that a practice may send back the
        // settings it read (`GET` then `PATCH`); any other is the operator's to set.
        for (key, value) in patch {
            let current = ctx.settings.get(key).cloned().unwrap_or(Value::Null);
            if is_operator_setting(key) && *value != current {
                return Err(EngineError::invalid(
                    format!("settings.{key}"),
                    "set by the operator of this Rappel (`rappel practice set`), not by the practice",
                ));
            }
        }
    }
    // A sender name that passes for a public service (AMELI, CPAM, impôts…) is how SMS
    // phishing works: no practice sends under one.
    if let Some(name) = patch
        .get("sms_sender")
        .and_then(Value::as_str)
        .and_then(rappel_domain::sms::impersonated_name)
    {
        return Err(EngineError::invalid(
            "settings.sms_sender",
            format!("this sender name passes for a public service or company (`{name}`)"),
        ));
    }
    let mut stored = ctx.row.settings.clone();
    for (k, v) in patch {
        stored.insert(k.clone(), v.clone());
    }
    let settings = Settings::resolve(&ctx.policy, &stored)
        .map_err(|e| EngineError::invalid(format!("settings.{}", e.key), e.reason))?;
    if settings == ctx.settings && stored == ctx.row.settings {
        return Ok(());
    }
    tx.update_practice_settings(&ctx.row.id, &stored).await?;
    ctx.row.settings = stored;
    ctx.settings = settings;
    let since = now - LOOKBACK;
    for p in tx
        .patients_with_open_work(&ctx.row.id, since, now - DOCUMENT_LOOKBACK)
        .await?
    {
        affected.insert(p);
    }
    Ok(())
}

async fn replan_open(tx: &mut Tx, ctx: &PracticeCtx, now: Timestamp) -> Result<()> {
    for p in tx
        .patients_with_open_work(&ctx.row.id, now - LOOKBACK, now - DOCUMENT_LOOKBACK)
        .await?
    {
        replan(tx, ctx, &p, now).await?;
    }
    Ok(())
}

/// [`Engine::ingest`] inside the caller's write transaction, for answers that must be recorded
/// with the events they cause (a patient's cancellation and its webhook event). The caller
/// commits, then calls [`Engine::work_added`]. Event ids must have been checked
/// ([`EventBody::check_ids`]).
pub(crate) async fn ingest_in(
    tx: &mut Tx,
    practice_id: &str,
    events: &[Event],
    now: Timestamp,
) -> Result<IngestReport> {
    let mut ctx = load_practice(tx, practice_id).await?;
    let mut report = IngestReport {
        applied: 0,
        unchanged: 0,
        seqs: Vec::new(),
    };
    let mut batch = Batch::default();
    preload(tx, &mut batch.facts, practice_id, events).await?;
    let mut log = Vec::new();
    let mut affected = BTreeSet::new();
    for (index, event) in events.iter().enumerate() {
        let at = event.at.unwrap_or(now);
        let prefix = if events.len() == 1 {
            String::new()
        } else {
            format!("events[{index}].")
        };
        let changed = apply_event(
            tx,
            &mut ctx,
            &mut batch,
            &event.body,
            at,
            now,
            &mut affected,
        )
        .await
        .map_err(|e| match e {
            Failure::Event(err) => {
                EngineError::invalid(format!("{prefix}{}", err.field()), err.reason())
            }
            Failure::Engine(EngineError::Invalid { field, reason }) => {
                EngineError::invalid(format!("{prefix}{field}"), reason)
            }
            Failure::Engine(other) => other,
        })?;
        if changed {
            let body = serde_json::to_value(event).expect("events serialize");
            log.push((at, event.body.type_name(), body));
            report.applied += 1;
        } else {
            report.unchanged += 1;
        }
    }
    batch.flush(tx, practice_id, now).await?;
    let new_events: Vec<NewEvent<'_>> = log
        .iter()
        .map(|(at, event_type, body)| NewEvent {
            at: *at,
            received_at: now,
            event_type,
            body,
        })
        .collect();
    report.seqs = tx.insert_events(practice_id, &new_events).await?;
    let affected: Vec<String> = affected.into_iter().collect();
    replan_many(tx, &ctx, &affected, now).await?;
    Ok(report)
}
