//! The appointment links (`/r/{token}`): made at send time for the messages that carry them,
//! stored as hashes, and the page and answers behind them.

use jiff::Timestamp;
use rappel_domain::facts::Appointment;
use rappel_domain::notification::{Channel, Recipient};
use rappel_domain::render::AnswerLinks;
use rappel_domain::template::{Locale, carries_answer_links, date_text, time_text};
use rappel_store::{AppointmentLink, NotificationRow, Tx};

use super::{
    AnswerChannel, AnswerOutcome, PatientAnswer, answer_of, before_cutoff, cancel_in, closed,
    confirm_in, cutoff_hours, load_appointment, practice_phone,
};
use crate::practice::{PracticeCtx, load_practice};
use crate::secret::{self, token_hash};
use crate::{Engine, Result};

/// A link's token: 16 characters of base64url, short enough for an SMS. The first two are the
/// tenth of a second it was made in, modulo 4,096 (a cycle of about seven minutes); the other
/// 14 are random (84 bits). It is stored as [`link_key`]: those two characters, then its SHA-256.
///
/// The two characters say nothing a patient does not know (when the message came). What they
/// give is where the link goes in the two indexes it is looked up by (`appointment_links`' key
/// and its route): beside the links made in the same tenth of a second, instead of at a random
/// place of indexes that grow with every link sent. On SQLite, whose WAL takes a whole page for
/// every page a commit changed, the 500 links of a dispatch batch at random places changed
/// about 600 pages of those indexes (2.4 MB written per batch); made together, they fill a few
/// pages (issue 18, session 13). The token keeps its length, so an SMS reminder keeps its
/// number of SMS: two more characters pushed a reminder of 160 characters to two SMS (the
/// two-way SMS test with a quota of one caught it). Its secret is 84 random bits instead of
/// the 96 of the links made before: 10,000 guesses a second for a week against a million live
/// links hit one with a chance of about 3 in 10 billion, and a link only lives until its
/// appointment starts.
fn new_token(now: Timestamp) -> String {
    let tenth = now.as_millisecond().div_euclid(100).rem_euclid(4096) as usize;
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push(char::from(BASE64URL[tenth >> 6]));
    token.push(char::from(BASE64URL[tenth & 63]));
    // 256 is a multiple of 64: each random byte gives one of the 64 characters uniformly.
    for byte in secret::random_bytes::<RANDOM_CHARS>() {
        token.push(char::from(BASE64URL[usize::from(byte & 63)]));
    }
    token
}

/// The characters of base64url, in order.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A link's token length, the same as before the two characters of its moment.
const TOKEN_LEN: usize = 16;
/// The random characters of a token (6 bits each: 84 bits).
const RANDOM_CHARS: usize = TOKEN_LEN - 2;

/// What a link is stored and looked up by: its two first characters, then its SHA-256 in hex (66
/// characters). Only the hash of the secret part is kept, as for every token
/// (`secret::token_hash`). A link made before (96 random bits, the same length) was stored as
/// its hash alone, which no key of this form equals; it is looked up so too, until the
/// appointment it is about has started (`find_appointment_link`).
pub(crate) fn link_key(token: &str) -> String {
    format!("{}{}", &token[..2], token_hash(token))
}

fn page_url(public_url: &str, token: &str) -> String {
    format!("{}/r/{token}", public_url.trim_end_matches('/'))
}

/// Whether the practice's messages of that channel carry links: `appointment_links` for all,
/// and `appointment_links_sms` for SMS, where the link costs characters, hence SMS.
pub(crate) fn links_on(ctx: &PracticeCtx, channel: Channel) -> bool {
    ctx.settings.is_on("appointment_links")
        && match channel {
            Channel::Email => true,
            Channel::Sms => ctx.settings.is_on("appointment_links_sms"),
            Channel::Push | Channel::Postal | Channel::Inbox => false,
        }
}

