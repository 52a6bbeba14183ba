//! Two-way SMS over HTTP (issue 16).
//!
//! `/v1/webhooks/sms/{provider}/inbound` (`twilio`, `ovh`, `webhook`): the SMS patients send
//! back, called by the providers with no API key; each proves itself as for its delivery
//! reports (see `webhooks.rs` and `rappel_channels::sms::{twilio, ovh, webhook}::inbound`, whose
//! documentation gives each request's exact shape):
//!
//! - Twilio: `POST`, form-encoded, `X-Twilio-Signature` over our public URL and the form;
//! - OVHcloud: `GET` (or a form `POST`) to the registered URL with its secret `?token=`;
//! - the gateway: `POST`, JSON `{id?, from, to?, text}`, Standard Webhooks signature.
//!
//! A request that does not prove itself is 401 and a warning in the log, without its content (a
//! patient's number and words). Anything authentic is 204: handled, a repeat, or a number no
//! message was sent to (stored nowhere, logged at debug). Twilio accepts an empty 204 as "no
//! TwiML": the answer goes through Rappel's own queue, which counts it against the quota.
//!
//! The practice's side: `GET /v1/received-messages`, `POST /v1/received-messages/{id}/resolve`,
//! `GET` and `DELETE /v1/patients/{id}/sms-opt-out`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rappel_channels::sms::{InboundSms, ReportError, ovh, twilio, webhook};
use serde_json::json;

use rappel_engine::ReceivedMessage;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::{PatientId, ReceivedMessageId};
use crate::docs::responses::{BadRequest, NotFound, TooManyRequests, Unauthorized, Unprocessable};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::{PathId, QueryParams, Tenant};
use crate::routes::webhooks::header_text;

/// `GET|POST /v1/webhooks/sms/{provider}/inbound`.
#[utoipa::path(
    method(get, post),
    path = "/v1/webhooks/sms/{provider}/inbound",
    tag = "Webhooks",
    operation_id = "smsInbound",
    summary = "An SMS a patient sent back (called by the SMS provider)",
    description = "`twilio` posts a form signed with `X-Twilio-Signature`; `webhook` (a practice's \
        gateway) posts JSON signed per Standard Webhooks; `ovh` calls the registered URL, whose \
        `?token=` is the proof. A message that does not prove itself is 401 and is not stored; \
        one from a number no SMS was sent to is stored nowhere. The keywords OUI/CONFIRME, \
        ANNULER, STOP/ARRET and START are applied and answered by SMS; free text waits in the \
        « Messages reçus » box.",
    params(
        ("provider" = String, Path, min_length = 1, max_length = 128,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$",
            description = "`twilio`, `ovh` or `webhook`."),
    ),
    security(),
    responses(
        (status = 204, description = "Received (or nothing to do)."),
        (status = 401, description = "Not proven to come from the provider.", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn sms_inbound(
    State(state): State<AppState>,
    PathId(provider): PathId,
    request: Request,
) -> Response {
    match receive(&state, &provider, request).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Refused::Unverified(reason)) => {
            tracing::warn!(%provider, reason, "incoming SMS refused: not from the provider");
            unverified()
        }
        Err(Refused::Api(error)) => error.into_response(),
    }
}

enum Refused {
    Unverified(&'static str),
    Api(ApiError),
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Refused {
        Refused::Api(error)
    }
}

fn unverified() -> Response {
    let body = json!({
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "This incoming SMS does not prove it comes from the provider \
                   (signature, token or timestamp).",
    });
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)),
            (
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Signature realm=\"rappel-webhooks\""),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn receive(state: &AppState, provider: &str, request: Request) -> Result<(), Refused> {
    let known = ["twilio", "ovh", "webhook"];
    if !known.contains(&provider) {
        return Err(ApiError::NotFound(format!(
            "no SMS provider `{provider}` (expected one of {})",
            known.join(", ")
        ))
        .into());
    }
    let method = request.method().clone();
    if !(method == Method::POST || (method == Method::GET && provider == "ovh")) {
        return Err(ApiError::MethodNotAllowed.into());
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let limit = state.config.body_limit;
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;

    let secrets = &state.config.webhooks;
    let no_secret = Refused::Unverified("no secret is configured for this provider");
    let parsed: Result<InboundSms, ReportError> = match provider {
        "twilio" => {
            let token = secrets.twilio_auth_token.as_deref().ok_or(no_secret)?;
            let url = format!(
                "{}{path_and_query}",
                state.engine.config().public_url.trim_end_matches('/')
            );
            twilio::inbound(
                token,
                &url,
                header_text(&headers, "x-twilio-signature"),
                &body,
            )
        }
        "ovh" => {
            let token = secrets.ovh_callback_token.as_deref().ok_or(no_secret)?;
            ovh::inbound(token, &query, &body)
        }
        _ => {
            let key = secrets.sms_webhook_key.as_ref().ok_or(no_secret)?;
            let signed = webhook::SignedHeaders {
                id: header_text(&headers, "webhook-id"),
                timestamp: header_text(&headers, "webhook-timestamp"),
                signature: header_text(&headers, "webhook-signature"),
            };
            webhook::inbound(key, signed, &body, state.engine.now())
        }
    };
    let sms = match parsed {
        Ok(sms) => sms,
        Err(ReportError::Unauthenticated(reason)) => return Err(Refused::Unverified(reason)),
        Err(error @ ReportError::Malformed(_)) => {
            return Err(ApiError::BadRequest(error.to_string()).into());
        }
    };
    state
        .engine
        .receive_sms(&sms)
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// The SMS patients sent back, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReceivedMessages {
    items: Vec<ReceivedMessage>,
}

/// A received message marked handled.
#[derive(Serialize, ToSchema)]
#[schema(as = ReceivedMessageResolved)]
pub(crate) struct Resolved {
    id: String,
    handled: bool,
    /// False when it was handled already.
    changed: bool,
}

/// A patient's SMS opt-out.
#[derive(Serialize, ToSchema)]
pub(crate) struct SmsOptOut {
    opted_out: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable = false)]
    opted_out_at: Option<jiff::Timestamp>,
    /// `sms`: the patient's STOP.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    source: Option<String>,
}

