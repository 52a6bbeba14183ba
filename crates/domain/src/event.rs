//! The event vocabulary shared by `POST /v1/events` and scenario files (SCENARIOS.md), and the
//! pure functions that fold an event into the facts.
//!
//! Applying an event is idempotent by construction: an event that changes nothing (the same
//! booking twice, a move to the time the appointment already has) reports
//! [`Applied::Unchanged`], so replaying a day of events creates nothing new.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::facts::{
    Appointment, AppointmentStatus, CancelledBy, Document, EmailDelivery, Move, Patient, Source,
};

/// One event as practice software sends it. `at` defaults to the time of receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "appointment.booked")]
    AppointmentBooked {
        id: String,
        patient: String,
        practitioner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        motive: Option<String>,
        start: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_minutes: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
        source: Source,
    },
    #[serde(rename = "appointment.moved")]
    AppointmentMoved {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    #[serde(rename = "appointment.cancelled")]
    AppointmentCancelled {
        id: String,
        by: CancelledBy,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excused: Option<bool>,
    },
    #[serde(rename = "appointment.deleted")]
    AppointmentDeleted { id: String },
    #[serde(rename = "appointment.no_show")]
    AppointmentNoShow { id: String },
    #[serde(rename = "appointment.attended")]
    AppointmentAttended { id: String },
    #[serde(rename = "patient.updated")]
    PatientUpdated {
        id: String,
        #[serde(flatten)]
        fields: Map<String, Value>,
    },
    #[serde(rename = "settings.updated")]
    SettingsUpdated {
        #[serde(flatten)]
        settings: Map<String, Value>,
    },
    #[serde(rename = "document.sent")]
    DocumentSent {
        id: String,
        patient: String,
        title: String,
    },
    #[serde(rename = "delivery.bounced")]
    DeliveryBounced { document: String },
    #[serde(rename = "delivery.delivered")]
    DeliveryDelivered { document: String },
    #[serde(rename = "document.consulted")]
    DocumentConsulted { id: String },
    /// Scenario files only (SCENARIOS.md): the patient answers the practice's last SMS with
    /// `text`, as if from their mobile, so that `simulate` shows what a reply causes. Real
    /// replies come from the SMS providers' inbound webhooks, never through `/v1/events`.
    #[serde(rename = "patient.replied")]
    PatientReplied { patient: String, text: String },
}

/// Event types that only scenario files carry (not part of `POST /v1/events`).
pub const SCENARIO_ONLY_EVENT_TYPES: &[&str] = &["patient.replied"];

/// The event type names, in the order SCENARIOS.md lists them.
pub const EVENT_TYPES: &[&str] = &[
    "appointment.booked",
    "appointment.moved",
    "appointment.cancelled",
    "appointment.deleted",
    "appointment.no_show",
    "appointment.attended",
    "patient.updated",
    "settings.updated",
    "document.sent",
    "delivery.bounced",
    "delivery.delivered",
    "document.consulted",
];

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::AppointmentBooked { .. } => "appointment.booked",
            EventBody::AppointmentMoved { .. } => "appointment.moved",
            EventBody::AppointmentCancelled { .. } => "appointment.cancelled",
            EventBody::AppointmentDeleted { .. } => "appointment.deleted",
            EventBody::AppointmentNoShow { .. } => "appointment.no_show",
            EventBody::AppointmentAttended { .. } => "appointment.attended",
            EventBody::PatientUpdated { .. } => "patient.updated",
            EventBody::SettingsUpdated { .. } => "settings.updated",
            EventBody::DocumentSent { .. } => "document.sent",
            EventBody::DeliveryBounced { .. } => "delivery.bounced",
            EventBody::DeliveryDelivered { .. } => "delivery.delivered",
            EventBody::DocumentConsulted { .. } => "document.consulted",
            EventBody::PatientReplied { .. } => "patient.replied",
        }
    }
}