/// Links as long as real ones, for the template preview: the SMS counter counts the same
/// characters as at send time.
pub(crate) fn sample_links(public_url: &str) -> AnswerLinks {
    AnswerLinks::for_page(page_url(public_url, "AbCdEfGhIjKlMnOp"))
}

/// A new link for the message being rendered, when it carries one: a confirmation or reminder
/// email or an SMS reminder, to the patient, about one booked appointment that has not started,
/// from a practice that has not switched links off. The dispatcher stores the row (in its write
/// phase, before the message goes) and renders the links. Returns the row, the links and the
/// token (which the audit copy of the message masks).
pub(crate) fn answer_link(
    ctx: &PracticeCtx,
    row: &NotificationRow,
    appointments: &[Appointment],
    public_url: &str,
    now: Timestamp,
) -> Option<(AppointmentLink, AnswerLinks, String)> {
    if !carries_answer_links(row.kind, row.channel)
        || !matches!(row.recipient, Recipient::Patient(_))
        || !links_on(ctx, row.channel)
    {
        return None;
    }
    // A grouped message about several appointments carries no link: one link is one appointment.
    let [appointment] = appointments else {
        return None;
    };
    if !appointment.is_active() || appointment.start <= now {
        return None;
    }
    let token = new_token(now);
    let link = AppointmentLink {
        practice_id: ctx.row.id.clone(),
        token_hash: link_key(&token),
        appointment_id: appointment.id.clone(),
        patient_id: appointment.patient.clone(),
        start: appointment.start,
        expires_at: appointment.start,
        created_at: now,
    };
    Some((
        link,
        AnswerLinks::for_page(page_url(public_url, &token)),
        token,
    ))
}

/// What the page of an open link shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentView {
    pub practice: String,
    /// « mercredi 11 mars 2026 », « 09h30 », in the practice's time zone.
    pub date_text: String,
    pub time_text: String,
    pub practitioner: Option<String>,
    pub location: Option<String>,
    /// Only when the practice shows motives (`show_motive_in_sms`).
    pub motive: Option<String>,
    /// The patient's current answer about this time, if any.
    pub answer: Option<PatientAnswer>,
    /// Whether cancelling online is still possible; if not, `phone` is the practice's.
    pub can_cancel: bool,
    pub cutoff_hours: i64,
    pub phone: Option<String>,
}

/// What `/r/{token}` shows, or what an answer through it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkPage {
    /// The appointment, and what the patient may still do.
    Open(Box<AppointmentView>),
    /// The answer was applied (or had been): the page shows the appointment and the answer.
    Answered {
        view: Box<AppointmentView>,
        answer: PatientAnswer,
        already: bool,
    },
    /// Cancelling came too late: the page gives the practice's telephone.
    TooLate(Box<AppointmentView>),
    /// The appointment is no longer booked.
    NoLongerBooked {
        practice: String,
        by_patient: bool,
        phone: Option<String>,
    },
    /// The appointment moved: here is its new date.
    Moved {
        practice: String,
        date_text: String,
        time_text: String,
        phone: Option<String>,
    },
    /// The appointment has started or happened.
    Past { practice: String },
    /// Unknown, expired, switched off, or its patient erased: nothing to reveal.
    Unknown,
}

/// The patient's choice on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    Confirm,
    Cancel,
}

/// An open link with what it names, inside a transaction.
struct Found {
    link: AppointmentLink,
    ctx: PracticeCtx,
    appointment: Appointment,
}

