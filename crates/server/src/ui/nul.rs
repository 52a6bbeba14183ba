//! A NUL character (U+0000) in any field of a form is refused before any handler: PostgreSQL
//! stores none in text, so it would otherwise end in a 500 there, and no field of ours means one.
//! The JSON API refuses it the same way, in its body extractor.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::page_error;
use crate::AppState;

pub(super) async fn refuse_nul(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let urlencoded = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if matches!(*request.method(), Method::GET | Method::HEAD) || !urlencoded {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.config.body_limit).await else {
        return page_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Formulaire trop volumineux",
            "Le formulaire envoyé dépasse la taille acceptée.",
        );
    };
    if form_urlencoded::parse(&bytes).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return page_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Caractère refusé",
            "Un champ du formulaire contient un caractère nul, qu'aucun champ n'accepte. Rien \
             n'a été enregistré.",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
