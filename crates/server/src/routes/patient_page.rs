//! What the patient's pages share (`/d/` for a document, `/r/` for an appointment): the frame,
//! the style, and the headers that keep them private.
//!
//! They are French, made for a phone, and carry no JavaScript and nothing from elsewhere (a
//! strict Content-Security-Policy says so). They are rendered with maud like the web interface,
//! so every text a practice or a patient wrote is escaped by the template itself.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:0;background:#f4f6f8;color:#1d2733}main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.35rem;margin:0 0 .5rem}p{line-height:1.5}.card{background:#fff;border-radius:.75rem;\
padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}label{display:block;font-weight:600;\
margin:1rem 0 .35rem}input{font-size:1.1rem;width:100%;box-sizing:border-box;padding:.6rem;\
border:1px solid #9aa5b1;border-radius:.5rem}button{margin-top:1.25rem;width:100%;font-size:1.1rem;\
padding:.8rem;border:0;border-radius:.5rem;background:#1f5fbf;color:#fff}\
.error{background:#fdecea;color:#8a1c12;padding:.75rem;border-radius:.5rem}\
.hint{color:#52606d;font-size:.9rem}dl{margin:1rem 0}dt{font-weight:600;color:#52606d;\
font-size:.9rem}dd{margin:0 0 .6rem}.ok{background:#e3f4e8;color:#14532d;padding:.75rem;\
border-radius:.5rem}.secondary{background:#fff;color:#8a1c12;border:1px solid #8a1c12}\
a.tel{font-size:1.2rem;font-weight:600}";

/// A whole page: `content` inside the card.
pub(crate) fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { div.card { (content) } } }
        }
    }
}

/// A page as the response, with the private headers.
pub(crate) fn html(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(headers);
    response
}

/// Not stored, not framed, not sniffed, nothing loaded from elsewhere, no Referer: the link's
/// token is in the URL and is the only credential.
pub(crate) fn protect(headers: &mut HeaderMap) {
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
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
