//! The practice's logo (`PUT`, `GET`, `DELETE /v1/settings/logo`: the image itself is the body)
//! and what its letters cost (`GET /v1/postal/costs?month=YYYY-MM`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::responses::{
    NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable, UnsupportedMediaType,
};
use crate::docs::schemas;
use crate::error::ApiError;
use crate::extract::{QueryParams, Tenant};

/// The engine refuses logos over 2 MB with a clear message; the route lets a little more through
/// so that message, not a bare 413, is what a slightly large image gets.
const LOGO_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The stored logo's size.
#[derive(Serialize, ToSchema)]
pub(crate) struct LogoInfo {
    #[schema(maximum = 150)]
    width: u32,
    #[schema(maximum = 75)]
    height: u32,
    /// When it was stored.
    #[schema(format = DateTime)]
    updated_at: String,
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let (schemas, paths, logo) = routes!(get_logo, put_logo, delete_logo);
    OpenApiRouter::new()
        .routes((
            schemas,
            paths,
            logo.layer(DefaultBodyLimit::max(LOGO_BODY_LIMIT)),
        ))
        .routes(routes!(postal_costs))
}

/// The body is the image (PNG or JPEG, told apart by its content). A Content-Type, when given,
/// must be an image type: a form or JSON sent here by mistake gets 415, not "not a PNG".
#[utoipa::path(
    put,
    path = "/v1/settings/logo",
    tag = "Settings",
    operation_id = "putLogo",
    summary = "Upload the practice's logo",
    description = "The body is the image itself, PNG or JPEG, recognised by its content (`Content-Type: image/png` or `image/jpeg`; another declared type is 415). At most 2 MB and 16 megapixels; anything else is 422 with `field: logo`, and the previous logo stays. It is shrunk to fit within 150 × 75 px keeping its proportions (never enlarged) and stored as PNG. It heads the confirmation and reminder emails of appointments booked by the practice's staff (online bookings carry the booking platform's header) and the letterhead of letters.",
    request_body(content(
        (inline(schemas::Png) = "image/png"),
        (inline(schemas::Jpeg) = "image/jpeg"),
    )),
    responses(
        (status = 200, description = "The stored logo's size.", body = LogoInfo),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
async fn put_logo(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LogoInfo>, ApiError> {
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
    Ok(Json(LogoInfo {
        width: info.width,
        height: info.height,
        updated_at: info.updated_at.to_string(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/settings/logo",
    tag = "Settings",
    operation_id = "getLogo",
    summary = "The practice's logo, as stored (PNG)",
    responses(
        (status = 200, description = "The logo.", content_type = "image/png"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/v1/settings/logo",
    tag = "Settings",
    operation_id = "deleteLogo",
    summary = "Remove the practice's logo",
    description = "Messages and letters made after this carry no logo; those already sent keep theirs. 404 when there is none.",
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
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

#[utoipa::path(
    get,
    path = "/v1/postal/costs",
    tag = "Documents",
    operation_id = "postalCosts",
    summary = "What the practice's letters cost in a month",
    description = "Every letter handed off during the month (the practice's calendar month, in its time zone) with what it cost, in euro cents: the postal provider's price, or the configured tariff (postage by weight step plus printing per sheet; `RAPPEL_POSTAL_POSTAGE_CENTS`, `RAPPEL_POSTAL_POSTAGE_HEAVY_CENTS`, `RAPPEL_POSTAL_SHEET_CENTS`). Without `month`, the current month by the engine's clock.",
    params(("month" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$",
        description = "The month, `YYYY-MM` (default: the current month in the practice's time zone).")),
    responses(
        (status = 200, description = "The month's letters and their total.", body = rappel_engine::PostalSpend),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
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
