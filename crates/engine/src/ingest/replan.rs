//! Re-planning: a patient's facts of the moment → the plan → the differences with the stored
//! rows, written. Ingestion, dispatch and the documents' outcomes all go through it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use rappel_domain::facts::{EmailDelivery, Motive, Patient, Practitioner};
use rappel_domain::plan::{PatientFacts, plan};
use rappel_store::{Status, Tx};

use super::{DOCUMENT_LOOKBACK, LOOKBACK};
use crate::Result;
use crate::practice::PracticeCtx;
use crate::reconcile::{Write, reconcile};

/// Re-plans one patient and writes the difference.
pub(crate) async fn replan(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    patient_id: &str,
    now: Timestamp,
) -> Result<()> {
    replan_many(tx, ctx, &[patient_id.to_string()], now).await
}

/// Re-plans each of these patients and writes the differences: the facts of all of them are
/// read with one query per table, and the new and changed rows written with one statement each.
/// Patients are independent (a patient's plan reads only their own facts and rows, and
/// reconciliation writes only their rows), so this is the same as re-planning them one by one.
pub(crate) async fn replan_many(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    patient_ids: &[String],
    now: Timestamp,
) -> Result<()> {
    if patient_ids.is_empty() {
        return Ok(());
    }
    let pid = ctx.row.id.as_str();
    let patients: HashMap<String, Patient> = tx
        .patients_by_id(pid, patient_ids)
        .await?
        .into_iter()
        .filter(|(_, erased)| !erased)
        .map(|(p, _)| (p.id.clone(), p))
        .collect();
    // Only the patients that exist (an erased one has nothing left to plan).
    let ids: Vec<String> = patient_ids
        .iter()
        .filter(|id| patients.contains_key(id.as_str()))
        .cloned()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut appointments = group(
        tx.appointments_of_patients(pid, &ids, now - LOOKBACK)
            .await?,
        |a| &a.patient,
    );
    let mut documents = group(
        tx.documents_of_patients(pid, &ids)
            .await?
            .into_iter()
            .filter(|d| {
                d.sent_at >= now - DOCUMENT_LOOKBACK || matches!(d.email, EmailDelivery::Pending)
            })
            .collect(),
        |d| &d.patient,
    );
    let mut existing = group(tx.notifications_of_patients(pid, &ids).await?, |r| {
        &r.patient_id
    });
    let mut practitioner_ids = BTreeSet::new();
    let mut motive_ids = BTreeSet::new();
    for a in appointments.values().flatten() {
        practitioner_ids.insert(a.practitioner.clone());
        motive_ids.extend(a.motive.clone());
    }
    let all_practitioners: HashMap<String, Practitioner> = tx
        .practitioners_by_id(pid, &practitioner_ids.into_iter().collect::<Vec<_>>())
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let all_motives: HashMap<String, Motive> = tx
        .motives_by_id(pid, &motive_ids.into_iter().collect::<Vec<_>>())
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for id in &ids {
        let patient = &patients[id];
        let appointments = appointments.remove(id).unwrap_or_default();
        let documents = documents.remove(id).unwrap_or_default();
        let existing = existing.remove(id).unwrap_or_default();
        // The patient's own practitioners and motives only, as the planner always saw them.
        let mut practitioners = BTreeMap::new();
        let mut motives = BTreeMap::new();
        for a in &appointments {
            if let Some(p) = all_practitioners.get(&a.practitioner) {
                practitioners.insert(p.id.clone(), p.clone());
            }
            if let Some(m) = a.motive.as_ref().and_then(|m| all_motives.get(m)) {
                motives.insert(m.id.clone(), m.clone());
            }
        }
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
            patient,
            appointments: &appointments,
            documents: &documents,
            practitioners: &practitioners,
            motives: &motives,
            sent_groups: &sent_groups,
        };
        let desired = plan(ctx.plan_ctx(), facts, now);
        for write in reconcile(pid, &existing, &desired, now) {
            match write {
                Write::Insert(row) => inserts.push(row),
                Write::Update(row) => updates.push(row),
            }
        }
    }
    tx.insert_notifications(&inserts).await?;
    tx.update_notifications(&updates).await?;
    Ok(())
}

/// Splits rows that come grouped by patient into one list per patient, keeping their order.
fn group<T>(rows: Vec<T>, patient: impl Fn(&T) -> &String) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(patient(&row).clone()).or_default().push(row);
    }
    out
}
