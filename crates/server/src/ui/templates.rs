//! Modèles: every message template, editable with a live preview on sample data, the SMS
//! segment counter, errors inline (with their line), back to the built-in text, and "send me a
//! test". The preview works without JavaScript too: the "Aperçu" button posts the form.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::template::{Locale, Part, parts};
use rappel_engine::{EngineError, PreviewPart, TemplateParts, TemplateView, TestSend};
use serde::Deserialize;

use super::{Nav, Ui, engine_error_page, flash, format, html_page, layout, see_other_with};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct LocaleQuery {
    langue: Option<String>,
    ok: Option<String>,
}

fn locale_of(q: Option<&str>) -> Locale {
    q.and_then(Locale::parse).unwrap_or(Locale::Fr)
}

fn part_label(part: Part) -> &'static str {
    match part {
        Part::Subject => "Objet",
        Part::Text => "Texte",
        Part::Html => "HTML",
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<LocaleQuery>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let locale = locale_of(q.langue.as_deref());
    let views = match state.engine.list_templates(ui.practice_id()).await {
        Ok(v) => v,
        Err(e) => return engine_error_page(&e),
    };
    let channels: Vec<Channel> = Channel::ALL
        .iter()
        .copied()
        .filter(|c| !parts(*c).is_empty())
        .collect();
    let content = html! {
        (flash(q.ok.as_deref()))
        p {
            "Langue : "
            @for l in Locale::ALL {
                @if *l == locale { strong { (l.as_str()) } " " }
                @else { a href={"/modeles?langue=" (l.as_str())} { (l.as_str()) } " " }
            }
        }
        p.muted { "Chaque message a un texte par défaut. Cliquez pour le personnaliser ; l'aperçu utilise un patient et un rendez-vous d'exemple." }
        table {
            thead { tr {
                th scope="col" { "Message" }
                @for c in &channels { th scope="col" { (format::channel(*c)) } }
            } }
            tbody {
                @for kind in Kind::ALL {
                    tr {
                        th scope="row" { (format::kind(*kind)) }
                        @for c in &channels {
                            @let view = views.iter().find(|v| v.kind == *kind && v.channel == *c && v.locale == locale.as_str());
                            td {
                                a href={"/modeles/" (kind.as_str()) "/" (c.as_str()) "?langue=" (locale.as_str())} {
                                    @if view.is_some_and(|v| v.origin == "practice") { "personnalisé" } @else { "par défaut" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(layout(&ui, Nav::Templates, "Modèles de messages", content))
}

fn parse_target(kind: &str, channel: &str) -> Option<(Kind, Channel)> {
    match (Kind::parse(kind), Channel::parse(channel)) {
        (Some(k), Some(c)) if !parts(c).is_empty() => Some((k, c)),
        _ => None,
    }
}

fn unknown_template() -> Response {
    super::page_error(
        StatusCode::NOT_FOUND,
        "Modèle introuvable",
        "Ce type de message ou ce canal n'existe pas.",
    )
}

/// What the edit page shows besides the sources.
#[derive(Default)]
struct Extras<'a> {
    preview: Option<Vec<PreviewPart>>,
    errors: BTreeMap<&'static str, String>,
    test: Option<Result<TestSend, String>>,
    ok: Option<&'a str>,
    test_to: Option<String>,
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    ui: Ui,
    Path((kind, channel)): Path<(String, String)>,
    Query(q): Query<LocaleQuery>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(q.langue.as_deref());
    let (view, preview) = match in_force(&state, &ui, kind, channel, locale).await {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let extras = Extras {
        preview,
        ok: q.ok.as_deref(),
        ..Extras::default()
    };
    edit_page(
        &ui,
        kind,
        channel,
        locale,
        &view.parts,
        view.origin == "practice",
        extras,
    )
}

/// The template in force and its preview on the sample data.
async fn in_force(
    state: &AppState,
    ui: &Ui,
    kind: Kind,
    channel: Channel,
    locale: Locale,
) -> Result<(TemplateView, Option<Vec<PreviewPart>>), EngineError> {
    let engine = &state.engine;
    let view = engine
        .get_template(ui.practice_id(), kind, channel, locale)
        .await?;
    let preview = engine
        .preview_template(ui.practice_id(), kind, channel, locale, &view.parts)
        .await
        .ok();
    Ok((view, preview))
}

fn edit_page(
    ui: &Ui,
    kind: Kind,
    channel: Channel,
    locale: Locale,
    sources: &TemplateParts,
    customised: bool,
    extras: Extras<'_>,
) -> Response {
    let base = format!("/modeles/{}/{}", kind.as_str(), channel.as_str());
    let query = format!("?langue={}", locale.as_str());
    let source_of = |part: Part| -> &str {
        match part {
            Part::Subject => sources.subject.as_deref(),
            Part::Text => sources.text.as_deref(),
            Part::Html => sources.html.as_deref(),
        }
        .unwrap_or("")
    };
    let default_to = match channel {
        Channel::Email => ui.session.user.email.clone(),
        _ => String::new(),
    };
    let content = html! {
        (flash(extras.ok))
        p {
            (format::channel(channel)) ", langue " (locale.as_str()) " — "
            @if customised { span.badge.info { "personnalisé par le cabinet" } } @else { span.badge { "texte par défaut" } }
        }
        @if !extras.errors.is_empty() {
            p.notice.error role="alert" { "Le modèle n'a pas été enregistré : corrigez l'erreur signalée." }
        }
        div.editor {
            form.stack #modele method="post" action={(base) (query)}
                hx-post={(base) "/apercu" (query)} hx-trigger="input delay:400ms" hx-target="#apercu" hx-swap="innerHTML" {
                (ui.csrf_field())
                @for part in parts(channel) {
                    @let name = part.as_str();
                    label for={"part-" (name)} { (part_label(*part)) }
                    textarea id={"part-" (name)} name=(name) rows=(if *part == Part::Subject { 2 } else { 10 }) spellcheck="true"
                        aria-invalid=[extras.errors.get(name).map(|_| "true")]
                        aria-describedby=[extras.errors.get(name).map(|_| format!("err-{name}"))] {
                        (source_of(*part))
                    }
                    @if let Some(error) = extras.errors.get(name) {
                        span.error id={"err-" (name)} role="alert" { (error) }
                    }
                }
                div.actions {
                    button type="submit" { "Enregistrer" }
                    button.secondary type="submit" formaction={(base) "/apercu" (query)} { "Aperçu" }
                }
                details {
                    summary { "Variables disponibles" }
                    ul {
                        li { code { "{{ practice.name }}" } " : le nom du cabinet" }
                        li { code { "{{ patient.first_name }}" } ", " code { "{{ patient.last_name }}" } ", " code { "{{ patient.name }}" } " : le patient" }
                        li { code { "{{ practitioner.name }}" } " : le praticien" }
                        li { code { "{% for a in appointments %}…{% endfor %}" } " : les rendez-vous, chacun avec " code { "a.date_text" } " (« mercredi 11 mars 2026 »), " code { "a.time_text" } " (« 09h30 »), " code { "a.location" } ", " code { "a.practitioner" } ", " code { "a.motive" } }
                        li { code { "{{ document.title }}" } ", " code { "{{ document.link }}" } " : le document (le titre jamais dans un SMS)" }
                        li { code { "{{ task.label }}" } " : le nom d'une tâche programmée" }
                    }
                    p.muted { "Un SMS ou une notification push ne contient jamais d'information de santé au-delà de la date, l'heure, le praticien et le lieu." }
                }
            }
            section #apercu aria-live="polite" {
                (preview_markup(extras.preview.as_deref()))
            }
        }
        @if customised {
            details.confirm {
                summary { "Revenir au texte par défaut…" }
                form method="post" action={(base) "/reinitialiser" (query)} {
                    (ui.csrf_field())
                    p { "Le texte du cabinet sera effacé et le texte par défaut de Rappel repris pour ce message." }
                    button.danger type="submit" { "Confirmer : revenir au texte par défaut" }
                }
            }
        }
        section {
            h2 { "M'envoyer un test" }
            p.muted { "Le modèle enregistré est envoyé avec les données d'exemple, jamais celles d'un patient." }
            @match &extras.test {
                Some(Ok(sent)) if sent.accepted => p.notice.ok role="status" { "Test envoyé à " (sent.to) "." },
                Some(Ok(sent)) => p.notice.error role="alert" { "Le fournisseur a refusé le test : " (sent.error.as_deref().unwrap_or("raison inconnue")) },
                Some(Err(e)) => p.notice.error role="alert" { (e) },
                None => {},
            }
            @if matches!(channel, Channel::Email | Channel::Sms) {
                form.inline method="post" action={(base) "/test" (query)} {
                    (ui.csrf_field())
                    label for="to" { @if channel == Channel::Email { "Adresse email" } @else { "Numéro de mobile" } }
                    input #to type=(if channel == Channel::Email { "email" } else { "tel" }) name="to"
                        value=(extras.test_to.clone().unwrap_or(default_to)) required;
                    button type="submit" { "Envoyer le test" }
                }
            } @else {
                p.muted { "Le test d'une notification push se fait depuis l'API (il faut l'abonnement d'un navigateur)." }
            }
        }
    };
    let status = if extras.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = format!("Modèle : {}", format::kind(kind));
    (
        status,
        html_page(layout(ui, Nav::Templates, &title, content)),
    )
        .into_response()
}

fn preview_markup(preview: Option<&[PreviewPart]>) -> Markup {
    html! {
        h2 { "Aperçu" }
        @match preview {
            None => p.muted { "Aperçu indisponible." },
            Some(parts) => {
                @for p in parts {
                    div.preview {
                        h3 { (Part::parse(p.part).map(part_label).unwrap_or(p.part)) }
                        @if let Some(error) = &p.error {
                            p.error role="alert" { (error_text(error.line, &error.reason)) }
                        } @else if let Some(output) = &p.output {
                            pre.message { (output) }
                        }
                        @if let (Some(segments), Some(encoding)) = (p.sms_segments, p.sms_encoding) {
                            @let chars = p.output.as_deref().map(|o| o.chars().count()).unwrap_or(0);
                            p.counter {
                                (chars) " caractères, " strong { (segments) " SMS" } " facturé" @if segments > 1 { "s" }
                                " (" @if encoding == "gsm7" { "alphabet GSM : 160 caractères, 153 par partie" } @else { "caractères spéciaux (UCS-2) : 70 caractères, 67 par partie" } ")"
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The engine's reason for refusing a template, in French for the practice. The syntax details
/// minijinja gives ("unexpected end of input…") stay as they are, after a French lead.
fn french_reason(reason: &str) -> String {
    if let Some((name, _)) = reason.split_once(": this variable does not exist here") {
        return format!(
            "« {name} » : cette variable n'existe pas ici (voir la liste des variables ; un SMS ou \
             une notification push n'a ni consignes ni titre de document, et le motif seulement \
             si le cabinet l'affiche)."
        );
    }
    if reason.contains("runs too long") {
        return "le modèle tourne trop longtemps (une boucle trop grande ?) et a été arrêté."
            .into();
    }
    if reason.contains("cannot include, import or extend") {
        return "un modèle ne peut pas inclure, importer ni étendre un autre modèle.".into();
    }
    if reason.contains("would be longer than") || reason.contains("bytes long; the limit") {
        return format!("le texte est trop long ({reason}).");
    }
    if let Some(detail) = reason.strip_prefix("syntax error: ") {
        return format!("erreur de syntaxe ({detail}).");
    }
    format!("modèle refusé ({reason}).")
}

fn error_text(line: Option<usize>, reason: &str) -> String {
    match line {
        Some(l) => format!("Ligne {l} : {}", french_reason(reason)),
        None => capitalised(&french_reason(reason)),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn given_parts(channel: Channel, form: &BTreeMap<String, String>) -> TemplateParts {
    let mut given = TemplateParts::default();
    for part in parts(channel) {
        let source = form.get(part.as_str()).cloned();
        match part {
            Part::Subject => given.subject = source,
            Part::Text => given.text = source,
            Part::Html => given.html = source,
        }
    }
    given
}

pub(crate) async fn preview(
    State(state): State<AppState>,
    ui: Ui,
    headers: HeaderMap,
    Path((kind, channel)): Path<(String, String)>,
    Query(q): Query<LocaleQuery>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(q.langue.as_deref());
    let given = given_parts(channel, &form);
    let preview = match state
        .engine
        .preview_template(ui.practice_id(), kind, channel, locale, &given)
        .await
    {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    if headers.contains_key("hx-request") {
        return html_page(preview_markup(Some(&preview)));
    }
    let view = state
        .engine
        .get_template(ui.practice_id(), kind, channel, locale)
        .await;
    let customised = view.is_ok_and(|v| v.origin == "practice");
    let extras = Extras {
        preview: Some(preview),
        ..Extras::default()
    };
    edit_page(&ui, kind, channel, locale, &given, customised, extras)
}

pub(crate) async fn save(
    State(state): State<AppState>,
    ui: Ui,
    Path((kind, channel)): Path<(String, String)>,
    Query(q): Query<LocaleQuery>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(q.langue.as_deref());
    let given = given_parts(channel, &form);
    let engine = &state.engine;
    let preview = match engine
        .preview_template(ui.practice_id(), kind, channel, locale, &given)
        .await
    {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let mut errors = BTreeMap::new();
    for p in &preview {
        if let (Some(error), Some(part)) = (&p.error, Part::parse(p.part)) {
            errors.insert(part.as_str(), error_text(error.line, &error.reason));
        }
    }
    if errors.is_empty() {
        match engine
            .put_template(ui.practice_id(), kind, channel, locale, &given)
            .await
        {
            Ok(_) => {
                let path = format!(
                    "/modeles/{}/{}?langue={}",
                    kind.as_str(),
                    channel.as_str(),
                    locale.as_str()
                );
                return see_other_with(&path, "modele");
            }
            Err(EngineError::Invalid { field, reason }) => {
                let part = Part::parse(&field).unwrap_or(Part::Text);
                // "line N: reason" from the engine's check.
                let (line, reason) = match reason
                    .strip_prefix("line ")
                    .and_then(|r| r.split_once(": "))
                {
                    Some((n, rest)) => (n.parse().ok(), rest.to_string()),
                    None => (None, reason),
                };
                errors.insert(part.as_str(), error_text(line, &reason));
            }
            Err(e) => return engine_error_page(&e),
        }
    }
    // Refused: what is in force is still what was there before, customised or not.
    let customised = engine
        .get_template(ui.practice_id(), kind, channel, locale)
        .await
        .is_ok_and(|v| v.origin == "practice");
    let extras = Extras {
        preview: Some(preview),
        errors,
        ..Extras::default()
    };
    edit_page(&ui, kind, channel, locale, &given, customised, extras)
}

pub(crate) async fn reset(
    State(state): State<AppState>,
    ui: Ui,
    Path((kind, channel)): Path<(String, String)>,
    Query(q): Query<LocaleQuery>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(q.langue.as_deref());
    match state
        .engine
        .delete_template(ui.practice_id(), kind, channel, locale)
        .await
    {
        Ok(_) => see_other_with(
            &format!(
                "/modeles/{}/{}?langue={}",
                kind.as_str(),
                channel.as_str(),
                locale.as_str()
            ),
            "reinitialise",
        ),
        Err(e) => engine_error_page(&e),
    }
}

#[derive(Deserialize)]
pub(crate) struct TestForm {
    to: String,
}

pub(crate) async fn test_send(
    State(state): State<AppState>,
    ui: Ui,
    Path((kind, channel)): Path<(String, String)>,
    Query(q): Query<LocaleQuery>,
    Form(form): Form<TestForm>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(q.langue.as_deref());
    let outcome = state
        .engine
        .test_send(ui.practice_id(), kind, channel, &form.to, locale, None)
        .await;
    let test = match outcome {
        Ok(sent) => Ok(sent),
        Err(EngineError::Invalid { .. }) => Err(match channel {
            Channel::Email => "Adresse email invalide.".to_string(),
            _ => "Numéro invalide : un mobile (06, 07 ou +33 6…) est nécessaire.".to_string(),
        }),
        Err(e) => return engine_error_page(&e),
    };
    let (view, preview) = match in_force(&state, &ui, kind, channel, locale).await {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    let extras = Extras {
        preview,
        test: Some(test),
        test_to: Some(form.to),
        ..Extras::default()
    };
    edit_page(
        &ui,
        kind,
        channel,
        locale,
        &view.parts,
        view.origin == "practice",
        extras,
    )
}
