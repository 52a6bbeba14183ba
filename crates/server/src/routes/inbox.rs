//! `GET /v1/inbox` (the to-verify box and the notification centre) and
//! `POST /v1/inbox/{id}/resolve`.

use axum::Json;
use axum::extract::State;
use rappel_engine::queries::InboxEntry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::{InboxBox, InboxEntryId};
use crate::docs::responses::{BadRequest, NotFound, TooManyRequests, Unauthorized, Unprocessable};
use crate::error::ApiError;
use crate::extract::{PathId, QueryParams, Tenant};

const BOXES: &[&str] = &["to_verify", "notifications"];

/// Inbox entries, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct Inbox {
    items: Vec<InboxEntry>,
}

/// Open entries of one box (`box=to_verify|notifications`) or of both, newest first;
/// `resolved=true` includes the resolved ones.
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "Follow-up",
    operation_id = "listInbox",
    summary = "The to-verify box and the notification centre",
    params(
        ("box" = Option<InboxBox>, Query, description = "One box only (both when absent)."),
        ("resolved" = Option<bool>, Query, description = "Include resolved entries (default false)."),
    ),
    responses(
        (status = 200, description = "Entries, newest first.", body = Inbox),
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
) -> Result<Json<Inbox>, ApiError> {
    query.check(&["box", "resolved"])?;
    let inbox = match query.get("box") {
        None => None,
        Some(name) if BOXES.contains(&name) => Some(name),
        Some(_) => {
            return Err(ApiError::invalid(
                "box",
                format!("expected one of {}", BOXES.join(", ")),
            ));
        }
    };
    let include_resolved = match query.get("resolved") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("resolved", "expected true or false")),
    };
    let entries = state
        .engine
        .inbox(&practice, inbox, include_resolved)
        .await?;
    Ok(Json(Inbox { items: entries }))
}

/// Marks an entry resolved and answers it; resolving it again changes nothing.
#[utoipa::path(
    post,
    path = "/v1/inbox/{id}/resolve",
    tag = "Follow-up",
    operation_id = "resolveInboxEntry",
    summary = "Mark an inbox entry as dealt with",
    description = "Resolving an entry again changes nothing.",
    params(InboxEntryId),
    responses(
        (status = 200, description = "The entry, with `resolved_at`.", body = InboxEntry),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<InboxEntry>, ApiError> {
    Ok(Json(state.engine.resolve_inbox(&practice, &id).await?))
}
