//! `PUT`/`GET /v1/practitioners/{id}`, `/v1/motives/{id}`, `/v1/patients/{id}` and the GDPR
//! erasure `DELETE /v1/patients/{id}`.
//!
//! A `PUT` replaces the whole resource with the body (fields left out take their defaults); it
//! answers 201 when it created the resource, 200 when it replaced or left it unchanged, and
//! always the stored resource.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use rappel_domain::contact::{Contact, PostalAddress};
use rappel_domain::facts::{Motive, Patient, Practitioner};
use rappel_engine::PutOutcome;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::{MotiveId, PatientId, PractitionerId};
use crate::docs::responses::{
    BadRequest, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::docs::schemas;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathId, Tenant, from_json};
use crate::validate;

/// A practitioner as practice software sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PractitionerBody {
    /// Equal to the path's when given (422 otherwise); null or absent: the path's.
    #[serde(default, rename = "id")]
    _id: Option<String>,
    /// As patients see it (Dr Martin).
    #[schema(
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    name: String,
    /// For practitioner alerts by email.
    #[serde(default)]
    email: Option<String>,
    /// For practitioner alerts by SMS; national or E.164 form, stored in E.164.
    #[serde(default)]
    mobile: Option<String>,
}

/// A visit reason as practice software sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MotiveBody {
    /// Equal to the path's when given (422 otherwise); null or absent: the path's.
    #[serde(default, rename = "id")]
    _id: Option<String>,
    /// The visit reason.
    #[schema(
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    name: String,
    /// False silences every patient message about it (true when absent).
    #[serde(default)]
    notifications: Option<bool>,
    /// Shown in confirmations and reminders (Apportez votre carte Vitale).
    #[serde(default)]
    instructions: Option<String>,
}

// A patient as practice software sends it. Contacts arrive here already checked and in their
// normal form (see [`validate::patient_contacts`]). Push subscriptions are not set here: the
// server records them from the browsers themselves.
/// A patient as practice software sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatientBody {
    /// Equal to the path's when given (422 otherwise); null or absent: the path's.
    #[serde(default, rename = "id")]
    _id: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: Option<String>,
    /// National (06 12 34 56 78) or E.164; stored in E.164.
    #[serde(default)]
    mobile: Option<String>,
    /// Uses the mobile application.
    #[serde(default)]
    push: bool,
    /// Null: the preset's default.
    #[serde(default)]
    email_notifications: Option<bool>,
    /// Null: the preset's default.
    #[serde(default)]
    sms_notifications: Option<bool>,
    // No `format: date` in the schema: a blank string is accepted (none).
    /// `YYYY-MM-DD`; blank or null: none.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    birth_date: Option<Date>,
    #[serde(default)]
    #[schema(value_type = Option<schemas::PostalAddress>)]
    address: Option<PostalAddress>,
    #[serde(default)]
    locale: Option<String>,
}

/// The body as an object whose `id`, if any, is the path's.
fn object(body: JsonBody, id: &str) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = body.value else {
        return Err(ApiError::Invalid {
            field: None,
            reason: "the body must be a JSON object".into(),
        });
    };
    validate::same_id(id, &map)?;
    Ok(map)
}

fn non_blank(field: &str, value: String) -> Result<String, ApiError> {
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    Ok(value)
}

fn put_answer(outcome: PutOutcome, location: String, stored: impl Serialize) -> Response {
    match outcome {
        PutOutcome::Created => (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(stored),
        )
            .into_response(),
        PutOutcome::Updated | PutOutcome::Unchanged => {
            (StatusCode::OK, Json(stored)).into_response()
        }
    }
}

