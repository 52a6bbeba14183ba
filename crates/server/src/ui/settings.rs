//! Paramètres: the preset's options as the seeds word them (locked ones checked and disabled),
//! quiet hours, SMS sender name, the logo, practitioners' alert contacts; and the users page.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rappel_domain::contact::Contact;
use rappel_domain::policy::{OptionKind, OptionSpec};
use rappel_domain::settings::{is_operator_setting, option_specs};
use rappel_domain::sms::SenderIdError;
use rappel_engine::{EngineError, Role};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Flash, Nav, Ui, encode_query, engine_error_page, flash, html_page, layout, see_other_with,
};
use crate::AppState;

pub(crate) async fn page(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<Flash>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    render(&state, &ui, &BTreeMap::new(), None, q.ok.as_deref()).await
}

/// The whole page; `entered` keeps what the user typed when something was refused.
async fn render(
    state: &AppState,
    ui: &Ui,
    errors: &BTreeMap<String, String>,
    entered: Option<&BTreeMap<String, String>>,
    ok: Option<&str>,
) -> Response {
    let practitioners = match state.engine.practitioners(ui.practice_id()).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let meter = match state.engine.sms_meter(ui.practice_id()).await {
        Ok(m) => m,
        Err(e) => return engine_error_page(&e),
    };
    let logo = match state.engine.logo(ui.practice_id()).await {
        Ok(logo) => logo,
        Err(e) => return engine_error_page(&e),
    };
    let specs = option_specs(&ui.practice.policy);
    let settings = &ui.practice.settings;
    // Behaviour options first (the seed's checkboxes), then the rest; each group by label.
    let mut behaviour: Vec<(&String, &OptionSpec)> = specs
        .iter()
        .filter(|(k, s)| s.kind == OptionKind::Bool && !is_common(k))
        .collect();
    behaviour.sort_by(|a, b| a.1.label.cmp(&b.1.label));
    let mut other: Vec<(&String, &OptionSpec)> = specs
        .iter()
        .filter(|(k, s)| s.kind != OptionKind::Bool && !is_common(k))
        .collect();
    other.sort_by(|a, b| a.1.label.cmp(&b.1.label));
    let common: Vec<(&String, &OptionSpec)> = specs.iter().filter(|(k, _)| is_common(k)).collect();
    let field = |key: &str, spec: &OptionSpec| -> Markup {
        // The plan and the SMS quota are the operator's: shown, not a form field.
        if is_operator_setting(key) {
            return operator_field(key, spec, settings.get(key));
        }
        let current = entered
            .and_then(|e| e.get(key).cloned())
            .unwrap_or_else(|| display_value(settings.get(key)));
        option_field(key, spec, &current, errors.get(key).map(String::as_str))
    };
    let content = html! {
        (flash(ok))
        @if errors.keys().any(|k| k != "logo" && !k.starts_with("praticien:")) {
            p.notice.error role="alert" #erreurs {
                "Rien n'a été enregistré : corrigez les champs signalés ci-dessous."
            }
        }
        p.muted {
            "Préréglage : " strong { (ui.practice.row.preset) } ". Fuseau horaire : " (ui.practice.row.timezone) ". "
            "Un changement s'applique aussitôt aux messages prévus : ceux qui ne doivent plus partir le disent, avec la raison."
        }
        form.stack method="post" action="/parametres" {
            (ui.csrf_field())
            // A preset without options of its own (Doctolib's rules are fixed) has no such box.
            @if !behaviour.is_empty() {
                fieldset {
                    legend { "Messages aux patients" }
                    @for (key, spec) in &behaviour { (field(key, spec)) }
                }
            }
            @if !other.is_empty() {
                fieldset {
                    legend { "Seuils et quotas" }
                    @for (key, spec) in &other { (field(key, spec)) }
                    @if let Some(quota) = meter.quota {
                        p.muted { "Ce mois-ci (" (meter.month) ") : " (meter.messages) " SMS sur " (quota) ", " (meter.segments) " segments." }
                    }
                }
            }
            fieldset {
                legend { "Horaires et expéditeur" }
                @for (key, spec) in &common { (field(key, spec)) }
                p.muted { "Plages au format HH:MM-HH:MM, par exemple 21:00-08:00 ; vide pour aucune." }
            }
            button type="submit" { "Enregistrer" }
        }
        section #logo {
            h2 { "Logo du cabinet" }
            p { "Affiché en tête des emails des rendez-vous pris par le secrétariat et des courriers. Il est redimensionné pour tenir dans 150 × 75 pixels." }
            @if let Some(logo) = &logo {
                figure {
                    img src={"/parametres/logo?v=" (logo.updated_at.as_millisecond())} alt="Logo actuel du cabinet" width=(logo.width) height=(logo.height);
                    figcaption.muted { "Logo actuel (" (logo.width) " × " (logo.height) " px)" }
                }
            } @else {
                p.muted { "Aucun logo pour l'instant." }
            }
            @if let Some(error) = errors.get("logo") {
                p.notice.error role="alert" #erreur-logo { (error) }
            }
            form.stack method="post" action="/parametres/logo" enctype="multipart/form-data" {
                (ui.csrf_field())
                label for="fichier-logo" { @if logo.is_some() { "Changer de logo" } @else { "Charger un logo" } " (PNG ou JPEG)" }
                input #fichier-logo type="file" name="logo" accept="image/png,image/jpeg" required
                    aria-describedby=[errors.get("logo").map(|_| "erreur-logo")];
                button type="submit" { "Envoyer le logo" }
            }
        }
        section #praticiens {
            h2 { "Alertes aux praticiens" }
            p { "Adresses auxquelles chaque praticien reçoit les alertes de rendez-vous, si les options ci-dessus les prévoient." }
            @if practitioners.is_empty() {
                p.muted { "Aucun praticien : votre logiciel de cabinet les transmet à Rappel." }
            }
            @for p in &practitioners {
                form.inline method="post" action={"/parametres/praticiens/" (encode_query(&p.id))} {
                    (ui.csrf_field())
                    strong { (p.name) }
                    @let error = errors.get(&format!("praticien:{}", p.id));
                    label for={"email-" (p.id)} { "Email" }
                    input id={"email-" (p.id)} type="email" name="email" value=[p.email.as_ref().map(ToString::to_string)];
                    label for={"mobile-" (p.id)} { "Mobile" }
                    input id={"mobile-" (p.id)} type="tel" name="mobile" value=[p.mobile.as_ref().map(ToString::to_string)];
                    button type="submit" { "Enregistrer" }
                    @if let Some(error) = error { span.error role="alert" { (error) } }
                }
            }
        }
        p { a href="/utilisateurs" { "Gérer les utilisateurs du cabinet →" } }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        html_page(layout(ui, Nav::Settings, "Paramètres", content)),
    )
        .into_response()
}

