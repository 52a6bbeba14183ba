//! `POST /v1/webhooks/sms/{provider}` (`twilio`, `ovh`, `webhook`): delivery reports, called by
//! the SMS providers rather than by practices. They carry no API key; each provider proves
//! itself its own way instead, checked by `rappel_channels::sms`:
//!
//! - Twilio signs with `X-Twilio-Signature` (HMAC-SHA1 of our public URL and the posted form,
//!   keyed with the auth token);
//! - a practice's gateway signs per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`);
//! - OVH signs nothing, so the callback URL registered with OVH carries a secret `?token=`. OVH
//!   calls that URL with `GET`, which this route therefore accepts for `ovh` only.
//!
//! A report that does not prove itself is refused with 401 and a warning in the log (never its
//! content: it names a patient's phone). A report for a message nobody knows is 404, logged too.
//! Anything else is 204: applied, already applied, or a status that is not final yet.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rappel_channels::sms::{DeliveryReport, ReportError, ovh, twilio, webhook};
use rappel_engine::EngineError;
use rappel_engine::secret::constant_time_eq;
use serde_json::json;

use crate::AppState;
use crate::docs::responses::NotFound;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::PathId;

/// Why a report was not applied.
enum Refusal {
    /// Not proven to come from the provider.
    Unverified(&'static str),
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        Refusal::Api(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(error) => error.into_response(),
            Refusal::Unverified(_) => {
                // Not the API key problem of `ApiError::Unauthorized`: no key would help.
                let body = json!({
                    "type": "about:blank",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "This delivery report does not prove it comes from the provider \
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
        }
    }
}

#[utoipa::path(
    method(get, post),
    path = "/v1/webhooks/sms/{provider}",
    tag = "Webhooks",
    operation_id = "smsDeliveryReport",
    summary = "A delivery report (called by the SMS provider)",
    description = "`twilio` posts a form signed with `X-Twilio-Signature`; `webhook` (a practice's \
        gateway) posts JSON signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, \
        `webhook-signature`); `ovh` calls the registered URL with `GET`, whose `?token=` is the \
        proof (`GET` is for `ovh` only). A report that does not prove itself is 401 and is not \
        applied; a report for a message nobody knows is 404. Anything else is 204: applied, \
        already applied, or a status that is not final yet.",
    params(
        ("provider" = String, Path, min_length = 1, max_length = 128,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$",
            description = "`twilio`, `ovh` or `webhook`."),
    ),
    security(),
    responses(
        (status = 204, description = "Applied, already applied, or not final yet."),
        (status = 401, description = "Not proven to come from the provider.", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn sms_report(
    State(state): State<AppState>,
    PathId(provider): PathId,
    request: Request,
) -> Response {
    match receive(&state, &provider, request).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => {
            if let Refusal::Unverified(reason) = &refusal {
                tracing::warn!(%provider, reason, "delivery report refused: not from the provider");
            }
            refusal.into_response()
        }
    }
}

async fn receive(state: &AppState, provider: &str, request: Request) -> Result<(), Refusal> {
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
    let no_secret = Refusal::Unverified("no secret is configured for this provider");
    let parsed = match provider {
        "twilio" => {
            let token = secrets.twilio_auth_token.as_deref().ok_or(no_secret)?;
            // Twilio signs the URL it called, which is ours as the public sees it.
            let url = format!(
                "{}{path_and_query}",
                state.engine.config().public_url.trim_end_matches('/')
            );
            twilio::report(
                token,
                &url,
                header_text(&headers, "x-twilio-signature"),
                &body,
            )
        }
        "ovh" => {
            let token = secrets.ovh_callback_token.as_deref().ok_or(no_secret)?;
            ovh::report(token, &query, &body)
        }
        _ => {
            let key = secrets.sms_webhook_key.as_ref().ok_or(no_secret)?;
            let signed = webhook::SignedHeaders {
                id: header_text(&headers, "webhook-id"),
                timestamp: header_text(&headers, "webhook-timestamp"),
                signature: header_text(&headers, "webhook-signature"),
            };
            webhook::report(key, signed, &body, state.engine.now())
        }
    };
    let report: DeliveryReport = match parsed {
        Ok(Some(report)) => report,
        // Authentic, but not final yet (queued, sent, buffered…).
        Ok(None) => return Ok(()),
        Err(ReportError::Unauthenticated(reason)) => return Err(Refusal::Unverified(reason)),
        Err(error @ ReportError::Malformed(_)) => {
            return Err(ApiError::BadRequest(error.to_string()).into());
        }
    };
    match state.engine.apply_delivery_report(&report).await {
        Ok(_) => Ok(()),
        Err(error @ EngineError::NotFound { .. }) => {
            tracing::warn!(
                provider = report.provider,
                provider_id = %report.provider_id,
                "delivery report for a message this server does not know"
            );
            Err(ApiError::from(error).into())
        }
        Err(error) => Err(ApiError::from(error).into()),
    }
}

/// `POST /v1/webhooks/email/dsn`: one raw bounce (RFC 3464 DSN or plain), the HTTP twin of
/// `rappel bounce` for relays that post what comes back to the return path. The relay presents
/// `Authorization: Bearer RAPPEL_BOUNCE_WEBHOOK_TOKEN`; `?recipient=` may name the address the
/// bounce was delivered to (otherwise its Delivered-To, X-Original-To and To fields are read).
/// 204 when handled or ignorable (not a bounce, or not provably ours), 401 for a wrong token.
#[utoipa::path(
    post,
    path = "/v1/webhooks/email/dsn",
    tag = "Webhooks",
    operation_id = "emailBounce",
    summary = "A bounce (posted by the mail relay)",
    description = "One raw bounce message (an RFC 3464 delivery status notification, or a plain \
        one), as it came back to the return path. The relay presents \
        `Authorization: Bearer` with the operator's token (`RAPPEL_BOUNCE_WEBHOOK_TOKEN`), not a \
        practice's key. `?recipient=` may name the address the bounce was delivered to \
        (otherwise its Delivered-To, X-Original-To and To fields are read). 204 when handled or \
        ignorable (not a bounce, or not provably one of Rappel's messages).",
    params(("recipient" = Option<String>, Query, description = "The address the bounce was delivered to.")),
    request_body(content = String, content_type = "text/plain", description = "The bounce message as received (RFC 5322, a DSN per RFC 3464 or a plain one)."),
    security(),
    responses(
        (status = 204, description = "Handled, or nothing to do."),
        (status = 401, description = "Not the operator's token.", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn email_dsn(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let secrets = &state.config.webhooks;
    let (Some(verp), Some(expected)) = (&secrets.bounce, &secrets.bounce_webhook_token) else {
        tracing::warn!("bounce webhook refused: RAPPEL_BOUNCE_WEBHOOK_TOKEN is not configured");
        return Refusal::Unverified("not configured").into_response();
    };
    let presented = header_text(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        tracing::warn!("bounce webhook refused: wrong or missing bearer token");
        return Refusal::Unverified("wrong token").into_response();
    }
    let Some(bounce) = rappel_channels::bounce::parse(&body) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let head_end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| body.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(body.len());
    let mut tokens = query
        .get("recipient")
        .map(|r| verp.tokens_in(r))
        .unwrap_or_default();
    for token in verp.tokens_in(&String::from_utf8_lossy(&body[..head_end])) {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    match state.engine.apply_bounce(&bounce, &tokens, verp).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Whether the request presents `expected` as a bearer token or as the password of basic
/// credentials (compared in constant time).
fn presents_token(headers: &HeaderMap, expected: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = header_text(headers, "authorization") else {
        return false;
    };
    let presented = if let Some(token) = value.strip_prefix("Bearer ") {
        token.trim().to_string()
    } else if let Some(basic) = value.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()))
            .unwrap_or_default()
    } else {
        return false;
    };
    constant_time_eq(presented.as_bytes(), expected.as_bytes())
}

type EventParser = fn(&[u8]) -> Result<Vec<rappel_channels::email_events::EmailEvent>, ReportError>;

/// `POST /v1/webhooks/email/{brevo|mailjet}`: the services' delivery events (delivered, hard
/// and soft bounces, blocked, spam complaints), matched by the custom-ID header Rappel sets on
/// every email (see `rappel_channels::email_events`). A wrong token is 401 with a warning (no
/// content: it names a patient's address); an event for a message this server does not know is
/// logged and acknowledged, since the service would otherwise retry it for a day.
#[utoipa::path(
    post,
    path = "/v1/webhooks/email/{provider}",
    tag = "Webhooks",
    operation_id = "emailEvents",
    summary = "Delivery events (posted by the email service)",
    description = "`brevo` or `mailjet`: their delivery events (delivered, hard and soft bounces, \
        blocked, spam complaints) in their own JSON, matched by the custom-ID header Rappel sets \
        on every email. The service presents the operator's token \
        (`RAPPEL_BREVO_WEBHOOK_TOKEN`, `RAPPEL_MAILJET_WEBHOOK_TOKEN`) as a bearer token or as \
        the password of the basic credentials in the registered URL. An event for a message \
        this server does not know is acknowledged (the service would otherwise retry it for a \
        day).",
    params(
        ("provider" = String, Path, min_length = 1, max_length = 128,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$",
            description = "`brevo` or `mailjet`."),
    ),
    request_body(content = Object, description = "The service's events, as it posts them."),
    security(),
    responses(
        (status = 204, description = "Handled, or nothing to do."),
        (status = 401, description = "Not the operator's token.", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn email_events(
    State(state): State<AppState>,
    PathId(provider): PathId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let secrets = &state.config.webhooks;
    let (token, parse): (_, EventParser) = match provider.as_str() {
        "brevo" => (
            &secrets.brevo_webhook_token,
            rappel_channels::email_events::brevo,
        ),
        "mailjet" => (
            &secrets.mailjet_webhook_token,
            rappel_channels::email_events::mailjet,
        ),
        _ => {
            return ApiError::NotFound(format!(
                "no email service `{provider}` (expected brevo or mailjet)"
            ))
            .into_response();
        }
    };
    if !token
        .as_deref()
        .is_some_and(|expected| presents_token(&headers, expected))
    {
        tracing::warn!(%provider, "email event refused: wrong, missing or unconfigured token");
        return Refusal::Unverified("wrong token").into_response();
    }
    let events = match parse(&body) {
        Ok(events) => events,
        Err(error) => return ApiError::BadRequest(error.to_string()).into_response(),
    };
    for event in &events {
        match state.engine.apply_email_event(event).await {
            Ok(_) => {}
            Err(EngineError::NotFound { .. }) => {
                tracing::warn!(%provider, kind = ?event.kind, "email event for a message this server does not know");
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
