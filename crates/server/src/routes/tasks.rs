//! Scheduled tasks (the programmateur): `POST`/`GET /v1/tasks`, `GET`/`PATCH`/`DELETE
//! /v1/tasks/{id}`, the run history `GET /v1/tasks/{id}/runs` and the dry run
//! `POST /v1/tasks/{id}/preview`.
//!
//! A task is written with the names of SCENARIOS.md's `[[tasks]]`. The shape of a body (types,
//! unknown fields) is checked here so that a 422 names the field; whether the definition can run
//! (weekly without days, a range that goes backwards, a cron expression that does not parse…)
//! is the domain's `TaskDef::check`, reached through the engine.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::{Date, Time};
use rappel_domain::notification::Channel;
use rappel_domain::task::{Every, TaskDef, TaskType};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathId, QueryParams, Tenant, from_json, quoted_after};
use crate::validate;

/// Members of a task as the API answers it that a client cannot write.
const READ_ONLY: &[&str] = &["created_at", "next_run_at"];

const DEFAULT_RUNS: i64 = 20;
const MAX_RUNS: i64 = 100;

/// The fields a PATCH may carry, each with its type; read only to check the body's shape.
/// `null` is accepted for every field (it removes the field): whether the definition still
/// holds without it is checked on the merged whole.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TaskPatch {
    id: Option<String>,
    label: Option<String>,
    #[serde(rename = "type")]
    task_type: Option<TaskType>,
    first_date: Option<Date>,
    every: Option<Every>,
    cron: Option<String>,
    days: Option<Vec<String>>,
    time: Option<Time>,
    range: Option<[i32; 2]>,
    practitioners: Option<Vec<String>>,
    channel: Option<Channel>,
    template: Option<String>,
    exclude_patients_with_later_appointment: Option<bool>,
    exclude_patients_seen_since: Option<bool>,
    recall_months: Option<i32>,
    active: Option<bool>,
}

/// The body as a JSON object without read-only members.
fn object(body: JsonBody) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = body.value else {
        return Err(ApiError::Invalid {
            field: None,
            reason: "the body must be a JSON object (a task)".into(),
        });
    };
    if let Some(name) = READ_ONLY.iter().find(|name| map.contains_key(**name)) {
        return Err(ApiError::invalid(
            *name,
            "read-only: Rappel computes it; leave it out",
        ));
    }
    Ok(map)
}

/// [`from_json`], also naming the field of an "unknown field" error.
fn parse<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    from_json(Value::Object(map), "").map_err(|error| match error {
        ApiError::Invalid {
            field: None,
            reason,
        } => ApiError::Invalid {
            field: quoted_after(&reason, "unknown field `").map(String::from),
            reason,
        },
        other => other,
    })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let map = object(body)?;
    match map.get("id") {
        Some(Value::String(id)) => validate::id(id)?,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("id", "a task needs an id"));
        }
        Some(_) => return Err(ApiError::invalid("id", "expected a string")),
    }
    let def: TaskDef = parse(map)?;
    let view = state.engine.create_task(&practice, &def).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/tasks/{}", def.id))],
        Json(view),
    )
        .into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Json<Value>, ApiError> {
    let items = state.engine.list_tasks(&practice).await?;
    Ok(Json(json!({ "items": items })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.get_task(&practice, &id).await?).into_response())
}

/// JSON merge patch: each member replaces that field, `null` removes it; the merged definition
/// is checked as a whole.
pub(crate) async fn patch(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let map = object(body)?;
    validate::same_id(&id, &map)?;
    let _: TaskPatch = parse(map.clone())?;
    Ok(Json(state.engine.patch_task(&practice, &id, &map).await?).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_task(&practice, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The latest runs first (`limit`, 1 to 100, default 20), with what became of their messages.
pub(crate) async fn runs(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    query.check(&["limit"])?;
    let limit = match query.get("limit") {
        None => DEFAULT_RUNS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_RUNS).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("expected an integer from 1 to {MAX_RUNS}"))
            })?,
    };
    let items = state.engine.task_runs(&practice, &id, limit).await?;
    Ok(Json(json!({ "items": items })))
}

/// Who a run would message now, and who it would skip and why; sends and records nothing.
pub(crate) async fn preview(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.preview_task(&practice, &id).await?).into_response())
}