fn is_common(key: &str) -> bool {
    key.starts_with("quiet_hours_")
        || key == "sms_sender"
        || key == "show_motive_in_sms"
        || key == rappel_domain::settings::RETENTION_OPTION
}

fn display_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "on" } else { "" }.to_string(),
        Some(other) => other.to_string(),
    }
}

/// An option only the operator sets, as text with who to ask.
fn operator_field(key: &str, spec: &OptionSpec, value: Option<&Value>) -> Markup {
    let label = if spec.label.is_empty() {
        key
    } else {
        &spec.label
    };
    let shown = match value {
        // No quota is an unlimited one.
        None | Some(Value::Null) if key == "sms_quota_per_month" => "illimité".to_string(),
        None | Some(Value::Null) => "aucun".to_string(),
        Some(value) => display_value(Some(value)),
    };
    html! {
        div.field {
            span { (label) " : " strong { (shown) } }
            " " span.muted { "(fixé par l'opérateur de Rappel)" }
        }
    }
}

fn option_field(key: &str, spec: &OptionSpec, current: &str, error: Option<&str>) -> Markup {
    let id = format!("opt-{key}");
    let name = format!("opt.{key}");
    let error_id = format!("err-{key}");
    let label = if spec.label.is_empty() {
        key
    } else {
        &spec.label
    };
    html! {
        div.field {
            @match spec.kind {
                OptionKind::Bool => {
                    div.check {
                        input id=(id) type="checkbox" name=(name) value="on"
                            checked[spec.locked || current == "on" || current == "true"]
                            disabled[spec.locked];
                        label for=(id) {
                            (label)
                            @if spec.locked { " " span.muted { "(toujours actif)" } }
                        }
                    }
                }
                OptionKind::Choice => {
                    label for=(id) { (label) }
                    select id=(id) name=(name) {
                        @for choice in &spec.choices {
                            option value=(choice) selected[current == choice] { (choice) }
                        }
                    }
                }
                OptionKind::Integer | OptionKind::OptionalInteger => {
                    label for=(id) { (label) }
                    input id=(id) type="number" min="0" step="1" name=(name) value=(current)
                        required[spec.kind == OptionKind::Integer]
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| error_id.as_str())];
                }
                OptionKind::String | OptionKind::TimeRange => {
                    label for=(id) { (label) }
                    input id=(id) type="text" name=(name) value=(current)
                        pattern=[(spec.kind == OptionKind::TimeRange).then_some(r"(\d{2}:\d{2}-\d{2}:\d{2})?")]
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| error_id.as_str())];
                }
            }
            @if let Some(error) = error {
                span.error id=(error_id) role="alert" { (error) }
            }
        }
    }
}