impl Engine {
    async fn find_appointment_link(
        &self,
        tx: &mut Tx,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Found>> {
        // A token is 16 characters; anything else cannot be one (and is not hashed for nothing).
        if token.len() != TOKEN_LEN
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let link = match tx.appointment_link_by_hash(&link_key(token)).await? {
            Some(link) => Some(link),
            // A link made before the two characters of its moment: stored as its hash alone.
            None => tx.appointment_link_by_hash(&token_hash(token)).await?,
        };
        let Some(link) = link else {
            return Ok(None);
        };
        if link.expires_at <= now {
            return Ok(None);
        }
        let ctx = load_practice(tx, &link.practice_id).await?;
        if !ctx.settings.is_on("appointment_links") {
            return Ok(None);
        }
        let Some(appointment) =
            load_appointment(tx, &link.practice_id, &link.appointment_id).await?
        else {
            return Ok(None);
        };
        Ok(Some(Found {
            link,
            ctx,
            appointment,
        }))
    }

    /// `GET /r/{token}`: what the page shows. Reads only.
    pub async fn appointment_link_page(&self, token: &str) -> Result<LinkPage> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let Some(found) = self.find_appointment_link(&mut tx, token, now).await? else {
            tx.commit().await?;
            return Ok(LinkPage::Unknown);
        };
        let answer = tx
            .appointment_answer(&found.link.practice_id, &found.appointment.id)
            .await?
            .and_then(|row| answer_of(row, &found.appointment))
            .filter(|a| a.current)
            .map(|a| a.answer);
        let motive = match &found.appointment.motive {
            Some(m) if found.ctx.settings.is_on("show_motive_in_sms") => {
                tx.motive(&found.link.practice_id, m).await?.map(|m| m.name)
            }
            _ => None,
        };
        let practitioner = tx
            .practitioner(&found.link.practice_id, &found.appointment.practitioner)
            .await?
            .map(|p| p.name);
        tx.commit().await?;
        Ok(page_of(&found, now, answer, practitioner, motive, None))
    }

    /// `POST /r/{token}`: applies the patient's choice through the core above
    /// ([`AnswerChannel::Link`]) and says what the page shows next.
    pub async fn answer_by_link(&self, token: &str, action: LinkAction) -> Result<LinkPage> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let Some(found) = self.find_appointment_link(&mut tx, token, now).await? else {
            tx.commit().await?;
            return Ok(LinkPage::Unknown);
        };
        let pid = found.link.practice_id.clone();
        // A link names the time the patient was told; a moved appointment is answered on the
        // page of the new time, not through this one.
        let outcome =
            if found.appointment.is_active() && found.appointment.start != found.link.start {
                AnswerOutcome::Moved {
                    start: found.appointment.start,
                }
            } else {
                match action {
                    LinkAction::Confirm => {
                        confirm_in(
                            &mut tx,
                            &pid,
                            &found.appointment.id,
                            AnswerChannel::Link,
                            now,
                            now,
                        )
                        .await?
                    }
                    LinkAction::Cancel => {
                        cancel_in(
                            &mut tx,
                            &pid,
                            &found.appointment.id,
                            AnswerChannel::Link,
                            now,
                            now,
                        )
                        .await?
                    }
                }
            };
        let practitioner = tx
            .practitioner(&pid, &found.appointment.practitioner)
            .await?
            .map(|p| p.name);
        let motive = match &found.appointment.motive {
            Some(m) if found.ctx.settings.is_on("show_motive_in_sms") => {
                tx.motive(&pid, m).await?.map(|m| m.name)
            }
            _ => None,
        };
        tx.commit().await?;
        if outcome == AnswerOutcome::Done && action == LinkAction::Cancel {
            self.work_added();
        }
        let answer = match action {
            LinkAction::Confirm => PatientAnswer::Confirmed,
            LinkAction::Cancel => PatientAnswer::Cancelled,
        };
        Ok(page_of(
            &found,
            now,
            Some(answer),
            practitioner,
            motive,
            Some(outcome),
        ))
    }
}

