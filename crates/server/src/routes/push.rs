//! `PUT` and `DELETE /v1/patients/{id}/push-subscriptions`: the patient's browser subscribes to
//! Web Push (through the practice's web page, which relays `PushSubscription.toJSON()`) or
//! withdraws.
//!
//! The subscription is checked here, strictly, because the dispatcher will post to its endpoint
//! and encrypt for its keys: the endpoint must be an `https://` URL to a public address (the one
//! address check of `rappel_channels::net_guard`: a subscription must not point our server at
//! its own network), `p256dh` a P-256 public key and `auth` a 16-byte secret, both base64url.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rappel_channels::net_guard::{self, NetPolicy};
use rappel_channels::push::SubscriptionKeys;
use rappel_domain::facts::PushSubscription;
use rappel_engine::PutOutcome;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::PatientId;
use crate::docs::responses::{
    BadRequest, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::error::ApiError;
use crate::extract::{JsonBody, PathId, QueryParams, Tenant, from_json};

/// The longest endpoint accepted. Real ones are under 500 characters.
const MAX_ENDPOINT: usize = 2048;

/// A browser's `PushSubscription.toJSON()`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    /// The push service URL (https) the browser gave.
    #[schema(pattern = "^https://")]
    endpoint: String,
    // When the browser will drop the subscription, if it says. Not used: the push service
    // answers 410 once it is gone, and the dispatcher then forgets it.
    /// Accepted and ignored.
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<Value>,
    #[schema(inline)]
    keys: KeysBody,
}

/// A patient's Web Push subscription, as stored.
#[derive(Serialize, ToSchema)]
#[schema(as = PushSubscription)]
struct Stored {
    /// The push service URL (https) the browser gave.
    endpoint: String,
    #[schema(inline)]
    keys: StoredKeys,
}

#[derive(Serialize, ToSchema)]
struct StoredKeys {
    /// The browser's P-256 public key, uncompressed, base64url (87 characters).
    p256dh: String,
    /// The 16-byte authentication secret, base64url (22 characters).
    auth: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeysBody {
    /// The browser's P-256 public key, uncompressed, base64url (87 characters).
    p256dh: String,
    /// The 16-byte authentication secret, base64url (22 characters).
    auth: String,
}

/// Adds the subscription, or replaces the one with the same endpoint: 201 when it is new, 200
/// otherwise; the answer is the subscription as stored.
#[utoipa::path(
    put,
    path = "/v1/patients/{id}/push-subscriptions",
    tag = "Directory",
    operation_id = "putPushSubscription",
    summary = "Record a browser's Web Push subscription for a patient",
    description = "The body is the browser's `PushSubscription.toJSON()`, as the \
        practice's web page receives it from `pushManager.subscribe` (with the \
        server's VAPID public key). `endpoint` must be an https URL to a public \
        address (the webhook URL's check); `keys.p256dh` a P-256 public key (65 bytes, uncompressed) and \
        `keys.auth` a 16-byte secret, both base64url (422 naming the field \
        otherwise). A subscription with the same endpoint is replaced. The patient's \
        messages are re-planned at once; push messages go to the first subscription. \
        A subscription the push service reports gone (404, 410) is removed by itself.",
    params(PatientId),
    request_body(content = inline(SubscriptionBody), description = "The subscription."),
    responses(
        (status = 201, description = "Added; the subscription as stored.", body = Stored),
        (status = 200, description = "Replaced, or unchanged; the subscription as stored.", body = Stored),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn put_subscription(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: SubscriptionBody = from_json(body.value, "")?;
    let endpoint = check_endpoint(body.endpoint.trim(), &state.engine.config().net).await?;
    let p256dh = body.keys.p256dh.trim().trim_end_matches('=').to_string();
    let auth = body.keys.auth.trim().trim_end_matches('=').to_string();
    SubscriptionKeys::parse(&p256dh, &auth)
        .map_err(|(field, reason)| ApiError::invalid(format!("keys.{field}"), reason))?;
    let subscription = PushSubscription {
        endpoint,
        p256dh,
        auth,
    };
    let outcome = state
        .engine
        .put_push_subscription(&practice, &id, &subscription)
        .await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Updated | PutOutcome::Unchanged => StatusCode::OK,
    };
    let stored = Stored {
        endpoint: subscription.endpoint,
        keys: StoredKeys {
            p256dh: subscription.p256dh,
            auth: subscription.auth,
        },
    };
    Ok((status, Json(stored)).into_response())
}

/// Removes the subscription whose endpoint is `?endpoint=`: 204, or 404 when the patient has
/// none with that endpoint.
#[utoipa::path(
    delete,
    path = "/v1/patients/{id}/push-subscriptions",
    tag = "Directory",
    operation_id = "deletePushSubscription",
    summary = "Remove a patient's Web Push subscription",
    description = "The browser unsubscribed. The patient's messages are re-planned.",
    params(
        PatientId,
        ("endpoint" = String, Query, pattern = "^https://",
            description = "The subscription's endpoint (https), URL-encoded."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn delete_subscription(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
    query: QueryParams,
) -> Result<StatusCode, ApiError> {
    query.check(&["endpoint"])?;
    let endpoint = query
        .get("endpoint")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("endpoint", "required: the subscription's endpoint"))?;
    state
        .engine
        .delete_push_subscription(&practice, &id, endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An `https://` URL to a public address ([`net_guard`], the check the dispatcher makes again at
/// each request), at most [`MAX_ENDPOINT`] characters.
async fn check_endpoint(endpoint: &str, policy: &NetPolicy) -> Result<String, ApiError> {
    if endpoint.len() > MAX_ENDPOINT {
        return Err(ApiError::invalid("endpoint", "longer than 2048 characters"));
    }
    net_guard::check_resolved(endpoint, policy)
        .await
        .map_err(|refusal| ApiError::invalid("endpoint", refusal.to_string()))?;
    Ok(endpoint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_must_be_https_urls_to_a_public_address() {
        let strict = NetPolicy::default();
        for good in [
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
        ] {
            assert!(
                check_endpoint(good, &strict).await.is_ok(),
                "{good} refused"
            );
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://127.0.0.1/push",
            "https://127.1/push",
            "https://[::1]/push",
            "https://localhost/push",
            "https://localhost./push",
            "https://user@push.example.net/x",
            "app",
            "",
        ] {
            assert!(
                check_endpoint(bad, &strict).await.is_err(),
                "{bad} accepted"
            );
        }
    }
}
