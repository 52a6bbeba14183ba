//! Extractors and the authentication middleware. Each turns axum's own rejections into
//! [`ApiError`], so every failure, even one in reading the request, is `problem+json`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rappel_engine::api_key_parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::{AppState, validate};

/// The practice the request's API key belongs to. Only the authentication middleware
/// creates it, so a handler that takes a `Tenant` cannot forget to scope its work.
#[derive(Clone, Debug)]
pub(crate) struct Tenant(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Tenant, ApiError> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// `Authorization: Bearer <key>` → the practice, then the key's rate limit.
pub(crate) async fn require_api_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = bearer(request.headers()).ok_or(ApiError::Unauthorized)?;
    let practice = state
        .engine
        .authenticate(key)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // The bucket is taken only after the key proved valid: someone who merely knows a key's id
    // cannot spend that key's allowance with wrong secrets.
    let bucket = api_key_parts(key)
        .map(|(practice, key_id, _)| format!("{practice}/{key_id}"))
        .unwrap_or_default();
    state
        .limiter
        .check(&bucket)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    request.extensions_mut().insert(Tenant(practice));
    Ok(next.run(request).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A JSON request body: the exact bytes (hashed for idempotency) and the parsed value.
/// Malformed JSON is 400; a body over the limit is 413; a value of the wrong shape is left to
/// [`from_json`], which answers 422 naming the field.
pub(crate) struct JsonBody {
    pub bytes: Bytes,
    pub value: Value,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonBody, ApiError> {
        if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
            let text = content_type.to_str().unwrap_or_default();
            let essence = text.split(';').next().unwrap_or_default().trim();
            let json = essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json");
            if !json {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "request bodies are JSON; send `Content-Type: application/json` (got `{essence}`)"
                )));
            }
        }
        // A batch of events names its items `events[2]`, as the engine's errors do.
        let root = if request.uri().path().ends_with("/events") {
            "events"
        } else {
            ""
        };
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_rejection(rejection, state.config.body_limit))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body is empty; a JSON value is expected".into(),
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        let root = if value.is_array() { root } else { "" };
        if let Some(field) = nul_at(&value, root.to_string()) {
            return Err(ApiError::Invalid {
                field: Some(field).filter(|f| !f.is_empty() && f != root),
                reason: "a string holds a NUL character (U+0000), which no field accepts".into(),
            });
        }
        Ok(JsonBody { bytes, value })
    }
}

/// The path (`events[2].patient`, as [`from_json`] names fields) of the first string or key
/// that holds a NUL character. PostgreSQL stores no NUL in text nor in jsonb, and no field of
/// ours means one, so every JSON body is refused here, before any handler, on both stores.
fn nul_at(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                // The name is shown escaped: the answer (kept for an idempotency key) must be
                // storable itself.
                Some(join(&path, &key.replace('\0', "\\u0000")))
            } else {
                nul_at(item, join(&path, key))
            }
        }),
        _ => None,
    }
}

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {rejection}"))
    }
}

/// Deserializes a JSON value; a mismatch is 422 with the path of the field at fault
/// (`address.lines[1]`), prefixed by `prefix` (`events[2].`).
pub(crate) fn from_json<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.into_inner().to_string();
        let mut field = if path == "." { String::new() } else { path };
        // A missing field is reported at its parent: name the field itself.
        if let Some(missing) = quoted_after(&reason, "missing field `") {
            field = join(&field, missing);
        }
        let field = format!("{prefix}{field}");
        let field = field.trim_end_matches('.').to_string();
        ApiError::Invalid {
            field: (!field.is_empty()).then_some(field),
            reason,
        }
    })
}

/// The text between `marker` and the next backquote, e.g. the name in "missing field `start`".
pub(crate) fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    Some(&rest[..rest.find('`')?])
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A resource id from the path, checked: 1 to 128 characters, no control characters.
pub(crate) struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId, ApiError> {
        let PathText(id) = PathText::from_request_parts(parts, state).await?;
        validate::id(&id)?;
        Ok(PathId(id))
    }
}

/// The one parameter of the path, as text. Invalid percent-encoding (or bytes that are not
/// UTF-8) is a 400 problem like every other error; axum's own rejection is plain text.
pub(crate) struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathText, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("the path could not be read: {e}")))?;
        Ok(PathText(text))
    }
}

/// The query string as (name, value) pairs, so that handlers can name a bad parameter.
pub(crate) struct QueryParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<QueryParams, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!("the query string could not be read: {e}"))
            })?;
        Ok(QueryParams(pairs))
    }
}

impl QueryParams {
    /// Refuses parameters outside `known` (a typo would otherwise silently widen a filter)
    /// and repeated ones.
    pub fn check(&self, known: &[&str]) -> Result<(), ApiError> {
        for (i, (name, _)) in self.0.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    name.clone(),
                    format!("unknown query parameter (known: {})", known.join(", ")),
                ));
            }
            if self.0[..i].iter().any(|(other, _)| other == name) {
                return Err(ApiError::invalid(
                    name.clone(),
                    "this query parameter is given more than once",
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
