//! Envoyés (the sent box with filters), one message with its history and content, and the
//! timeline of an appointment: every message considered, sent or not, and why.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use rappel_domain::facts::{AppointmentStatus, Source};
use rappel_domain::notification::{Channel, Kind};
use rappel_engine::Message;
use rappel_store::{NotificationFilter, Status};
use serde::Deserialize;
use serde_json::Value;

use super::{Nav, Ui, encode_query, engine_error_page, format, html_page, layout};
use crate::AppState;

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct SentQuery {
    statut: Option<String>,
    canal: Option<String>,
    type_: Option<String>,
    /// `YYYY-MM-DD`: messages due from that day on.
    depuis: Option<String>,
    patient: Option<String>,
    /// `DUE_MS~KEY` of the last row of the previous page.
    apres: Option<String>,
}

pub(crate) async fn sent_box(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<SentQuery>,
) -> Response {
    let tz = ui.practice.tz.clone();
    let since = q
        .depuis
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        .and_then(|d| d.to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp());
    let cursor = q.apres.as_deref().and_then(|c| {
        let (ms, key) = c.split_once('~')?;
        Some((
            Timestamp::from_millisecond(ms.parse().ok()?).ok()?,
            key.to_string(),
        ))
    });
    let filter = NotificationFilter {
        status: q.statut.as_deref().and_then(Status::parse),
        channel: q.canal.as_deref().and_then(Channel::parse),
        kind: q.type_.as_deref().and_then(Kind::parse),
        since,
        patient_id: q.patient.clone().filter(|p| !p.is_empty()),
        cursor,
        limit: PAGE,
        // The newest first: what the practice looks for is what just happened.
        newest_first: true,
        ..NotificationFilter::default()
    };
    let (messages, next) = match state.engine.messages(ui.practice_id(), &filter).await {
        Ok(page) => page,
        Err(e) => return engine_error_page(&e),
    };
    let selected = |value: &Option<String>, option: &str| value.as_deref() == Some(option);
    let next_link = next.map(|(due, key)| {
        let mut params = vec![];
        for (name, value) in [
            ("statut", &q.statut),
            ("canal", &q.canal),
            ("type_", &q.type_),
            ("depuis", &q.depuis),
            ("patient", &q.patient),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                params.push(format!("{name}={}", encode_query(v)));
            }
        }
        params.push(format!(
            "apres={}",
            encode_query(&format!("{}~{key}", due.as_millisecond()))
        ));
        format!("/envoyes?{}", params.join("&"))
    });
    let content = html! {
        form.filters method="get" action="/envoyes" {
            div {
                label for="statut" { "Statut" }
                select #statut name="statut" {
                    option value="" { "Tous" }
                    @for (value, label) in [("pending", "Prévus"), ("sent", "Envoyés"), ("delivered", "Distribués"), ("failed", "Échecs"), ("suppressed", "Non envoyés")] {
                        option value=(value) selected[selected(&q.statut, value)] { (label) }
                    }
                }
            }
            div {
                label for="canal" { "Canal" }
                select #canal name="canal" {
                    option value="" { "Tous" }
                    @for c in Channel::ALL {
                        option value=(c.as_str()) selected[selected(&q.canal, c.as_str())] { (format::channel(*c)) }
                    }
                }
            }
            div {
                label for="type" { "Message" }
                select #type name="type_" {
                    option value="" { "Tous" }
                    @for k in Kind::ALL {
                        option value=(k.as_str()) selected[selected(&q.type_, k.as_str())] { (format::kind(*k)) }
                    }
                }
            }
            div {
                label for="depuis" { "Prévus à partir du" }
                input #depuis type="date" name="depuis" value=[q.depuis.as_deref()];
            }
            @if let Some(patient) = q.patient.as_deref().filter(|p| !p.is_empty()) {
                input type="hidden" name="patient" value=(patient);
            }
            button type="submit" { "Filtrer" }
        }
        form.inline role="search" method="get" action="/rendez-vous" {
            label for="rdv" { "Chronologie d'un rendez-vous (nom du patient ou identifiant du rendez-vous)" }
            input #rdv type="search" name="id" required;
            button.secondary type="submit" { "Voir" }
        }
        (message_table(&messages, &ui.practice.tz, &ui.practice.policy, true))
        @if let Some(link) = next_link {
            p { a href=(link) { "Page suivante →" } }
        }
    };
    html_page(layout(
        &ui,
        Nav::Sent,
        "Messages envoyés et prévus",
        content,
    ))
}

