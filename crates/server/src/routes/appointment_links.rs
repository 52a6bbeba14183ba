//! The patient's appointment page behind a link of a reminder or a confirmation (issue 16):
//! `GET /r/{token}` shows the appointment and the patient's choices, `POST /r/{token}` confirms
//! or cancels through the engine (`rappel_engine::answers`).
//!
//! Like the document page (`/d/`; frame and headers in `patient_page`), it carries no
//! JavaScript and nothing from elsewhere. A GET never changes anything (mail scanners open
//! links), so the email's two buttons open this page on one form. It has no session, so a
//! forged request has nothing to ride on but the token itself: each form carries the token (a
//! cross-site form cannot know it without already holding the capability), and a request whose
//! `Origin` is another site's is refused. Unknown, expired, switched-off and foreign tokens all
//! get the same page and status: the page is no oracle.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use rappel_engine::{AppointmentView, LinkAction, LinkPage, PatientAnswer};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{PathText, QueryParams};
use crate::routes::patient_page::{html, layout};

/// Which form the page opens on: the email's « Confirmer » and « Annuler » buttons.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Focus {
    Both,
    Confirm,
    Cancel,
}

/// The page's forms: the page's own token and the chosen action.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AnswerForm {
    token: Option<String>,
    action: Option<String>,
}

#[utoipa::path(
    get,
    path = "/r/{token}",
    tag = "Follow-up",
    operation_id = "appointmentLinkPage",
    summary = "The patient's appointment page: confirm or cancel",
    description = "French HTML for a phone, no JavaScript, the headers of `/d/`. Shows the date, time, practitioner and place (the motive only with `show_motive_in_sms`), a « Confirmer ma présence » form and, until `patient_cancel_cutoff_hours` before the start, an « Annuler le rendez-vous » form (after it, the practice's `practice_phone`). `?choix=confirmer` or `?choix=annuler` (the email's buttons) opens it on one form. A cancelled, moved or past appointment says what happened. An unknown, expired (at the start the message announced) or switched-off (`appointment_links = false`) link is one and the same 404 page, naming nothing. A GET never changes anything.",
    params(
        ("token" = String, Path, description = "The link's token (16 characters, from a reminder or a confirmation)."),
        ("choix" = Option<crate::docs::schemas::Choice>, Query, description = "The form the page opens on."),
    ),
    security(),
    responses(
        (status = 200, description = "The appointment, or what happened to it.", content_type = "text/html"),
        (status = 404, description = "Unknown, expired or switched-off link.", content_type = "text/html"),
    ),
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    PathText(token): PathText,
    QueryParams(query): QueryParams,
) -> Result<Response, ApiError> {
    let focus = match query
        .iter()
        .find(|(k, _)| k == "choix")
        .map(|(_, v)| v.as_str())
    {
        Some("confirmer") => Focus::Confirm,
        Some("annuler") => Focus::Cancel,
        _ => Focus::Both,
    };
    let page = state.engine.appointment_link_page(&token).await?;
    Ok(render(&page, &token, focus))
}

#[utoipa::path(
    post,
    path = "/r/{token}",
    tag = "Follow-up",
    operation_id = "answerAppointmentLink",
    summary = "Confirm or cancel the appointment",
    description = "Form fields `token` (the page's own: the form carries it, so another site cannot forge the request without the link itself) and `action` (`confirm` or `cancel`); a foreign `Origin` is refused. A confirmation is recorded (`appointment.confirmed_by_patient`); a cancellation before the cutoff applies `appointment.cancelled` by the patient (`appointment.cancel_requested`). Twice is once.",
    params(("token" = String, Path, description = "The link's token (16 characters, from a reminder or a confirmation).")),
    request_body(content = inline(crate::docs::schemas::AnswerForm), content_type = "application/x-www-form-urlencoded"),
    security(),
    responses(
        (status = 200, description = "Done, or already done, or what happened to the appointment.", content_type = "text/html"),
        (status = 403, description = "The form does not carry the page's token, or comes from another site.", content_type = "text/html"),
        (status = 404, description = "Unknown, expired or switched-off link.", content_type = "text/html"),
        (status = 409, description = "Too late to cancel online: the page gives the practice's telephone.", content_type = "text/html"),
    ),
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    PathText(token): PathText,
    headers: HeaderMap,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Ok(refused());
    }
    // A body that is not the page's form carries no token: refused below.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    // The form must carry the very token of the page it was on.
    if form.token.as_deref() != Some(token.as_str()) {
        return Ok(refused());
    }
    let action = match form.action.as_deref() {
        Some("confirm") => LinkAction::Confirm,
        Some("cancel") => LinkAction::Cancel,
        _ => {
            let page = state.engine.appointment_link_page(&token).await?;
            return Ok(render(&page, &token, Focus::Both));
        }
    };
    let page = state.engine.answer_by_link(&token, action).await?;
    Ok(render(&page, &token, Focus::Both))
}