/// The page for a found link: after an answer (`outcome`), or on opening it.
fn page_of(
    found: &Found,
    now: Timestamp,
    answer: Option<PatientAnswer>,
    practitioner: Option<String>,
    motive: Option<String>,
    outcome: Option<AnswerOutcome>,
) -> LinkPage {
    let ctx = &found.ctx;
    let appointment = &found.appointment;
    let practice = ctx.row.name.clone();
    let phone = practice_phone(ctx);
    let view = |answer: Option<PatientAnswer>| {
        Box::new(AppointmentView {
            practice: practice.clone(),
            date_text: date_text(appointment.start, &ctx.tz, Locale::Fr),
            time_text: time_text(appointment.start, &ctx.tz, Locale::Fr),
            practitioner: practitioner.clone(),
            location: appointment.location.clone(),
            motive: motive.clone(),
            answer,
            can_cancel: before_cutoff(ctx, appointment, now),
            cutoff_hours: cutoff_hours(ctx),
            phone: phone.clone(),
        })
    };
    let moved = |start: Timestamp| LinkPage::Moved {
        practice: practice.clone(),
        date_text: date_text(start, &ctx.tz, Locale::Fr),
        time_text: time_text(start, &ctx.tz, Locale::Fr),
        phone: phone.clone(),
    };
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => {
            return match closed(appointment, now) {
                Some(AnswerOutcome::NoLongerBooked { by_patient }) => LinkPage::NoLongerBooked {
                    practice,
                    by_patient,
                    phone,
                },
                Some(_) => LinkPage::Past { practice },
                None if appointment.start != found.link.start => moved(appointment.start),
                None => LinkPage::Open(view(answer)),
            };
        }
    };
    match outcome {
        AnswerOutcome::Done => LinkPage::Answered {
            view: view(answer),
            answer: answer.unwrap_or(PatientAnswer::Confirmed),
            already: false,
        },
        AnswerOutcome::AlreadyDone => LinkPage::Answered {
            view: view(answer),
            answer: answer.unwrap_or(PatientAnswer::Confirmed),
            already: true,
        },
        AnswerOutcome::TooLate { .. } => LinkPage::TooLate(view(None)),
        AnswerOutcome::NoLongerBooked { by_patient } => LinkPage::NoLongerBooked {
            practice,
            by_patient,
            phone,
        },
        AnswerOutcome::Moved { start } => moved(start),
        AnswerOutcome::Past => LinkPage::Past { practice },
        AnswerOutcome::Unknown => LinkPage::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_16_url_safe_characters_and_never_repeats() {
        let now = Timestamp::now();
        let a = new_token(now);
        let b = new_token(now);
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn the_sample_link_is_as_long_as_a_real_one() {
        let sample = sample_links("https://rappel.example/");
        let real = page_url("https://rappel.example", &new_token(Timestamp::now()));
        assert_eq!(sample.page.len(), real.len());
    }

    #[test]
    fn a_token_is_its_tenth_of_a_second_then_84_random_bits_and_is_stored_by_both_hashed() {
        let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap();
        let token = new_token(at(1_796_549_760_451));
        assert_eq!(token.len(), TOKEN_LEN);
        // The same tenth of a second, the same two first characters; the rest never repeats.
        let again = new_token(at(1_796_549_760_499));
        assert_eq!(token[..2], again[..2]);
        assert_ne!(token[2..], again[2..]);
        // Each tenth of a second of the cycle has its own two characters.
        let tenths: Vec<String> = (0..4096)
            .map(|i| new_token(at(i * 100))[..2].to_string())
            .collect();
        let distinct: std::collections::BTreeSet<&String> = tenths.iter().collect();
        assert_eq!(distinct.len(), 4096);
        assert_eq!(new_token(at(4096 * 100))[..2], tenths[0]);
        // The random characters take every value of the alphabet.
        let seen: std::collections::BTreeSet<char> = (0..200)
            .flat_map(|_| new_token(at(0)).chars().skip(2).collect::<Vec<_>>())
            .collect();
        assert_eq!(seen.len(), 64);
        // Stored by its two first characters and the SHA-256 of the whole token: the random part
        // is only ever kept hashed, and no key of this form is a bare hash (a link made before).
        let key = link_key(&token);
        assert_eq!(key.len(), 2 + 64);
        assert_eq!(key[..2], token[..2]);
        assert_eq!(key[2..], token_hash(&token));
        assert!(!key.contains(&token[2..]));
        assert_ne!(key.len(), token_hash(&token).len());
    }
}
