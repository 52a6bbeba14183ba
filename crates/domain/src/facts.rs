//! The facts the planner reasons about: practitioners, motives, patients, appointments, documents.
//!
//! Facts are plain data, changed only by applying events (see [`crate::event`]). Emails and phone
//! numbers are [`Contact`]s, parsed once where they enter the facts: a scenario or an old record
//! may carry an address that does not parse, and the planner must be able to say `invalid_email`
//! about it rather than refuse the whole patient, so such a value is kept as typed
//! ([`Contact::Invalid`]). The API boundary parses new phone numbers strictly before they get here.

use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};

use crate::contact::{Contact, EmailAddress, PhoneNumber, PostalAddress};

/// A practitioner (praticien / agenda). Alerts go only to the contacts that are set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Practitioner {
    pub id: String,
    pub name: String,
    #[serde(
        default,
        deserialize_with = "crate::contact::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub email: Option<Contact<EmailAddress>>,
    /// Any phone number: the gate sends SMS only to one that is a mobile.
    #[serde(
        default,
        deserialize_with = "crate::contact::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub mobile: Option<Contact<PhoneNumber>>,
}

impl std::fmt::Debug for Practitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Practitioner")
            .field("id", &self.id)
            .field("has_email", &self.email.is_some())
            .field("has_mobile", &self.mobile.is_some())
            .finish()
    }
}

/// A visit reason (motif). `notifications = false` silences every patient message about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Motive {
    pub id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub notifications: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

fn yes() -> bool {
    true
}

/// A Web Push subscription as the browser hands it over (RFC 8030 endpoint + RFC 8291 keys).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushSubscription(..)")
    }
}

/// A patient. `Debug` redacts everything but the id: patient data must not reach logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Patient {
    pub id: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(
        default,
        deserialize_with = "crate::contact::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Contact<EmailAddress>>,
    /// Any phone number: the gate sends SMS only to one that is a mobile.
    #[serde(
        default,
        deserialize_with = "crate::contact::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub mobile: Option<Contact<PhoneNumber>>,
    /// Set by scenario files (`push = true`) for a patient who uses the mobile application; the
    /// server sets it from the real subscriptions it holds.
    #[serde(default)]
    pub push: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push_subscriptions: Vec<PushSubscription>,
    /// Per-patient switches; `None` means "the preset's or plan's default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notifications: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_notifications: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// When the patient asked for no more SMS (`STOP` / `ARRET` in a reply), from the opt-out
    /// register the store keeps beside the patient file. Not part of the file itself: the
    /// practice software's `PUT` or `patient.updated` never sets or lifts it (only the patient's
    /// `START` / `OUI` or the practice's explicit action do), so it is never serialized.
    #[serde(skip)]
    pub sms_opt_out: Option<Timestamp>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Patient {
    pub fn has_push(&self) -> bool {
        self.push || !self.push_subscriptions.is_empty()
    }

    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Online,
    Staff,
    Referral,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Online => "online",
            Source::Staff => "staff",
            Source::Referral => "referral",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    PractitionerAbsence,
    Patient,
    Practice,
}

impl CancelledBy {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelledBy::PractitionerAbsence => "practitioner_absence",
            CancelledBy::Patient => "patient",
            CancelledBy::Practice => "practice",
        }
    }
}

/// Where an appointment stands. Each variant keeps the instant of the change, because rules are
/// timed from it ("about ten minutes after the cancellation").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Cancelled {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        by: CancelledBy,
        excused: bool,
    },
    Deleted {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
    },
    NoShow {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
    },
    Attended {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
    },
}

impl AppointmentStatus {
    pub fn name(&self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Cancelled { .. } => "cancelled",
            AppointmentStatus::Deleted { .. } => "deleted",
            AppointmentStatus::NoShow { .. } => "no_show",
            AppointmentStatus::Attended { .. } => "attended",
        }
    }
}

/// One change of time or place, kept so that delayed "moved" alerts can coalesce and so that
/// "the move happened on D-1 of the original date" can be decided later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Move {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from_start: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to_start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
}

/// Changes of an appointment within this time of an episode's first change are one change
/// (SPEC.md rule 7 and decision 10: "about 10 minutes", from the first change).
pub const CHANGE_EPISODE: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Appointment {
    pub id: String,
    pub patient: String,
    pub practitioner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motive: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: Timestamp,
    pub duration_minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub source: Source,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub booked_at: Timestamp,
    #[serde(flatten)]
    pub status: AppointmentStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Move>,
    /// Bumped by every change; lets API clients detect concurrent edits.
    pub version: u32,
}

