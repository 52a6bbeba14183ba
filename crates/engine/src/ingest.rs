//! Ingestion: every change — an event, a `PUT` of a patient, a settings patch — updates the facts,
//! re-plans the affected patients and reconciles, all in one transaction: a batch is applied whole
//! or not at all.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use rappel_domain::event::{
    Applied, Event, EventBody, EventError, apply_to_appointment, apply_to_document,
    apply_to_patient,
};
use rappel_domain::facts::{EmailDelivery, Motive, Patient, Practitioner};
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::plan::{PatientFacts, plan};
use rappel_domain::settings::Settings;
use rappel_store::{Status, Tx};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::practice::{PracticeCtx, load_practice};
use crate::reconcile::{Write, reconcile};
use crate::{Engine, EngineError, Result};

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
    pub async fn ingest(&self, practice_id: &str, events: &[Event]) -> Result<IngestReport> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut ctx = load_practice(&mut tx, practice_id).await?;
        let mut report = IngestReport {
            applied: 0,
            unchanged: 0,
            seqs: Vec::new(),
        };
        let mut affected = BTreeSet::new();
        for (index, event) in events.iter().enumerate() {
            let at = event.at.unwrap_or(now);
            let prefix = if events.len() == 1 {
                String::new()
            } else {
                format!("events[{index}].")
            };
            let changed = apply_event(&mut tx, &mut ctx, &event.body, at, now, &mut affected)
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
                let seq = tx
                    .insert_event(practice_id, at, now, event.body.type_name(), &body)
                    .await?;
                report.seqs.push(seq);
                report.applied += 1;
            } else {
                report.unchanged += 1;
            }
        }
        for patient in &affected {
            replan(&mut tx, &ctx, patient, now).await?;
        }
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
    pub async fn put_patient(&self, practice_id: &str, p: &Patient) -> Result<PutOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let old = tx.patient(practice_id, &p.id).await?;
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

    /// `PATCH /v1/settings`: validates against the policy, stores, re-plans open work.
    pub async fn update_settings(
        &self,
        practice_id: &str,
        patch: &Map<String, Value>,
    ) -> Result<Settings> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut ctx = load_practice(&mut tx, practice_id).await?;
        let mut affected = BTreeSet::new();
        apply_settings(&mut tx, &mut ctx, patch, now, &mut affected).await?;
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

