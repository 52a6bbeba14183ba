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
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::template::Locale;
use rappel_engine::TemplateParts;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, Tenant, from_json};

/// The routes of this module (behind the API key, like every `/v1` route of the practice).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", get(list))
        .route("/v1/templates/preview", post(preview))
        .route(
            "/v1/templates/{kind}/{channel}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route("/v1/test-send", post(test_send))
        .route(
            "/v1/webhook",
            get(get_webhook).put(put_webhook).delete(delete_webhook),
        )
        .route("/v1/webhook/deliveries", get(webhook_deliveries))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsBody {
    subject: Option<String>,
    text: Option<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    kind: String,
    channel: String,
    locale: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSendBody {
    kind: String,
    channel: String,
    to: String,
    locale: Option<String>,
    /// A push subscription's keys (base64url), to encrypt a test push message.
    p256dh: Option<String>,
    auth: Option<String>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    secret: Option<String>,
}

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

async fn get_webhook(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.get_webhook(&practice).await?).into_response())
}

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
