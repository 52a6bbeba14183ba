//! `GET /v1/inbox` (the to-verify box and the notification centre) and
//! `POST /v1/inbox/{id}/resolve`.

use axum::Json;
use axum::extract::State;
use rappel_engine::queries::InboxEntry;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{PathId, QueryParams, Tenant};

const BOXES: &[&str] = &["to_verify", "notifications"];

/// Open entries of one box (`box=to_verify|notifications`) or of both, newest first;
/// `resolved=true` includes the resolved ones.
pub(crate) async fn list(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "items": entries })))
}

/// Marks an entry resolved and answers it; resolving it again changes nothing.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<InboxEntry>, ApiError> {
    Ok(Json(state.engine.resolve_inbox(&practice, &id).await?))
}