/// Folds one event into the stored facts; returns whether anything changed.
async fn apply_event(
    tx: &mut Tx,
    ctx: &mut PracticeCtx,
    body: &EventBody,
    at: Timestamp,
    now: Timestamp,
    affected: &mut BTreeSet<String>,
) -> std::result::Result<bool, Failure> {
    let practice_id = ctx.row.id.clone();
    let pid = practice_id.as_str();
    match body {
        EventBody::AppointmentBooked {
            id,
            patient,
            practitioner,
            motive,
            ..
        } => {
            if tx.patient(pid, patient).await?.is_none() {
                return Err(EventError::UnknownReference {
                    what: "patient",
                    id: patient.clone(),
                }
                .into());
            }
            if tx.practitioner(pid, practitioner).await?.is_none() {
                return Err(EventError::UnknownReference {
                    what: "practitioner",
                    id: practitioner.clone(),
                }
                .into());
            }
            if let Some(m) = motive
                && tx.motive(pid, m).await?.is_none()
            {
                return Err(EventError::UnknownReference {
                    what: "motive",
                    id: m.clone(),
                }
                .into());
            }
            let current = tx.appointment(pid, id).await?;
            store_appointment(tx, pid, current.as_ref(), body, at, now, affected).await
        }
        EventBody::AppointmentMoved { id, .. }
        | EventBody::AppointmentCancelled { id, .. }
        | EventBody::AppointmentDeleted { id }
        | EventBody::AppointmentNoShow { id }
        | EventBody::AppointmentAttended { id } => {
            let current = tx.appointment(pid, id).await?;
            store_appointment(tx, pid, current.as_ref(), body, at, now, affected).await
        }
        EventBody::PatientUpdated { id, fields } => {
            if tx.is_erased(pid, id).await? {
                return Err(EventError::Invalid {
                    field: "id",
                    reason: format!("patient `{id}` was erased"),
                }
                .into());
            }
            let current = tx.patient(pid, id).await?;
            match apply_to_patient(current.as_ref(), id, fields)? {
                Applied::Unchanged => Ok(false),
                Applied::Changed(p) => {
                    tx.upsert_patient(pid, &p, now).await?;
                    affected.insert(p.id.clone());
                    Ok(true)
                }
            }
        }
        EventBody::SettingsUpdated { settings } => {
            let before = ctx.settings.clone();
            apply_settings(tx, ctx, settings, now, affected).await?;
            Ok(before != ctx.settings)
        }
        EventBody::DocumentSent { id, patient, .. } => {
            if tx.patient(pid, patient).await?.is_none() {
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
    }
}

async fn store_appointment(
    tx: &mut Tx,
    pid: &str,
    current: Option<&rappel_domain::facts::Appointment>,
    body: &EventBody,
    at: Timestamp,
    now: Timestamp,
    affected: &mut BTreeSet<String>,
) -> std::result::Result<bool, Failure> {
    match apply_to_appointment(current, body, at)? {
        Applied::Unchanged => Ok(false),
        Applied::Changed(a) => {
            tx.upsert_appointment(pid, &a, now).await?;
            affected.insert(a.patient.clone());
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

async fn apply_settings(
    tx: &mut Tx,
    ctx: &mut PracticeCtx,
    patch: &Map<String, Value>,
    now: Timestamp,
    affected: &mut BTreeSet<String>,
) -> Result<()> {
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

/// Re-plans one patient and writes the difference.
pub(crate) async fn replan(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    patient_id: &str,
    now: Timestamp,
) -> Result<()> {
    let pid = ctx.row.id.as_str();
    let Some(patient) = tx.patient(pid, patient_id).await? else {
        return Ok(());
    };
    let appointments = tx
        .patient_appointments(pid, patient_id, now - LOOKBACK)
        .await?;
    let documents: Vec<_> = tx
        .patient_documents(pid, patient_id)
        .await?
        .into_iter()
        .filter(|d| {
            d.sent_at >= now - DOCUMENT_LOOKBACK || matches!(d.email, EmailDelivery::Pending)
        })
        .collect();
    let mut practitioners = BTreeMap::new();
    let mut motives = BTreeMap::new();
    for a in &appointments {
        if !practitioners.contains_key(&a.practitioner)
            && let Some(p) = tx.practitioner(pid, &a.practitioner).await?
        {
            practitioners.insert(p.id.clone(), p);
        }
        if let Some(m) = &a.motive
            && !motives.contains_key(m)
            && let Some(found) = tx.motive(pid, m).await?
        {
            motives.insert(found.id.clone(), found);
        }
    }
    let existing = tx.patient_notifications(pid, patient_id).await?;
    let sent_groups: Vec<(String, Vec<String>)> = existing
        .iter()
        .filter(|r| {
            r.key.starts_with("p:")
                && matches!(
                    r.status,
                    Status::Sending | Status::Sent | Status::Delivered | Status::Failed
                )
        })
        .map(|r| (r.key.clone(), r.appointments.clone()))
        .collect();
    let facts = PatientFacts {
        patient: &patient,
        appointments: &appointments,
        documents: &documents,
        practitioners: &practitioners,
        motives: &motives,
        sent_groups: &sent_groups,
    };
    let desired = plan(ctx.plan_ctx(), facts, now);
    for write in reconcile(pid, &existing, &desired, now) {
        match write {
            Write::Insert(row) => tx.insert_notification(&row).await?,
            Write::Update(row) => tx.update_notification(&row).await?,
        }
    }
    Ok(())
}