/// The longest id the practice software may choose, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// The one rule for every id the practice software chooses (REST paths, event bodies, scenario
/// files): 1 to [`MAX_ID_CHARS`] characters, no control characters. Ids end up in URLs, file
/// names and database keys, where a NUL or a 10,000-character id makes a record that no request
/// can name again, hence that no erasure can reach.
pub fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err("an id has 1 to 128 characters");
    }
    if id.chars().any(char::is_control) {
        return Err("an id has no control characters");
    }
    Ok(())
}

impl EventBody {
    /// The ids this event names, with the field each is in.
    pub fn ids(&self) -> Vec<(&'static str, &str)> {
        match self {
            EventBody::AppointmentBooked {
                id,
                patient,
                practitioner,
                motive,
                ..
            } => {
                let mut ids = vec![("id", id.as_str()), ("patient", patient.as_str())];
                ids.push(("practitioner", practitioner.as_str()));
                ids.extend(motive.as_deref().map(|m| ("motive", m)));
                ids
            }
            EventBody::AppointmentMoved { id, .. }
            | EventBody::AppointmentCancelled { id, .. }
            | EventBody::AppointmentDeleted { id }
            | EventBody::AppointmentNoShow { id }
            | EventBody::AppointmentAttended { id }
            | EventBody::PatientUpdated { id, .. }
            | EventBody::DocumentConsulted { id } => vec![("id", id.as_str())],
            EventBody::DocumentSent { id, patient, .. } => {
                vec![("id", id.as_str()), ("patient", patient.as_str())]
            }
            EventBody::DeliveryBounced { document } | EventBody::DeliveryDelivered { document } => {
                vec![("document", document.as_str())]
            }
            EventBody::SettingsUpdated { .. } => Vec::new(),
            EventBody::PatientReplied { patient, .. } => vec![("patient", patient.as_str())],
        }
    }

    /// Every id of the event follows [`check_id`]; the error names the first that does not.
    pub fn check_ids(&self) -> Result<(), EventError> {
        for (field, id) in self.ids() {
            check_id(id).map_err(|reason| EventError::Invalid {
                field,
                reason: reason.into(),
            })?;
        }
        Ok(())
    }
}