/// A request from another site's page is refused; browsers send `Origin` on every POST, and a
/// request without one (a script of the patient's own) cannot be a cross-site forgery.
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return true;
    };
    let origin = origin.to_str().unwrap_or("");
    let host = host.to_str().unwrap_or("");
    origin.split_once("://").map(|(_, h)| h) == Some(host)
}

fn refused() -> Response {
    html(
        StatusCode::FORBIDDEN,
        layout(
            "Demande refusée",
            html! {
                h1 { "Demande refusée" }
                p {
                    "Cette demande ne vient pas de la page de votre rendez-vous. Ouvrez à nouveau \
                     le lien reçu par email ou par SMS."
                }
            },
        ),
    )
}

fn render(page: &LinkPage, token: &str, focus: Focus) -> Response {
    let (status, title, body) = match page {
        LinkPage::Open(view) => {
            let title = match focus {
                Focus::Confirm => "Confirmer votre présence",
                Focus::Cancel => "Annuler votre rendez-vous",
                Focus::Both => "Votre rendez-vous",
            };
            let confirmed = view.answer == Some(PatientAnswer::Confirmed);
            let body = html! {
                (details(view))
                @if confirmed {
                    p.ok { "Vous avez confirmé votre présence. Merci." }
                }
                @if focus != Focus::Cancel && !confirmed {
                    (form(token, "confirm", "Confirmer ma présence", None))
                }
                @if focus != Focus::Confirm {
                    (cancel_part(view, token))
                }
                @if focus != Focus::Both {
                    p.hint { a href={ "/r/" (token) } { "Voir toutes les possibilités" } }
                }
            };
            (StatusCode::OK, title, body)
        }
        LinkPage::Answered {
            view,
            answer,
            already,
        } => {
            let said = match (answer, already) {
                (PatientAnswer::Confirmed, false) => {
                    "Merci, votre présence est confirmée. Le cabinet en est informé."
                }
                (PatientAnswer::Confirmed, true) => "Vous aviez déjà confirmé votre présence.",
                (PatientAnswer::Cancelled, false) => {
                    "Votre rendez-vous est annulé. Le cabinet en est informé et l’horaire est libéré pour un autre patient."
                }
                (PatientAnswer::Cancelled, true) => "Ce rendez-vous était déjà annulé.",
            };
            let body = html! {
                p.ok role="status" { (said) }
                (details(view))
                @if *answer == PatientAnswer::Confirmed {
                    (cancel_part(view, token))
                }
            };
            let title = match answer {
                PatientAnswer::Confirmed => "Présence confirmée",
                PatientAnswer::Cancelled => "Rendez-vous annulé",
            };
            (StatusCode::OK, title, body)
        }
        LinkPage::TooLate(view) => (
            StatusCode::CONFLICT,
            "Trop tard pour annuler en ligne",
            html! { (details(view)) (too_late(view)) },
        ),
        LinkPage::NoLongerBooked {
            practice,
            by_patient,
            phone,
        } => {
            let said = if *by_patient {
                "Ce rendez-vous a été annulé à votre demande."
            } else {
                "Ce rendez-vous a été annulé par le cabinet."
            };
            (
                StatusCode::OK,
                "Rendez-vous annulé",
                html! {
                    p.hint { (practice) }
                    p { (said) }
                    (call(phone.as_deref(), "Pour prendre un autre rendez-vous, appelez le cabinet"))
                },
            )
        }
        LinkPage::Moved {
            practice,
            date_text,
            time_text,
            phone,
        } => (
            StatusCode::OK,
            "Rendez-vous déplacé",
            html! {
                p.hint { (practice) }
                p {
                    "Ce rendez-vous a été déplacé au "
                    strong { (date_text) " à " (time_text) }
                    ". Le message qui vous a été envoyé pour ce nouvel horaire contient un nouveau lien."
                }
                (call(phone.as_deref(), "Pour toute question, appelez le cabinet"))
            },
        ),
        LinkPage::Past { practice } => (
            StatusCode::OK,
            "Rendez-vous passé",
            html! {
                p.hint { (practice) }
                p {
                    "Ce rendez-vous a déjà eu lieu ou a commencé : il ne peut plus être confirmé \
                     ni annulé en ligne."
                }
            },
        ),
        LinkPage::Unknown => (
            StatusCode::NOT_FOUND,
            "Lien indisponible",
            html! {
                p {
                    "Ce lien n’est pas ou plus valide. Les liens des rappels cessent de \
                     fonctionner à l’heure du rendez-vous."
                }
                p { "Pour toute question sur votre rendez-vous, contactez votre cabinet." }
            },
        ),
    };
    html(status, layout(title, html! { h1 { (title) } (body) }))
}

