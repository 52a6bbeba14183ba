//! The facts a batch reads, loaded once per batch with one query per table instead of one per
//! event or per message.
//!
//! A [`FactCache`] lives for one transaction. It answers exactly what the single-row reads of
//! [`Tx`] would answer at that point of the transaction, because every write the batch makes to
//! a cached table goes through it too (patients, appointments) or the table is not written while
//! the cache is in use (practitioners and motives are only written by their own `PUT`s, which do
//! not use it). Ids it was not asked to preload are read on first use and remembered.

use std::collections::HashMap;

use rappel_domain::facts::{Appointment, Motive, Patient, Practitioner};
use rappel_store::Tx;

use crate::Result;

/// One practice's facts as read (and written) so far in the current transaction. `None` entries
/// record that the row does not exist.
#[derive(Default)]
pub(crate) struct FactCache {
    /// The stored patient and its erased flag (an erased patient's data is blank).
    patients: HashMap<String, Option<(Patient, bool)>>,
    practitioners: HashMap<String, Option<Practitioner>>,
    motives: HashMap<String, Option<Motive>>,
    appointments: HashMap<String, Option<Appointment>>,
}

/// The ids among `ids` that the map does not know yet, each once, now recorded as absent: the
/// caller reads them and overwrites the ones that exist.
fn take_missing<'a, T>(
    known: &mut HashMap<String, Option<T>>,
    ids: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut out: Vec<String> = ids
        .into_iter()
        .filter(|id| !known.contains_key(id.as_str()))
        .cloned()
        .collect();
    out.sort_unstable();
    out.dedup();
    for id in &out {
        known.insert(id.clone(), None);
    }
    out
}

impl FactCache {
    /// Reads, in one query each, the patients, practitioners, motives and appointments among
    /// these ids that are not known yet.
    pub async fn load<'a>(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        patients: impl IntoIterator<Item = &'a String>,
        practitioners: impl IntoIterator<Item = &'a String>,
        motives: impl IntoIterator<Item = &'a String>,
        appointments: impl IntoIterator<Item = &'a String>,
    ) -> Result<()> {
        let ids = take_missing(&mut self.patients, patients);
        if !ids.is_empty() {
            for (p, erased) in tx.patients_by_id(practice_id, &ids).await? {
                self.patients.insert(p.id.clone(), Some((p, erased)));
            }
        }
        let ids = take_missing(&mut self.appointments, appointments);
        if !ids.is_empty() {
            for a in tx.appointments_by_id(practice_id, &ids).await? {
                self.appointments.insert(a.id.clone(), Some(a));
            }
        }
        let ids = take_missing(&mut self.practitioners, practitioners);
        if !ids.is_empty() {
            for p in tx.practitioners_by_id(practice_id, &ids).await? {
                self.practitioners.insert(p.id.clone(), Some(p));
            }
        }
        let ids = take_missing(&mut self.motives, motives);
        if !ids.is_empty() {
            for m in tx.motives_by_id(practice_id, &ids).await? {
                self.motives.insert(m.id.clone(), Some(m));
            }
        }
        Ok(())
    }

    /// Reads what the appointments already known refer to: their practitioners and motives.
    pub async fn load_references(&mut self, tx: &mut Tx, practice_id: &str) -> Result<()> {
        let mut practitioners = Vec::new();
        let mut motives = Vec::new();
        for a in self.appointments.values().flatten() {
            practitioners.push(a.practitioner.clone());
            motives.extend(a.motive.clone());
        }
        self.load(
            tx,
            practice_id,
            [],
            practitioners.iter(),
            motives.iter(),
            [],
        )
        .await
    }

    async fn patient_entry(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
    ) -> Result<&Option<(Patient, bool)>> {
        if !self.patients.contains_key(id) {
            let id = id.to_string();
            self.load(tx, practice_id, [&id], [], [], []).await?;
        }
        Ok(&self.patients[id])
    }

    /// As [`Tx::patient`]: `None` also for an erased patient.
    pub async fn patient(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Patient>> {
        Ok(self
            .patient_entry(tx, practice_id, id)
            .await?
            .as_ref()
            .filter(|(_, erased)| !erased)
            .map(|(p, _)| p.clone()))
    }

    /// As [`Tx::is_erased`].
    pub async fn is_erased(&mut self, tx: &mut Tx, practice_id: &str, id: &str) -> Result<bool> {
        Ok(self
            .patient_entry(tx, practice_id, id)
            .await?
            .as_ref()
            .is_some_and(|(_, erased)| *erased))
    }

    /// Records a patient just written with [`Tx::upsert_patient`], which leaves an erased
    /// patient as it is.
    pub fn patient_written(&mut self, p: &Patient) {
        match self.patients.get(&p.id) {
            Some(Some((_, true))) => {}
            // Not read before: whether the row was erased is unknown, so read it again if needed.
            None => {}
            Some(_) => {
                self.patients.insert(p.id.clone(), Some((p.clone(), false)));
            }
        }
    }

    pub async fn practitioner(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Practitioner>> {
        if !self.practitioners.contains_key(id) {
            let id = id.to_string();
            self.load(tx, practice_id, [], [&id], [], []).await?;
        }
        Ok(self.practitioners[id].clone())
    }

    pub async fn motive(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Motive>> {
        if !self.motives.contains_key(id) {
            let id = id.to_string();
            self.load(tx, practice_id, [], [], [&id], []).await?;
        }
        Ok(self.motives[id].clone())
    }

    pub async fn appointment(
        &mut self,
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Appointment>> {
        if !self.appointments.contains_key(id) {
            let id = id.to_string();
            self.load(tx, practice_id, [], [], [], [&id]).await?;
        }
        Ok(self.appointments[id].clone())
    }

    /// Records an appointment whose row the caller will write (possibly later, in one statement
    /// with others: see `ingest`).
    pub fn appointment_written(&mut self, a: &Appointment) {
        self.appointments.insert(a.id.clone(), Some(a.clone()));
    }
}
