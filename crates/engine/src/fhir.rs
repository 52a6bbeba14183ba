//! An appointment as an HL7 FHIR R4 `Appointment` resource (issue 16): data only, the first step
//! toward the FHIR interface integrators ask for. `GET /v1/appointments/{id}` answers it to
//! `Accept: application/fhir+json`.
//!
//! The mapping:
//!
//! | Rappel | FHIR R4 |
//! | --- | --- |
//! | `booked` | `status = booked` |
//! | `cancelled` | `cancelled`, with `cancelationReason.text` saying by whom |
//! | `deleted` | `entered-in-error` |
//! | `no_show` | `noshow` |
//! | `attended` | `fulfilled` |
//! | start, duration | `start`, `end`, `minutesDuration` |
//! | the patient's answer | the patient participant's `status`: `accepted` (confirmed, about the current time), `declined` (cancelled by the patient), else `needs-action` |
//! | the practitioner | a participant with `status = accepted` |
//! | `location` | a participant whose actor is a `Location` known by its `display` only |
//!
//! FHIR ids are `[A-Za-z0-9\-\.]{1,64}`, Rappel's may be any 128 characters: an id that fits is
//! the resource's `id` and the reference's `Patient/ID`; every id is also given as an
//! `identifier` (system `urn:rappel:PRACTICE:appointment`, …), which any id fits.

use rappel_domain::facts::{Appointment, AppointmentStatus, CancelledBy};
use serde_json::{Value, json};

use crate::answers::{AppointmentAnswer, PatientAnswer};
use crate::{Engine, EngineError, Result};

/// Whether `id` may be a FHIR resource id (FHIR R4 datatype `id`).
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn identifier(practice_id: &str, what: &str, id: &str) -> Value {
    json!({
        "system": format!("urn:rappel:{}:{what}", urlencode(practice_id)),
        "value": id,
    })
}

/// A practice id inside a URN: anything but unreserved characters percent-encoded.
fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn reference(
    practice_id: &str,
    resource: &str,
    what: &str,
    id: &str,
    display: Option<&str>,
) -> Value {
    let mut reference = json!({
        "type": resource,
        "identifier": identifier(practice_id, what, id),
    });
    if is_fhir_id(id) {
        reference["reference"] = json!(format!("{resource}/{id}"));
    }
    if let Some(display) = display {
        reference["display"] = json!(display);
    }
    reference
}

/// The R4 `Appointment` of an appointment, with the patient's answer.
pub fn appointment_resource(
    practice_id: &str,
    appointment: &Appointment,
    answer: Option<&AppointmentAnswer>,
    practitioner_name: Option<&str>,
) -> Value {
    let status = match appointment.status {
        AppointmentStatus::Booked => "booked",
        AppointmentStatus::Cancelled { .. } => "cancelled",
        AppointmentStatus::Deleted { .. } => "entered-in-error",
        AppointmentStatus::NoShow { .. } => "noshow",
        AppointmentStatus::Attended { .. } => "fulfilled",
    };
    let patient_status = match (answer, appointment.status) {
        (
            _,
            AppointmentStatus::Cancelled {
                by: CancelledBy::Patient,
                ..
            },
        ) => "declined",
        (Some(a), _) if a.answer == PatientAnswer::Cancelled => "declined",
        (Some(a), AppointmentStatus::Booked | AppointmentStatus::Attended { .. })
            if a.answer == PatientAnswer::Confirmed && a.current =>
        {
            "accepted"
        }
        _ => "needs-action",
    };
    let mut resource = json!({
        "resourceType": "Appointment",
        "identifier": [identifier(practice_id, "appointment", &appointment.id)],
        "status": status,
        "start": appointment.start,
        "end": appointment.end(),
        "minutesDuration": appointment.duration_minutes.max(1),
        "created": appointment.booked_at,
        "participant": [
            {
                "actor": reference(practice_id, "Patient", "patient", &appointment.patient, None),
                "required": "required",
                "status": patient_status,
            },
            {
                "actor": reference(
                    practice_id,
                    "Practitioner",
                    "practitioner",
                    &appointment.practitioner,
                    practitioner_name,
                ),
                "required": "required",
                "status": "accepted",
            },
        ],
    });
    if is_fhir_id(&appointment.id) {
        resource["id"] = json!(appointment.id);
    }
    if let AppointmentStatus::Cancelled { by, .. } = appointment.status {
        resource["cancelationReason"] = json!({
            "text": match by {
                CancelledBy::Patient => "Annulé par le patient",
                CancelledBy::Practice => "Annulé par le cabinet",
                CancelledBy::PractitionerAbsence => "Absence du praticien",
            }
        });
    }
    // The place as Rappel knows it, a text: a participant whose actor is only displayed.
    if let Some(location) = &appointment.location
        && let Some(participants) = resource["participant"].as_array_mut()
    {
        participants.push(json!({
            "actor": {"type": "Location", "display": location},
            "required": "information-only",
            "status": "accepted",
        }));
    }
    resource
}

impl Engine {
    /// `GET /v1/appointments/{id}` as `application/fhir+json`.
    pub async fn appointment_fhir(&self, practice_id: &str, id: &str) -> Result<Value> {
        let appointment = self.appointment(practice_id, id).await?;
        let answer = self.appointment_answer(practice_id, id).await?;
        let practitioner = match self
            .practitioner(practice_id, &appointment.practitioner)
            .await
        {
            Ok(p) => Some(p.name),
            Err(EngineError::NotFound { .. }) => None,
            Err(other) => return Err(other),
        };
        Ok(appointment_resource(
            practice_id,
            &appointment,
            answer.as_ref(),
            practitioner.as_deref(),
        ))
    }
}
