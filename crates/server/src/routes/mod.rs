//! The handlers, one module per kind of resource.

pub(crate) mod documents;
pub(crate) mod events;
pub(crate) mod facts;
pub(crate) mod inbox;
pub(crate) mod links;
pub(crate) mod people;
pub(crate) mod postal;
pub(crate) mod push;
pub(crate) mod settings;
pub(crate) mod tasks;
pub(crate) mod templates;
pub(crate) mod webhooks;

use axum::http::Uri;

use crate::error::ApiError;

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
