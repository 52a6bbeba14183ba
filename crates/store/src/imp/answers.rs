//! The patient's answers about an appointment (`appointment_answers`) and the personal links
//! through which they give them (`appointment_links`). Only the SHA-256 of a link's token is
//! kept; the engine makes the tokens and decides what an answer does.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::Tx;
use super::batch::{insert_chunks, placeholders};
use super::codec::{Cols, ms};
use super::routes::{Route, routes_insert};
use crate::{Backend, Result, StoreError};

type LinkQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds each link's route: its kind, token hash and practice ([`routes_insert`]).
fn bind_routes<'q>(mut query: LinkQuery<'q>, links: &[&'q AppointmentLink]) -> LinkQuery<'q> {
    for link in links {
        query = query
            .bind(Route::AppointmentLink.as_str())
            .bind(&link.token_hash)
            .bind(&link.practice_id);
    }
    query
}

/// Binds each link's columns, in the order of [`LINK_COLUMNS`].
fn bind_links<'q>(mut query: LinkQuery<'q>, links: &[&'q AppointmentLink]) -> LinkQuery<'q> {
    for link in links {
        query = query
            .bind(&link.practice_id)
            .bind(&link.token_hash)
            .bind(&link.appointment_id)
            .bind(&link.patient_id)
            .bind(ms(link.start))
            .bind(ms(link.expires_at))
            .bind(ms(link.created_at));
    }
    query
}

/// One link sent to the patient about one appointment, known by the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentLink {
    pub practice_id: String,
    pub token_hash: String,
    pub appointment_id: String,
    pub patient_id: String,
    /// The start the message announced: a link of an appointment moved since says so.
    pub start: Timestamp,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// The patient's latest answer about an appointment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentAnswerRow {
    pub practice_id: String,
    pub appointment_id: String,
    pub patient_id: String,
    /// `confirmed` or `cancelled`.
    pub answer: String,
    /// `link` or `sms`.
    pub channel: String,
    /// The start the patient answered about.
    pub start: Timestamp,
    pub at: Timestamp,
}

const LINK_COLUMNS: &str =
    "practice_id, token_hash, appointment_id, patient_id, start_ms, expires_at, created_at";
const ANSWER_COLUMNS: &str =
    "practice_id, appointment_id, patient_id, answer, channel, start_ms, at";

fn link_row(row: &sqlx::any::AnyRow) -> Result<AppointmentLink> {
    let c = Cols::new(row, "appointment_links");
    Ok(AppointmentLink {
        practice_id: c.text("practice_id")?,
        token_hash: c.text("token_hash")?,
        appointment_id: c.text("appointment_id")?,
        patient_id: c.text("patient_id")?,
        start: c.ts("start_ms")?,
        expires_at: c.ts("expires_at")?,
        created_at: c.ts("created_at")?,
    })
}

fn answer_row(row: &sqlx::any::AnyRow) -> Result<AppointmentAnswerRow> {
    let c = Cols::new(row, "appointment_answers");
    Ok(AppointmentAnswerRow {
        practice_id: c.text("practice_id")?,
        appointment_id: c.text("appointment_id")?,
        patient_id: c.text("patient_id")?,
        answer: c.text("answer")?,
        channel: c.text("channel")?,
        start: c.ts("start_ms")?,
        at: c.ts("at")?,
    })
}

/// Links per multi-row INSERT: 7 parameters each, far under either backend's limit.
const LINKS_PER_STATEMENT: usize = 256;

impl Tx {
    /// [`Tx::insert_appointment_link`] of each, in two statements per chunk (the routes, then
    /// the links) rather than two per link: a dispatch batch of confirmations and reminders
    /// stores one link per message before the messages go. A statement holds the links of one
    /// practice (a batch can hold several practices' messages), as every statement does.
    pub async fn insert_appointment_links(&mut self, links: &[AppointmentLink]) -> Result<()> {
        let mut by_practice: BTreeMap<&str, Vec<&AppointmentLink>> = BTreeMap::new();
        for link in links {
            by_practice.entry(&link.practice_id).or_default().push(link);
        }
        for group in by_practice.values() {
            self.insert_links_of_one_practice(group).await?;
        }
        Ok(())
    }

    async fn insert_links_of_one_practice(&mut self, links: &[&AppointmentLink]) -> Result<()> {
        for chunk in insert_chunks(self.backend, links, LINKS_PER_STATEMENT) {
            // The routes first: a token hash already routed is a collision, and fails the batch.
            let routes = routes_insert(self.backend, chunk.len(), 1);
            let mut insert = format!("INSERT INTO appointment_links ({LINK_COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    insert.push_str(", ");
                }
                insert.push('(');
                insert.push_str(&placeholders(self.backend, 7 * i + 1, 7));
                insert.push(')');
            }
            // Kept prepared: the chunks take a few fixed lengths (`insert_chunks`).
            let routed = match self.backend {
                // On SQLite both statements go in one request (one text, whose anonymous
                // parameters bind in order): the write turn of a dispatch batch waited for twice
                // as many round trips to the connection's thread (issue 18, session 20). Every
                // link of the chunk is inserted or the statement fails, so the routes inserted
                // are what the two statements changed beyond the chunk.
                Backend::Sqlite => {
                    let sql = format!("{routes}; {insert}");
                    let query = bind_links(bind_routes(sqlx::query(&sql), chunk), chunk);
                    let changed = query.execute(&mut *self.inner).await?.rows_affected();
                    changed.saturating_sub(chunk.len() as u64)
                }
                Backend::Postgres => {
                    let routed = bind_routes(sqlx::query(&routes), chunk)
                        .execute(&mut *self.inner)
                        .await?
                        .rows_affected();
                    bind_links(sqlx::query(&insert), chunk)
                        .execute(&mut *self.inner)
                        .await?;
                    routed
                }
            };
            if routed != chunk.len() as u64 {
                return Err(StoreError::Corrupt {
                    table: "lookup_routes",
                    reason: "an appointment link's token hash is already in use".into(),
                });
            }
        }
        Ok(())
    }

    /// Stores the link and its route (the token hash names the practice).
    pub async fn insert_appointment_link(&mut self, link: &AppointmentLink) -> Result<()> {
        self.insert_appointment_links(std::slice::from_ref(link))
            .await
    }

    /// The link with that token hash, whatever its practice: the patient's URL names no
    /// practice, and the token alone is the capability.
    pub async fn appointment_link_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<AppointmentLink>> {
        let Some(practice_id) = self.route(Route::AppointmentLink, token_hash).await? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM appointment_links \
             WHERE practice_id = $1 AND token_hash = $2"
        );
        let row = sqlx::query(&sql)
            .bind(practice_id)
            .bind(token_hash)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(link_row).transpose()
    }

    /// Records the patient's answer, replacing an earlier one about the same appointment.
    pub async fn put_appointment_answer(&mut self, answer: &AppointmentAnswerRow) -> Result<()> {
        let sql = format!(
            "INSERT INTO appointment_answers ({ANSWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (practice_id, appointment_id) DO UPDATE SET \
               patient_id = excluded.patient_id, answer = excluded.answer, \
               channel = excluded.channel, start_ms = excluded.start_ms, at = excluded.at"
        );
        sqlx::query(&sql)
            .bind(&answer.practice_id)
            .bind(&answer.appointment_id)
            .bind(&answer.patient_id)
            .bind(&answer.answer)
            .bind(&answer.channel)
            .bind(ms(answer.start))
            .bind(ms(answer.at))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    pub async fn appointment_answer(
        &mut self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Option<AppointmentAnswerRow>> {
        let sql = format!(
            "SELECT {ANSWER_COLUMNS} FROM appointment_answers \
             WHERE practice_id = $1 AND appointment_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(practice_id)
            .bind(appointment_id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(answer_row).transpose()
    }

    /// The answers about appointments starting in `[from, until)`, for the day's dashboard.
    pub async fn appointment_answers_between(
        &mut self,
        practice_id: &str,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<AppointmentAnswerRow>> {
        let sql = format!(
            "SELECT {ANSWER_COLUMNS} FROM appointment_answers \
             WHERE practice_id = $1 AND start_ms >= $2 AND start_ms < $3 \
             ORDER BY start_ms, appointment_id"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(ms(from))
            .bind(ms(until))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(answer_row).collect()
    }

    /// GDPR erasure: the patient's links stop opening, and their answers go.
    pub(crate) async fn delete_patient_answers(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<()> {
        let tokens: Vec<String> = sqlx::query(
            "SELECT token_hash FROM appointment_links WHERE practice_id = $1 AND patient_id = $2",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?
        .iter()
        .map(|r| Cols::new(r, "appointment_links").text("token_hash"))
        .collect::<Result<_>>()?;
        self.delete_routes(Route::AppointmentLink, practice_id, &tokens)
            .await?;
        for table in ["appointment_links", "appointment_answers"] {
            let sql = format!("DELETE FROM {table} WHERE practice_id = $1 AND patient_id = $2");
            sqlx::query(&sql)
                .bind(practice_id)
                .bind(patient_id)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }
}
