//! `POST /v1/documents` (multipart upload of a PDF → `document.sent`), `GET /v1/documents/{id}`
//! (the document and what became of it) and `POST /v1/documents/{id}/resend-postal`.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rappel_engine::{DocumentDetails, PostalResend};

use utoipa::ToSchema;

use crate::AppState;
use crate::docs::params::DocumentId;
use crate::docs::responses::{
    BadRequest, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::error::ApiError;
use crate::extract::{PathId, Tenant};
use crate::validate;

/// How far the end-of-file marker may sit from the end: writers append a newline or a few
/// bytes of padding after `%%EOF`.
const EOF_WINDOW: usize = 1024;

/// Whether `bytes` look like a whole PDF: the `%PDF-` header and a `%%EOF` near the end. A
/// truncated upload fails the second test.
pub(crate) fn looks_like_pdf(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(EOF_WINDOW)..];
    bytes.starts_with(b"%PDF-") && tail.windows(5).any(|w| w == b"%%EOF")
}

// The upload's fields, as [`upload`] reads them from the multipart body.
/// The document and what it is.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Describes the form; `upload` reads it field by field.
struct UploadForm {
    /// The PDF.
    #[schema(value_type = String, content_media_type = "application/pdf")]
    file: Vec<u8>,
    /// The document's id in the practice software.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    id: String,
    /// The patient's id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    patient: String,
    /// Shown to the patient (1 to 200 characters, no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    title: String,
}

/// The document as stored, and what its `document.sent` did.
#[derive(serde::Serialize, ToSchema)]
struct DocumentUpload {
    document: DocumentDetails,
    /// `applied` and `unchanged` as `POST /v1/events` answers, and the event log's `seqs`.
    #[schema(value_type = Object)]
    ingest: rappel_engine::IngestReport,
}

#[utoipa::path(
    post,
    path = "/v1/documents",
    tag = "Documents",
    operation_id = "uploadDocument",
    summary = "Send a document (PDF) to a patient",
    description = "multipart/form-data with `file` (the PDF: it must start with `%PDF-` and end with `%%EOF`), `id`, `patient` and `title`. The file is kept encrypted (AES-256-GCM) outside the database, and `document.sent` is applied exactly as through `POST /v1/events`: the patient gets an email with a personal link that expires (30 days), never the document itself. The same file again answers 200 and changes nothing; another file under the same id is refused (422). A PDF whose streams decode to more than 64 MB together, or with more than 100,000 objects (a decompression bomb), is 422 naming `file`, and nothing is stored. Files over the configured limit (10 MiB by default) get 413.",
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored and sent.", body = DocumentUpload),
        (status = 200, description = "Already known: nothing changed.", body = DocumentUpload),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    request: Request,
) -> Result<Response, ApiError> {
    let limit = state.config.document_limit;
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the document as multipart/form-data with the fields file, id, patient and title"
                .into(),
        ));
    }
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::BadRequest(format!("the multipart body could not be read: {e}")))?;
    let (mut id, mut patient, mut title, mut file) = (None, None, None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "the multipart body could not be read: {}",
                    e.body_text()
                )));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if let Some(ct) = field.content_type()
                && !ct.eq_ignore_ascii_case("application/pdf")
                && !ct.eq_ignore_ascii_case("application/octet-stream")
            {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "file: expected application/pdf, got {ct}"
                )));
            }
            let mut field = field;
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > limit {
                            return Err(ApiError::PayloadTooLarge { limit });
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    Err(e) => {
                        return Err(ApiError::BadRequest(format!(
                            "the file could not be read: {}",
                            e.body_text()
                        )));
                    }
                }
            }
            file = Some(bytes);
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| ApiError::BadRequest(format!("{name}: {}", e.body_text())))?;
        match name.as_str() {
            "id" => id = Some(text),
            "patient" => patient = Some(text),
            "title" => title = Some(text),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown field; expected file, id, patient and title",
                ));
            }
        }
    }
    let id = id.ok_or_else(|| ApiError::invalid("id", "missing"))?;
    let patient = patient.ok_or_else(|| ApiError::invalid("patient", "missing"))?;
    let title = title.ok_or_else(|| ApiError::invalid("title", "missing"))?;
    let file = file.ok_or_else(|| ApiError::invalid("file", "missing"))?;
    validate::id(&id)
        .map_err(|_| ApiError::invalid("id", "1 to 128 characters, no control characters"))?;
    validate::id(&patient)
        .map_err(|_| ApiError::invalid("patient", "1 to 128 characters, no control characters"))?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "title",
            "1 to 200 characters, no control characters",
        ));
    }
    if !looks_like_pdf(&file) {
        return Err(ApiError::UnsupportedMediaType(
            "file: not a complete PDF (it must start with %PDF- and end with %%EOF)".into(),
        ));
    }
    let report = state
        .engine
        .upload_document(&practice, &id, &patient, title, &file)
        .await?;
    let status = if report.applied > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let details = state.engine.document_details(&practice, &id).await?;
    Ok((
        status,
        Json(DocumentUpload {
            document: details,
            ingest: report,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/documents/{id}",
    tag = "Documents",
    operation_id = "getDocument",
    summary = "A document and its delivery history",
    description = "The email's state, the consultation time (the first download through the patient's link), the stored file's size and SHA-256, and every message about the document (email, letters, inbox entries) as timeline entries.",
    params(DocumentId),
    responses(
        (status = 200, description = "The document.", body = DocumentDetails),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<Json<DocumentDetails>, ApiError> {
    Ok(Json(state.engine.document_details(&practice, &id).await?))
}

/// 202 when this request queued a letter; 200 with the letter already on its way (or already
/// sent to this address) when it did not: a paid letter is never posted twice by a retry.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/resend-postal",
    tag = "Documents",
    operation_id = "resendDocumentByPost",
    summary = "Send the document again, by post",
    description = "Queues a letter (`d:DOC/manual_postal/postal/ADDRESS`, ADDRESS naming the patient's postal address of the moment), not flagged as an automatic resend. It goes like any letter: to a French address on file, or not at all with the reason. A letter costs money, so the request is idempotent per document and address: while a letter of the document is on its way, or once one went to this address, the answer is that letter with 200 and `created: false`. Only a letter that failed or was not sent can be asked again; a corrected address makes a new one. The document's open to-verify entries are marked handled.",
    params(DocumentId),
    responses(
        (status = 202, description = "The queued letter (`created: true`).", body = PostalResend),
        (status = 200, description = "The letter already on its way or sent to this address (`created: false`); nothing new was queued.", body = PostalResend),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn resend_postal(
    State(state): State<AppState>,
    Tenant(practice): Tenant,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<PostalResend>), ApiError> {
    let resend = state.engine.resend_postal(&practice, &id).await?;
    let status = if resend.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(resend)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_needs_its_header_and_its_end_marker() {
        assert!(looks_like_pdf(b"%PDF-1.7\n...\n%%EOF\n"));
        assert!(!looks_like_pdf(b"%PDF-1.7\n... truncated"));
        assert!(!looks_like_pdf(b"<html>%%EOF"));
        let mut padded = b"%PDF-1.4\n%%EOF".to_vec();
        padded.extend(std::iter::repeat_n(b' ', 2000));
        assert!(!looks_like_pdf(&padded));
    }
}