/// Why an event cannot be applied. The message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{what} `{id}` does not exist")]
    UnknownReference { what: &'static str, id: String },
    #[error("appointment `{0}` is {1} and can no longer change")]
    Closed(String, &'static str),
}

impl EventError {
    /// The message without the field name (which callers report separately).
    pub fn reason(&self) -> String {
        match self {
            EventError::Invalid { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            EventError::Invalid { field, .. } => field,
            EventError::UnknownReference { what, .. } => what,
            EventError::Closed(..) => "id",
        }
    }
}

/// The result of folding an event into one fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied<T> {
    Changed(T),
    Unchanged,
}

/// Folds an appointment event into the appointment it concerns (`None`: not seen yet).
pub fn apply_to_appointment(
    current: Option<&Appointment>,
    body: &EventBody,
    at: Timestamp,
) -> Result<Applied<Appointment>, EventError> {
    match body {
        EventBody::AppointmentBooked {
            id,
            patient,
            practitioner,
            motive,
            start,
            duration_minutes,
            location,
            source,
        } => {
            if *start < at {
                return Err(EventError::Invalid {
                    field: "start",
                    reason: format!(
                        "the appointment starts ({}) before it was booked ({})",
                        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        at.strftime("%Y-%m-%dT%H:%M:%SZ")
                    ),
                });
            }
            let duration = duration_minutes.unwrap_or(30);
            if duration == 0 || duration > 24 * 60 {
                return Err(EventError::Invalid {
                    field: "duration_minutes",
                    reason: "must be between 1 and 1440".into(),
                });
            }
            let booked = Appointment {
                id: id.clone(),
                patient: patient.clone(),
                practitioner: practitioner.clone(),
                motive: motive.clone(),
                start: *start,
                duration_minutes: duration,
                location: location.clone(),
                source: *source,
                booked_at: at,
                status: AppointmentStatus::Booked,
                moves: Vec::new(),
                version: 1,
            };
            match current {
                None => Ok(Applied::Changed(booked)),
                // The same booking received again: nothing to do. A different booking under an
                // id that exists is a client mistake we refuse rather than guess about.
                Some(existing) if same_booking(existing, &booked) => Ok(Applied::Unchanged),
                Some(_) => Err(EventError::Invalid {
                    field: "id",
                    reason: format!(
                        "appointment `{id}` is already booked with other details; send appointment.moved to change it"
                    ),
                }),
            }
        }
        EventBody::AppointmentMoved {
            id,
            start,
            location,
        } => {
            let appt = existing(current, id)?;
            if !appt.is_active() {
                return Err(EventError::Closed(id.clone(), appt.status.name()));
            }
            if start.is_none() && location.is_none() {
                return Err(EventError::Invalid {
                    field: "start",
                    reason: "appointment.moved needs a new `start`, a new `location`, or both"
                        .into(),
                });
            }
            let to_start = start.unwrap_or(appt.start);
            let to_location = location.clone().or_else(|| appt.location.clone());
            if to_start == appt.start && to_location == appt.location {
                return Ok(Applied::Unchanged);
            }
            let mut moved = appt.clone();
            moved.moves.push(Move {
                at,
                from_start: appt.start,
                to_start,
                from_location: appt.location.clone(),
                to_location: to_location.clone(),
            });
            moved.start = to_start;
            moved.location = to_location;
            moved.version += 1;
            Ok(Applied::Changed(moved))
        }
        EventBody::AppointmentCancelled { id, by, excused } => {
            let appt = existing(current, id)?;
            let status = AppointmentStatus::Cancelled {
                at,
                by: *by,
                excused: excused.unwrap_or(true),
            };
            close(appt, status, |s| {
                matches!(s, AppointmentStatus::Cancelled { .. })
            })
        }
        EventBody::AppointmentDeleted { id } => {
            let appt = existing(current, id)?;
            if matches!(appt.status, AppointmentStatus::Deleted { .. }) {
                return Ok(Applied::Unchanged);
            }
            // A deletion may follow any other state: the practice removes the record.
            let mut deleted = appt.clone();
            deleted.status = AppointmentStatus::Deleted { at };
            deleted.version += 1;
            Ok(Applied::Changed(deleted))
        }
        EventBody::AppointmentNoShow { id } => {
            let appt = existing(current, id)?;
            mark_outcome(appt, AppointmentStatus::NoShow { at })
        }
        EventBody::AppointmentAttended { id } => {
            let appt = existing(current, id)?;
            mark_outcome(appt, AppointmentStatus::Attended { at })
        }
        other => Err(EventError::Invalid {
            field: "type",
            reason: format!("{} is not an appointment event", other.type_name()),
        }),
    }
}

fn same_booking(a: &Appointment, b: &Appointment) -> bool {
    a.patient == b.patient
        && a.practitioner == b.practitioner
        && a.motive == b.motive
        && a.source == b.source
        // A booking replayed after moves keeps the moved appointment as it is.
        && (a.moves.is_empty() && a.start == b.start && a.location == b.location
            || !a.moves.is_empty())
        && a.duration_minutes == b.duration_minutes
}

fn existing<'a>(current: Option<&'a Appointment>, id: &str) -> Result<&'a Appointment, EventError> {
    current.ok_or_else(|| EventError::UnknownReference {
        what: "appointment",
        id: id.to_string(),
    })
}

fn close(
    appt: &Appointment,
    status: AppointmentStatus,
    same_kind: impl Fn(&AppointmentStatus) -> bool,
) -> Result<Applied<Appointment>, EventError> {
    if same_kind(&appt.status) {
        return Ok(Applied::Unchanged);
    }
    if !appt.is_active() {
        return Err(EventError::Closed(appt.id.clone(), appt.status.name()));
    }
    let mut closed = appt.clone();
    closed.status = status;
    closed.version += 1;
    Ok(Applied::Changed(closed))
}

