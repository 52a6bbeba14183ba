//! The patient's page behind a document link: `GET /d/{token}` asks for the birth date,
//! `POST /d/{token}` checks it and serves the PDF.
//!
//! The page is French, works on a phone, and carries no JavaScript and nothing from elsewhere
//! (a strict Content-Security-Policy says so). It reveals nothing about an unknown or expired
//! link: not the practice, not the title; and of an open link, only the practice's name until
//! the birth date is checked. It has no session, so there is nothing for a forged
//! request to ride on; the birth-date attempts are counted by the engine in the link itself.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use rappel_engine::{LinkAnswer, LinkState};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::PathText;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

#[utoipa::path(
    get,
    path = "/d/{token}",
    tag = "Documents",
    operation_id = "documentLinkPage",
    summary = "The patient's page: asks for the birth date",
    description = "French HTML, no JavaScript. 404 for an unknown link, 410 for an expired one, 429 while locked (5 wrong answers lock the link for an hour); none of them names the practice or the document.",
    params(("token" = String, Path, description = "The link's token (from the email).")),
    security(),
    responses(
        (status = 200, description = "The form.", content_type = "text/html"),
        (status = 404, description = "Unknown link.", content_type = "text/html"),
        (status = 410, description = "Expired link.", content_type = "text/html"),
        (status = 429, description = "Locked.", content_type = "text/html"),
    ),
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    PathText(token): PathText,
) -> Result<Response, ApiError> {
    Ok(match state.engine.document_link_state(&token).await? {
        LinkState::Open { practice } => html(StatusCode::OK, &form_page(&practice, None)),
        LinkState::Locked { until } => html(StatusCode::TOO_MANY_REQUESTS, &locked_page(&until)),
        LinkState::Expired => html(StatusCode::GONE, &gone_page()),
        LinkState::Unknown => html(StatusCode::NOT_FOUND, &gone_page()),
    })
}

#[utoipa::path(
    post,
    path = "/d/{token}",
    tag = "Documents",
    operation_id = "openDocumentLink",
    summary = "Check the birth date and serve the PDF",
    description = "Form fields `birth_date` (AAAA-MM-JJ, from the date picker) or `birth_date_text` (JJ/MM/AAAA). Right: the PDF (`inline`, `no-store`); the first download records `document.consulted`. Wrong: the form again (422) with the attempts left.",
    params(("token" = String, Path, description = "The link's token (from the email).")),
    request_body(content = inline(crate::docs::schemas::BirthDateForm), content_type = "application/x-www-form-urlencoded"),
    security(),
    responses(
        (status = 200, description = "The document.", content_type = "application/pdf"),
        (status = 422, description = "Wrong or unreadable date: the form again.", content_type = "text/html"),
        (status = 404, description = "Unknown link.", content_type = "text/html"),
        (status = 410, description = "Expired link.", content_type = "text/html"),
        (status = 429, description = "Locked.", content_type = "text/html"),
    ),
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    PathText(token): PathText,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(birth_date) = birth_date(&body) else {
        // An unreadable date is not an attempt: it costs the patient nothing.
        return Ok(match state.engine.document_link_state(&token).await? {
            LinkState::Open { practice } => html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form_page(
                    &practice,
                    Some(
                        "Nous n’avons pas pu lire cette date. Saisissez-la sous la forme JJ/MM/AAAA, par exemple 04/07/1985.",
                    ),
                ),
            ),
            LinkState::Locked { until } => {
                html(StatusCode::TOO_MANY_REQUESTS, &locked_page(&until))
            }
            LinkState::Expired => html(StatusCode::GONE, &gone_page()),
            LinkState::Unknown => html(StatusCode::NOT_FOUND, &gone_page()),
        });
    };
    Ok(
        match state.engine.open_document_link(&token, birth_date).await? {
            LinkAnswer::Document { pdf, .. } => {
                let mut response = (StatusCode::OK, pdf).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pdf"),
                );
                headers.insert(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("inline; filename=\"document.pdf\""),
                );
                protect(headers);
                response
            }
            LinkAnswer::Wrong { remaining } => {
                let message = if remaining == 1 {
                    "La date de naissance ne correspond pas. Il vous reste 1 essai avant le blocage temporaire du lien.".to_string()
                } else {
                    format!(
                        "La date de naissance ne correspond pas. Il vous reste {remaining} essais avant le blocage temporaire du lien."
                    )
                };
                match state.engine.document_link_state(&token).await? {
                    LinkState::Open { practice } => html(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &form_page(&practice, Some(&message)),
                    ),
                    _ => html(StatusCode::NOT_FOUND, &gone_page()),
                }
            }
            LinkAnswer::Locked { until } => {
                html(StatusCode::TOO_MANY_REQUESTS, &locked_page(&until))
            }
            LinkAnswer::Expired => html(StatusCode::GONE, &gone_page()),
            LinkAnswer::Unknown => html(StatusCode::NOT_FOUND, &gone_page()),
        },
    )
}

