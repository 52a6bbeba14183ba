//! The one error type of the HTTP layer. Client errors become RFC 9457 `problem+json` bodies
//! naming the field at fault; internal errors are logged with their cause and answered with a
//! bare 500 that says nothing about it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rappel_engine::EngineError;
use serde_json::{Value, json};

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read: malformed JSON, a bad query string, a bad header.
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("this path does not accept that method")]
    MethodNotAllowed,
    /// The request body did not arrive whole within the server's request timeout.
    #[error("the request body did not arrive in time; the connection is closed")]
    RequestTimeout,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but wrong: a field with a bad value, an unknown key, an unknown reference.
    #[error("{reason}")]
    Invalid {
        field: Option<String>,
        reason: String,
    },
    #[error("too many requests for this API key; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type's short name; its URI points at its description on `/v1/docs`.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "malformed-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::RequestTimeout => "request-timeout",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Invalid { .. } => "invalid-request",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Internal(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "Malformed request",
            ApiError::Unauthorized => "Missing or invalid API key",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::RequestTimeout => "Request timeout",
            ApiError::PayloadTooLarge { .. } => "Request body too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::Invalid { .. } => "Invalid request",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// The `problem+json` body (also what an `Idempotency-Key` stores for a refused request).
    pub(crate) fn problem(&self) -> Value {
        let detail = match self {
            ApiError::Internal(_) => {
                "The server could not complete the request. The cause was logged; nothing was \
                 changed unless the engine had committed it."
                    .to_string()
            }
            ApiError::Invalid {
                field: Some(field),
                reason,
            } => format!("{field}: {reason}"),
            other => other.to_string(),
        };
        let field = match self {
            ApiError::Invalid { field, .. } => field.clone(),
            _ => None,
        };
        let problem = Problem {
            kind: format!("/v1/docs#problem-{}", self.slug()),
            title: self.title(),
            status: self.status_code().as_u16(),
            detail,
            field,
        };
        serde_json::to_value(problem).unwrap_or_else(|_| json!({}))
    }
}

/// RFC 9457 problem details.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// A URI reference naming the kind of problem (its description is on /v1/docs).
    #[serde(rename = "type")]
    kind: String,
    /// The kind of problem, in words.
    title: &'static str,
    status: u16,
    /// What is wrong with this request.
    detail: String,
    /// The field at fault, as a path: `mobile`, `address.postal_code`, `events[2].start`,
    /// `Idempotency-Key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<String>,
}

/// The problem types, for the documentation page: (slug, status, title, when).
pub(crate) const PROBLEM_TYPES: &[(&str, u16, &str, &str)] = &[
    (
        "malformed-request",
        400,
        "Malformed request",
        "The body is not JSON, or a query string or header cannot be read.",
    ),
    (
        "unauthorized",
        401,
        "Missing or invalid API key",
        "Send `Authorization: Bearer <key>` with a key of the practice.",
    ),
    (
        "not-found",
        404,
        "Not found",
        "No such resource in this practice (another practice's resources are not found either).",
    ),
    (
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but not with this method.",
    ),
    (
        "request-timeout",
        408,
        "Request timeout",
        "The body did not arrive whole within the server's request timeout (60 s by default); the connection is closed.",
    ),
    (
        "payload-too-large",
        413,
        "Request body too large",
        "The body exceeds the server's limit (1 MiB by default); send events in smaller batches.",
    ),
    (
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "Bodies are JSON: send `Content-Type: application/json`.",
    ),
    (
        "invalid-request",
        422,
        "Invalid request",
        "The JSON is well-formed but a value is wrong; `field` names it (`mobile`, `events[2].start`, `address.postal_code`).",
    ),
    (
        "rate-limited",
        429,
        "Too many requests",
        "The API key sent more requests than its rate allows; wait `Retry-After` seconds.",
    ),
    (
        "internal-error",
        500,
        "Internal error",
        "Something failed on the server; the cause is in its logs.",
    ),
];

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error while answering a request");
        }
        let status = self.status_code();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            self.problem().to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"rappel\""),
                );
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} `{id}` not found"))
            }
            EngineError::Invalid { field, reason } => ApiError::Invalid {
                field: Some(field),
                reason,
            },
            EngineError::Store(cause) => ApiError::Internal(cause.to_string()),
        }
    }
}
