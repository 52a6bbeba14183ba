//! Patients: search, a patient's contacts with their validity and email/SMS switches, online
//! booking eligibility, appointments, and every message — sent or not, and why.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{Markup, html};
use rappel_domain::contact::{Contact, EmailAddress, PhoneNumber};
use rappel_domain::facts::{AppointmentStatus, Patient};
use rappel_domain::notification::{Channel, Recipient};
use rappel_store::Status;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::messages::message_table;
use super::{
    Flash, Nav, Ui, encode_query, engine_error_page, flash, format, html_page, layout,
    see_other_with,
};
use crate::AppState;
use crate::error::ApiError;

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

pub(crate) async fn search(
    State(state): State<AppState>,
    ui: Ui,
    Query(query): Query<SearchQuery>,
) -> Response {
    let q = query.q.unwrap_or_default();
    let found = match state
        .engine
        .search_patients(ui.practice_id(), q.trim(), 50)
        .await
    {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let content = html! {
        form.filters role="search" method="get" action="/patients" {
            div {
                label for="q" { "Nom, email ou téléphone" }
                input #q type="search" name="q" value=(q) autofocus;
            }
            button type="submit" { "Rechercher" }
        }
        @if found.is_empty() {
            p.muted { "Aucun patient trouvé." }
        } @else {
            table.list {
                thead { tr {
                    th scope="col" { "Patient" }
                    th scope="col" { "Email" }
                    th scope="col" { "Mobile" }
                    th scope="col" { "Emails" }
                    th scope="col" { "SMS" }
                } }
                tbody {
                    @for p in &found {
                        tr {
                            td data-label="Patient" { a href={"/patients/" (encode_query(&p.id))} { (full_name(p)) } }
                            td data-label="Email" { (email_validity(p.email.as_ref(), None, &ui.practice.tz)) }
                            td data-label="Mobile" { (mobile_validity(p.mobile.as_ref())) }
                            td data-label="Emails" { (switch_word(p.email_notifications)) }
                            td data-label="SMS" { (switch_word(p.sms_notifications)) }
                        }
                    }
                }
            }
            @if found.len() == 50 { p.muted { "Les 50 premiers résultats : précisez la recherche." } }
        }
    };
    html_page(layout(&ui, Nav::Patients, "Patients", content))
}

fn full_name(p: &Patient) -> String {
    let name = format!("{} {}", p.first_name, p.last_name);
    let name = name.trim();
    if name.is_empty() {
        p.id.clone()
    } else {
        name.to_string()
    }
}

fn switch_word(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "activés",
        Some(false) => "désactivés",
        None => "par défaut",
    }
}

/// The email with its state: « invalide » when it does not parse, and when the last email handed
/// to the patient came back (`bounced`, its instant) « revenu en erreur » rather than « valide »,
/// until an email reaches them again.
fn email_validity(
    email: Option<&Contact<EmailAddress>>,
    bounced: Option<Timestamp>,
    tz: &TimeZone,
) -> Markup {
    html! {
        @match email {
            None => span.muted { "aucun" },
            Some(e) => {
                (e) " "
                @if e.valid().is_none() { span.badge.failed { "invalide" } }
                @else if let Some(at) = bounced {
                    span.badge.failed { "dernier email revenu en erreur le " (super::format::instant(at, tz)) }
                }
                @else { span.badge.delivered { "valide" } }
            }
        }
    }
}

