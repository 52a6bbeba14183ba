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
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathId, QueryParams, Tenant, from_json};

/// The longest endpoint accepted. Real ones are under 500 characters.
const MAX_ENDPOINT: usize = 2048;

/// `PushSubscription.toJSON()` as browsers give it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    endpoint: String,
    /// When the browser will drop the subscription, if it says. Not used: the push service
    /// answers 410 once it is gone, and the dispatcher then forgets it.
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<Value>,
    keys: KeysBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysBody {
    p256dh: String,
    auth: String,
}

/// Adds the subscription, or replaces the one with the same endpoint: 201 when it is new, 200
/// otherwise; the answer is the subscription as stored.
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
    let stored = json!({
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    });
    Ok((status, Json(stored)).into_response())
}

/// Removes the subscription whose endpoint is `?endpoint=`: 204, or 404 when the patient has
/// none with that endpoint.
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
