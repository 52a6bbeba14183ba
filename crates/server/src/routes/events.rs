//! `POST /v1/events`: one event or an array of them, applied atomically by the engine.
//!
//! Two layers make retries safe. The engine treats an event that changes nothing as a no-op
//! (`unchanged`), so the same booking sent twice books once. On top of that, a request with an
//! `Idempotency-Key` header gets the very answer its first use got (status and body), as long as
//! the body is the same; the same key with another body is refused (422), since it is almost
//! certainly a client bug that would otherwise be silently ignored.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rappel_domain::event::{EVENT_TYPES, Event};
use rappel_engine::queries::Idempotency;
use serde_json::{Map, Value};

use crate::AppState;
use crate::docs::responses::{
    BadRequest, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::docs::schemas;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::{JsonBody, Tenant, quoted_after};
use crate::validate;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What a batch of events did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct IngestReport {
    /// Events that changed something.
    applied: usize,
    /// Events already known: nothing to do.
    unchanged: usize,
}

#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "Events",
    operation_id = "postEvents",
    summary = "Tell Rappel what happened",
    description = "One event or an array of events, applied atomically in order: if \
        one is refused, none is applied, and the 422 names it (`events[2].start`). Every id \
        in an event (`id`, `patient`, `practitioner`, `motive`, `document`) follows the \
        rule of ids in paths: 1 to 128 characters, no control characters. `at` \
        (when it happened) defaults to the time of receipt. An event that changes \
        nothing (the same booking sent twice) counts as `unchanged`. With an \
        `Idempotency-Key` header, a retry with the same key and body gets the first \
        answer again (with `Idempotent-Replayed: true`); the same key with another body \
        is 422.",
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 255, nullable = false,
            description = "1 to 255 visible ASCII characters, e.g. a UUID, unique per request."),
    ),
    request_body(content = schemas::EventBatch),
    responses(
        (status = 202, description = "Applied.", body = IngestReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn post_events(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let Some(key) = idempotency_key(&headers)? else {
        let answer = ingest(&state, &practice, body.value).await?;
        return Ok((StatusCode::ACCEPTED, Json(answer)).into_response());
    };
    match state
        .engine
        .idempotency(&practice, &key, &body.bytes)
        .await?
    {
        Idempotency::Replay { status, body } => Ok(stored_answer(status, body, true)),
        Idempotency::Mismatch => Err(ApiError::invalid(
            "Idempotency-Key",
            "this key was already used with a different request body; use a new key for a new request",
        )),
        Idempotency::New { request_hash } => {
            let (status, answer) = match ingest(&state, &practice, body.value).await {
                Ok(answer) => (StatusCode::ACCEPTED.as_u16(), answer),
                // A refusal is an answer too, and stays the answer for this key. A server error
                // is not: the client should be able to retry it with the same key.
                Err(error) if error.status_code().is_client_error() => {
                    (error.status_code().as_u16(), error.problem())
                }
                Err(error) => return Err(error),
            };
            let (status, answer) = state
                .engine
                .remember_answer(&practice, &key, &request_hash, status, &answer)
                .await?;
            Ok(stored_answer(status, answer, false))
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "an idempotency key is 1 to 255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    Ok(Some(key.to_string()))
}

fn stored_answer(status: u16, body: Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Parses and applies the events; the answer is `{"applied": n, "unchanged": m}`.
async fn ingest(state: &AppState, practice: &str, value: Value) -> Result<Value, ApiError> {
    let events = parse_events(value, state.config.max_events_per_request)?;
    let report = state.engine.ingest(practice, &events).await?;
    state.metrics.count_events(report.applied, report.unchanged);
    let answer = IngestReport {
        applied: report.applied,
        unchanged: report.unchanged,
    };
    serde_json::to_value(answer).map_err(|e| ApiError::Internal(e.to_string()))
}

fn parse_events(value: Value, max: usize) -> Result<Vec<Event>, ApiError> {
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::Invalid {
                field: None,
                reason: "expected an event object or an array of events".into(),
            });
        }
    };
    if items.is_empty() {
        return Err(ApiError::Invalid {
            field: None,
            reason: "the array holds no event".into(),
        });
    }
    if items.len() > max {
        return Err(ApiError::Invalid {
            field: None,
            reason: format!(
                "{} events in one request; send at most {max} per request",
                items.len()
            ),
        });
    }
    // The same naming as the engine's errors: `events[2].start` in a batch, `start` alone.
    let batch = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let prefix = if batch {
                format!("events[{index}].")
            } else {
                String::new()
            };
            parse_event(item, &prefix)
        })
        .collect()
}

