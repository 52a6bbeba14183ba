//! À vérifier (what could not be sent and needs a person) and Notifications (the centre): each
//! entry with its document, patient, reason in French, and the actions that fix it.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use rappel_engine::queries::InboxEntry;
use serde::Deserialize;

use super::{Nav, Ui, encode_query, engine_error_page, flash, html_page, layout, see_other_with};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct BoxQuery {
    /// `1`: show the entries already handled too.
    traitees: Option<String>,
    ok: Option<String>,
}

pub(crate) async fn to_verify(state: State<AppState>, ui: Ui, q: Query<BoxQuery>) -> Response {
    inbox_page(state, ui, q, "to_verify").await
}

pub(crate) async fn notifications(state: State<AppState>, ui: Ui, q: Query<BoxQuery>) -> Response {
    inbox_page(state, ui, q, "notifications").await
}

async fn inbox_page(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<BoxQuery>,
    which: &str,
) -> Response {
    let with_resolved = q.traitees.as_deref() == Some("1");
    let entries = match state
        .engine
        .inbox(ui.practice_id(), Some(which), with_resolved)
        .await
    {
        Ok(entries) => entries,
        Err(e) => return engine_error_page(&e),
    };
    let (nav, title, path, intro) = if which == "to_verify" {
        (
            Nav::ToVerify,
            "À vérifier",
            "/a-verifier",
            "Ce que Rappel n'a pas pu envoyer seul : corrigez la fiche du patient, renvoyez par courrier, ou marquez l'entrée comme traitée.",
        )
    } else {
        (
            Nav::Notifications,
            "Centre de notifications",
            "/notifications",
            "Ce que Rappel a fait de lui-même et que le cabinet doit savoir (renvois automatiques, quota de SMS…).",
        )
    };
    let content = html! {
        (flash(q.ok.as_deref()))
        p { (intro) }
        p {
            @if with_resolved {
                a href=(path) { "Masquer les entrées traitées" }
            } @else {
                a href={(path) "?traitees=1"} { "Afficher aussi les entrées traitées" }
            }
        }
        @if entries.is_empty() {
            p.muted { "Rien à traiter." }
        }
        @for entry in &entries {
            (entry_card(&ui, entry, path))
        }
    };
    html_page(layout(&ui, nav, title, content))
}