#[utoipa::path(
    put,
    path = "/v1/practitioners/{id}",
    tag = "Directory",
    operation_id = "putPractitioner",
    summary = "Create or replace a practitioner",
    description = "Practitioner alerts go to the contacts given. `email` and `mobile` are checked \
        strictly (422 naming the field).",
    params(PractitionerId),
    request_body(
        content = inline(PractitionerBody),
        description = "The whole practitioner; `id` may be left out and must equal the path's otherwise.",
    ),
    responses(
        (status = 201, description = "Created; `Location` names the new practitioner.", body = Practitioner,
            headers(("Location" = String))),
        (status = 200, description = "Replaced, or unchanged when it was the same; the stored practitioner.", body = Practitioner),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn put_practitioner(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut map = object(body, &id)?;
    validate::practitioner_contacts(&mut map)?;
    let body: PractitionerBody = from_json(Value::Object(map), "")?;
    let practitioner = Practitioner {
        id: id.clone(),
        name: non_blank("name", body.name)?,
        email: body.email.as_deref().and_then(Contact::from_input),
        mobile: body.mobile.as_deref().and_then(Contact::from_input),
    };
    let outcome = state
        .engine
        .put_practitioner(&practice, &practitioner)
        .await?;
    Ok(put_answer(
        outcome,
        format!("/v1/practitioners/{id}"),
        practitioner,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/practitioners/{id}",
    tag = "Directory",
    operation_id = "getPractitioner",
    summary = "Read a practitioner",
    params(PractitionerId),
    responses(
        (status = 200, description = "The practitioner.", body = Practitioner),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get_practitioner(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Practitioner>, ApiError> {
    Ok(Json(state.engine.practitioner(&practice, &id).await?))
}

#[utoipa::path(
    put,
    path = "/v1/motives/{id}",
    tag = "Directory",
    operation_id = "putMotive",
    summary = "Create or replace a visit reason",
    description = "`notifications: false` silences every patient message about appointments for \
        this reason; changing it re-plans open appointments.",
    params(MotiveId),
    request_body(
        content = inline(MotiveBody),
        description = "The whole visit reason; `id` may be left out and must equal the path's otherwise.",
    ),
    responses(
        (status = 201, description = "Created; `Location` names the new visit reason.", body = Motive,
            headers(("Location" = String))),
        (status = 200, description = "Replaced, or unchanged when it was the same; the stored visit reason.", body = Motive),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn put_motive(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let map = object(body, &id)?;
    let body: MotiveBody = from_json(Value::Object(map), "")?;
    let motive = Motive {
        id: id.clone(),
        name: non_blank("name", body.name)?,
        notifications: body.notifications.unwrap_or(true),
        instructions: body.instructions.filter(|i| !i.trim().is_empty()),
    };
    let outcome = state.engine.put_motive(&practice, &motive).await?;
    Ok(put_answer(outcome, format!("/v1/motives/{id}"), motive))
}

#[utoipa::path(
    get,
    path = "/v1/motives/{id}",
    tag = "Directory",
    operation_id = "getMotive",
    summary = "Read a visit reason",
    params(MotiveId),
    responses(
        (status = 200, description = "The visit reason.", body = Motive),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get_motive(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Motive>, ApiError> {
    Ok(Json(state.engine.motive(&practice, &id).await?))
}

#[utoipa::path(
    put,
    path = "/v1/patients/{id}",
    tag = "Directory",
    operation_id = "putPatient",
    summary = "Create or replace a patient",
    description = "Contacts are checked strictly and stored in normal form: `email` must be an address a \
        mail server accepts; `mobile` must be a phone number (a landline is accepted, and \
        SMS to it are then reported as `invalid_mobile`); `address` must fit a window \
        envelope; `birth_date` is `YYYY-MM-DD`. A 422 names the field (`mobile`, \
        `address.postal_code`…). Blank strings and null mean none. The patient's messages are \
        re-planned at once. An erased patient's id cannot be used again (422).",
    params(PatientId),
    request_body(
        content = inline(PatientBody),
        description = "The whole patient; `id` may be left out and must equal the path's otherwise.",
    ),
    responses(
        (status = 201, description = "Created; `Location` names the new patient.", body = schemas::Patient,
            headers(("Location" = String))),
        (status = 200, description = "Replaced, or unchanged when it was the same; the stored patient.", body = schemas::Patient),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn put_patient(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut map = object(body, &id)?;
    validate::patient_contacts(&mut map, "")?;
    let body: PatientBody = from_json(Value::Object(map), "")?;
    let patient = Patient {
        id: id.clone(),
        first_name: body.first_name.trim().to_string(),
        last_name: body.last_name.trim().to_string(),
        email: body.email.as_deref().and_then(Contact::from_input),
        mobile: body.mobile.as_deref().and_then(Contact::from_input),
        push: body.push,
        // Carried over from the stored patient by the engine.
        push_subscriptions: Vec::new(),
        email_notifications: body.email_notifications,
        sms_notifications: body.sms_notifications,
        birth_date: body.birth_date,
        address: body.address,
        locale: body.locale.filter(|l| !l.trim().is_empty()),
        // Carried over from the stored patient by the engine: the opt-out register is not
        // part of the file.
        sms_opt_out: None,
    };
    let (outcome, patient) = state.engine.replace_patient(&practice, patient).await?;
    Ok(put_answer(
        outcome,
        format!("/v1/patients/{id}"),
        without_push_keys(patient),
    ))
}

/// A patient as the API answers it: without the browsers' push subscriptions. Their keys let
/// whoever holds them send notifications to the patient's devices; they go in through
/// `PUT /v1/patients/{id}/push-subscriptions` and are never read back (a leaked API key must not
/// give them away).
fn without_push_keys(mut patient: Patient) -> Patient {
    patient.push_subscriptions.clear();
    patient
}

#[utoipa::path(
    get,
    path = "/v1/patients/{id}",
    tag = "Directory",
    operation_id = "getPatient",
    summary = "Read a patient",
    params(PatientId),
    responses(
        (status = 200, description = "The patient.", body = schemas::Patient),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get_patient(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Patient>, ApiError> {
    Ok(Json(without_push_keys(
        state.engine.patient(&practice, &id).await?,
    )))
}

/// GDPR erasure: personal data removed, pending messages cancelled. Erasing again is harmless.
#[utoipa::path(
    delete,
    path = "/v1/patients/{id}",
    tag = "Directory",
    operation_id = "erasePatient",
    summary = "Erase a patient (GDPR)",
    description = "Removes the patient's personal data and documents and cancels their \
        pending messages (they show as suppressed with reason `patient_erased`). The id is \
        kept so that nothing is recorded again under it. Erasing twice is harmless.",
    params(PatientId),
    responses(
        (status = 204, description = "Erased."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn delete_patient(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.erase_patient(&practice, &id).await?;
    tracing::info!(practice = %practice, "patient erased");
    Ok(StatusCode::NO_CONTENT)
}