/// `GET /v1/received-messages`: the SMS patients sent back that wait for the practice, newest
/// first; `handled=true` lists the handled ones and the keywords too.
#[utoipa::path(
    get,
    path = "/v1/received-messages",
    tag = "Replies",
    operation_id = "listReceivedMessages",
    summary = "SMS patients sent back that wait for the practice",
    description = "Newest first, at most 500. A reply is attached to the patient by the number, within the practice whose SMS it answers (the last one sent to that number); a number no SMS was sent to is stored nowhere. Free text waits here until marked handled; `handled=true` also lists the handled messages and the keywords (STOP, START, OUI, ANNULER), which are answered by SMS at once.",
    params(("handled" = Option<bool>, Query, description = "Include handled messages and keywords (default false).")),
    responses(
        (status = 200, description = "Received messages.", body = ReceivedMessages,
            example = json!({"items": [{
                "id": "rcv_4f1c2a9b7d3e8f0a1b2c3d4e", "patient": "p1", "appointment": "a1",
                "appointment_start": "2026-03-04T08:30:00Z", "provider": "twilio", "keyword": null,
                "text": "Je serai en retard de 10 minutes", "received_at": "2026-03-03T12:05:00Z", "handled_at": null
            }]})),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<ReceivedMessages>, ApiError> {
    query.check(&["handled"])?;
    let include_handled = match query.get("handled") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("handled", "expected true or false")),
    };
    let items = state
        .engine
        .received_messages(&practice, include_handled)
        .await?;
    Ok(Json(ReceivedMessages { items }))
}

/// `POST /v1/received-messages/{id}/resolve`: marks a received message handled; again changes
/// nothing.
#[utoipa::path(
    post,
    path = "/v1/received-messages/{id}/resolve",
    tag = "Replies",
    operation_id = "resolveReceivedMessage",
    summary = "Mark a received message handled",
    description = "Again changes nothing (`changed: false`).",
    params(ReceivedMessageId),
    responses(
        (status = 200, description = "Handled.", body = Resolved),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Resolved>, ApiError> {
    let changed = state
        .engine
        .resolve_received_message(&practice, &id)
        .await?;
    Ok(Json(Resolved {
        id,
        handled: true,
        changed,
    }))
}

/// `GET /v1/patients/{id}/sms-opt-out`: the patient's SMS opt-out, `{"opted_out": false}`
/// without one.
#[utoipa::path(
    get,
    path = "/v1/patients/{id}/sms-opt-out",
    tag = "Replies",
    operation_id = "getSmsOptOut",
    summary = "Whether the patient opted out of SMS (STOP), and since when",
    description = "While opted out, every SMS to the patient is suppressed with the reason `patient_sms_disabled`. Only the patient's START or OUI, or the practice (DELETE here, or the patient page), lifts it; a PUT of the patient does not.",
    params(PatientId),
    responses(
        (status = 200, description = "The opt-out.", body = SmsOptOut,
            example = json!({"opted_out": true, "opted_out_at": "2026-03-03T12:05:00Z", "source": "sms"})),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get_opt_out(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<SmsOptOut>, ApiError> {
    let opt_out = state.engine.sms_opt_out(&practice, &id).await?;
    Ok(Json(SmsOptOut {
        opted_out: opt_out.is_some(),
        opted_out_at: opt_out.as_ref().map(|o| o.opted_out_at),
        source: opt_out.map(|o| o.source),
    }))
}

/// `DELETE /v1/patients/{id}/sms-opt-out`: the practice lifts the opt-out (the patient asked
/// them). 204 whether or not there was one.
#[utoipa::path(
    delete,
    path = "/v1/patients/{id}/sms-opt-out",
    tag = "Replies",
    operation_id = "liftSmsOptOut",
    summary = "Lift the patient's SMS opt-out (the patient asked the practice)",
    description = "Queues `patient.sms_opted_in` with `source: \"api\"` when there was one. 204 either way.",
    params(PatientId),
    responses(
        (status = 204, description = "No opt-out any more."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn lift_opt_out(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.lift_sms_opt_out(&practice, &id, "api").await?;
    Ok(StatusCode::NO_CONTENT)
}