impl Appointment {
    pub fn is_active(&self) -> bool {
        matches!(self.status, AppointmentStatus::Booked)
    }

    /// The instant reminders are planned from: the booking, or the last move that changed the
    /// time. A move re-plans reminders as if the appointment were booked at that instant
    /// (SPEC.md decision 4), so an appointment moved on D-1 afternoon gets the late-booking SMS.
    /// Moves are taken by episode (changes within [`CHANGE_EPISODE`] of the episode's first,
    /// decision 10): an episode that ends at the start it began from (moved, then moved back)
    /// changed nothing, and a change of place alone keeps the timing the patient was given.
    pub fn planned_at(&self) -> Timestamp {
        let mut planned = self.booked_at;
        let mut episode: Option<(&Move, &Move)> = None;
        for mv in &self.moves {
            episode = match episode {
                Some((first, _)) if mv.at < first.at + CHANGE_EPISODE => Some((first, mv)),
                Some((first, last)) => {
                    if first.from_start != last.to_start {
                        planned = last.at;
                    }
                    Some((mv, mv))
                }
                None => Some((mv, mv)),
            };
        }
        if let Some((first, last)) = episode
            && first.from_start != last.to_start
        {
            planned = last.at;
        }
        planned
    }

    /// Start − [`Self::planned_at`]: how far ahead the appointment was booked (or last moved).
    pub fn lead(&self) -> jiff::SignedDuration {
        self.start.duration_since(self.planned_at())
    }

    pub fn end(&self) -> Timestamp {
        self.start + jiff::SignedDuration::from_mins(i64::from(self.duration_minutes))
    }
}

/// What became of the email that carried a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EmailDelivery {
    /// Not handed off yet.
    Pending,
    /// Accepted by the mail system, no delivery report yet. For the unread rule this counts as
    /// delivered from that moment: most mail systems report only failures (bounces).
    Sent {
        at: Timestamp,
    },
    Delivered {
        at: Timestamp,
    },
    /// Bounced or refused permanently (also: the patient had no usable email).
    Failed {
        at: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub patient: String,
    pub title: String,
    pub sent_at: Timestamp,
    pub email: EmailDelivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consulted_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A patient as the API stored it before its contacts were typed, and as it stores it now.
    const STORED: &str = r#"{"id":"p1","first_name":"Jeanne","last_name":"Dupont","email":"jeanne.example.org","mobile":"+33612345678","push":false}"#;

    #[test]
    fn a_stored_patient_loads_with_typed_contacts_and_writes_back_the_same_json() {
        let patient: Patient = serde_json::from_str(STORED).unwrap();
        let Some(Contact::Invalid(raw)) = &patient.email else {
            panic!("an email that does not parse is kept as typed")
        };
        assert_eq!(raw.as_str(), "jeanne.example.org");
        let mobile = patient.mobile.as_ref().and_then(Contact::mobile);
        assert_eq!(
            mobile.map(|m| m.e164().to_string()).as_deref(),
            Some("+33612345678")
        );
        assert_eq!(serde_json::to_string(&patient).unwrap(), STORED);
    }

    #[test]
    fn a_blank_or_null_contact_is_none_and_left_out() {
        let patient: Patient =
            serde_json::from_str(r#"{"id":"p1","email":" ","mobile":null}"#).unwrap();
        assert_eq!(
            (patient.email.as_ref(), patient.mobile.as_ref()),
            (None, None)
        );
        assert_eq!(
            serde_json::to_string(&patient).unwrap(),
            r#"{"id":"p1","first_name":"","last_name":"","push":false}"#
        );
    }

    #[test]
    fn a_practitioner_reads_its_contacts_through_the_same_parsers() {
        let dr: Practitioner = toml::from_str(
            "id = \"dr1\"\nname = \"Dr Martin\"\nemail = \"martin@cabinet.example\"\nmobile = \"01 23 45 67 89\"",
        )
        .unwrap();
        assert!(
            matches!(&dr.email, Some(Contact::Valid(e)) if e.as_str() == "martin@cabinet.example")
        );
        assert!(matches!(&dr.mobile, Some(Contact::Valid(n)) if n.e164() == "+33123456789"));
    }
}
