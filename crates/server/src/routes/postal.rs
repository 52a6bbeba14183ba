//! The practice's logo (`PUT`, `GET`, `DELETE /v1/settings/logo`: the image itself is the body)
//! and what its letters cost (`GET /v1/postal/costs?month=YYYY-MM`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{QueryParams, Tenant};

/// The engine refuses logos over 2 MB with a clear message; the route lets a little more through
/// so that message, not a bare 413, is what a slightly large image gets.
const LOGO_BODY_LIMIT: usize = 4 * 1024 * 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/settings/logo",
            get(get_logo)
                .put(put_logo)
                .delete(delete_logo)
                .layer(DefaultBodyLimit::max(LOGO_BODY_LIMIT)),
        )
        .route("/v1/postal/costs", get(postal_costs))
}

/// The body is the image (PNG or JPEG, told apart by its content). A Content-Type, when given,
/// must be an image type: a form or JSON sent here by mistake gets 415, not "not a PNG".
async fn put_logo(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if let Some(content_type) = headers.get(CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !(content_type.starts_with("image/png") || content_type.starts_with("image/jpeg")) {
            return Err(ApiError::UnsupportedMediaType(
                "send the logo as the body, with Content-Type image/png or image/jpeg".into(),
            ));
        }
    }
    let info = state.engine.set_logo(&practice, &body).await?;
    Ok(Json(json!({
        "width": info.width,
        "height": info.height,
        "updated_at": info.updated_at.to_string(),
    })))
}

async fn get_logo(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<Response, ApiError> {
    let Some(logo) = state.engine.logo(&practice).await? else {
        return Err(ApiError::NotFound("this practice has no logo".into()));
    };
    let last_modified = logo
        .updated_at
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    Ok((
        [
            (CONTENT_TYPE, "image/png".to_string()),
            (CACHE_CONTROL, "private, no-cache".to_string()),
            (LAST_MODIFIED, last_modified),
        ],
        logo.png,
    )
        .into_response())
}

async fn delete_logo(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
) -> Result<StatusCode, ApiError> {
    if state.engine.delete_logo(&practice).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("this practice has no logo".into()))
    }
}

async fn postal_costs(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<rappel_engine::PostalSpend>, ApiError> {
    query.check(&["month"])?;
    let spend = state
        .engine
        .postal_costs(&practice, query.get("month"))
        .await?;
    Ok(Json(spend))
}
