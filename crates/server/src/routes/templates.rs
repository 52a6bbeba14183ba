//! Message templates, the test send and the practice's outbound webhook:
//!
//! - `GET /v1/templates` — every kind × channel × locale with the source in force of each part
//!   (`origin`: `default` or `practice`);
//! - `GET`/`PUT`/`DELETE /v1/templates/{kind}/{channel}?locale=fr` — one template, as
//!   `{subject?, text?, html?}` (the parts the channel has: email all three, SMS `text`, push
//!   `subject` as title and `text`, postal `text`); a part that does not parse or uses an
//!   unknown variable is 422 naming the part and the line;
//! - `POST /v1/templates/preview` — renders given sources on sample data for the editor's live
//!   preview: each part's output or error (with its line), and an SMS's segment count;
//! - `POST /v1/test-send` `{kind, channel, to}` — renders on sample data and hands the message
//!   to the channel at once (Doctolib's « envoi test »): 202 with what was sent;
//! - `PUT`/`GET`/`DELETE /v1/webhook` `{url, secret?}` — where status changes are posted
//!   (Standard Webhooks signatures); a generated secret is shown once, in the PUT's answer;
//!   `GET /v1/webhook/deliveries` — the latest events and where each stands.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::template::Locale;
use rappel_engine::TemplateParts;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::docs::params::{TemplateChannel, TestSendChannel};
use crate::docs::responses::{
    BadRequest, NotFound, TooManyRequests, Unauthorized, Unprocessable, UnsupportedMediaType,
};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, Tenant, from_json};

/// The routes of this module (behind the API key, like every `/v1` route of the practice).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(preview))
        .routes(routes!(get_one, put_one, delete_one))
        .routes(routes!(test_send))
        .routes(routes!(get_webhook, put_webhook, delete_webhook))
        .routes(routes!(webhook_deliveries))
}