/// Messages as a table: when, patient, what, channel, status, why.
pub(crate) fn message_table(
    messages: &[Message],
    tz: &jiff::tz::TimeZone,
    policy: &rappel_domain::policy::Policy,
    with_patient: bool,
) -> Markup {
    html! {
        @if messages.is_empty() {
            p.muted { "Aucun message." }
        } @else {
            table.list {
                thead { tr {
                    th scope="col" { "Quand" }
                    @if with_patient { th scope="col" { "Patient" } }
                    th scope="col" { "Message" }
                    th scope="col" { "Canal" }
                    th scope="col" { "Destinataire" }
                    th scope="col" { "Statut" }
                    th scope="col" { "Pourquoi" }
                } }
                tbody {
                    @for m in messages {
                        tr {
                            td data-label="Quand" { a href={"/envoyes/" (encode_query(&m.row.key))} { (format::instant(when(m), tz)) } }
                            @if with_patient {
                                td data-label="Patient" {
                                    @match &m.patient_name {
                                        Some(name) => a href={"/patients/" (encode_query(&m.row.patient_id))} { (name) },
                                        None => span.muted { "patient effacé" },
                                    }
                                }
                            }
                            td data-label="Message" {
                                (format::kind(m.row.kind))
                                @if m.row.auto_resend { " " span.badge.info { "renvoi automatique" } }
                            }
                            td data-label="Canal" { (format::channel(m.row.channel)) }
                            td data-label="Destinataire" { (format::message_recipient(m)) }
                            td.status data-label="Statut" { (format::message_status(m)) }
                            td.why data-label="Pourquoi" { (format::message_reason(policy, m)) }
                        }
                    }
                }
            }
        }
    }
}

/// The instant a message is listed at: its hand-off or decision, else when it is due.
fn when(m: &Message) -> Timestamp {
    match m.row.status {
        Status::Pending | Status::Sending => m.row.due_at,
        _ => m.row.decided_at.unwrap_or(m.row.due_at),
    }
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    ui: Ui,
    Path(key): Path<String>,
) -> Response {
    let m = match state.engine.message(ui.practice_id(), &key).await {
        Ok(m) => m,
        Err(e) => return engine_error_page(&e),
    };
    let reports = match state.engine.message_reports(ui.practice_id(), &key).await {
        Ok(reports) => reports,
        Err(e) => return engine_error_page(&e),
    };
    let tz = &ui.practice.tz;
    let row = &m.row;
    let content = html! {
        dl.facts {
            dt { "Patient" }
            dd {
                @match &m.patient_name {
                    Some(name) => a href={"/patients/" (encode_query(&row.patient_id))} { (name) },
                    None => span.muted { "patient effacé" },
                }
            }
            dt { "Message" } dd { (format::kind(row.kind)) }
            dt { "Canal" } dd { (format::channel(row.channel)) }
            dt { "Destinataire" } dd { (format::recipient(&row.recipient)) }
            dt { "Statut" } dd { (format::status(row.status)) }
            @if let Some(reason) = row.reason {
                dt { "Pourquoi" } dd { (reason.french()) }
            }
            @for appt in &row.appointments {
                dt { "Rendez-vous" } dd { a href={"/rendez-vous/" (encode_query(appt))} { "voir la chronologie du rendez-vous" } }
            }
            @if let Some(document) = &row.document {
                dt { "Document" } dd { (document) }
            }
        }
        h2 { "Historique" }
        ol.history {
            li { (format::instant(row.created_at, tz)) " — planifié : " (format::rule_label(&ui.practice.policy, &row.rule)) }
            li { (format::instant(row.due_at, tz)) " — moment prévu de l'envoi" }
            @if row.attempts > 0 {
                li { (format::count(row.attempts, "tentative d'envoi", "tentatives d'envoi")) }
            }
            @if let Some(error) = &row.last_error {
                li { "Dernière erreur : " (format::error(error)) }
            }
            @if let Some(at) = row.decided_at {
                li {
                    (format::instant(at, tz)) " — "
                    @match row.status {
                        Status::Suppressed => "décision de ne pas envoyer",
                        Status::Failed => "échec",
                        _ => "remis au fournisseur",
                    }
                }
            }
            // Every report after the hand-off (a delivery report, a bounce or DSN, an email
            // service's event), each with its time, who sent it, and its code and words.
            @for report in &reports {
                li {
                    (format::instant(report.at, tz)) " — "
                    (match report.outcome.as_str() {
                        "delivered" => "distribution confirmée",
                        "failed" => "échec signalé",
                        "delayed" => "remise retardée",
                        "complaint" => "signalé comme indésirable par le patient",
                        _ => "rapport",
                    })
                    " par " (format::report_source(&report.source))
                    @if let Some(detail) = &report.detail { " : " code { (detail) } }
                }
            }
        }
        h2 { "Contenu envoyé" }
        (rendered(row.rendered.as_ref()))
    };
    html_page(layout(&ui, Nav::Sent, format::kind(row.kind), content))
}

