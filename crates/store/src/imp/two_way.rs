//! Two-way SMS (issue 16): the last SMS sent to each number (`sms_last_sent`), the SMS opt-out
//! register (`sms_opt_outs`) and what patients sent back (`received_messages`).
//!
//! `last_sms_to` is the one read here that cannot know the practice: an incoming SMS names a
//! number only. It is a primary-key lookup on the number's SHA-256; everything after it is
//! scoped by the practice the row names.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::Tx;
use super::codec::{Cols, ms, opt_ms};
use crate::Result;

/// The latest SMS sent to a number: whose message a reply from that number answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastSms {
    pub practice_id: String,
    pub patient_id: String,
    pub notification_key: String,
    pub sent_at: Timestamp,
}

/// A patient's SMS opt-out.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsOptOut {
    pub practice_id: String,
    pub patient_id: String,
    /// The number that asked (E.164), or the patient's mobile when the practice recorded it.
    pub number: String,
    pub opted_out_at: Timestamp,
    /// `sms` (the patient's STOP), `api` or `ui` (the practice).
    pub source: String,
}

impl std::fmt::Debug for SmsOptOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsOptOut")
            .field("practice_id", &self.practice_id)
            .field("patient_id", &self.patient_id)
            .field("opted_out_at", &self.opted_out_at)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One SMS a patient sent back.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessageRow {
    pub practice_id: String,
    pub id: String,
    pub patient_id: String,
    /// The appointment it most likely answers: the patient's next one when it arrived.
    pub appointment_id: Option<String>,
    /// `twilio`, `ovh`, `webhook` (or `simulate`).
    pub provider: String,
    /// The keyword it consisted of (`confirm`, `cancel`, `stop`, `start`), or `None` for free
    /// text that a person must read.
    pub keyword: Option<String>,
    /// What the patient wrote: health data, never logged.
    pub body: String,
    pub received_at: Timestamp,
    pub handled_at: Option<Timestamp>,
}

impl std::fmt::Debug for ReceivedMessageRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMessageRow")
            .field("practice_id", &self.practice_id)
            .field("id", &self.id)
            .field("patient_id", &self.patient_id)
            .field("keyword", &self.keyword)
            .finish_non_exhaustive()
    }
}

/// The id of an incoming message: a provider that calls twice names the same message.
pub fn received_message_id(provider: &str, provider_message_id: &str) -> String {
    format!(
        "rcv_{}",
        hex::encode(&Sha256::digest(format!("{provider}\n{provider_message_id}").as_bytes())[..12])
    )
}

fn number_hash(number: &str) -> String {
    hex::encode(Sha256::digest(
        format!("rappel-sms-number\n{number}").as_bytes(),
    ))
}

const RECEIVED_COLUMNS: &str = "practice_id, id, patient_id, appointment_id, provider, keyword, \
                                body, received_at, handled_at";

fn received_row(row: &sqlx::any::AnyRow) -> Result<ReceivedMessageRow> {
    let c = Cols::new(row, "received_messages");
    Ok(ReceivedMessageRow {
        practice_id: c.text("practice_id")?,
        id: c.text("id")?,
        patient_id: c.text("patient_id")?,
        appointment_id: c.opt_text("appointment_id")?,
        provider: c.text("provider")?,
        keyword: c.opt_text("keyword")?,
        body: c.text("body")?,
        received_at: c.ts("received_at")?,
        handled_at: c.opt_ts("handled_at")?,
    })
}

impl Tx {
    // ---- the last SMS sent to a number ----

    /// Records that an SMS of this practice went to `number` (E.164) at `at`. An older send
    /// recorded late (a retry's report) does not replace a newer one.
    pub async fn record_sms_sent(
        &mut self,
        number: &str,
        practice_id: &str,
        patient_id: &str,
        notification_key: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sms_last_sent \
               (number_hash, practice_id, patient_id, notification_key, sent_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (number_hash) DO UPDATE SET practice_id = excluded.practice_id, \
               patient_id = excluded.patient_id, notification_key = excluded.notification_key, \
               sent_at = excluded.sent_at \
             WHERE sms_last_sent.sent_at <= excluded.sent_at",
        )
        .bind(number_hash(number))
        .bind(practice_id)
        .bind(patient_id)
        .bind(notification_key)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The latest SMS sent to `number` (E.164), whatever the practice.
    pub async fn last_sms_to(&mut self, number: &str) -> Result<Option<LastSms>> {
        let row = sqlx::query(
            "SELECT practice_id, patient_id, notification_key, sent_at FROM sms_last_sent \
             WHERE number_hash = $1",
        )
        .bind(number_hash(number))
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|row| {
            let c = Cols::new(&row, "sms_last_sent");
            Ok(LastSms {
                practice_id: c.text("practice_id")?,
                patient_id: c.text("patient_id")?,
                notification_key: c.text("notification_key")?,
                sent_at: c.ts("sent_at")?,
            })
        })
        .transpose()
    }