fn kind(text: &str) -> Result<Kind, ApiError> {
    Kind::parse(text).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!(
                "unknown kind `{text}` (one of: {})",
                Kind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn channel(text: &str) -> Result<Channel, ApiError> {
    match Channel::parse(text) {
        Some(channel) if channel != Channel::Inbox => Ok(channel),
        _ => Err(ApiError::invalid(
            "channel",
            format!("unknown channel `{text}` (email, sms, push or postal)"),
        )),
    }
}

fn locale(text: Option<&str>) -> Result<Locale, ApiError> {
    match text {
        None => Ok(Locale::Fr),
        Some(text) => {
            Locale::parse(text).ok_or_else(|| ApiError::invalid("locale", "expected fr or en"))
        }
    }
}

/// `/{kind}/{channel}` of the path: an unknown one is 404, as for any resource.
fn path_template(kind_text: &str, channel_text: &str) -> Result<(Kind, Channel), ApiError> {
    let not_found = || ApiError::NotFound(format!("no template `{kind_text}/{channel_text}`"));
    let kind = Kind::parse(kind_text).ok_or_else(not_found)?;
    let channel = Channel::parse(channel_text)
        .filter(|c| *c != Channel::Inbox)
        .ok_or_else(not_found)?;
    Ok((kind, channel))
}

fn path(
    result: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<(Kind, Channel), ApiError> {
    let Path((kind_text, channel_text)) =
        result.map_err(|e| ApiError::BadRequest(format!("the path could not be read: {e}")))?;
    path_template(&kind_text, &channel_text)
}

/// minijinja sources of the parts of a message: email `subject`, `text` and `html` (auto-escaped); SMS `text`; push `subject` (title) and `text`; postal `text`. Variables: `practice.name`, `patient.first_name`/`last_name`/`name` (absent in practitioner alerts), `practitioner.name`, `appointments[]` with `date_text` (« mercredi 11 mars 2026 »), `time_text` (« 09h30 »), `start` (RFC 3339), `location`, `practitioner`, `motive` (in SMS and push only with `show_motive_in_sms`), `instructions` (never in SMS or push), `document.title` (not in SMS or push) and `document.link`, `task.label`, `links.page`, `links.confirm` and `links.cancel` (the patient's page to confirm or cancel the appointment: in confirmation and reminder emails and SMS reminders about one appointment, unless `appointment_links` is off), `locale`. No include, import or extends; a fuel limit stops endless loops; output is at most 64 KiB (1 KiB for SMS, push and subjects).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PartsBody {
    /// Null or absent: the built-in part.
    subject: Option<String>,
    /// Null or absent: the built-in part.
    text: Option<String>,
    /// Null or absent: the built-in part.
    html: Option<String>,
}

impl From<PartsBody> for TemplateParts {
    fn from(body: PartsBody) -> TemplateParts {
        TemplateParts {
            subject: body.subject,
            text: body.text,
            html: body.html,
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/templates",
    tag = "Templates",
    operation_id = "listTemplates",
    summary = "Every kind × channel × locale with the source in force",
    params(("locale" = Option<Locale>, Query, description = "Only this locale.")),
    responses(
        (status = 200, description = "The template in force: `origin` is `default` or `practice`, `overridden` lists the parts the practice rewrote, `parts` holds every part's source.", body = Object),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    query.check(&["locale"])?;
    let only = query.get("locale").map(|l| locale(Some(l))).transpose()?;
    let items: Vec<_> = state
        .engine
        .list_templates(&practice)
        .await?
        .into_iter()
        .filter(|v| only.is_none_or(|l| v.locale == l.as_str()))
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(
    get,
    path = "/v1/templates/{kind}/{channel}",
    tag = "Templates",
    operation_id = "getTemplate",
    summary = "Read a template (the built-in one until the practice writes its own)",
    params(
        ("kind" = Kind, Path, description = "What the message is about."),
        ("channel" = TemplateChannel, Path, description = "How it travels."),
        ("locale" = Option<Locale>, Query,
            description = "`fr` (default) or `en`: the patient's locale chooses (`en*` → en)."),
    ),
    responses(
        (status = 200, description = "The template in force: `origin` is `default` or `practice`, `overridden` lists the parts the practice rewrote, `parts` holds every part's source.", body = Object),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    path_parts: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let (kind, channel) = path(path_parts)?;
    query.check(&["locale"])?;
    let locale = locale(query.get("locale"))?;
    let view = state
        .engine
        .get_template(&practice, kind, channel, locale)
        .await?;
    Ok(Json(view).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/templates/{kind}/{channel}",
    tag = "Templates",
    operation_id = "putTemplate",
    summary = "Write the practice's own template",
    description = "The parts given replace the built-in ones; parts left out return to them. Each part is checked on sample data: a syntax error or an unknown variable is 422 with `field` naming the part and `detail` its line.",
    params(
        ("kind" = Kind, Path, description = "What the message is about."),
        ("channel" = TemplateChannel, Path, description = "How it travels."),
        ("locale" = Option<Locale>, Query,
            description = "`fr` (default) or `en`: the patient's locale chooses (`en*` → en)."),
    ),
    request_body(content = inline(PartsBody), description = "The parts."),
    responses(
        (status = 200, description = "The template in force: `origin` is `default` or `practice`, `overridden` lists the parts the practice rewrote, `parts` holds every part's source.", body = Object),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn put_one(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    path_parts: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    query: QueryParams,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let (kind, channel) = path(path_parts)?;
    query.check(&["locale"])?;
    let locale = locale(query.get("locale"))?;
    let parts: PartsBody = from_json(body.value, "")?;
    let view = state
        .engine
        .put_template(&practice, kind, channel, locale, &parts.into())
        .await?;
    Ok(Json(view).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/templates/{kind}/{channel}",
    tag = "Templates",
    operation_id = "deleteTemplate",
    summary = "Return to the built-in template",
    params(
        ("kind" = Kind, Path, description = "What the message is about."),
        ("channel" = TemplateChannel, Path, description = "How it travels."),
        ("locale" = Option<Locale>, Query,
            description = "`fr` (default) or `en`: the patient's locale chooses (`en*` → en)."),
    ),
    responses(
        (status = 204, description = "The built-in template is in force."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn delete_one(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    path_parts: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    query: QueryParams,
) -> Result<StatusCode, ApiError> {
    let (kind, channel) = path(path_parts)?;
    query.check(&["locale"])?;
    let locale = locale(query.get("locale"))?;
    state
        .engine
        .delete_template(&practice, kind, channel, locale)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `kind`, `channel`, `locale` and the parts.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    #[schema(value_type = Kind)]
    kind: String,
    #[schema(value_type = TemplateChannel)]
    channel: String,
    /// Null or absent: the practice's.
    #[schema(value_type = Option<Locale>)]
    locale: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/templates/preview",
    tag = "Templates",
    operation_id = "previewTemplate",
    summary = "Render sources on sample data (live preview)",
    description = "Sample data: « Jeanne Exemple », an appointment tomorrow at 09:30 with the practice's first practitioner. Each part answers its `output` or its `error` (`line`, `reason`); an SMS text also its `sms_segments` and `sms_encoding`. Parts left out are the built-in ones. Nothing is stored.",
    request_body(content = inline(PreviewBody), description = "`kind`, `channel`, `locale` and the parts."),
    responses(
        (status = 200, description = "`ok` and each part's output or error.", body = Object),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn preview(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body: PreviewBody = from_json(body.value, "")?;
    let (kind, channel) = (kind(&body.kind)?, channel(&body.channel)?);
    let locale = locale(body.locale.as_deref())?;
    let parts = TemplateParts {
        subject: body.subject,
        text: body.text,
        html: body.html,
    };
    let items = state
        .engine
        .preview_template(&practice, kind, channel, locale, &parts)
        .await?;
    let ok = items.iter().all(|p| p.error.is_none());
    Ok(Json(
        json!({ "kind": kind, "channel": channel, "locale": locale, "ok": ok, "parts": items }),
    ))
}

/// What to send where.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestSendBody {
    #[schema(value_type = Kind)]
    kind: String,
    #[schema(value_type = TestSendChannel)]
    channel: String,
    to: String,
    /// Null or absent: the practice's.
    #[schema(value_type = Option<Locale>)]
    locale: Option<String>,
    // A push subscription's keys (base64url), to encrypt a test push message.
    p256dh: Option<String>,
    auth: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/test-send",
    tag = "Templates",
    operation_id = "testSend",
    summary = "Send a message on sample data to any address, now",
    description = "Renders the kind through the practice's templates on sample data and hands it to the channel at once, outside the queue (nothing is recorded). `to` is an email address, a mobile number (E.164 or French national) or a push endpoint (its HTTPS URL to a public address, with `p256dh` and `auth`). A test SMS goes only to French numbers (or the operator's `RAPPEL_TEST_SMS_COUNTRY_CODES`; otherwise 422 `to`), counts against the month's SMS quota, at most 10 a day (422 `channel` past either), and never under a sender name that passes for a public service (422 `sms_sender`). The answer says whether the channel accepted it.",
    request_body(content = inline(TestSendBody), description = "What to send where."),
    responses(
        (status = 202, description = "Handed to the channel: the rendered message, `accepted`, and the channel's `error` when it refused.", body = Object),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn test_send(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: TestSendBody = from_json(body.value, "")?;
    let (kind, channel) = (kind(&body.kind)?, channel(&body.channel)?);
    let locale = locale(body.locale.as_deref())?;
    let keys = match (body.p256dh, body.auth) {
        (Some(p256dh), Some(auth)) => Some((p256dh, auth)),
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(
                "p256dh",
                "give both p256dh and auth, or neither",
            ));
        }
    };
    let sent = state
        .engine
        .test_send(&practice, kind, channel, &body.to, locale, keys)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// The endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    #[schema(format = "uri")]
    url: String,
    /// whsec_ followed by base64 of at least 24 random bytes; null or absent: one is generated.
    secret: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/webhook",
    tag = "Templates",
    operation_id = "putWebhook",
    summary = "Post status changes to the practice software",
    description = "Rappel then POSTs `notification.sent`, `notification.delivered`, `notification.failed` and `notification.suppressed` events (`{type, timestamp, data: {key, kind, channel, recipient, status, appointments, document, reason, error}}`), and the patient's answers `appointment.confirmed_by_patient` and `appointment.cancel_requested` (see `webhooks` in this document) signed per Standard Webhooks: `webhook-id` (the same on every attempt), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`. A 2xx answer delivers; 408, 429, 5xx and network errors are retried after 1 minute, then twice as long each time up to 6 hours, for 24 hours; any other answer fails the event. Without `secret`, one is generated (`whsec_…`) and shown once. `url` must be https (plain http only where the operator allows it), carry no user information, and name a public address: loopback, private, link-local (169.254.169.254), CGNAT, unique-local and the like are 422 naming `url`, in any spelling (`127.1`, `0x7f000001`, `[::1]`, `localhost.`). Each request checks the address again, follows no redirect, and its error says only refused or unreachable.",
    request_body(content = inline(WebhookBody), description = "The endpoint."),
    responses(
        (status = 200, description = "The endpoint (`url`, `created_at`; `secret` only in the answer of a PUT that generated it).", body = Object),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn put_webhook(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: WebhookBody = from_json(body.value, "")?;
    let settings = state
        .engine
        .put_webhook(&practice, &body.url, body.secret.as_deref())
        .await?;
    Ok(Json(settings).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/webhook",
    tag = "Templates",
    operation_id = "getWebhook",
    summary = "Where status changes are posted",
    responses(
        (status = 200, description = "The endpoint (`url`, `created_at`; `secret` only in the answer of a PUT that generated it).", body = Object),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn get_webhook(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.get_webhook(&practice).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/webhook",
    tag = "Templates",
    operation_id = "deleteWebhook",
    summary = "Stop posting status changes",
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn delete_webhook(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<StatusCode, ApiError> {
    if state.engine.delete_webhook(&practice).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no webhook is set".into()))
    }
}

#[utoipa::path(
    get,
    path = "/v1/webhook/deliveries",
    tag = "Templates",
    operation_id = "listWebhookDeliveries",
    summary = "The latest events and where each stands",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "1 to 500 (default 50).")),
    responses(
        (status = 200, description = "Events, newest first: `status` pending, delivered or failed, `attempts`, `last_error`.", body = Object),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn webhook_deliveries(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    query.check(&["limit"])?;
    let limit = match query.get("limit") {
        None => 50,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "expected an integer from 1 to 500"))?,
    };
    let items: Vec<Value> = state
        .engine
        .webhook_deliveries(&practice, limit)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "type": d.event_type,
                "status": d.status.as_str(),
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "payload": d.payload,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