/// The birth date from the form: the date picker's `AAAA-MM-JJ`, else the text field's
/// `JJ/MM/AAAA` (also with `.` or `-`).
fn birth_date(body: &[u8]) -> Option<Date> {
    let fields = form_fields(body);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(value) = get("birth_date")
        && let Ok(date) = Date::strptime("%Y-%m-%d", &value)
    {
        return Some(date);
    }
    let text = get("birth_date_text")?.replace(['.', '-', ' '], "/");
    Date::strptime("%d/%m/%Y", &text).ok()
}

/// `application/x-www-form-urlencoded` pairs.
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |b: u8| (b as char).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(high), Some(low)) => {
                            out.push((high * 16 + low) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn protect(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The token is in the URL: no other site may see it in a Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

pub(crate) fn html(status: StatusCode, body: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(headers);
    response
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:0;background:#f4f6f8;color:#1d2733}main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.35rem;margin:0 0 .5rem}p{line-height:1.5}.card{background:#fff;border-radius:.75rem;\
padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}label{display:block;font-weight:600;\
margin:1rem 0 .35rem}input{font-size:1.1rem;width:100%;box-sizing:border-box;padding:.6rem;\
border:1px solid #9aa5b1;border-radius:.5rem}button{margin-top:1.25rem;width:100%;font-size:1.1rem;\
padding:.8rem;border:0;border-radius:.5rem;background:#1f5fbf;color:#fff}\
.error{background:#fdecea;color:#8a1c12;padding:.75rem;border-radius:.5rem}\
.hint{color:#52606d;font-size:.9rem}";

pub(crate) fn layout(title: &str, content: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style></head>\
<body><main><div class=\"card\">{content}</div></main></body></html>",
        escape(title)
    )
}

/// The birth-date form. It names the practice (so the patient knows who sent the link) and
/// nothing about the document: no title, practitioner or date before the check.
fn form_page(practice: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    layout(
        "Votre document",
        &format!(
            "<h1>Votre document</h1>\
<p>{practice} vous a transmis un document.</p>\
<p>Pour le consulter, confirmez votre date de naissance.</p>{error}\
<form method=\"post\">\
<label for=\"birth_date\">Date de naissance</label>\
<input type=\"date\" id=\"birth_date\" name=\"birth_date\" autocomplete=\"bday\">\
<label for=\"birth_date_text\">ou saisissez-la (JJ/MM/AAAA)</label>\
<input type=\"text\" id=\"birth_date_text\" name=\"birth_date_text\" inputmode=\"numeric\" \
placeholder=\"JJ/MM/AAAA\" pattern=\"[0-9]{{2}}/[0-9]{{2}}/[0-9]{{4}}\" autocomplete=\"off\">\
<button type=\"submit\">Consulter le document</button></form>\
<p class=\"hint\">Après 5 essais incorrects, le lien est bloqué pendant une heure.</p>",
            practice = escape(practice),
        ),
    )
}

fn locked_page(until: &str) -> String {
    layout(
        "Lien temporairement bloqué",
        &format!(
            "<h1>Lien temporairement bloqué</h1>\
<p>Trop de dates de naissance incorrectes ont été saisies. Par sécurité, ce lien est bloqué \
jusqu’au {}.</p><p>Vous pourrez réessayer ensuite, ou contacter votre cabinet.</p>",
            escape(until)
        ),
    )
}

fn gone_page() -> String {
    layout(
        "Lien indisponible",
        "<h1>Lien indisponible</h1>\
<p>Ce lien n’est pas ou plus valide. Les liens vers les documents expirent après un certain \
temps.</p><p>Si vous attendiez un document, contactez votre cabinet : il pourra vous le \
renvoyer.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_birth_date_comes_from_the_picker_or_the_text_field() {
        let d = jiff::civil::date(1985, 7, 4);
        assert_eq!(
            birth_date(b"birth_date=1985-07-04&birth_date_text="),
            Some(d)
        );
        assert_eq!(
            birth_date(b"birth_date=&birth_date_text=04%2F07%2F1985"),
            Some(d)
        );
        assert_eq!(birth_date(b"birth_date_text=04.07.1985"), Some(d));
        assert_eq!(birth_date(b"birth_date_text=31%2F02%2F1985"), None);
        assert_eq!(birth_date(b""), None);
    }

    #[test]
    fn the_page_escapes_what_the_practice_wrote() {
        assert!(form_page("Cabinet <b>", None).contains("Cabinet &lt;b&gt;"));
    }
}
