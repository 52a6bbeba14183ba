//! Tableau de bord: what goes today and tomorrow (or any day, with the day navigation), what
//! needs attention, the SMS quota, how messages fared over the last 30 days.

use axum::extract::{Query, State};
use axum::response::Response;
use jiff::civil::Date;
use maud::{Markup, html};
use rappel_engine::{Message, SmsMeter};
use rappel_store::Status;
use serde::Deserialize;

use super::{Nav, Ui, engine_error_page, flash, format, html_page, layout};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct BoardQuery {
    ok: Option<String>,
    /// The day shown, `YYYY-MM-DD` (today when absent).
    jour: Option<String>,
}

/// Previous day, « Aujourd'hui », next day, and a date picker (a GET form: no JavaScript).
fn day_nav(day: Date, today: Date) -> Markup {
    let link = |d: Date| {
        if d == today {
            "/".to_string()
        } else {
            format!("/?jour={d}")
        }
    };
    html! {
        nav.day-nav aria-label="Jour affiché" {
            @if let Ok(prev) = day.yesterday() { a.button.secondary href=(link(prev)) rel="prev" { "← Jour précédent" } }
            @if day == today { span.button.secondary aria-current="date" { "Aujourd'hui" } }
            @else { a.button.secondary href="/" { "Aujourd'hui" } }
            @if let Ok(next) = day.tomorrow() { a.button.secondary href=(link(next)) rel="next" { "Jour suivant →" } }
            form.inline method="get" action="/" {
                label for="jour" { "Aller au" }
                input #jour type="date" name="jour" value=(day.to_string()) required;
                button.secondary type="submit" { "Afficher" }
            }
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    ui: Ui,
    Query(query): Query<BoardQuery>,
) -> Response {
    let board = match state.engine.dashboard(ui.practice_id()).await {
        Ok(board) => board,
        Err(e) => return engine_error_page(&e),
    };
    let wanted = query.jour.as_deref().filter(|j| !j.trim().is_empty());
    let parsed = wanted.map(|j| j.trim().parse::<Date>());
    let bad_day = matches!(parsed, Some(Err(_)));
    let day = match parsed {
        Some(Ok(d)) => d,
        _ => board.today,
    };
    // Another day than today: its messages alone.
    let other_day = if day != board.today {
        match state.engine.day_messages(ui.practice_id(), day).await {
            Ok(messages) => Some(messages),
            Err(e) => return engine_error_page(&e),
        }
    } else {
        None
    };
    // Letters are a cost the practice watches; none sent this month shows nothing.
    let postal = match state.engine.postal_costs(ui.practice_id(), None).await {
        Ok(spend) => spend,
        Err(e) => return engine_error_page(&e),
    };
    let tz = &ui.practice.tz;
    let policy = &ui.practice.policy;
    // The patients' answers (issue 16) about the appointments of the coming week.
    let week = board.today.to_zoned(tz.clone()).ok().map(|z| {
        (
            z.timestamp(),
            z.timestamp() + jiff::SignedDuration::from_hours(24 * 8),
        )
    });
    let answers = match week {
        Some((from, until)) => match state
            .engine
            .appointment_answers_between(ui.practice_id(), from, until)
            .await
        {
            Ok(answers) => answers,
            Err(e) => return engine_error_page(&e),
        },
        None => Default::default(),
    };
    let tomorrow = board.today.tomorrow().unwrap_or(board.today);
    let content = html! {
        (flash(query.ok.as_deref()))
        @if bad_day {
            p.notice.error role="alert" { "Date non reconnue : « " (wanted.unwrap_or_default()) " ». Choisissez un jour dans le calendrier (jj/mm/aaaa). Voici aujourd'hui." }
        }
        section.cards aria-label="En bref" {
            a.card href="/a-verifier" {
                span.figure { (board.to_verify_open) }
                span { "à vérifier" }
            }
            a.card href="/notifications" {
                span.figure { (board.notifications_open) }
                span { "notifications non traitées" }
            }
            a.card href="/envoyes?statut=failed" {
                span.figure { (board.recent_failures.len()) }
                span { "échecs sur 7 jours" }
            }
            (sms_meter(&board.sms))
            @if postal.letters > 0 {
                div.card {
                    span.figure { (super::format::euros(postal.total_cents)) }
                    span { (format::count(postal.letters, "courrier", "courriers")) " ce mois-ci" }
                }
            }
        }
        (day_nav(day, board.today))
        @if let Some(messages) = &other_day {
            section {
                h2 { (capitalised(&format::date(day))) }
                (day_table(messages, tz, policy, "Aucun message prévu ce jour-là."))
            }
        } @else {
            section {
                h2 { "Aujourd'hui — " (format::date(board.today)) }
                (day_table(&board.today_messages, tz, policy, "Aucun message prévu aujourd'hui."))
            }
            section {
                h2 { "Demain — " (format::date(tomorrow)) }
                (day_table(&board.tomorrow_messages, tz, policy, "Aucun message prévu demain."))
            }
        }
        @if !answers.is_empty() {
            section {
                h2 { "Réponses des patients (7 prochains jours)" }
                table {
                    thead { tr {
                        th scope="col" { "Rendez-vous" }
                        th scope="col" { "Réponse" }
                        th scope="col" { "Reçue" }
                    } }
                    tbody {
                        @for (id, answer) in &answers {
                            tr {
                                td { a href={"/rendez-vous/" (super::encode_query(id))} { (id) } }
                                td {
                                    (answer.answer.french())
                                    @if !answer.current { " (avant un déplacement)" }
                                }
                                td {
                                    (format::instant(answer.at, tz))
                                    @match answer.channel {
                                        rappel_engine::AnswerChannel::Link => " par le lien",
                                        rappel_engine::AnswerChannel::Sms => " par SMS",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !board.recent_failures.is_empty() {
            section {
                h2 { "Échecs à regarder" }
                (day_table(&board.recent_failures, tz, policy, ""))
            }
        }
        section {
            h2 { "Distribution sur 30 jours" }
            @if board.rates.is_empty() {
                p.muted { "Aucun message sur cette période." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Canal" }
                        th scope="col" { "Envoyés" }
                        th scope="col" { "Distribués" }
                        th scope="col" { "Échecs" }
                        th scope="col" { "Non envoyés" }
                        th scope="col" { "Taux d'échec" }
                    } }
                    tbody {
                        @for rate in &board.rates {
                            tr {
                                th scope="row" { (format::channel_str(&rate.channel)) }
                                td { (rate.handed_off) }
                                td { (rate.delivered) }
                                td { (rate.failed) }
                                td { (rate.suppressed) }
                                td {
                                    @if rate.handed_off > 0 {
                                        (format::percent(rate.failed, rate.handed_off))
                                    } @else { "—" }
                                }
                            }
                        }
                    }
                }
                p.muted { "« Distribués » compte les messages dont le fournisseur a confirmé la remise ; les autres envoyés n'ont pas (encore) de confirmation." }
            }
        }
    };
    html_page(layout(&ui, Nav::Dashboard, "Tableau de bord", content))
}

fn sms_meter(sms: &SmsMeter) -> Markup {
    html! {
        div.card {
            @match sms.quota {
                Some(quota) if quota > 0 => {
                    span.figure { (sms.messages) " / " (quota) }
                    label for="quota-sms" { "SMS ce mois-ci" }
                    meter #quota-sms min="0" max=(quota) low=(quota * 8 / 10) high=(quota * 9 / 10)
                        optimum="0" value=(sms.messages) { (sms.messages) " sur " (quota) }
                }
                _ => {
                    span.figure { (sms.messages) }
                    span { "SMS ce mois-ci (sans quota)" }
                }
            }
            span.muted { (format::count(sms.segments, "segment facturé", "segments facturés")) }
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// When a message left: the hand-off (or the failure) time; nothing while it is planned or
/// when it was not sent.
fn sent_at(m: &Message) -> Option<jiff::Timestamp> {
    match m.row.status {
        Status::Sent | Status::Delivered | Status::Failed => m.row.decided_at,
        _ => None,
    }
}

/// « 09:30 », or « 12/03 à 09:30 » when not on the same local day as `day_of`.
fn when(at: jiff::Timestamp, day_of: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    let same_day = at.to_zoned(tz.clone()).date() == day_of.to_zoned(tz.clone()).date();
    if same_day {
        format::time(at, tz)
    } else {
        at.to_zoned(tz.clone())
            .strftime("%d/%m à %H:%M")
            .to_string()
    }
}

/// A day's messages: planned and actual send time, recipient (name and address), the message
/// and its appointment (date, time, practitioner), how, status and, when not sent, why.
pub(crate) fn day_table(
    messages: &[Message],
    tz: &jiff::tz::TimeZone,
    policy: &rappel_domain::policy::Policy,
    empty: &str,
) -> Markup {
    html! {
        @if messages.is_empty() {
            p.muted { (empty) }
        } @else {
            table.list {
                thead { tr {
                    th scope="col" { "Prévu à" }
                    th scope="col" { "Parti à" }
                    th scope="col" { "Destinataire" }
                    th scope="col" { "Message" }
                    th scope="col" { "Canal" }
                    th scope="col" { "Statut" }
                    th scope="col" { "Pourquoi" }
                } }
                tbody {
                    @for m in messages {
                        tr {
                            td data-label="Prévu à" { a href={"/envoyes/" (super::encode_query(&m.row.key))} { (format::time(m.row.due_at, tz)) } }
                            td data-label="Parti à" {
                                @match sent_at(m) {
                                    Some(at) => (when(at, m.row.due_at, tz)),
                                    None => span.muted { "—" },
                                }
                            }
                            td data-label="Destinataire" {
                                // A practitioner alert goes to the practitioner: say so first,
                                // then whose appointment it is about.
                                @if m.practitioner_name.is_some() || matches!(m.row.recipient, rappel_domain::notification::Recipient::Practitioner(_)) {
                                    (format::message_recipient(m)) br;
                                    span.muted { "RDV de " }
                                }
                                @match &m.patient_name {
                                    Some(name) => a href={"/patients/" (super::encode_query(&m.row.patient_id))} { (name) },
                                    None => span.muted { "patient effacé" },
                                }
                                @if let Some(address) = &m.recipient_address {
                                    br; span.muted.address { (address) }
                                }
                            }
                            td data-label="Message" {
                                (format::kind(m.row.kind))
                                @if let Some(appt) = &m.appointment {
                                    br;
                                    a href={"/rendez-vous/" (super::encode_query(&appt.id))} {
                                        "RDV du " (appt.start.to_zoned(tz.clone()).strftime("%d/%m/%Y à %H:%M")) " avec " (appt.practitioner)
                                    }
                                } @else if let Some(appt) = m.row.appointments.first() {
                                    " · " a href={"/rendez-vous/" (super::encode_query(appt))} { "le rendez-vous" }
                                }
                            }
                            td data-label="Canal" { (format::channel(m.row.channel)) }
                            td.status data-label="Statut" { (format::message_status(m)) }
                            td.why data-label="Pourquoi" { (format::message_reason(policy, m)) }
                        }
                    }
                }
            }
        }
    }
}
