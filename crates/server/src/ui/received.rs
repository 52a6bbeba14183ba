//! « Messages reçus »: what patients wrote back by SMS that a person must read (two-way SMS,
//! issue 16), handled like the to-verify box; and the practice's button that lifts a patient's
//! SMS opt-out from the patient page.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{
    Nav, Ui, encode_query, engine_error_page, flash, format, html_page, layout, see_other_with,
};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct BoxQuery {
    /// `1`: show the handled messages (and the keywords) too.
    traitees: Option<String>,
    ok: Option<String>,
}

/// What a keyword did, in French.
fn keyword_label(keyword: &str) -> &'static str {
    match keyword {
        "confirm" => "OUI : confirmation du rendez-vous",
        "cancel" => "ANNULER : demande d'annulation",
        "stop" => "STOP : arrêt des SMS",
        "start" => "START : reprise des SMS",
        _ => "mot-clé",
    }
}

/// `GET /messages-recus`.
pub(crate) async fn page(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<BoxQuery>,
) -> Response {
    let with_handled = q.traitees.as_deref() == Some("1");
    let messages = match state
        .engine
        .received_messages(ui.practice_id(), with_handled)
        .await
    {
        Ok(messages) => messages,
        Err(e) => return engine_error_page(&e),
    };
    let tz = &ui.practice.tz;
    let content = html! {
        (flash(q.ok.as_deref()))
        p { "Les SMS que les patients ont envoyés en réponse et qu'une personne doit lire. Les mots-clés (OUI, ANNULER, STOP, START) sont traités automatiquement ; un OUI ou un ANNULER qui n'a pas pu aboutir (aucun rendez-vous à venir, trop tard pour annuler) reste ici pour que le cabinet rappelle le patient." }
        p {
            @if with_handled {
                a href="/messages-recus" { "Masquer les messages traités" }
            } @else {
                a href="/messages-recus?traitees=1" { "Afficher aussi les messages traités et les mots-clés" }
            }
        }
        @if messages.is_empty() {
            p.muted { "Aucun message à lire." }
        }
        @for m in &messages {
            article.entry aria-labelledby={"m-" (m.id)} {
                h2 #{"m-" (m.id)} {
                    "Message de "
                    (m.patient_name.as_deref().unwrap_or(&m.patient))
                }
                p.muted { "Reçu le " (format::instant(m.received_at, tz)) }
                dl.facts {
                    dt { "Patient" }
                    dd { a href={"/patients/" (encode_query(&m.patient))} { (m.patient_name.as_deref().unwrap_or(&m.patient)) } }
                    dt { "Rendez-vous concerné" }
                    dd {
                        @match (&m.appointment, m.appointment_start) {
                            (Some(id), Some(start)) => {
                                a href={"/rendez-vous/" (encode_query(id))} { (format::instant(start, tz)) }
                            }
                            _ => span.muted { "aucun rendez-vous à venir" },
                        }
                    }
                    @if let Some(keyword) = &m.keyword {
                        dt { "Mot-clé" } dd { (keyword_label(keyword)) }
                    }
                }
                blockquote { (m.text) }
                @if let Some(at) = m.handled_at {
                    p { span.badge.delivered { "Traité" } " le " (format::instant(at, tz)) }
                } @else {
                    form method="post" action={"/messages-recus/" (encode_query(&m.id)) "/traiter"} {
                        (ui.csrf_field())
                        button.secondary type="submit" { "Marquer comme traité" }
                    }
                }
            }
        }
    };
    html_page(layout(&ui, Nav::Received, "Messages reçus", content))
}

/// `POST /messages-recus/{id}/traiter`.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    match state
        .engine
        .resolve_received_message(ui.practice_id(), &id)
        .await
    {
        Ok(_) => see_other_with("/messages-recus", "message-traite"),
        Err(e) => engine_error_page(&e),
    }
}

/// `POST /patients/{id}/sms-reactiver`: the practice lifts the patient's SMS opt-out (the
/// patient asked at the desk or by phone).
pub(crate) async fn lift_opt_out(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    match state
        .engine
        .lift_sms_opt_out(ui.practice_id(), &id, "ui")
        .await
    {
        Ok(_) => see_other_with(&format!("/patients/{}", encode_query(&id)), "sms-reactives"),
        Err(e) => engine_error_page(&e),
    }
}
