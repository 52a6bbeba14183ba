//! What the practice software tells us about: practitioners, motives, patients (with their
//! GDPR erasure), appointments and documents, each created or replaced by the practice's own id.

use jiff::Timestamp;
use rappel_domain::facts::{
    Appointment, AppointmentStatus, Document, Motive, Patient, Practitioner,
};
use serde_json::{Map, Value};

use super::Tx;
use super::codec::{Cols, like_escape, ms, opt_ms, to_json};
use crate::{Backend, Result};

impl Tx {
    pub async fn upsert_practitioner(&mut self, practice_id: &str, p: &Practitioner) -> Result<()> {
        sqlx::query(
            "INSERT INTO practitioners (practice_id, id, data) VALUES ($1, $2, $3) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data",
        )
        .bind(practice_id)
        .bind(&p.id)
        .bind(to_json("practitioners", p)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn practitioner(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Practitioner>> {
        let row = sqlx::query("SELECT data FROM practitioners WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "practitioners").json("data"))
            .transpose()
    }

    pub async fn practitioners(&mut self, practice_id: &str) -> Result<Vec<Practitioner>> {
        let rows = sqlx::query("SELECT data FROM practitioners WHERE practice_id = $1 ORDER BY id")
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|r| Cols::new(r, "practitioners").json("data"))
            .collect()
    }

    pub async fn upsert_motive(&mut self, practice_id: &str, m: &Motive) -> Result<()> {
        sqlx::query(
            "INSERT INTO motives (practice_id, id, data) VALUES ($1, $2, $3) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data",
        )
        .bind(practice_id)
        .bind(&m.id)
        .bind(to_json("motives", m)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn motive(&mut self, practice_id: &str, id: &str) -> Result<Option<Motive>> {
        let row = sqlx::query("SELECT data FROM motives WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "motives").json("data"))
            .transpose()
    }

    pub async fn motives(&mut self, practice_id: &str) -> Result<Vec<Motive>> {
        let rows = sqlx::query("SELECT data FROM motives WHERE practice_id = $1 ORDER BY id")
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|r| Cols::new(r, "motives").json("data"))
            .collect()
    }

    pub async fn upsert_patient(
        &mut self,
        practice_id: &str,
        p: &Patient,
        updated_at: Timestamp,
    ) -> Result<()> {
        // An erased patient stays erased: a later event about them (a stale sync from the
        // practice software) must not bring their personal data back.
        sqlx::query(
            "INSERT INTO patients (practice_id, id, data, search, erased, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data, \
               search = excluded.search, updated_at = excluded.updated_at \
             WHERE patients.erased = 0",
        )
        .bind(practice_id)
        .bind(&p.id)
        .bind(to_json("patients", p)?)
        .bind(search_text(p))
        .bind(ms(updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// `None` also for an erased patient.
    pub async fn patient(&mut self, practice_id: &str, id: &str) -> Result<Option<Patient>> {
        let row = sqlx::query(concat!(
            "SELECT data, ",
            sms_opt_out_column!(),
            " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0",
        ))
        .bind(practice_id)
        .bind(id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|r| patient_with_opt_out(&Cols::new(&r, "patients")))
            .transpose()
    }

    /// The patient, locked until the transaction ends, for a read-modify-write of the row (a
    /// replacement that keeps the push subscriptions, a subscription added): on PostgreSQL
    /// `FOR UPDATE`, so a concurrent writer of the same patient waits instead of being lost;
    /// SQLite's write transactions already take turns. `None` also for an erased patient.
    pub async fn patient_for_update(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Patient>> {
        let sql = match self.backend {
            Backend::Sqlite => concat!(
                "SELECT data, ",
                sms_opt_out_column!(),
                " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0"
            ),
            Backend::Postgres => concat!(
                "SELECT data, ",
                sms_opt_out_column!(),
                " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0 FOR UPDATE"
            ),
        };
        let row = sqlx::query(sql)
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| patient_with_opt_out(&Cols::new(&r, "patients")))
            .transpose()
    }

    /// Patients whose name, email or mobile contains `query` (case-insensitive), at most `limit`.
    pub async fn search_patients(
        &mut self,
        practice_id: &str,
        query: &str,
        limit: i64,
    ) -> Result<Vec<Patient>> {
        // Both sides are lower-cased in Rust rather than with SQL's LOWER(), whose notion of
        // case differs between the backends (SQLite folds ASCII only).
        let pattern = format!("%{}%", like_escape(&query.to_lowercase()));
        let rows = sqlx::query(
            "SELECT data FROM patients \
             WHERE practice_id = $1 AND erased = 0 AND search LIKE $2 ESCAPE '\\' \
             ORDER BY id LIMIT $3",
        )
        .bind(practice_id)
        .bind(pattern)
        .bind(limit.max(0))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "patients").json("data"))
            .collect()
    }

    /// GDPR erasure: replaces the patient's personal data with nothing (keeps the id, marks it
    /// erased), and removes their documents' rows. Returns false if unknown.
    pub async fn erase_patient(
        &mut self,
        practice_id: &str,
        id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let blank = Patient {
            id: id.to_string(),
            ..Patient::default()
        };
        let updated = sqlx::query(
            "UPDATE patients SET data = $3, search = '', erased = 1, \
               erased_at = COALESCE(erased_at, $4), updated_at = $4 \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .bind(to_json("patients", &blank)?)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM documents WHERE practice_id = $1 AND patient_id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        // What was sent to them (names, dates, links) is personal data too: the audit keeps that
        // a message went, not what it said.
        sqlx::query(
            "UPDATE notifications SET rendered = NULL              WHERE practice_id = $1 AND patient_id = $2 AND rendered IS NOT NULL",
        )
        .bind(practice_id)
        .bind(id)
        .execute(&mut *self.inner)
        .await?;
        // The boxes' texts name the patient; the entries stay (the practice's to-do), nameless.
        sqlx::query("UPDATE inbox SET body = $3 WHERE practice_id = $1 AND patient_id = $2")
            .bind(practice_id)
            .bind(id)
            .bind("Les données de ce patient ont été effacées à sa demande (RGPD).")
            .execute(&mut *self.inner)
            .await?;
        self.delete_patient_delivery_reports(practice_id, id)
            .await?;
        self.delete_patient_two_way(practice_id, id).await?;
        self.delete_patient_answers(practice_id, id).await?;
        self.redact_patient_events(practice_id, id).await?;
        Ok(true)
    }

    /// Rewrites the logged events that carried the patient's personal data (`patient.updated`:
    /// names, contacts, birth date, address; `document.sent`: the document's title) down to
    /// their identities, marked `"erased": true`. The log keeps its sequence numbers, so what
    /// happened when stays auditable.
    async fn redact_patient_events(&mut self, practice_id: &str, id: &str) -> Result<()> {
        // The quoted id narrows the scan in SQL; the JSON is checked field by field below.
        let quoted = to_json("events", id)?;
        let rows = sqlx::query(
            "SELECT seq, event_type, body FROM events \
             WHERE practice_id = $1 AND event_type IN ('patient.updated', 'document.sent') \
               AND body LIKE $2 ESCAPE '\\'",
        )
        .bind(practice_id)
        .bind(format!("%{}%", like_escape(&quoted)))
        .fetch_all(&mut *self.inner)
        .await?;
        for row in &rows {
            let c = Cols::new(row, "events");
            let seq = c.int("seq")?;
            let Value::Object(body) = c.json::<Value>("body")? else {
                continue;
            };
            let about = match c.text("event_type")?.as_str() {
                "patient.updated" => body.get("id"),
                _ => body.get("patient"),
            };
            if about.and_then(Value::as_str) != Some(id) {
                continue;
            }
            let mut kept: Map<String, Value> = body
                .into_iter()
                .filter(|(k, _)| matches!(k.as_str(), "at" | "type" | "id" | "patient"))
                .collect();
            kept.insert("erased".into(), Value::Bool(true));
            sqlx::query("UPDATE events SET body = $3 WHERE practice_id = $1 AND seq = $2")
                .bind(practice_id)
                .bind(seq)
                .bind(to_json("events", &kept)?)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }

    pub async fn is_erased(&mut self, practice_id: &str, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT erased FROM patients WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        match row {
            None => Ok(false),
            Some(row) => Cols::new(&row, "patients").flag("erased"),
        }
    }

    pub async fn upsert_appointment(
        &mut self,
        practice_id: &str,
        a: &Appointment,
        updated_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO appointments \
               (practice_id, id, patient_id, start_ms, status, status_at_ms, data, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (practice_id, id) DO UPDATE SET patient_id = excluded.patient_id, \
               start_ms = excluded.start_ms, status = excluded.status, \
               status_at_ms = excluded.status_at_ms, data = excluded.data, \
               updated_at = excluded.updated_at",
        )
        .bind(practice_id)
        .bind(&a.id)
        .bind(&a.patient)
        .bind(ms(a.start))
        .bind(a.status.name())
        .bind(opt_ms(changed_at(a)))
        .bind(to_json("appointments", a)?)
        .bind(ms(updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn appointment(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Appointment>> {
        let row = sqlx::query("SELECT data FROM appointments WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "appointments").json("data"))
            .transpose()
    }

    /// The patient's appointments starting at or after `since`, plus any whose status changed at
    /// or after `since` (a late cancellation), ordered by start.
    pub async fn patient_appointments(
        &mut self,
        practice_id: &str,
        patient_id: &str,
        since: Timestamp,
    ) -> Result<Vec<Appointment>> {
        // `status_at_ms` also counts a move, so an appointment moved into the past is returned
        // too and its pending messages can be reconciled.
        let rows = sqlx::query(
            "SELECT data FROM appointments \
             WHERE practice_id = $1 AND patient_id = $2 AND (start_ms >= $3 OR status_at_ms >= $3) \
             ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .bind(ms(since))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Every appointment of the patient (history: no-show counts, recall, timeline), by start.
    pub async fn patient_history(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<Appointment>> {
        let rows = sqlx::query(
            "SELECT data FROM appointments WHERE practice_id = $1 AND patient_id = $2 \
             ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Appointments of the practice starting in [from, to), by start.
    pub async fn appointments_between(
        &mut self,
        practice_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Appointment>> {
        let rows = sqlx::query(
            "SELECT data FROM appointments \
             WHERE practice_id = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Ids of patients with an appointment starting at or after `since` or a document sent at or
    /// after `documents_since`: whom a settings change must re-plan.
    pub async fn patients_with_open_work(
        &mut self,
        practice_id: &str,
        since: Timestamp,
        documents_since: Timestamp,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT patient_id FROM appointments WHERE practice_id = $1 AND start_ms >= $2 \
             UNION \
             SELECT patient_id FROM documents WHERE practice_id = $1 AND sent_at_ms >= $3 \
             ORDER BY patient_id",
        )
        .bind(practice_id)
        .bind(ms(since))
        .bind(ms(documents_since))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").text("patient_id"))
            .collect()
    }

    /// Every non-erased patient of the practice (tasks: birthdays, recalls), by id.
    pub async fn all_patients(&mut self, practice_id: &str) -> Result<Vec<Patient>> {
        let rows = sqlx::query(concat!(
            "SELECT data, ",
            sms_opt_out_column!(),
            " FROM patients WHERE practice_id = $1 AND erased = 0 ORDER BY id",
        ))
        .bind(practice_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| patient_with_opt_out(&Cols::new(r, "patients")))
            .collect()
    }

    pub async fn upsert_document(&mut self, practice_id: &str, d: &Document) -> Result<()> {
        sqlx::query(
            "INSERT INTO documents (practice_id, id, patient_id, sent_at_ms, data) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET patient_id = excluded.patient_id, \
               sent_at_ms = excluded.sent_at_ms, data = excluded.data",
        )
        .bind(practice_id)
        .bind(&d.id)
        .bind(&d.patient)
        .bind(ms(d.sent_at))
        .bind(to_json("documents", d)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn document(&mut self, practice_id: &str, id: &str) -> Result<Option<Document>> {
        let row = sqlx::query("SELECT data FROM documents WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "documents").json("data"))
            .transpose()
    }

    pub async fn patient_documents(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<Document>> {
        let rows = sqlx::query(
            "SELECT data FROM documents WHERE practice_id = $1 AND patient_id = $2 \
             ORDER BY sent_at_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "documents").json("data"))
            .collect()
    }
}

/// A patient row read with `sms_opt_out_column!`.
pub(super) fn patient_with_opt_out(c: &Cols<'_>) -> Result<Patient> {
    let mut patient: Patient = c.json("data")?;
    patient.sms_opt_out = c.opt_ts("sms_opt_out")?;
    Ok(patient)
}

/// The text `search_patients` matches against: both name orders, email and mobile, lower-cased.
fn search_text(p: &Patient) -> String {
    let mut parts = vec![
        format!("{} {}", p.first_name, p.last_name),
        format!("{} {}", p.last_name, p.first_name),
    ];
    parts.extend(p.email.as_ref().map(ToString::to_string));
    parts.extend(p.mobile.as_ref().map(ToString::to_string));
    parts.join("\n").to_lowercase()
}

/// When the appointment last changed status, time or place; `None` for a booked, unmoved one.
pub(super) fn changed_at(a: &Appointment) -> Option<Timestamp> {
    let status_at = match a.status {
        AppointmentStatus::Booked => None,
        AppointmentStatus::Cancelled { at, .. }
        | AppointmentStatus::Deleted { at }
        | AppointmentStatus::NoShow { at }
        | AppointmentStatus::Attended { at } => Some(at),
    };
    let moved_at = a.moves.iter().map(|m| m.at).max();
    status_at.max(moved_at)
}