/// No-show and attended are outcomes; the practice may correct one into the other.
fn mark_outcome(
    appt: &Appointment,
    status: AppointmentStatus,
) -> Result<Applied<Appointment>, EventError> {
    if appt.status.name() == status.name() {
        return Ok(Applied::Unchanged);
    }
    match appt.status {
        AppointmentStatus::Booked
        | AppointmentStatus::NoShow { .. }
        | AppointmentStatus::Attended { .. } => {
            let mut marked = appt.clone();
            marked.status = status;
            marked.version += 1;
            Ok(Applied::Changed(marked))
        }
        _ => Err(EventError::Closed(appt.id.clone(), appt.status.name())),
    }
}

/// Overlays `patient.updated` fields on a patient. Unknown fields and invalid values are refused
/// with the field name; `null` clears an optional field.
pub fn apply_to_patient(
    current: Option<&Patient>,
    id: &str,
    fields: &Map<String, Value>,
) -> Result<Applied<Patient>, EventError> {
    const FIELDS: &[&str] = &[
        "first_name",
        "last_name",
        "email",
        "mobile",
        "push",
        "email_notifications",
        "sms_notifications",
        "birth_date",
        "address",
        "locale",
    ];
    let base = current.cloned().unwrap_or_else(|| Patient {
        id: id.to_string(),
        ..Patient::default()
    });
    let mut value = serde_json::to_value(&base).expect("a patient serializes");
    let object = value.as_object_mut().expect("a patient is an object");
    for (key, field_value) in fields {
        let Some(field) = FIELDS.iter().find(|f| **f == key) else {
            return Err(EventError::Invalid {
                field: "patient",
                reason: format!("unknown patient field `{key}`"),
            });
        };
        if field_value.is_null() {
            object.remove(*field);
        } else {
            object.insert(key.clone(), field_value.clone());
        }
    }
    let updated: Patient = serde_json::from_value(value).map_err(|e| EventError::Invalid {
        field: "patient",
        reason: e.to_string(),
    })?;
    if current == Some(&updated) {
        Ok(Applied::Unchanged)
    } else {
        Ok(Applied::Changed(updated))
    }
}

/// Folds a document event into the document it concerns.
pub fn apply_to_document(
    current: Option<&Document>,
    body: &EventBody,
    at: Timestamp,
) -> Result<Applied<Document>, EventError> {
    let missing = |id: &str| EventError::UnknownReference {
        what: "document",
        id: id.to_string(),
    };
    match body {
        EventBody::DocumentSent { id, patient, title } => match current {
            None => Ok(Applied::Changed(Document {
                id: id.clone(),
                patient: patient.clone(),
                title: title.clone(),
                sent_at: at,
                email: EmailDelivery::Pending,
                consulted_at: None,
            })),
            Some(doc) if doc.patient == *patient && doc.title == *title => Ok(Applied::Unchanged),
            Some(_) => Err(EventError::Invalid {
                field: "id",
                reason: format!("document `{id}` was already sent with other details"),
            }),
        },
        EventBody::DeliveryBounced { document } => {
            let doc = current.ok_or_else(|| missing(document))?;
            if matches!(doc.email, EmailDelivery::Failed { .. }) {
                return Ok(Applied::Unchanged);
            }
            let mut d = doc.clone();
            d.email = EmailDelivery::Failed { at };
            Ok(Applied::Changed(d))
        }
        EventBody::DeliveryDelivered { document } => {
            let doc = current.ok_or_else(|| missing(document))?;
            // A late "delivered" never overrides a bounce: the bounce is the stronger signal.
            if !matches!(
                doc.email,
                EmailDelivery::Pending | EmailDelivery::Sent { .. }
            ) {
                return Ok(Applied::Unchanged);
            }
            let mut d = doc.clone();
            d.email = EmailDelivery::Delivered { at };
            Ok(Applied::Changed(d))
        }
        EventBody::DocumentConsulted { id } => {
            let doc = current.ok_or_else(|| missing(id))?;
            if doc.consulted_at.is_some() {
                return Ok(Applied::Unchanged);
            }
            let mut d = doc.clone();
            d.consulted_at = Some(at);
            Ok(Applied::Changed(d))
        }
        other => Err(EventError::Invalid {
            field: "type",
            reason: format!("{} is not a document event", other.type_name()),
        }),
    }
}