/// Reads the form into a settings patch, with French errors per key.
fn parse_form(
    specs: &BTreeMap<String, OptionSpec>,
    form: &BTreeMap<String, String>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut patch = Map::new();
    let mut errors = BTreeMap::new();
    for (key, spec) in specs {
        if spec.locked || is_operator_setting(key) {
            continue;
        }
        let raw = form.get(&format!("opt.{key}")).map(|v| v.trim());
        let value = match spec.kind {
            OptionKind::Bool => Ok(Value::Bool(raw.is_some())),
            OptionKind::Integer => match raw.unwrap_or("").parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Value::from(n)),
                _ => Err("Entrez un nombre entier positif ou nul.".to_string()),
            },
            OptionKind::OptionalInteger => match raw.unwrap_or("") {
                "" => Ok(Value::Null),
                text => match text.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(Value::from(n)),
                    _ => Err("Entrez un nombre entier positif, ou laissez vide.".to_string()),
                },
            },
            OptionKind::Choice => match raw {
                Some(v) if spec.choices.iter().any(|c| c == v) => Ok(Value::from(v)),
                _ => Err(format!("Choisissez parmi : {}.", spec.choices.join(", "))),
            },
            OptionKind::TimeRange => {
                let text = raw.unwrap_or("");
                match rappel_domain::policy::parse_time_range(text) {
                    Ok(_) => Ok(Value::from(text)),
                    Err(_) => Err(
                        "Plage horaire attendue au format HH:MM-HH:MM (par exemple 21:00-08:00), ou vide."
                            .to_string(),
                    ),
                }
            }
            OptionKind::String => {
                let text = raw.unwrap_or("");
                if key == "sms_sender" {
                    match rappel_domain::sms::validate_sender_id(text) {
                        Ok(()) => match rappel_domain::sms::impersonated_name(text) {
                            None => Ok(Value::from(text)),
                            Some(_) => Err("Ce nom d'expéditeur imite un service public ou                                 une entreprise connue (Ameli, CPAM, impôts…) : choisissez le                                 nom du cabinet."
                                .to_string()),
                        },
                        Err(e) => Err(sender_error(&e)),
                    }
                } else {
                    Ok(Value::from(text))
                }
            }
        };
        match value {
            Ok(v) => {
                patch.insert(key.clone(), v);
            }
            Err(e) => {
                errors.insert(key.clone(), e);
            }
        }
    }
    (patch, errors)
}

fn sender_error(e: &SenderIdError) -> String {
    match e {
        SenderIdError::Length(n) => {
            format!("Le nom d'expéditeur doit faire de 3 à 11 caractères (il en a {n}).")
        }
        SenderIdError::InvalidCharacter(c) => format!(
            "Le nom d'expéditeur ne peut contenir que des lettres sans accent, des chiffres et des espaces (« {c} » refusé)."
        ),
        SenderIdError::EdgeSpace => {
            "Le nom d'expéditeur ne doit pas commencer ni finir par une espace.".to_string()
        }
        SenderIdError::NoLetter => {
            "Le nom d'expéditeur doit contenir au moins une lettre.".to_string()
        }
    }
}

