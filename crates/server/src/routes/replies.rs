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
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::{PathId, QueryParams, Tenant};
use crate::routes::webhooks::header_text;

/// `GET|POST /v1/webhooks/sms/{provider}/inbound`.
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

/// `GET /v1/received-messages`: the SMS patients sent back that wait for the practice, newest
/// first; `handled=true` lists the handled ones and the keywords too.
pub(crate) async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "items": items })))
}

/// `POST /v1/received-messages/{id}/resolve`: marks a received message handled; again changes
/// nothing.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let changed = state
        .engine
        .resolve_received_message(&practice, &id)
        .await?;
    Ok(Json(
        json!({ "id": id, "handled": true, "changed": changed }),
    ))
}

/// `GET /v1/patients/{id}/sms-opt-out`: the patient's SMS opt-out, `{"opted_out": false}`
/// without one.
pub(crate) async fn get_opt_out(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        match state.engine.sms_opt_out(&practice, &id).await? {
            Some(o) => json!({
                "opted_out": true,
                "opted_out_at": o.opted_out_at,
                "source": o.source,
            }),
            None => json!({ "opted_out": false }),
        },
    ))
}

/// `DELETE /v1/patients/{id}/sms-opt-out`: the practice lifts the opt-out (the patient asked
/// them). 204 whether or not there was one.
pub(crate) async fn lift_opt_out(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.engine.lift_sms_opt_out(&practice, &id, "api").await?;
    Ok(StatusCode::NO_CONTENT)
}
