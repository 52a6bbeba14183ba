//! Every report a provider sent about a message after its hand-off (`delivery_reports`): the
//! message's history lists them with their time and code, while the notification row keeps only
//! the status they left.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::Tx;
use super::codec::{Cols, ms};
use crate::Result;

/// One report about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReportRow {
    pub practice_id: String,
    pub notification_key: String,
    pub patient_id: String,
    pub at: Timestamp,
    /// Who reported: `twilio`, `ovh`, `webhook`, `dsn`, `bounce`, `brevo`, `mailjet`.
    pub source: String,
    /// `delivered`, `failed`, `delayed` or `complaint`.
    pub outcome: String,
    /// The provider's code and words, as they came (addresses already masked by the caller).
    pub detail: Option<String>,
}

impl Tx {
    /// Records a report; the same report received again (same source, outcome and detail) is
    /// stored once. Returns whether it was new.
    pub async fn insert_delivery_report(&mut self, report: &DeliveryReportRow) -> Result<bool> {
        let id = hex::encode(
            &Sha256::digest(
                format!(
                    "{}\n{}\n{}",
                    report.source,
                    report.outcome,
                    report.detail.as_deref().unwrap_or("")
                )
                .as_bytes(),
            )[..12],
        );
        let done = sqlx::query(
            "INSERT INTO delivery_reports \
               (practice_id, notification_key, id, patient_id, at, source, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (practice_id, notification_key, id) DO NOTHING",
        )
        .bind(&report.practice_id)
        .bind(&report.notification_key)
        .bind(id)
        .bind(&report.patient_id)
        .bind(ms(report.at))
        .bind(&report.source)
        .bind(&report.outcome)
        .bind(report.detail.clone())
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The reports about one message, oldest first.
    pub async fn delivery_reports(
        &mut self,
        practice_id: &str,
        notification_key: &str,
    ) -> Result<Vec<DeliveryReportRow>> {
        let rows = sqlx::query(
            "SELECT practice_id, notification_key, patient_id, at, source, outcome, detail \
             FROM delivery_reports WHERE practice_id = $1 AND notification_key = $2 \
             ORDER BY at, id",
        )
        .bind(practice_id)
        .bind(notification_key)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "delivery_reports");
                Ok(DeliveryReportRow {
                    practice_id: c.text("practice_id")?,
                    notification_key: c.text("notification_key")?,
                    patient_id: c.text("patient_id")?,
                    at: c.ts("at")?,
                    source: c.text("source")?,
                    outcome: c.text("outcome")?,
                    detail: c.opt_text("detail")?,
                })
            })
            .collect()
    }

    /// GDPR erasure: a provider's words may quote the patient's address or number.
    pub(crate) async fn delete_patient_delivery_reports(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM delivery_reports WHERE practice_id = $1 AND patient_id = $2")
            .bind(practice_id)
            .bind(patient_id)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}
