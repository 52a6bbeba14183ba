//! Modèles: every message template the practice's policy can send, written as text with fields
//! (« Bonjour {Prénom}, ») from which the engine makes every part (an email's text and HTML),
//! the code kept behind « Mode avancé »; a live preview on sample data (an email's HTML in a
//! sandboxed frame, as the patient sees it), the SMS segment counter, errors inline (with their
//! line), back to the built-in text, and "send me a test". The preview works without JavaScript
//! too: the "Aperçu" button posts the form; the field buttons need the small same-origin
//! `editor.js`, and without it the list says what to type.
//!
//! One page, one file (some 880 lines): the list, the editor and its actions (preview, save,
//! reset, test send) share the draft, the preview and the form; the simple editor's language is
//! `rappel_domain::template::simple`, the checks are the engine's (`templates`).

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::template::simple::{Field, SimpleMessage};
use rappel_domain::template::{Locale, Part, parts};
use rappel_engine::{
    EngineError, PreviewPart, TemplateParts, TemplateView, TestSend, simple_parts, simple_text,
};
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
    let sendable = match state.engine.sendable_templates(ui.practice_id()).await {
        Ok(s) => s,
        Err(e) => return engine_error_page(&e),
    };
    let channels: Vec<Channel> = Channel::ALL
        .iter()
        .copied()
        .filter(|c| sendable.iter().any(|(_, sc)| sc == c))
        .collect();
    let kinds: Vec<Kind> = Kind::ALL
        .iter()
        .copied()
        .filter(|k| sendable.iter().any(|(sk, _)| sk == k))
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
        p.muted { "Seuls les messages que votre cabinet peut envoyer sont listés. Chaque message a un texte par défaut. Cliquez pour le personnaliser ; l'aperçu utilise un patient et un rendez-vous d'exemple." }
        table {
            thead { tr {
                th scope="col" { "Message" }
                @for c in &channels { th scope="col" { (format::channel(*c)) } }
            } }
            tbody {
                @for kind in &kinds {
                    tr {
                        th scope="row" { (format::kind(*kind)) }
                        @for c in &channels {
                            @let view = views.iter().find(|v| v.kind == *kind && v.channel == *c && v.locale == locale.as_str());
                            td data-label=(format::channel(*c)) {
                                @if sendable.contains(&(*kind, *c)) {
                                    a href={"/modeles/" (kind.as_str()) "/" (c.as_str()) "?langue=" (locale.as_str())} {
                                        @if view.is_some_and(|v| v.origin == "practice") { "personnalisé" } @else { "par défaut" }
                                    }
                                } @else {
                                    span.muted title="Votre cabinet n'envoie pas ce message sur ce canal" { "—" }
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

/// What the editor holds: the text with fields, or the code of each part (« Mode avancé »).
enum Draft {
    Simple(SimpleMessage),
    Code(TemplateParts),
}

impl Draft {
    /// From a posted form: `mode=simple` with `objet` and `corps`, else the code parts.
    fn from_form(channel: Channel, form: &BTreeMap<String, String>) -> Draft {
        if form.get("mode").map(String::as_str) == Some("simple") {
            let has_subject = parts(channel).contains(&Part::Subject);
            return Draft::Simple(SimpleMessage {
                subject: has_subject.then(|| form.get("objet").cloned().unwrap_or_default()),
                body: form
                    .get("corps")
                    .cloned()
                    .unwrap_or_default()
                    .replace("\r\n", "\n"),
            });
        }
        Draft::Code(given_parts(channel, form))
    }

    /// The parts to preview or store, or the simple text's error (`objet` or `corps`, with
    /// its message).
    fn parts(
        &self,
        kind: Kind,
        channel: Channel,
        locale: Locale,
    ) -> Result<TemplateParts, (&'static str, String)> {
        match self {
            Draft::Code(given) => Ok(given.clone()),
            Draft::Simple(message) => simple_parts(kind, channel, locale, message).map_err(|e| {
                let (field, reason) = match e {
                    EngineError::Invalid { field, reason } => (field, reason),
                    other => ("text".into(), other.to_string()),
                };
                let reason = reason
                    .strip_prefix("line ")
                    .and_then(|r| r.split_once(": "))
                    .map(|(n, r)| format!("Ligne {n} : {r}"))
                    .unwrap_or(reason);
                (if field == "subject" { "objet" } else { "corps" }, reason)
            }),
        }
    }

    /// Where the frame of the HTML preview loads this draft from.
    fn frame_src(&self, base: &str, locale: Locale) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("langue", locale.as_str());
        match self {
            Draft::Simple(m) => {
                query.append_pair("mode", "simple");
                if let Some(subject) = &m.subject {
                    query.append_pair("objet", subject);
                }
                query.append_pair("corps", &m.body);
            }
            Draft::Code(given) => {
                query.append_pair("mode", "avance");
                if let Some(html) = &given.html {
                    query.append_pair("html", html);
                }
            }
        }
        format!("{base}/apercu.html?{}", query.finish())
    }
}

/// What the edit page shows besides the sources.
#[derive(Default)]
struct Extras<'a> {
    preview: Option<Vec<PreviewPart>>,
    errors: BTreeMap<&'static str, String>,
    test: Option<Result<TestSend, String>>,
    ok: Option<&'a str>,
    test_to: Option<String>,
    /// Open « Mode avancé » (a code draft was posted).
    advanced: bool,
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
    page_in_force(&ui, &view, locale, extras)
}

/// The edit page of the template in force: its simple text when it has one.
fn page_in_force(ui: &Ui, view: &TemplateView, locale: Locale, extras: Extras<'_>) -> Response {
    let simple = simple_text(view, locale);
    edit_page(
        ui,
        view.kind,
        view.channel,
        locale,
        simple.as_ref(),
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

fn frame_src_of(
    base: &str,
    locale: Locale,
    simple: Option<&SimpleMessage>,
    code: &TemplateParts,
    advanced: bool,
) -> String {
    match simple {
        Some(message) if !advanced => Draft::Simple(message.clone()).frame_src(base, locale),
        _ => Draft::Code(code.clone()).frame_src(base, locale),
    }
}

#[allow(clippy::too_many_arguments)]
fn edit_page(
    ui: &Ui,
    kind: Kind,
    channel: Channel,
    locale: Locale,
    simple: Option<&SimpleMessage>,
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
    let written_as_code = simple.is_none();
    let restart;
    let simple_shown = match simple {
        Some(m) => m,
        None => {
            restart = rappel_domain::template::simple::default_message(kind, channel, locale);
            &restart
        }
    };
    let has_subject = parts(channel).contains(&Part::Subject);
    let subject_label = if channel == Channel::Push {
        "Titre"
    } else {
        "Objet"
    };
    let fields: Vec<Field> = Field::ALL
        .iter()
        .copied()
        .filter(|f| f.available(kind, channel))
        .collect();
    let frame = frame_src_of(
        &base,
        locale,
        simple,
        sources,
        extras.advanced || written_as_code,
    );
    let content = html! {
        (flash(extras.ok))
        p {
            (format::channel(channel)) ", langue " (locale.as_str()) " — "
            @if customised { span.badge.info { "personnalisé par le cabinet" } } @else { span.badge { "texte par défaut" } }
        }
        @if !extras.errors.is_empty() {
            p.notice.error role="alert" { "Le modèle n'a pas été enregistré : corrigez l'erreur signalée." }
        }
        @if written_as_code && customised {
            p.notice { "Ce modèle a été écrit en code (mode avancé, plus bas). Le texte ci-dessous est le texte par défaut : l'enregistrer remplace le code du cabinet." }
        }
        div.editor {
            form.stack #modele method="post" action={(base) (query)}
                hx-post={(base) "/apercu" (query)} hx-trigger="input delay:400ms" hx-target="#apercu" hx-swap="innerHTML" {
                (ui.csrf_field())
                input type="hidden" name="mode" value="simple";
                @if has_subject {
                    label for="objet" { (subject_label) }
                    input #objet type="text" name="objet" value=(simple_shown.subject.as_deref().unwrap_or("")) data-fields-target
                        aria-invalid=[extras.errors.get("objet").map(|_| "true")]
                        aria-describedby=[extras.errors.get("objet").map(|_| "err-objet")];
                    @if let Some(error) = extras.errors.get("objet") {
                        span.error #err-objet role="alert" { (error) }
                    }
                }
                label for="corps" { "Message" }
                textarea #corps name="corps" rows="10" spellcheck="true" data-fields-target
                    aria-invalid=[extras.errors.get("corps").map(|_| "true")]
                    aria-describedby={"aide-champs" @if extras.errors.contains_key("corps") { " err-corps" }} {
                    (simple_shown.body)
                }
                @if let Some(error) = extras.errors.get("corps") {
                    span.error #err-corps role="alert" { (error) }
                }
                div.actions {
                    button type="submit" { "Enregistrer" }
                    button.secondary type="submit" formaction={(base) "/apercu" (query)} { "Aperçu" }
                }
                div.fields #aide-champs {
                    p { "Champs : tapez-les avec leurs accolades"
                        span.js-only hidden { ", ou cliquez pour les insérer à l'endroit du curseur" }
                        " ; ils sont remplacés à l'envoi." }
                    ul.fields {
                        @for field in &fields {
                            li {
                                button.field.secondary type="button" hidden data-insert=(field.token()) { (field.label()) }
                                code { (field.token()) }
                                " : " (field.help())
                            }
                        }
                    }
                    p.muted {
                        "Une ligne vide sépare deux paragraphes. Une ligne dont tous les champs sont vides pour un message (pas de consignes, pas de lieu…) n'est pas envoyée. "
                        @if channel == Channel::Email { "Le texte sert aussi à la version mise en page de l'email : les paragraphes sont conservés et les adresses web deviennent des liens." }
                    }
                    p.muted { "Un SMS ou une notification push ne contient jamais d'information de santé au-delà de la date, l'heure, le praticien et le lieu." }
                }
            }
            section #apercu aria-live="polite" {
                (preview_markup(extras.preview.as_deref(), &frame))
            }
        }
        details.advanced open[extras.advanced || (written_as_code && customised)] {
            summary { "Mode avancé (code des modèles)" }
            p.muted { "Le code des modèles (minijinja). Le modifier ici remplace le texte ci-dessus ; le texte simple n'est plus proposé ensuite que pour repartir du texte par défaut." }
            form.stack #modele-code method="post" action={(base) (query)}
                hx-post={(base) "/apercu" (query)} hx-trigger="input delay:400ms" hx-target="#apercu" hx-swap="innerHTML" {
                (ui.csrf_field())
                input type="hidden" name="mode" value="avance";
                @for part in parts(channel) {
                    @let name = part.as_str();
                    label for={"part-" (name)} { (part_label(*part)) }
                    textarea id={"part-" (name)} name=(name) rows=(if *part == Part::Subject { 2 } else { 10 }) spellcheck="false"
                        aria-invalid=[extras.errors.get(name).map(|_| "true")]
                        aria-describedby=[extras.errors.get(name).map(|_| format!("err-{name}"))] {
                        (source_of(*part))
                    }
                    @if let Some(error) = extras.errors.get(name) {
                        span.error id={"err-" (name)} role="alert" { (error) }
                    }
                }
                div.actions {
                    button type="submit" { "Enregistrer le code" }
                    button.secondary type="submit" formaction={(base) "/apercu" (query)} { "Aperçu du code" }
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
                }
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
        script src="/static/editor.js" defer {}
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

fn preview_markup(preview: Option<&[PreviewPart]>, frame_src: &str) -> Markup {
    html! {
        h2 { "Aperçu" }
        @match preview {
            None => p.muted { "Aperçu indisponible." },
            Some(parts) => {
                @for p in parts {
                    div.preview {
                        @let part = Part::parse(p.part);
                        h3 { @if part == Some(Part::Html) { "Email mis en page, tel que le patient le voit" } @else { (part.map(part_label).unwrap_or(p.part)) } }
                        @if let Some(error) = &p.error {
                            p.error role="alert" { (error_text(error.line, &error.reason)) }
                        } @else if part == Some(Part::Html) {
                            iframe.email-preview sandbox="" src=(frame_src) title="Aperçu de l'email mis en page" {}
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
    let draft = Draft::from_form(channel, &form);
    let base = format!("/modeles/{}/{}", kind.as_str(), channel.as_str());
    let frame = draft.frame_src(&base, locale);
    let (given, errors) = match draft.parts(kind, channel, locale) {
        Ok(given) => (Some(given), BTreeMap::new()),
        Err((field, reason)) => (None, BTreeMap::from([(field, reason)])),
    };
    let preview = match &given {
        Some(given) => match state
            .engine
            .preview_template(ui.practice_id(), kind, channel, locale, given)
            .await
        {
            Ok(p) => Some(p),
            Err(e) => return engine_error_page(&e),
        },
        None => None,
    };
    if headers.contains_key("hx-request") {
        return match (&preview, errors.values().next()) {
            (_, Some(error)) => html_page(html! {
                h2 { "Aperçu" }
                p.error role="alert" { (error) }
            }),
            (preview, None) => html_page(preview_markup(preview.as_deref(), &frame)),
        };
    }
    let view = state
        .engine
        .get_template(ui.practice_id(), kind, channel, locale)
        .await;
    let customised = view.as_ref().is_ok_and(|v| v.origin == "practice");
    let in_force = view.map(|v| v.parts).unwrap_or_default();
    let (simple, code, advanced) = match draft {
        Draft::Simple(m) => (Some(m), given.unwrap_or(in_force), false),
        Draft::Code(c) => (None, c, true),
    };
    let extras = Extras {
        preview,
        errors,
        advanced,
        ..Extras::default()
    };
    edit_page(
        &ui,
        kind,
        channel,
        locale,
        simple.as_ref(),
        &code,
        customised,
        extras,
    )
}

/// The email's HTML part of a draft, alone, for the preview frame: served with its own
/// Content-Security-Policy (inline styles as in an email, nothing else; a sandbox) and
/// framable by this origin only.
pub(crate) async fn preview_html(
    State(state): State<AppState>,
    ui: Ui,
    Path((kind, channel)): Path<(String, String)>,
    Query(form): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let Some((kind, channel)) = parse_target(&kind, &channel) else {
        return unknown_template();
    };
    let locale = locale_of(form.get("langue").map(String::as_str));
    let draft = Draft::from_form(channel, &form);
    let body = match draft.parts(kind, channel, locale) {
        Err((_, reason)) => html! { p { (reason) } }.into_string(),
        Ok(given) => match state
            .engine
            .preview_template(ui.practice_id(), kind, channel, locale, &given)
            .await
        {
            Err(e) => return engine_error_page(&e),
            Ok(parts) => {
                let html = parts.into_iter().find(|p| p.part == Part::Html.as_str());
                match html {
                    Some(PreviewPart {
                        output: Some(out), ..
                    }) => out,
                    Some(PreviewPart {
                        error: Some(error), ..
                    }) => html! { p { (error_text(error.line, &error.reason)) } }.into_string(),
                    _ => "<p>Ce message n'a pas de version mise en page.</p>".to_string(),
                }
            }
        },
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                 frame-ancestors 'self'; sandbox",
            ),
            (axum::http::header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        body,
    )
        .into_response()
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
    let draft = Draft::from_form(channel, &form);
    let engine = &state.engine;
    let simple_mode = matches!(draft, Draft::Simple(_));
    let mut errors = BTreeMap::new();
    let mut preview = None;
    let given = match draft.parts(kind, channel, locale) {
        Ok(given) => Some(given),
        Err((field, reason)) => {
            errors.insert(field, reason);
            None
        }
    };
    if let Some(given) = &given {
        let checked = match engine
            .preview_template(ui.practice_id(), kind, channel, locale, given)
            .await
        {
            Ok(p) => p,
            Err(e) => return engine_error_page(&e),
        };
        for p in &checked {
            if let (Some(error), Some(part)) = (&p.error, Part::parse(p.part)) {
                let key = if simple_mode {
                    if part == Part::Subject {
                        "objet"
                    } else {
                        "corps"
                    }
                } else {
                    part.as_str()
                };
                errors.insert(key, error_text(error.line, &error.reason));
            }
        }
        preview = Some(checked);
        if errors.is_empty() {
            match engine
                .put_template(ui.practice_id(), kind, channel, locale, given)
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
                    let key = if simple_mode {
                        if part == Part::Subject {
                            "objet"
                        } else {
                            "corps"
                        }
                    } else {
                        part.as_str()
                    };
                    errors.insert(key, error_text(line, &reason));
                }
                Err(e) => return engine_error_page(&e),
            }
        }
    }
    // Refused: what is in force is still what was there before, customised or not.
    let view = engine
        .get_template(ui.practice_id(), kind, channel, locale)
        .await;
    let customised = view.as_ref().is_ok_and(|v| v.origin == "practice");
    let in_force = view.map(|v| v.parts).unwrap_or_default();
    let (simple, code, advanced) = match draft {
        Draft::Simple(m) => (Some(m), given.unwrap_or(in_force), false),
        Draft::Code(c) => (None, c, true),
    };
    let extras = Extras {
        preview,
        errors,
        advanced,
        ..Extras::default()
    };
    edit_page(
        &ui,
        kind,
        channel,
        locale,
        simple.as_ref(),
        &code,
        customised,
        extras,
    )
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
    page_in_force(&ui, &view, locale, extras)
}
