//! The handlers, one module per kind of resource.

pub(crate) mod appointment_links;
pub(crate) mod documents;
pub(crate) mod events;
pub(crate) mod facts;
pub(crate) mod inbox;
pub(crate) mod links;
pub(crate) mod patient_page;
pub(crate) mod people;
pub(crate) mod postal;
pub(crate) mod push;
pub(crate) mod replies;
pub(crate) mod settings;
pub(crate) mod tasks;
pub(crate) mod templates;
pub(crate) mod webhooks;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// An unknown path: a problem+json for the API (`/v1/…`), a French page for everything else,
/// which is the web interface's (a person typed it or followed an old link).
pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/v1/") || uri.path() == "/v1" {
        return ApiError::NotFound(format!("no route for `{}`", uri.path())).into_response();
    }
    crate::ui::page_error(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        "Cette adresse ne correspond à aucune page de Rappel. Vérifiez le lien, ou repartez du tableau de bord.",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