fn parse_event(item: Value, prefix: &str) -> Result<Event, ApiError> {
    let Value::Object(mut object) = item else {
        return Err(ApiError::Invalid {
            field: Some(prefix.trim_end_matches('.').to_string()).filter(|f| !f.is_empty()),
            reason: "an event is a JSON object".into(),
        });
    };
    let valid_types = EVENT_TYPES.join(", ");
    let event_type = match object.get("type") {
        None => {
            return Err(ApiError::invalid(
                format!("{prefix}type"),
                format!("missing; one of: {valid_types}"),
            ));
        }
        Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => t.clone(),
        Some(other) => {
            return Err(ApiError::invalid(
                format!("{prefix}type"),
                format!("unknown event type {other}; valid types: {valid_types}"),
            ));
        }
    };
    if event_type == "patient.updated" {
        validate::patient_contacts(&mut object, prefix)?;
    }
    serde_json::from_value(Value::Object(object.clone())).map_err(|error| {
        let field = culprit(&object, &error)
            .map(|name| format!("{prefix}{name}"))
            .or_else(|| Some(prefix.trim_end_matches('.').to_string()).filter(|f| !f.is_empty()));
        ApiError::Invalid {
            field,
            reason: error.to_string(),
        }
    })
}

/// The field an event's deserialization error is about. `Event` is an internally tagged enum
/// flattened into a struct, which serde deserializes from a buffer that forgets the path, so a
/// bad value ("invalid type: integer, expected a string") does not say whose it is. The field is
/// found by asking again without each field in turn: the one whose absence makes the error go
/// away, or turn into "missing field" for itself, is the one at fault. Error paths only.
fn culprit(object: &Map<String, Value>, error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    if let Some(missing) = quoted_after(&message, "missing field `") {
        return Some(missing.to_string());
    }
    object
        .keys()
        .filter(|key| key.as_str() != "type")
        .find(|key| {
            let mut probe = object.clone();
            probe.remove(key.as_str());
            match serde_json::from_value::<Event>(Value::Object(probe)) {
                Ok(_) => true,
                Err(e) => quoted_after(&e.to_string(), "missing field `") == Some(key.as_str()),
            }
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(error: ApiError) -> Option<String> {
        match error {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_value_in_the_third_event_is_named_with_its_index() {
        let events = json!([
            {"type": "appointment.deleted", "id": "a1"},
            {"type": "appointment.deleted", "id": "a2"},
            {"type": "appointment.moved", "id": "a3", "start": "next tuesday"},
        ]);
        let error = parse_events(events, 10).unwrap_err();
        assert_eq!(field(error).as_deref(), Some("events[2].start"));
    }

    #[test]
    fn a_missing_field_is_named() {
        let error =
            parse_events(json!({"type": "appointment.cancelled", "id": "a1"}), 10).unwrap_err();
        assert_eq!(field(error).as_deref(), Some("by"));
    }

    #[test]
    fn a_wrongly_typed_optional_field_is_named() {
        let event =
            json!({"type": "appointment.cancelled", "id": "a1", "by": "patient", "excused": "yes"});
        let error = parse_events(event, 10).unwrap_err();
        assert_eq!(field(error).as_deref(), Some("excused"));
    }

    #[test]
    fn an_unknown_type_lists_the_valid_ones() {
        let error =
            parse_events(json!({"type": "appointment.exploded", "id": "a1"}), 10).unwrap_err();
        let ApiError::Invalid { field, reason } = error else {
            panic!("expected a 422")
        };
        assert_eq!(field.as_deref(), Some("type"));
        assert!(reason.contains("appointment.booked") && reason.contains("document.consulted"));
    }

    #[test]
    fn at_is_optional() {
        let events = parse_events(json!({"type": "appointment.no_show", "id": "a1"}), 10).unwrap();
        assert_eq!(events[0].at, None);
    }
}