fn mobile_validity(mobile: Option<&Contact<PhoneNumber>>) -> Markup {
    html! {
        @match mobile {
            None => span.muted { "aucun" },
            Some(contact @ Contact::Valid(number)) => {
                (number.national()) " "
                @if contact.mobile().is_some() { span.badge.delivered { "mobile" } }
                @else { span.badge.failed { "fixe : pas de SMS" } }
            }
            Some(Contact::Invalid(raw)) => { (raw.as_str()) " " span.badge.failed { "invalide" } }
        }
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(q): Query<Flash>,
) -> Response {
    render(&state, &ui, &id, &BTreeMap::new(), None, q.ok.as_deref()).await
}

async fn render(
    state: &AppState,
    ui: &Ui,
    id: &str,
    errors: &BTreeMap<String, String>,
    entered: Option<&BTreeMap<String, String>>,
    ok: Option<&str>,
) -> Response {
    let engine = &state.engine;
    let patient = match engine.patient(ui.practice_id(), id).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let booking = match engine.online_booking(ui.practice_id(), id).await {
        Ok(b) => b,
        Err(e) => return engine_error_page(&e),
    };
    let (appointments, messages) = match engine.patient_messages(ui.practice_id(), id).await {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let practitioners: BTreeMap<String, String> = engine
        .practitioners(ui.practice_id())
        .await
        .map(|all| all.into_iter().map(|p| (p.id, p.name)).collect())
        .unwrap_or_default();
    let tz = &ui.practice.tz;
    // The last email handed off to the patient (not to a practitioner about them), if it failed.
    let bounced = messages
        .iter()
        .rev()
        .map(|m| &m.row)
        .find(|r| {
            r.channel == Channel::Email
                && matches!(r.recipient, Recipient::Patient(_))
                && matches!(r.status, Status::Sent | Status::Delivered | Status::Failed)
        })
        .filter(|r| r.status == Status::Failed)
        .map(|r| r.decided_at.unwrap_or(r.updated_at));
    let value = |name: &str, stored: Option<String>| -> String {
        entered
            .and_then(|e| e.get(name).cloned())
            .unwrap_or_else(|| stored.unwrap_or_default())
    };
    let address = patient.address.as_ref();
    let switch = |name: &str, current: Option<bool>| -> Markup {
        let current = entered
            .and_then(|e| e.get(name).cloned())
            .unwrap_or_else(|| match current {
                Some(true) => "on".into(),
                Some(false) => "off".into(),
                None => String::new(),
            });
        html! {
            select id=(name) name=(name) {
                option value="" selected[current.is_empty()] { "Réglage par défaut du cabinet" }
                option value="on" selected[current == "on"] { "Activés" }
                option value="off" selected[current == "off"] { "Désactivés" }
            }
        }
    };
    let error = |name: &str| -> Markup {
        html! {
            @if let Some(e) = errors.get(name) {
                span.error id={"err-" (name)} role="alert" { (e) }
            }
        }
    };
    let content = html! {
        (flash(ok))
        dl.facts {
            dt { "Email" } dd { (email_validity(patient.email.as_ref(), bounced, tz)) }
            dt { "Mobile" } dd { (mobile_validity(patient.mobile.as_ref())) }
            dt { "Emails" } dd { (switch_word(patient.email_notifications)) }
            dt { "SMS" }
            dd {
                @if let Some(at) = patient.sms_opt_out {
                    // The patient's STOP (two-way SMS): the reason every SMS is held back.
                    span.badge.failed { "désactivés par le patient" }
                    " — réponse STOP le " (format::instant(at, tz))
                    " : aucun SMS ne part (" (rappel_domain::notification::Reason::PatientSmsDisabled.as_str()) ")."
                    form method="post" action={"/patients/" (encode_query(id)) "/sms-reactiver"} {
                        (ui.csrf_field())
                        button.secondary type="submit" { "Réactiver les SMS (à la demande du patient)" }
                    }
                } @else {
                    (switch_word(patient.sms_notifications))
                }
            }
            dt { "Notifications push" } dd { @if patient.has_push() { "application installée" } @else { "aucun appareil" } }
            dt { "Adresse postale" }
            dd {
                @match address {
                    Some(a) => {
                        @for line in a.lines() { (line) br; }
                        (a.postal_code()) " " (a.city())
                        @if !a.is_france() { " " span.badge.failed { "à l'étranger : pas de courrier" } }
                    }
                    None => span.muted { "aucune" },
                }
            }
            dt { "Prise de rendez-vous en ligne" }
            dd {
                @if booking.allowed { span.badge.delivered { "autorisée" } }
                @else { span.badge.failed { "bloquée" } }
                @if let Some(reason) = &booking.reason { " — " (reason) }
            }
        }
        section #coordonnees {
            h2 { "Coordonnées et préférences" }
            p.muted { "Votre logiciel de cabinet transmet aussi ces informations : corrigez-les de préférence là-bas, sinon la prochaine mise à jour remplacera ce que vous saisissez ici." }
            @if !errors.is_empty() {
                p.notice.error role="alert" { "Rien n'a été enregistré : corrigez les champs signalés." }
            }
            form.stack method="post" action={"/patients/" (encode_query(&patient.id))} {
                (ui.csrf_field())
                label for="email" { "Email" }
                input #email type="email" name="email" value=(value("email", patient.email.as_ref().map(ToString::to_string)))
                    aria-invalid=[errors.get("email").map(|_| "true")] aria-describedby=[errors.get("email").map(|_| "err-email")];
                (error("email"))
                label for="mobile" { "Mobile" }
                input #mobile type="tel" name="mobile" value=(value("mobile", patient.mobile.as_ref().map(Contact::national)))
                    aria-invalid=[errors.get("mobile").map(|_| "true")] aria-describedby=[errors.get("mobile").map(|_| "err-mobile")];
                (error("mobile"))
                label for="email_notifications" { "Emails de rendez-vous" }
                (switch("email_notifications", patient.email_notifications))
                label for="sms_notifications" { "SMS de rendez-vous" }
                (switch("sms_notifications", patient.sms_notifications))
                fieldset {
                    legend { "Adresse postale (envoi des documents par courrier)" }
                    label for="address_lines" { "Adresse (une ligne par ligne de l'enveloppe)" }
                    textarea #address_lines name="address_lines" rows="3" {
                        (value("address_lines", address.map(|a| a.lines().join("\n"))))
                    }
                    label for="postal_code" { "Code postal" }
                    input #postal_code type="text" name="postal_code" inputmode="numeric" value=(value("postal_code", address.map(|a| a.postal_code().to_string())));
                    label for="city" { "Ville" }
                    input #city type="text" name="city" value=(value("city", address.map(|a| a.city().to_string())));
                    (error("address"))
                }
                button type="submit" { "Enregistrer" }
            }
        }
        section {
            h2 { "Rendez-vous" }
            @if appointments.is_empty() {
                p.muted { "Aucun rendez-vous." }
            } @else {
                ul {
                    @for a in appointments.iter().rev() {
                        li {
                            a href={"/rendez-vous/" (encode_query(&a.id))} { (format::instant(a.start, tz)) }
                            " — " (practitioners.get(&a.practitioner).unwrap_or(&a.practitioner)) " — "
                            @match &a.status {
                                AppointmentStatus::Booked => "confirmé",
                                AppointmentStatus::Cancelled { .. } => "annulé",
                                AppointmentStatus::Deleted { .. } => "supprimé",
                                AppointmentStatus::NoShow { .. } => "absence",
                                AppointmentStatus::Attended { .. } => "honoré",
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Messages : envoyés, prévus, et pourquoi pas les autres" }
            (message_table(&messages, tz, &ui.practice.policy, false))
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        html_page(layout(ui, Nav::Patients, &full_name(&patient), content)),
    )
        .into_response()
}

pub(crate) async fn save(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let mut patient = match state.engine.patient(ui.practice_id(), &id).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let get = |name: &str| form.get(name).map(|v| v.trim()).unwrap_or("");
    let lines: Vec<String> = get("address_lines")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let mut fields = Map::new();
    fields.insert("email".into(), Value::from(get("email")));
    fields.insert("mobile".into(), Value::from(get("mobile")));
    let has_address =
        !lines.is_empty() || !get("postal_code").is_empty() || !get("city").is_empty();
    if has_address {
        // Keeps the stored country (a foreign address stays foreign).
        let country = patient
            .address
            .as_ref()
            .map(|a| a.country().as_str().to_string());
        fields.insert(
            "address".into(),
            json!({"lines": lines, "postal_code": get("postal_code"), "city": get("city"), "country": country}),
        );
    }
    // The same strict checks and normal forms as the JSON API.
    if let Err(error) = crate::validate::patient_contacts(&mut fields, "") {
        let (field, reason) = match error {
            ApiError::Invalid { field, reason } => (field.unwrap_or_default(), reason),
            other => (String::new(), other.to_string()),
        };
        let (key, message) = if field.starts_with("email") {
            ("email", format!("Adresse email invalide ({reason})."))
        } else if field.starts_with("mobile") {
            (
                "mobile",
                format!("Numéro de téléphone invalide ({reason})."),
            )
        } else {
            (
                "address",
                format!("Adresse postale incomplète ou invalide ({reason})."),
            )
        };
        let errors = BTreeMap::from([(key.to_string(), message)]);
        return render(&state, &ui, &id, &errors, Some(&form), None).await;
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    patient.email = text("email").and_then(Contact::from_input);
    patient.mobile = text("mobile").and_then(Contact::from_input);
    patient.address = match fields.get("address") {
        Some(value) if has_address => serde_json::from_value(value.clone()).ok(),
        _ => None,
    };
    let switch = |name: &str| match get(name) {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    patient.email_notifications = switch("email_notifications");
    patient.sms_notifications = switch("sms_notifications");
    match state.engine.put_patient(ui.practice_id(), &patient).await {
        Ok(_) => see_other_with(&format!("/patients/{}", encode_query(&id)), "patient"),
        Err(e) => engine_error_page(&e),
    }
}
