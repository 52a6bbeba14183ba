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

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathId, Tenant, from_json};
use crate::validate;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PractitionerBody {
    #[serde(default, rename = "id")]
    _id: Option<String>,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MotiveBody {
    #[serde(default, rename = "id")]
    _id: Option<String>,
    name: String,
    #[serde(default)]
    notifications: Option<bool>,
    #[serde(default)]
    instructions: Option<String>,
}

/// A patient as practice software sends it. Contacts arrive here already checked and in their
/// normal form (see [`validate::patient_contacts`]). Push subscriptions are not set here: the
/// server records them from the browsers themselves.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientBody {
    #[serde(default, rename = "id")]
    _id: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    push: bool,
    #[serde(default)]
    email_notifications: Option<bool>,
    #[serde(default)]
    sms_notifications: Option<bool>,
    #[serde(default)]
    birth_date: Option<Date>,
    #[serde(default)]
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

pub(crate) async fn get_practitioner(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Practitioner>, ApiError> {
    Ok(Json(state.engine.practitioner(&practice, &id).await?))
}

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

pub(crate) async fn get_motive(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Motive>, ApiError> {
    Ok(Json(state.engine.motive(&practice, &id).await?))
}

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
    Ok(put_answer(outcome, format!("/v1/patients/{id}"), patient))
}

pub(crate) async fn get_patient(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Patient>, ApiError> {
    Ok(Json(state.engine.patient(&practice, &id).await?))
}

/// GDPR erasure: personal data removed, pending messages cancelled. Erasing again is harmless.
pub(crate) async fn delete_patient(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.erase_patient(&practice, &id).await?;
    tracing::info!(practice = %practice, "patient erased");
    Ok(StatusCode::NO_CONTENT)
}
