//! The schemas of the types that live in the domain and the engine, as the API serializes them.
//!
//! Each is named by a marker type here, so that an operation's `#[utoipa::path]` can name its
//! body or answer (`body = schemas::Patient`) and the derived document references it; the schema
//! itself is the JSON below, put in the document's components by [`super::finish`].

use std::borrow::Cow;

use rappel_domain::event::EVENT_TYPES;
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, Schema};

/// A named schema whose content is [`all`]'s entry of the same name.
macro_rules! named {
    ($($name:ident),* $(,)?) => {$(
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Object::new().into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}

named!(Patient, PostalAddress, FhirAppointment, EventBatch,);

/// An R4 `Appointment` as `GET /v1/appointments/{id}` gives it (one `json!` would exceed the
/// macro's recursion limit inside the path's document).
pub(crate) fn fhir_appointment_example() -> Value {
    json!({
        "resourceType": "Appointment", "id": "a1",
        "identifier": [{"system": "urn:rappel:cab1:appointment", "value": "a1"}],
        "status": "booked", "start": "2026-03-05T09:00:00Z", "end": "2026-03-05T09:30:00Z",
        "minutesDuration": 30, "created": "2026-03-02T07:00:00Z",
        "participant": [
            {"actor": {"type": "Patient", "reference": "Patient/p1", "identifier": {"system": "urn:rappel:cab1:patient", "value": "p1"}}, "required": "required", "status": "accepted"},
            {"actor": {"type": "Practitioner", "reference": "Practitioner/dr1", "identifier": {"system": "urn:rappel:cab1:practitioner", "value": "dr1"}, "display": "Dr Martin"}, "required": "required", "status": "accepted"}
        ]
    })
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn instant(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn event_variant(name: &str, required: &[&str], properties: Value) -> Value {
    let mut props = properties.as_object().cloned().unwrap_or_default();
    props.insert("type".into(), json!({"const": name}));
    props.insert(
        "at".into(),
        instant("When it happened (RFC 3339); the time of receipt when absent."),
    );
    let mut required: Vec<&str> = required.to_vec();
    required.insert(0, "type");
    json!({"type": "object", "title": name, "required": required, "properties": props})
}

fn event_schema() -> Value {
    let id = string("The appointment's id.");
    let variants = vec![
        event_variant(
            "appointment.booked",
            &["id", "patient", "practitioner", "start", "source"],
            json!({
                "id": id, "patient": string("The patient's id."),
                "practitioner": string("The practitioner's id."),
                "motive": string("The visit reason's id."),
                "start": instant("When the appointment starts."),
                "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30},
                "location": string("Where, in words."),
                "source": {"type": "string", "enum": ["online", "staff", "referral"]}
            }),
        ),
        event_variant(
            "appointment.moved",
            &["id"],
            json!({"id": id, "start": instant("The new start."), "location": string("The new place.")}),
        ),
        event_variant(
            "appointment.cancelled",
            &["id", "by"],
            json!({
                "id": id,
                "by": {"type": "string", "enum": ["practitioner_absence", "patient", "practice"]},
                "excused": {"type": "boolean", "default": true}
            }),
        ),
        event_variant("appointment.deleted", &["id"], json!({"id": id})),
        event_variant("appointment.no_show", &["id"], json!({"id": id})),
        event_variant("appointment.attended", &["id"], json!({"id": id})),
        event_variant(
            "patient.updated",
            &["id"],
            json!({
                "id": string("The patient's id; the patient is created when unknown."),
                "first_name": {"type": "string"}, "last_name": {"type": "string"},
                "email": {"type": ["string", "null"]}, "mobile": {"type": ["string", "null"]},
                "push": {"type": "boolean"},
                "email_notifications": {"type": ["boolean", "null"]},
                "sms_notifications": {"type": ["boolean", "null"]},
                "birth_date": {"type": ["string", "null"], "format": "date"},
                "address": {"oneOf": [{"$ref": "#/components/schemas/PostalAddress"}, {"type": "null"}]},
                "locale": {"type": ["string", "null"]}
            }),
        ),
        json!({
            "type": "object", "title": "settings.updated", "required": ["type"],
            "description": "Any option keys of GET /v1/settings, with their new values.",
            "properties": {"type": {"const": "settings.updated"}, "at": instant("When it happened.")},
            "additionalProperties": true
        }),
        event_variant(
            "document.sent",
            &["id", "patient", "title"],
            json!({"id": string("The document's id."), "patient": string("The patient's id."), "title": string("The document's title.")}),
        ),
        event_variant(
            "delivery.bounced",
            &["document"],
            json!({"document": string("The document whose email bounced.")}),
        ),
        event_variant(
            "delivery.delivered",
            &["document"],
            json!({"document": string("The document whose email was delivered.")}),
        ),
        event_variant(
            "document.consulted",
            &["id"],
            json!({"id": string("The document's id.")}),
        ),
    ];
    debug_assert_eq!(variants.len(), EVENT_TYPES.len());
    json!({
        "description": format!("An event; `type` is one of {}.", EVENT_TYPES.join(", ")),
        "oneOf": variants,
        "discriminator": {"propertyName": "type"}
    })
}

/// Every schema of this module, by name.
pub(super) fn all() -> Map<String, Value> {
    let mut all = json!({
        "PostalAddress": {
            "type": "object", "required": ["lines", "postal_code", "city"],
            "properties": {
                "lines": {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "string", "maxLength": 38}},
                "postal_code": string("Five digits in France (75011)."),
                "city": {"type": "string"},
                "country": {"type": "string", "default": "FR", "description": "ISO 3166-1 alpha-2."}
            }
        },
        "Patient": {
            "type": "object",
            "properties": {
                "id": {"type": ["string", "null"], "description": "Equal to the path's when given (422 otherwise); null or absent: the path's."},
                "first_name": {"type": "string"},
                "last_name": {"type": "string"},
                "email": {"type": ["string", "null"]},
                "mobile": {"type": ["string", "null"], "description": "National (06 12 34 56 78) or E.164; stored in E.164."},
                "push": {"type": "boolean", "default": false, "description": "Uses the mobile application."},
                "email_notifications": {"type": ["boolean", "null"], "description": "Null: the preset's default."},
                "sms_notifications": {"type": ["boolean", "null"], "description": "Null: the preset's default."},
                "birth_date": {"type": ["string", "null"], "format": "date"},
                "address": {"oneOf": [{"$ref": "#/components/schemas/PostalAddress"}, {"type": "null"}]},
                "locale": {"type": ["string", "null"]}
            }
        },
        "Event": event_schema(),
    });
    all["FhirAppointment"] = fhir_appointment_schema();
    all["EventBatch"] = json!({
        "description": "One event, or several applied in order as one transaction.",
        "oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/Event"}}
        ]
    });
    match all {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What `GET /v1/appointments/{id}` answers to `Accept: application/fhir+json`.
fn fhir_appointment_schema() -> Value {
    json!({
        "type": "object",
        "description": "An HL7 FHIR R4 Appointment (hl7.org/fhir/R4/appointment.html).",
        "required": ["resourceType", "status", "participant"],
        "properties": {
            "resourceType": {"const": "Appointment"},
            "id": {"type": "string", "pattern": "^[A-Za-z0-9\\-\\.]{1,64}$"},
            "identifier": {"type": "array", "items": {"type": "object"}},
            "status": {"type": "string", "enum": ["proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error", "checked-in", "waitlist"]},
            "cancelationReason": {"type": "object"},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "minutesDuration": {"type": "integer", "minimum": 1},
            "created": {"type": "string"},
            "participant": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["status"],
                "properties": {
                    "actor": {"type": "object"},
                    "required": {"type": "string", "enum": ["required", "optional", "information-only"]},
                    "status": {"type": "string", "enum": ["accepted", "declined", "tentative", "needs-action"]}
                }
            }}
        }
    })
}

/// A body that is a file of one media type (the logo's PNG or JPEG, a PDF).
macro_rules! file_bodies {
    ($($name:ident => $media:literal,)*) => {$(
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .content_media_type($media)
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

file_bodies!(
    Png => "image/png",
    Jpeg => "image/jpeg",
);

// The forms of the patient's pages, which `routes::links` and `routes::appointment_links` read
// field by field.

/// The birth date, in either field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form.
pub(crate) struct BirthDateForm {
    /// AAAA-MM-JJ, from the date picker.
    #[schema(format = Date, required = false)]
    birth_date: String,
    /// JJ/MM/AAAA, typed.
    #[schema(required = false)]
    birth_date_text: String,
}

/// The patient's choice.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the form; the page reads it field by field.
pub(crate) struct AnswerForm {
    /// The page's own token.
    token: String,
    action: AnswerAction,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum AnswerAction {
    Confirm,
    Cancel,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum Choice {
    Confirmer,
    Annuler,
}
