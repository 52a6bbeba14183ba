//! The patient's page behind a document link: `GET /d/{token}` asks for the birth date,
//! `POST /d/{token}` checks it and serves the PDF.
//!
//! The page (frame and headers in `patient_page`) reveals nothing about an unknown or expired
//! link: not the practice, not the title; and of an open link, only the practice's name until
//! the birth date is checked. It has no session, so there is nothing for a forged
//! request to ride on; the birth-date attempts are counted by the engine in the link itself.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::{Markup, html};
use rappel_engine::{LinkAnswer, LinkState};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::PathText;
use crate::routes::patient_page::{html, layout, protect};

/// The form's two ways of giving the date: the date picker, or the text field of a browser
/// without one. Absent fields are empty.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct BirthDateForm {
    birth_date: String,
    birth_date_text: String,
}

impl BirthDateForm {
    /// The picker's `AAAA-MM-JJ`, else the text field's `JJ/MM/AAAA` (also with `.` or `-`).
    fn date(&self) -> Option<Date> {
        let picked = self.birth_date.trim();
        if !picked.is_empty()
            && let Ok(date) = Date::strptime("%Y-%m-%d", picked)
        {
            return Some(date);
        }
        let text = self.birth_date_text.trim().replace(['.', '-', ' '], "/");
        Date::strptime("%d/%m/%Y", &text).ok()
    }
}

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
        LinkState::Open { practice } => html(StatusCode::OK, form_page(&practice, None)),
        LinkState::Locked { until } => html(StatusCode::TOO_MANY_REQUESTS, locked_page(&until)),
        LinkState::Expired => html(StatusCode::GONE, gone_page()),
        LinkState::Unknown => html(StatusCode::NOT_FOUND, gone_page()),
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
    form: Result<Form<BirthDateForm>, FormRejection>,
) -> Result<Response, ApiError> {
    // A body that is not a form reads as an empty one: the page says it could not read a date.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let Some(birth_date) = form.date() else {
        // An unreadable date is not an attempt: it costs the patient nothing.
        return Ok(match state.engine.document_link_state(&token).await? {
            LinkState::Open { practice } => html(
                StatusCode::UNPROCESSABLE_ENTITY,
                form_page(
                    &practice,
                    Some(
                        "Nous n’avons pas pu lire cette date. Saisissez-la sous la forme JJ/MM/AAAA, par exemple 04/07/1985.",
                    ),
                ),
            ),
            LinkState::Locked { until } => html(StatusCode::TOO_MANY_REQUESTS, locked_page(&until)),
            LinkState::Expired => html(StatusCode::GONE, gone_page()),
            LinkState::Unknown => html(StatusCode::NOT_FOUND, gone_page()),
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
                        form_page(&practice, Some(&message)),
                    ),
                    _ => html(StatusCode::NOT_FOUND, gone_page()),
                }
            }
            LinkAnswer::Locked { until } => {
                html(StatusCode::TOO_MANY_REQUESTS, locked_page(&until))
            }
            LinkAnswer::Expired => html(StatusCode::GONE, gone_page()),
            LinkAnswer::Unknown => html(StatusCode::NOT_FOUND, gone_page()),
        },
    )
}

/// The birth-date form. It names the practice (so the patient knows who sent the link) and
/// nothing about the document: no title, practitioner or date before the check.
fn form_page(practice: &str, error: Option<&str>) -> Markup {
    layout(
        "Votre document",
        html! {
            h1 { "Votre document" }
            p { (practice) " vous a transmis un document." }
            p { "Pour le consulter, confirmez votre date de naissance." }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" {
                label for="birth_date" { "Date de naissance" }
                input type="date" id="birth_date" name="birth_date" autocomplete="bday";
                label for="birth_date_text" { "ou saisissez-la (JJ/MM/AAAA)" }
                input type="text" id="birth_date_text" name="birth_date_text" inputmode="numeric"
                    placeholder="JJ/MM/AAAA" pattern="[0-9]{2}/[0-9]{2}/[0-9]{4}" autocomplete="off";
                button type="submit" { "Consulter le document" }
            }
            p.hint { "Après 5 essais incorrects, le lien est bloqué pendant une heure." }
        },
    )
}

fn locked_page(until: &str) -> Markup {
    layout(
        "Lien temporairement bloqué",
        html! {
            h1 { "Lien temporairement bloqué" }
            p {
                "Trop de dates de naissance incorrectes ont été saisies. Par sécurité, ce lien est \
                 bloqué jusqu’au " (until) "."
            }
            p { "Vous pourrez réessayer ensuite, ou contacter votre cabinet." }
        },
    )
}

fn gone_page() -> Markup {
    layout(
        "Lien indisponible",
        html! {
            h1 { "Lien indisponible" }
            p {
                "Ce lien n’est pas ou plus valide. Les liens vers les documents expirent après un \
                 certain temps."
            }
            p {
                "Si vous attendiez un document, contactez votre cabinet : il pourra vous le \
                 renvoyer."
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date_of(body: &str) -> Option<Date> {
        serde_urlencoded::from_str::<BirthDateForm>(body)
            .ok()?
            .date()
    }

    #[test]
    fn the_birth_date_comes_from_the_picker_or_the_text_field() {
        let d = jiff::civil::date(1985, 7, 4);
        assert_eq!(date_of("birth_date=1985-07-04&birth_date_text="), Some(d));
        assert_eq!(
            date_of("birth_date=&birth_date_text=04%2F07%2F1985"),
            Some(d)
        );
        assert_eq!(date_of("birth_date_text=04.07.1985"), Some(d));
        assert_eq!(date_of("birth_date_text=31%2F02%2F1985"), None);
        assert_eq!(date_of(""), None);
    }

    #[test]
    fn the_page_escapes_what_the_practice_wrote() {
        let page = form_page("Cabinet <b>", None).into_string();
        assert!(page.contains("Cabinet &lt;b&gt;"), "{page}");
    }
}
