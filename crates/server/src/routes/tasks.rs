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
use serde_json::{Map, Value};

use rappel_engine::{TaskRunView, TaskView};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::TaskId;
use crate::docs::responses::{
    BadRequest, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
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

/// The practice's tasks, by id.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskList {
    items: Vec<TaskView>,
}

/// A task's runs, latest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct TaskRuns {
    items: Vec<TaskRunView>,
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

#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = "Tasks",
    operation_id = "createTask",
    summary = "Create a scheduled task",
    description = "The body is a task with the names of the scenario files' \
        `[[tasks]]`; `id` is required and new (an existing id is 422: change a task \
        with PATCH). A definition that cannot run is 422 naming the field and the \
        reason: an unknown `type`, `every` and `cron` both given or neither, a weekly \
        task without `days`, a malformed `cron`, a missed-appointments task without \
        a `range` or with one that goes backwards or into the future, a recall \
        without `recall_months`… The task first runs at its first occurrence after \
        its creation.",
    request_body(content = TaskDef, description = "The task."),
    responses(
        (status = 201, description = "Created; `Location` names the task.", body = TaskView,
            headers(("Location" = String))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
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

#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "Tasks",
    operation_id = "listTasks",
    summary = "The practice's scheduled tasks",
    responses(
        (status = 200, description = "Every task, by id.", body = TaskList),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Json<TaskList>, ApiError> {
    let items = state.engine.list_tasks(&practice).await?;
    Ok(Json(TaskList { items }))
}

#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    tag = "Tasks",
    operation_id = "getTask",
    summary = "Read a scheduled task",
    params(TaskId),
    responses(
        (status = 200, description = "The task, with `next_run_at`.", body = TaskView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.get_task(&practice, &id).await?).into_response())
}

/// JSON merge patch: each member replaces that field, `null` removes it; the merged definition
/// is checked as a whole.
#[utoipa::path(
    patch,
    path = "/v1/tasks/{id}",
    tag = "Tasks",
    operation_id = "patchTask",
    summary = "Change some fields of a scheduled task",
    description = "A JSON merge patch: each member replaces that field, `null` \
        removes it (`{\"every\": null, \"time\": null, \"cron\": \"30 8 * * mon-fri\"}` \
        turns a daily task into a cron one). The merged task is checked as a whole \
        (422 naming the field). `id` cannot change. A period that already ran does \
        not run again because its time changed.",
    params(TaskId),
    request_body(content = Object, description = "Any fields of Task."),
    responses(
        (status = 200, description = "The task after the change.", body = TaskView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/v1/tasks/{id}",
    tag = "Tasks",
    operation_id = "deleteTask",
    summary = "Delete a scheduled task",
    description = "Messages already queued by its runs still go out and stay in the \
        patients' timelines.",
    params(TaskId),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_task(&practice, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The latest runs first (`limit`, 1 to 100, default 20), with what became of their messages.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/runs",
    tag = "Tasks",
    operation_id = "taskRuns",
    summary = "The task's run history, with counts",
    description = "Each occurrence runs once across all Rappel processes. After \
        downtime only the latest missed occurrence runs, once, and its run says \
        `late`. Counts: `matched` patients = `queued` + those the task's exclusions \
        left out; `sent`, `pending` and `failed` messages; `skipped` by reason (the \
        exclusions `later_appointment` and `seen_since`, and the send-time reasons \
        such as `no_email`, `patient_sms_disabled`, `quota_exhausted`).",
    params(
        TaskId,
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100,
            description = "How many runs, latest first, 1 to 100 (default 20)."),
    ),
    responses(
        (status = 200, description = "Runs, latest first.", body = TaskRuns),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn runs(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    query: QueryParams,
) -> Result<Json<TaskRuns>, ApiError> {
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
    Ok(Json(TaskRuns { items }))
}

/// Who a run would message now, and who it would skip and why; sends and records nothing.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/preview",
    tag = "Tasks",
    operation_id = "previewTask",
    summary = "Dry run: who the next run would message",
    description = "Runs the task's selection as of its next run (`at`: a run \
        waiting to happen, else the next one by the schedule; an inactive or \
        finished task: now), from today's facts, and applies the send-time checks \
        (contacts, switches, quiet hours): the patients who would get a message, \
        with the message and when it would go, and the ones who would not, with \
        the reason. Sends and records nothing. The SMS quota is only checked when \
        sending.",
    params(TaskId),
    responses(
        (status = 200, description = "The dry run.", body = rappel_engine::TaskPreview),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn preview(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.preview_task(&practice, &id).await?).into_response())
}