/// Date, time, practitioner, place; the motive only when the practice shows motives.
fn details(view: &AppointmentView) -> Markup {
    html! {
        p.hint { (view.practice) }
        dl {
            dt { "Date" } dd { (view.date_text) }
            dt { "Heure" } dd { (view.time_text) }
            @if let Some(p) = &view.practitioner { dt { "Avec" } dd { (p) } }
            @if let Some(l) = &view.location { dt { "Lieu" } dd { (l) } }
            @if let Some(m) = &view.motive { dt { "Motif" } dd { (m) } }
        }
    }
}

fn form(token: &str, action: &str, label: &str, class: Option<&str>) -> Markup {
    html! {
        form method="post" {
            input type="hidden" name="token" value=(token);
            input type="hidden" name="action" value=(action);
            button type="submit" class=[class] { (label) }
        }
    }
}

fn cancel_part(view: &AppointmentView, token: &str) -> Markup {
    if view.can_cancel {
        html! {
            (form(token, "cancel", "Annuler le rendez-vous", Some("secondary")))
            p.hint {
                "Vous pouvez annuler en ligne jusqu’à " (hours(view.cutoff_hours))
                " avant le rendez-vous. L’horaire sera proposé à un autre patient."
            }
        }
    } else {
        too_late(view)
    }
}

fn too_late(view: &AppointmentView) -> Markup {
    html! {
        p {
            "Il est trop tard pour annuler en ligne : l’annulation n’est possible que jusqu’à "
            (hours(view.cutoff_hours)) " avant le rendez-vous."
        }
        (call(view.phone.as_deref(), "Pour annuler, appelez le cabinet"))
    }
}

fn hours(n: i64) -> String {
    if n == 1 {
        "1 heure".into()
    } else {
        format!("{n} heures")
    }
}

/// « appelez le cabinet : 01 23 45 67 89 » as a `tel:` link, or « contactez le cabinet ».
fn call(phone: Option<&str>, lead: &str) -> Markup {
    match phone {
        Some(phone) => {
            let dial: String = phone
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            html! { p { (lead) " : " a.tel href={ "tel:" (dial) } { (phone) } } }
        }
        None => html! { p { (lead) "." } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_is_a_tel_link_and_escaped() {
        let out = call(Some("01 23 <45>"), "Appelez").into_string();
        assert!(out.contains("href=\"tel:012345\""), "{out}");
        assert!(out.contains("01 23 &lt;45&gt;"), "{out}");
        assert_eq!(call(None, "Appelez").into_string(), "<p>Appelez.</p>");
    }

    #[test]
    fn a_post_from_another_site_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "rappel.example".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "https://rappel.example".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&headers));
    }
}