pub(crate) async fn save(
    State(state): State<AppState>,
    ui: Ui,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let specs = option_specs(&ui.practice.policy);
    let (patch, errors) = parse_form(&specs, &form);
    let entered: BTreeMap<String, String> = specs
        .keys()
        .map(|k| {
            let v = form.get(&format!("opt.{k}")).cloned().unwrap_or_default();
            (k.clone(), v)
        })
        .collect();
    if !errors.is_empty() {
        return render(&state, &ui, &errors, Some(&entered), None).await;
    }
    match state.engine.update_settings(ui.practice_id(), &patch).await {
        Ok(_) => see_other_with("/parametres", "enregistre"),
        Err(EngineError::Invalid { field, reason }) => {
            let key = field
                .strip_prefix("settings.")
                .unwrap_or(&field)
                .to_string();
            let errors = BTreeMap::from([(key, reason)]);
            render(&state, &ui, &errors, Some(&entered), None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PractitionerForm {
    email: String,
    mobile: String,
}

pub(crate) async fn save_practitioner(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<PractitionerForm>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let mut practitioner = match state.engine.practitioner(ui.practice_id(), &id).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let email = form.email.trim();
    let mobile = form.mobile.trim();
    let checked = (|| {
        let email = (!email.is_empty())
            .then(|| rappel_domain::contact::EmailAddress::parse(email))
            .transpose()
            .map_err(|_| "Adresse email invalide.".to_string())?;
        let mobile = (!mobile.is_empty())
            .then(|| rappel_domain::contact::PhoneNumber::parse(mobile))
            .transpose()
            .map_err(|_| {
                "Numéro de téléphone invalide (un numéro français, ou au format +33…).".to_string()
            })?;
        Ok::<_, String>((email.map(Contact::Valid), mobile.map(Contact::Valid)))
    })();
    match checked {
        Ok((email, mobile)) => {
            practitioner.email = email;
            practitioner.mobile = mobile;
            match state
                .engine
                .put_practitioner(ui.practice_id(), &practitioner)
                .await
            {
                Ok(_) => see_other_with("/parametres#praticiens", "enregistre"),
                Err(e) => engine_error_page(&e),
            }
        }
        Err(message) => {
            let errors = BTreeMap::from([(format!("praticien:{id}"), message)]);
            render(&state, &ui, &errors, None, None).await
        }
    }
}

pub(crate) async fn logo(State(state): State<AppState>, ui: Ui) -> Response {
    match state.engine.logo(ui.practice_id()).await {
        Ok(Some(logo)) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            logo.png,
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn upload_logo(
    State(state): State<AppState>,
    ui: Ui,
    mut multipart: Multipart,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let mut csrf = None;
    let mut bytes = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("_csrf") => csrf = field.text().await.ok(),
                Some("logo") => bytes = field.bytes().await.ok(),
                _ => {}
            },
            Ok(None) => break,
            Err(_) => {
                let errors = BTreeMap::from([(
                    "logo".to_string(),
                    "Le fichier n'a pas pu être lu (trop volumineux ?). Le logo doit faire moins de 2 Mo."
                        .to_string(),
                )]);
                return render(&state, &ui, &errors, None, None).await;
            }
        }
    }
    if let Some(refused) = ui.csrf_mismatch(csrf.as_deref().unwrap_or("")) {
        return refused;
    }
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        let errors = BTreeMap::from([("logo".to_string(), "Choisissez un fichier.".to_string())]);
        return render(&state, &ui, &errors, None, None).await;
    };
    match state.engine.set_logo(ui.practice_id(), &bytes).await {
        Ok(_) => see_other_with("/parametres#logo", "logo"),
        Err(EngineError::Invalid { .. }) => {
            let errors = BTreeMap::from([(
                "logo".to_string(),
                "Image refusée : seuls les fichiers PNG ou JPEG de moins de 2 Mo et de 16 \
                 mégapixels au plus sont acceptés."
                    .to_string(),
            )]);
            render(&state, &ui, &errors, None, None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn users(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<Flash>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    users_page(&state, &ui, None, q.ok.as_deref()).await
}

async fn users_page(state: &AppState, ui: &Ui, error: Option<&str>, ok: Option<&str>) -> Response {
    let users = match state.engine.users(ui.practice_id()).await {
        Ok(users) => users,
        Err(e) => return engine_error_page(&e),
    };
    let content = html! {
        (flash(ok))
        table {
            thead { tr { th scope="col" { "Nom" } th scope="col" { "Email" } th scope="col" { "Rôle" } th scope="col" { span.sr { "Actions" } } } }
            tbody {
                @for user in &users {
                    tr {
                        td { (user.name) }
                        td { (user.email) }
                        td { (user.role.french()) }
                        td {
                            // Also how a locked account is opened again.
                            form.inline method="post" action={"/utilisateurs/" (encode_query(&user.id)) "/mot-de-passe"} {
                                (ui.csrf_field())
                                label for={"mdp-" (user.id)} { "Nouveau mot de passe" }
                                input id={"mdp-" (user.id)} type="password" name="password" autocomplete="new-password"
                                    required minlength=(rappel_engine::MIN_PASSWORD_CHARS);
                                button.secondary type="submit" { "Définir" }
                            }
                            @if user.id != ui.session.user.id {
                                // Deleting asks once more, without JavaScript: the button
                                // that deletes is behind « Supprimer… ».
                                details.confirm {
                                    summary aria-label={"Supprimer " (user.name)} { "Supprimer…" }
                                    form method="post" action={"/utilisateurs/" (encode_query(&user.id)) "/supprimer"} {
                                        (ui.csrf_field())
                                        p { "Supprimer le compte de " (user.name) " ? Ses sessions ouvertes prennent fin." }
                                        button.danger type="submit" { "Confirmer la suppression" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Ajouter un utilisateur" }
        @if let Some(error) = error {
            p.notice.error role="alert" { (error) }
        }
        form.stack method="post" action="/utilisateurs" {
            (ui.csrf_field())
            label for="u-name" { "Nom" }
            input #u-name type="text" name="name" required;
            label for="u-email" { "Email (identifiant de connexion)" }
            input #u-email type="email" name="email" required;
            label for="u-role" { "Rôle" }
            select #u-role name="role" {
                option value="secretariat" { "Secrétariat : consulte les messages, traite les boîtes" }
                option value="admin" { "Administrateur : modifie aussi paramètres, modèles et programmateur" }
            }
            label for="u-password" { "Mot de passe provisoire (" (rappel_engine::MIN_PASSWORD_CHARS) " caractères au moins)" }
            input #u-password type="password" name="password" autocomplete="new-password" required minlength=(rappel_engine::MIN_PASSWORD_CHARS);
            button type="submit" { "Créer l'utilisateur" }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (
        status,
        html_page(layout(
            ui,
            Nav::Settings,
            "Utilisateurs du cabinet",
            content,
        )),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct NewUser {
    name: String,
    email: String,
    role: String,
    password: String,
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    ui: Ui,
    Form(form): Form<NewUser>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let role = Role::parse(&form.role).unwrap_or(Role::Secretariat);
    match state
        .engine
        .create_user(
            ui.practice_id(),
            &form.email,
            &form.name,
            role,
            &form.password,
        )
        .await
    {
        Ok(_) => see_other_with("/utilisateurs", "utilisateur"),
        Err(EngineError::Invalid { field, .. }) => {
            let message = match field.as_str() {
                "email" => {
                    "Adresse email invalide, ou déjà utilisée par un autre compte.".to_string()
                }
                "name" => "Indiquez un nom.".to_string(),
                "password" => format!(
                    "Le mot de passe doit faire au moins {} caractères.",
                    rappel_engine::MIN_PASSWORD_CHARS
                ),
                other => format!("Valeur refusée : {other}."),
            };
            users_page(&state, &ui, Some(&message), None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

#[derive(Deserialize)]
pub(crate) struct NewPassword {
    password: String,
}

/// An admin sets a user's password, which also lifts a lock after wrong attempts.
pub(crate) async fn set_password(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<NewPassword>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    match state
        .engine
        .set_password(ui.practice_id(), &id, &form.password)
        .await
    {
        Ok(()) => see_other_with("/utilisateurs", "mot-de-passe"),
        Err(EngineError::Invalid { .. }) => {
            let message = format!(
                "Le mot de passe doit faire au moins {} caractères.",
                rappel_engine::MIN_PASSWORD_CHARS
            );
            users_page(&state, &ui, Some(&message), None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn delete_user(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    if id == ui.session.user.id {
        return users_page(
            &state,
            &ui,
            Some("Vous ne pouvez pas supprimer votre propre compte."),
            None,
        )
        .await;
    }
    match state.engine.delete_user(ui.practice_id(), &id).await {
        Ok(_) => see_other_with("/utilisateurs", "utilisateur-supprime"),
        Err(e) => engine_error_page(&e),
    }
}