fn entry_card(ui: &Ui, entry: &InboxEntry, back: &str) -> maud::Markup {
    html! {
        article.entry aria-labelledby={"e-" (entry.id)} {
            h2 #{"e-" (entry.id)} { (entry.title) }
            p.muted { "Le " (local(&entry.created_at, ui)) }
            dl.facts {
                @if let Some(title) = &entry.document_title {
                    dt { "Document" } dd { (title) }
                }
                @if let Some(patient) = &entry.patient {
                    dt { "Patient" }
                    dd { a href={"/patients/" (encode_query(patient))} { (entry.patient_name.as_deref().unwrap_or(patient)) } }
                }
                @if let Some(reason) = &entry.reason {
                    dt { "Raison" } dd { (reason) }
                }
            }
            p { (entry.text) }
            @if let Some(at) = &entry.resolved_at {
                p { span.badge.delivered { "Traitée" } " le " (local(at, ui)) }
            } @else {
                div.actions {
                    @for action in &entry.actions {
                        @match *action {
                            "resend_postal" => {
                                @if let Some(doc) = &entry.document {
                                    // A letter costs money: the button leads to a page that
                                    // names the price and the address before anything is posted.
                                    a.button href={"/documents/" (encode_query(doc)) "/renvoi-postal?retour=" (encode_query(back))} {
                                        "Renvoyer par courrier…"
                                    }
                                }
                            }
                            "fix_email" | "fix_address" => {
                                @if let Some(patient) = &entry.patient {
                                    a.button href={"/patients/" (encode_query(patient)) "#coordonnees"} {
                                        @if *action == "fix_email" { "Corriger l'email" } @else { "Corriger l'adresse" }
                                    }
                                }
                            }
                            "resolve" => {
                                form method="post" action={"/boites/" (encode_query(&entry.id)) "/resoudre"} {
                                    (ui.csrf_field())
                                    input type="hidden" name="retour" value=(back);
                                    button.secondary type="submit" { "Marquer comme traitée" }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

/// An instant the engine formatted as RFC 3339, as "23/11/2026 à 09:00" in the practice's zone.
fn local(rfc3339: &str, ui: &Ui) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| super::format::instant(t, &ui.practice.tz))
        .unwrap_or_else(|_| rfc3339.to_string())
}

#[derive(Deserialize)]
pub(crate) struct Back {
    retour: Option<String>,
}

fn back_path(back: &Back) -> &'static str {
    match back.retour.as_deref() {
        Some("/notifications") => "/notifications",
        _ => "/a-verifier",
    }
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    axum::Form(back): axum::Form<Back>,
) -> Response {
    match state.engine.resolve_inbox(ui.practice_id(), &id).await {
        Ok(_) => see_other_with(back_path(&back), "resolu"),
        Err(e) => engine_error_page(&e),
    }
}

/// The form of a manual letter: `confirme=oui` once the practice has seen the price.
#[derive(Deserialize)]
pub(crate) struct ResendForm {
    retour: Option<String>,
    confirme: Option<String>,
}

/// `GET /documents/{id}/renvoi-postal`: what the letter would cost and where it would go, with
/// the button that posts it — or the letter already on its way, which a second one would repeat.
pub(crate) async fn confirm_resend_postal(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let quote = match state.engine.postal_quote(ui.practice_id(), &id).await {
        Ok(quote) => quote,
        Err(e) => return engine_error_page(&e),
    };
    let back = back_path(&back);
    let content = html! {
        @if let Some(letter) = &quote.already {
            p.notice role="status" {
                "Un courrier de ce document est déjà "
                @if letter.status == "sent" || letter.status == "delivered" { "parti" } @else { "en cours d'envoi" }
                " à cette adresse : il n'en sera pas envoyé un second."
            }
            p { a href=(back) { "Retour" } }
        } @else {
            @match &quote.address {
                Some(lines) => {
                    p { "Le document sera imprimé et posté à l'adresse de la fiche du patient :" }
                    address { @for line in lines { (line) br; } }
                }
                None => {
                    p.notice.error role="alert" {
                        "La fiche du patient n'a pas d'adresse postale : le courrier ne pourra pas partir. Corrigez d'abord la fiche."
                    }
                }
            }
            p {
                @match quote.cost_cents {
                    Some(cents) => { "Coût de ce courrier : " strong { (super::format::euros(cents)) } "." }
                    None => { "Ce courrier est payant (affranchissement et impression)." }
                }
            }
            form method="post" action={"/documents/" (encode_query(&id)) "/renvoi-postal"} {
                (ui.csrf_field())
                input type="hidden" name="retour" value=(back);
                input type="hidden" name="confirme" value="oui";
                div.actions {
                    button type="submit" { "Confirmer l'envoi du courrier" }
                    a.button.secondary href=(back) { "Annuler" }
                }
            }
        }
    };
    html_page(layout(&ui, Nav::ToVerify, "Renvoyer par courrier", content))
}

/// `POST /documents/{id}/renvoi-postal`: posts the letter once confirmed. Without the
/// confirmation it shows the price first; a second confirmation posts nothing more.
pub(crate) async fn resend_postal(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResendForm>,
) -> Response {
    let back = Back {
        retour: form.retour,
    };
    if form.confirme.as_deref() != Some("oui") {
        return axum::response::Redirect::to(&format!(
            "/documents/{}/renvoi-postal?retour={}",
            encode_query(&id),
            encode_query(back_path(&back))
        ))
        .into_response();
    }
    match state.engine.resend_postal(ui.practice_id(), &id).await {
        Ok(resend) if resend.created => see_other_with(back_path(&back), "renvoi"),
        Ok(_) => see_other_with(back_path(&back), "renvoi-deja"),
        Err(e) => engine_error_page(&e),
    }
}