    // ---- the opt-out register ----

    /// Records an opt-out. A patient already opted out keeps the first date and source: the
    /// register says since when. Returns whether it was new.
    pub async fn insert_sms_opt_out(&mut self, opt_out: &SmsOptOut) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO sms_opt_outs (practice_id, patient_id, number, opted_out_at, source) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (practice_id, patient_id) DO NOTHING",
        )
        .bind(&opt_out.practice_id)
        .bind(&opt_out.patient_id)
        .bind(&opt_out.number)
        .bind(ms(opt_out.opted_out_at))
        .bind(&opt_out.source)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The patient's opt-out, if any.
    pub async fn sms_opt_out(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<SmsOptOut>> {
        let row = sqlx::query(
            "SELECT practice_id, patient_id, number, opted_out_at, source FROM sms_opt_outs \
             WHERE practice_id = $1 AND patient_id = $2",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|row| {
            let c = Cols::new(&row, "sms_opt_outs");
            Ok(SmsOptOut {
                practice_id: c.text("practice_id")?,
                patient_id: c.text("patient_id")?,
                number: c.text("number")?,
                opted_out_at: c.ts("opted_out_at")?,
                source: c.text("source")?,
            })
        })
        .transpose()
    }

    /// Lifts the patient's opt-out. Returns whether there was one.
    pub async fn delete_sms_opt_out(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM sms_opt_outs WHERE practice_id = $1 AND patient_id = $2")
                .bind(practice_id)
                .bind(patient_id)
                .execute(&mut *self.inner)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- received messages ----

    /// Stores a received message; the same id again stores nothing. Returns whether it was new.
    pub async fn insert_received_message(&mut self, message: &ReceivedMessageRow) -> Result<bool> {
        let done = sqlx::query(&format!(
            "INSERT INTO received_messages ({RECEIVED_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (practice_id, id) DO NOTHING"
        ))
        .bind(&message.practice_id)
        .bind(&message.id)
        .bind(&message.patient_id)
        .bind(message.appointment_id.clone())
        .bind(&message.provider)
        .bind(message.keyword.clone())
        .bind(&message.body)
        .bind(ms(message.received_at))
        .bind(opt_ms(message.handled_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One received message of the practice.
    pub async fn received_message(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<ReceivedMessageRow>> {
        let row = sqlx::query(&format!(
            "SELECT {RECEIVED_COLUMNS} FROM received_messages WHERE practice_id = $1 AND id = $2"
        ))
        .bind(practice_id)
        .bind(id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(received_row).transpose()
    }

    /// The practice's received messages, newest first, at most `limit`: the unhandled ones
    /// only, or all of them (keywords included) with `include_handled`.
    pub async fn received_messages(
        &mut self,
        practice_id: &str,
        include_handled: bool,
        limit: i64,
    ) -> Result<Vec<ReceivedMessageRow>> {
        let filter = if include_handled {
            ""
        } else {
            " AND handled_at IS NULL"
        };
        let rows = sqlx::query(&format!(
            "SELECT {RECEIVED_COLUMNS} FROM received_messages WHERE practice_id = $1{filter} \
             ORDER BY received_at DESC, id DESC LIMIT $2"
        ))
        .bind(practice_id)
        .bind(limit.max(0))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(received_row).collect()
    }

    /// Marks a received message handled. Returns false if unknown or already handled.
    pub async fn resolve_received_message(
        &mut self,
        practice_id: &str,
        id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE received_messages SET handled_at = $3 \
             WHERE practice_id = $1 AND id = $2 AND handled_at IS NULL",
        )
        .bind(practice_id)
        .bind(id)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// GDPR erasure: what the patient wrote, their number's last send and their opt-out.
    /// (An erased patient gets no message at all, so the register has nothing left to guard.)
    pub(crate) async fn delete_patient_two_way(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<()> {
        for table in ["received_messages", "sms_last_sent", "sms_opt_outs"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE practice_id = $1 AND patient_id = $2"
            ))
            .bind(practice_id)
            .bind(patient_id)
            .execute(&mut *self.inner)
            .await?;
        }
        Ok(())
    }
}