/// What was rendered at hand-off. The HTML part is shown as its text (escaped): the email's
/// markup is the practice's template, and a page of the interface never runs it.
fn rendered(value: Option<&Value>) -> Markup {
    let Some(Value::Object(parts)) = value else {
        return html! { p.muted { "Rien n'a encore été rendu : le contenu est composé au moment de l'envoi, avec les informations à jour." } };
    };
    html! {
        @if let Some(to) = parts.get("to").and_then(Value::as_str) {
            p { strong { "Envoyé à : " } (to) }
        }
        @if let Some(billed) = parts.get("billed_sms").and_then(Value::as_i64) {
            p { strong { "Facturé : " } (format::count(billed, "SMS", "SMS")) " (le nombre de SMS que compte l'opérateur pour ce message)" }
        }
        @if let Some(subject) = parts.get("subject").and_then(Value::as_str) {
            p { strong { "Objet : " } (subject) }
        }
        @if let Some(text) = parts.get("text").and_then(Value::as_str) {
            pre.message { (text) }
        }
        @if let Some(title) = parts.get("title").and_then(Value::as_str) {
            p { strong { "Titre : " } (title) }
        }
        @if let Some(body) = parts.get("body").and_then(Value::as_str) {
            pre.message { (body) }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct AppointmentQuery {
    id: String,
}

/// The appointment box of the sent box: an appointment's id goes straight to its timeline;
/// anything else is a patient's name (or phone, or email), answered with the matching
/// patients and their appointments, each a link to its timeline.
pub(crate) async fn find_appointment(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<AppointmentQuery>,
) -> Response {
    let text = q.id.trim();
    if text.is_empty() {
        return axum::response::Redirect::to("/envoyes").into_response();
    }
    if state
        .engine
        .appointment(ui.practice_id(), text)
        .await
        .is_ok()
    {
        return axum::response::Redirect::to(&format!("/rendez-vous/{}", encode_query(text)))
            .into_response();
    }
    let (found, practitioners) = match state
        .engine
        .find_appointments(ui.practice_id(), text, 20)
        .await
    {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let tz = &ui.practice.tz;
    let content = html! {
        form.inline role="search" method="get" action="/rendez-vous" {
            label for="rdv" { "Chronologie d'un rendez-vous (nom du patient ou identifiant du rendez-vous)" }
            input #rdv type="search" name="id" value=(text) required;
            button.secondary type="submit" { "Voir" }
        }
        @if found.is_empty() {
            p.muted { "Aucun patient ni rendez-vous ne correspond à « " (text) " »." }
        }
        @for (patient, appointments) in &found {
            section {
                h2 { a href={"/patients/" (encode_query(&patient.id))} { (patient.display_name()) } }
                @if appointments.is_empty() {
                    p.muted { "Aucun rendez-vous connu." }
                } @else {
                    ul {
                        @for a in appointments {
                            li {
                                a href={"/rendez-vous/" (encode_query(&a.id))} {
                                    "RDV du " (a.start.to_zoned(tz.clone()).strftime("%d/%m/%Y à %H:%M"))
                                    " avec " (practitioners.get(&a.practitioner).unwrap_or(&a.practitioner))
                                }
                                @match a.status {
                                    AppointmentStatus::Cancelled { .. } => { " " span.badge { "annulé" } },
                                    AppointmentStatus::Deleted { .. } => { " " span.badge { "supprimé" } },
                                    AppointmentStatus::NoShow { .. } => { " " span.badge { "absence" } },
                                    _ => {},
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(layout(&ui, Nav::Sent, "Trouver un rendez-vous", content))
}

pub(crate) async fn appointment(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    let (appt, messages) = match state
        .engine
        .appointment_messages(ui.practice_id(), &id)
        .await
    {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let tz = &ui.practice.tz;
    // Names, not ids: the practice knows its patients and practitioners by name.
    let patient_name = state
        .engine
        .patient(ui.practice_id(), &appt.patient)
        .await
        .map(|p| p.display_name())
        .unwrap_or_else(|_| appt.patient.clone());
    let practitioner_name = state
        .engine
        .practitioner(ui.practice_id(), &appt.practitioner)
        .await
        .map(|p| p.name)
        .unwrap_or_else(|_| appt.practitioner.clone());
    let motive_name = match &appt.motive {
        Some(id) => Some(
            state
                .engine
                .motive(ui.practice_id(), id)
                .await
                .map(|m| m.name)
                .unwrap_or_else(|_| id.clone()),
        ),
        None => None,
    };
    let status = match &appt.status {
        AppointmentStatus::Booked => "Confirmé".to_string(),
        AppointmentStatus::Cancelled { at, by, .. } => {
            let by = match by {
                rappel_domain::facts::CancelledBy::Patient => "par le patient",
                rappel_domain::facts::CancelledBy::Practice => "par le cabinet",
                rappel_domain::facts::CancelledBy::PractitionerAbsence => {
                    "pour absence du praticien"
                }
            };
            format!("Annulé le {} {by}", format::instant(*at, tz))
        }
        AppointmentStatus::Deleted { at } => format!("Supprimé le {}", format::instant(*at, tz)),
        AppointmentStatus::NoShow { at } => {
            format!("Absence constatée le {}", format::instant(*at, tz))
        }
        AppointmentStatus::Attended { .. } => "Honoré".to_string(),
    };
    // The patient's answer through a reminder's link or an SMS reply (issue 16).
    let answer = state
        .engine
        .appointment_answer(ui.practice_id(), &appt.id)
        .await
        .ok()
        .flatten()
        .map(|a| {
            let how = match a.channel {
                rappel_engine::AnswerChannel::Link => "par le lien du message",
                rappel_engine::AnswerChannel::Sms => "par SMS",
            };
            let stale = if a.current {
                ""
            } else {
                " (pour l'horaire d'avant le déplacement)"
            };
            format!(
                "{} le {} {how}{stale}",
                a.answer.french(),
                format::instant(a.at, tz)
            )
        });
    let source = match appt.source {
        Source::Online => "en ligne, par le patient",
        Source::Staff => "par le secrétariat",
        Source::Referral => "par un confrère",
    };
    let content = html! {
        dl.facts {
            dt { "Patient" } dd { a href={"/patients/" (encode_query(&appt.patient))} { (patient_name) } }
            dt { "Début" } dd { (format::instant(appt.start, tz)) " (" (appt.duration_minutes) " min)" }
            dt { "Praticien" } dd { (practitioner_name) }
            @if let Some(motive) = &motive_name { dt { "Motif" } dd { (motive) } }
            dt { "Pris" } dd { "le " (format::instant(appt.booked_at, tz)) ", " (source) }
            dt { "État" } dd { (status) }
            @if let Some(answer) = &answer { dt { "Réponse du patient" } dd { (answer) } }
            @for mv in &appt.moves {
                dt { "Déplacé" } dd { "le " (format::instant(mv.at, tz)) " : du " (format::instant(mv.from_start, tz)) " au " (format::instant(mv.to_start, tz)) }
            }
        }
        h2 { "Messages considérés" }
        p.muted { "Chaque message que les règles du cabinet prévoient pour ce rendez-vous : envoyé, prévu, ou non envoyé avec la raison." }
        (message_table(&messages, tz, &ui.practice.policy, false))
    };
    html_page(layout(
        &ui,
        Nav::Sent,
        "Chronologie du rendez-vous",
        content,
    ))
}
