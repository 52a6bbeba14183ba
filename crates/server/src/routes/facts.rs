//! What the engine knows and what it did: an appointment, the timelines of an appointment and
//! of a patient, the sent box, and whether a patient may still book online.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rappel_domain::facts::Appointment;
use rappel_domain::notification::{Channel, Kind};
use rappel_engine::answers::AppointmentAnswer;
use rappel_engine::queries::OnlineBooking;
use rappel_engine::timeline::TimelineEntry;
use rappel_store::{NotificationFilter, Status};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::{AppointmentId, NotificationStatus, PatientId};
use crate::docs::responses::{BadRequest, NotFound, TooManyRequests, Unauthorized, Unprocessable};
use crate::docs::schemas;
use crate::error::ApiError;
use crate::extract::{PathId, QueryParams, Tenant};

/// An appointment as the events made it, with the patient's latest answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppointmentView {
    #[serde(flatten)]
    appointment: Appointment,
    /// The patient's latest answer, through the link of a reminder or an SMS reply; null when
    /// none.
    patient_answer: Option<AppointmentAnswer>,
}

/// Messages, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct Timeline {
    entries: Vec<TimelineEntry>,
}

/// One page of the sent box.
#[derive(Serialize, ToSchema)]
pub(crate) struct NotificationPage {
    items: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The appointment with the patient's answer (`patient_answer`), or, to
/// `Accept: application/fhir+json`, the HL7 FHIR R4 `Appointment` (`rappel_engine::fhir`).
#[utoipa::path(
    get,
    path = "/v1/appointments/{id}",
    tag = "Follow-up",
    operation_id = "getAppointment",
    summary = "Read an appointment as the events made it, with the patient's answer",
    description = "With `Accept: application/fhir+json`, the appointment is an HL7 FHIR R4 \
        `Appointment` resource (data only): `status` booked, cancelled, \
        entered-in-error (deleted), noshow or fulfilled (attended); `start`, `end`, \
        `minutesDuration`; a `Patient` participant whose `status` is the patient's \
        answer (`accepted`: confirmed for the current time; `declined`: cancelled by \
        the patient; else `needs-action`), a `Practitioner` participant, the place as \
        a `Location` participant known by its `display`. An id that is not a FHIR id \
        (`[A-Za-z0-9.-]{1,64}`) is given only as an `identifier` \
        (`urn:rappel:PRACTICE:appointment`, `…:patient`, `…:practitioner`).",
    params(AppointmentId),
    responses(
        (status = 200, description = "The appointment with its `status` and `patient_answer`; or, to `Accept: application/fhir+json`, its FHIR R4 `Appointment`.",
            content(
                (AppointmentView = "application/json"),
                (schemas::FhirAppointment = "application/fhir+json", example = json!(schemas::fhir_appointment_example())),
            )),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn appointment(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fhir = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/fhir+json"))
        });
    if fhir {
        let resource = state.engine.appointment_fhir(&practice, &id).await?;
        let mut response = Json(resource).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
        return Ok(response);
    }
    let appointment: Appointment = state.engine.appointment(&practice, &id).await?;
    let patient_answer = state.engine.appointment_answer(&practice, &id).await?;
    Ok(Json(AppointmentView {
        appointment,
        patient_answer,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/appointments/{id}/timeline",
    tag = "Follow-up",
    operation_id = "appointmentTimeline",
    summary = "Every message about an appointment: sent, planned, or not sent and why",
    params(AppointmentId),
    responses(
        (status = 200, description = "The appointment's messages, oldest first.", body = Timeline),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn appointment_timeline(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Timeline>, ApiError> {
    let entries = state.engine.appointment_timeline(&practice, &id).await?;
    Ok(Json(Timeline { entries }))
}

#[utoipa::path(
    get,
    path = "/v1/patients/{id}/timeline",
    tag = "Follow-up",
    operation_id = "patientTimeline",
    summary = "Everything sent, planned or not sent to a patient",
    params(PatientId),
    responses(
        (status = 200, description = "The patient's messages, oldest first.", body = Timeline),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn patient_timeline(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Timeline>, ApiError> {
    let entries = state.engine.patient_timeline(&practice, &id).await?;
    Ok(Json(Timeline { entries }))
}

#[utoipa::path(
    get,
    path = "/v1/patients/{id}/online-booking",
    tag = "Follow-up",
    operation_id = "onlineBooking",
    summary = "Whether the patient may still book online",
    description = "False once the patient missed more appointments without excuse \
        than the practice's threshold allows over the policy's window.",
    params(PatientId),
    responses(
        (status = 200, description = "The decision and, when refused, why (in French).", body = OnlineBooking),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn online_booking(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<OnlineBooking>, ApiError> {
    Ok(Json(state.engine.online_booking(&practice, &id).await?))
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// The sent box, by due time then key, a page at a time. The cursor is opaque to clients; it is
/// the hex of `due_ms:key` of the previous page's last row.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "Follow-up",
    operation_id = "listNotifications",
    summary = "The sent box: every message, by due time",
    description = "A page of the practice's messages ordered by due time, then \
        key. Pass `next_cursor` back as `cursor` for the next page; it is null on \
        the last page. A bad filter value is 422 naming the parameter.",
    params(
        ("status" = Option<NotificationStatus>, Query, description = "Only messages in this state."),
        ("channel" = Option<Channel>, Query, description = "Only this channel."),
        ("kind" = Option<Kind>, Query, description = "Only this kind of message."),
        ("since" = Option<String>, Query, format = DateTime, description = "Only messages due at or after this instant (RFC 3339)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
    ),
    responses(
        (status = 200, description = "One page.", body = NotificationPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<NotificationPage>, ApiError> {
    let filter = notification_filter(&query)?;
    let page = state.engine.list_notifications(&practice, &filter).await?;
    let next_cursor = page.next.map(|(due, key)| encode_cursor(due, &key));
    Ok(Json(NotificationPage {
        items: page.items,
        next_cursor,
    }))
}

fn notification_filter(query: &QueryParams) -> Result<NotificationFilter, ApiError> {
    query.check(&["status", "channel", "kind", "since", "cursor", "limit"])?;
    let mut filter = NotificationFilter {
        limit: DEFAULT_LIMIT,
        ..NotificationFilter::default()
    };
    if let Some(status) = query.get("status") {
        filter.status = Some(parse_status(status).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "expected one of planned, sending, sent, delivered, failed, suppressed",
            )
        })?);
    }
    if let Some(channel) = query.get("channel") {
        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        filter.channel = Some(Channel::parse(channel).ok_or_else(|| {
            ApiError::invalid("channel", format!("expected one of {}", names.join(", ")))
        })?);
    }
    if let Some(kind) = query.get("kind") {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        filter.kind = Some(Kind::parse(kind).ok_or_else(|| {
            ApiError::invalid("kind", format!("expected one of {}", names.join(", ")))
        })?);
    }
    if let Some(since) = query.get("since") {
        filter.since = Some(since.parse::<Timestamp>().map_err(|_| {
            ApiError::invalid(
                "since",
                "expected an RFC 3339 instant with its offset, e.g. 2026-03-01T08:00:00+01:00",
            )
        })?);
    }
    if let Some(cursor) = query.get("cursor") {
        filter.cursor = Some(decode_cursor(cursor).ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "not a cursor this API gave (use next_cursor as is)",
            )
        })?);
    }
    if let Some(limit) = query.get("limit") {
        filter.limit = limit
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("expected an integer from 1 to {MAX_LIMIT}"),
                )
            })?;
    }
    Ok(filter)
}

/// The statuses as the timeline shows them (`planned` for what waits in the queue).
fn parse_status(text: &str) -> Option<Status> {
    match text {
        "planned" => Some(Status::Pending),
        other => Status::parse(other),
    }
}

fn encode_cursor(due: Timestamp, key: &str) -> String {
    hex::encode(format!("{}:{key}", due.as_millisecond()))
}

fn decode_cursor(cursor: &str) -> Option<(Timestamp, String)> {
    let bytes = hex::decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ms, key) = text.split_once(':')?;
    let due = Timestamp::from_millisecond(ms.parse().ok()?).ok()?;
    Some((due, key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_what_was_encoded_even_with_colons_in_the_key() {
        let due = Timestamp::from_millisecond(1_772_352_000_000).unwrap();
        let cursor = encode_cursor(due, "a:a1/reminder/sms");
        assert_eq!(
            decode_cursor(&cursor),
            Some((due, "a:a1/reminder/sms".to_string()))
        );
        assert_eq!(decode_cursor("zz"), None);
    }
}
