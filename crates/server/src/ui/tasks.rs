//! Programmateur: the practice's scheduled tasks (missed appointments, birthdays, recalls), a
//! form to create and edit them, who the next run would reach, and the run history.
//!
//! One page, one file (some 710 lines): the list, the form, the preview of the next run and the
//! history share the task's form and its French wording; what a task means is the domain's (`task`).

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rappel_domain::task::TaskDef;
use rappel_engine::EngineError;
use serde_json::{Map, Value, json};

use super::{
    Flash, Nav, Ui, encode_query, engine_error_page, flash, html_page, layout, see_other_with,
};
use crate::AppState;

const DAYS: [(&str, &str); 7] = [
    ("mon", "lundi"),
    ("tue", "mardi"),
    ("wed", "mercredi"),
    ("thu", "jeudi"),
    ("fri", "vendredi"),
    ("sat", "samedi"),
    ("sun", "dimanche"),
];

fn type_label(def: &TaskDef) -> &'static str {
    match serde_json::to_value(def.task_type)
        .ok()
        .as_ref()
        .and_then(Value::as_str)
    {
        Some("missed_appointments") => "Rendez-vous manqués",
        Some("birthdays") => "Anniversaires",
        Some("recall") => "Rappel de suivi",
        _ => "Tâche",
    }
}

fn schedule_words(def: &TaskDef) -> String {
    let time = def
        .time
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default();
    match (def.every.map(|e| serde_json::to_value(e).ok()), &def.cron) {
        (Some(Some(Value::String(e))), _) if e == "day" => format!("chaque jour à {time}"),
        (Some(Some(Value::String(e))), _) if e == "week" => {
            let days: Vec<&str> = def
                .days
                .iter()
                .filter_map(|d| DAYS.iter().find(|(k, _)| k == d).map(|(_, f)| *f))
                .collect();
            format!("chaque semaine, le {} à {time}", days.join(", "))
        }
        (Some(Some(Value::String(e))), _) if e == "month" => {
            format!("chaque mois, le {} à {time}", def.first_date.day())
        }
        (_, Some(cron)) => format!("expression cron « {cron} »"),
        _ => String::new(),
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ui: Ui,
    Query(q): Query<Flash>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let tasks = match state.engine.list_tasks(ui.practice_id()).await {
        Ok(t) => t,
        Err(e) => return engine_error_page(&e),
    };
    let content = html! {
        (flash(q.ok.as_deref()))
        p { "Les tâches programmées envoient un message à un groupe de patients : ceux qui ont manqué un rendez-vous, ceux dont c'est l'anniversaire, ceux à revoir." }
        p { a.button href="/programmateur/nouvelle" { "Nouvelle tâche" } }
        @if tasks.is_empty() {
            p.muted { "Aucune tâche programmée." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Tâche" }
                    th scope="col" { "Type" }
                    th scope="col" { "Quand" }
                    th scope="col" { "Canal" }
                    th scope="col" { "Prochaine exécution" }
                    th scope="col" { "État" }
                } }
                tbody {
                    @for t in &tasks {
                        tr {
                            td { a href={"/programmateur/" (encode_query(&t.definition.id))} { (if t.definition.label.is_empty() { &t.definition.id } else { &t.definition.label }) } }
                            td { (type_label(&t.definition)) }
                            td { (schedule_words(&t.definition)) }
                            td { (super::format::channel(t.definition.channel)) }
                            td { (t.next_run_at.as_deref().map(short).unwrap_or_else(|| "—".into())) }
                            td { @if t.definition.active { span.badge.delivered { "active" } } @else { span.badge { "en pause" } } }
                        }
                    }
                }
            }
        }
    };
    html_page(layout(&ui, Nav::Tasks, "Programmateur", content))
}

/// "2026-11-23T08:00:00+01:00" → "23/11/2026 à 08:00".
fn short(iso: &str) -> String {
    match (
        iso.get(0..4),
        iso.get(5..7),
        iso.get(8..10),
        iso.get(11..16),
    ) {
        (Some(y), Some(m), Some(d), Some(hm)) => format!("{d}/{m}/{y} à {hm}"),
        _ => iso.to_string(),
    }
}

pub(crate) async fn new_form(State(state): State<AppState>, ui: Ui) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let today = state.engine.now().to_zoned(ui.practice.tz.clone()).date();
    let mut form = BTreeMap::new();
    form.insert("type".to_string(), "missed_appointments".to_string());
    form.insert("first_date".to_string(), today.to_string());
    form.insert("every".to_string(), "day".to_string());
    form.insert("time".to_string(), "18:00".to_string());
    form.insert("range_from".to_string(), "-1".to_string());
    form.insert("range_to".to_string(), "-1".to_string());
    form.insert("channel".to_string(), "sms".to_string());
    form.insert("active".to_string(), "on".to_string());
    form.insert("exclude_later".to_string(), "on".to_string());
    task_form(&state, &ui, None, &form, &BTreeMap::new(), None).await
}

/// The form's fields from a stored definition.
fn form_of(def: &TaskDef) -> BTreeMap<String, String> {
    let value = serde_json::to_value(def).unwrap_or(Value::Null);
    let text = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut form = BTreeMap::new();
    form.insert("id".into(), def.id.clone());
    form.insert("label".into(), def.label.clone());
    form.insert("type".into(), text("type"));
    form.insert("first_date".into(), def.first_date.to_string());
    form.insert("every".into(), text("every"));
    form.insert("cron".into(), def.cron.clone().unwrap_or_default());
    form.insert("time".into(), text("time"));
    for d in &def.days {
        form.insert(format!("day.{d}"), "on".into());
    }
    if let Some([a, b]) = def.range {
        form.insert("range_from".into(), a.to_string());
        form.insert("range_to".into(), b.to_string());
    }
    for p in def.practitioners.iter().flatten() {
        form.insert(format!("praticien.{p}"), "on".into());
    }
    form.insert("channel".into(), def.channel.as_str().into());
    form.insert("template".into(), def.template.clone().unwrap_or_default());
    if def.exclude_patients_with_later_appointment {
        form.insert("exclude_later".into(), "on".into());
    }
    if def.exclude_patients_seen_since {
        form.insert("exclude_seen".into(), "on".into());
    }
    form.insert(
        "recall_months".into(),
        def.recall_months.map(|m| m.to_string()).unwrap_or_default(),
    );
    if def.active {
        form.insert("active".into(), "on".into());
    }
    form
}

/// A definition from the form's fields; errors name the field, in French.
fn definition(id: &str, form: &BTreeMap<String, String>) -> Result<TaskDef, (String, String)> {
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    let on = |k: &str| form.contains_key(k);
    let mut def = Map::new();
    def.insert("id".into(), json!(id));
    def.insert("label".into(), json!(get("label")));
    def.insert("type".into(), json!(get("type")));
    def.insert("first_date".into(), json!(get("first_date")));
    if get("every") == "cron" {
        def.insert("cron".into(), json!(get("cron")));
    } else {
        def.insert("every".into(), json!(get("every")));
        def.insert("time".into(), json!(get("time")));
        if get("every") == "week" {
            let days: Vec<&str> = DAYS
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| on(&format!("day.{k}")))
                .collect();
            def.insert("days".into(), json!(days));
        }
    }
    if get("type") == "missed_appointments" {
        let parse = |k: &str| {
            get(k).parse::<i32>().map_err(|_| {
                (
                    "range".to_string(),
                    "Indiquez la période en jours, par exemple -1 et -1 pour la veille."
                        .to_string(),
                )
            })
        };
        def.insert(
            "range".into(),
            json!([parse("range_from")?, parse("range_to")?]),
        );
    }
    // One checkbox per practitioner: `praticien.ID`.
    let practitioners: Vec<&str> = form
        .keys()
        .filter_map(|k| k.strip_prefix("praticien."))
        .filter(|p| !p.is_empty())
        .collect();
    if !practitioners.is_empty() {
        def.insert("practitioners".into(), json!(practitioners));
    }
    def.insert("channel".into(), json!(get("channel")));
    if !get("template").is_empty() {
        def.insert("template".into(), json!(get("template")));
    }
    def.insert(
        "exclude_patients_with_later_appointment".into(),
        json!(on("exclude_later")),
    );
    def.insert(
        "exclude_patients_seen_since".into(),
        json!(on("exclude_seen")),
    );
    if get("type") == "recall" && !get("recall_months").is_empty() {
        let months = get("recall_months").parse::<i32>().map_err(|_| {
            (
                "recall_months".to_string(),
                "Indiquez un nombre de mois.".to_string(),
            )
        })?;
        def.insert("recall_months".into(), json!(months));
    }
    def.insert("active".into(), json!(on("active")));
    let def: TaskDef = serde_json::from_value(Value::Object(def)).map_err(|e| {
        let text = e.to_string();
        let field = ["first_date", "time", "type", "channel", "every"]
            .into_iter()
            .find(|f| text.contains(f))
            .unwrap_or("type");
        (field.to_string(), format!("Valeur invalide ({text})."))
    })?;
    def.check().map_err(|e| {
        (
            e.field.to_string(),
            format!("Valeur refusée : {}.", e.reason),
        )
    })?;
    Ok(def)
}

/// A task id from its name: lower-case ASCII letters and digits joined by dashes (« Absences
/// de la veille » → `absences-de-la-veille`), `-2`, `-3`… when the practice has it already.
pub(crate) fn task_id(label: &str, taken: &[String]) -> String {
    let mut slug = String::new();
    for c in label.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
            'ç' => "c",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'î' | 'ï' | 'í' | 'ì' => "i",
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => "o",
            'ù' | 'û' | 'ü' | 'ú' => "u",
            'ÿ' | 'ý' => "y",
            'ñ' => "n",
            'œ' => "oe",
            'æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                slug.push(c);
                continue;
            }
            _ => "-",
        };
        slug.push_str(folded);
    }
    let mut base: String = slug
        .split('-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if base.len() > 48 {
        base.truncate(48);
        base = base.trim_end_matches('-').to_string();
    }
    if base.is_empty() {
        base = "tache".into();
    }
    let mut id = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| t == &id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

async fn task_form(
    state: &AppState,
    ui: &Ui,
    existing: Option<&str>,
    form: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    ok: Option<&str>,
) -> Response {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let on = |k: &str| form.contains_key(k);
    let known = match state.engine.practitioners(ui.practice_id()).await {
        Ok(found) => found,
        Err(e) => return engine_error_page(&e),
    };
    // The practice's practitioners by name, then any the task names that are not known (any
    // more): still listed, checked, so that saving keeps them.
    let mut choices: Vec<(String, String)> = known.into_iter().map(|p| (p.id, p.name)).collect();
    choices.sort_by_key(|a| a.1.to_lowercase());
    for key in form.keys() {
        if let Some(id) = key.strip_prefix("praticien.")
            && !choices.iter().any(|(known, _)| known == id)
        {
            choices.push((id.to_string(), format!("{id} (inconnu)")));
        }
    }
    let runs = match existing {
        Some(id) => match state.engine.task_runs(ui.practice_id(), id, 20).await {
            Ok(runs) => runs,
            Err(e) => return engine_error_page(&e),
        },
        None => Vec::new(),
    };
    let action = match existing {
        Some(id) => format!("/programmateur/{}", encode_query(id)),
        None => "/programmateur".to_string(),
    };
    let error = |k: &str| -> Markup {
        html! { @if let Some(e) = errors.get(k) { span.error id={"err-" (k)} role="alert" { (e) } } }
    };
    let invalid = |k: &str| errors.get(k).map(|_| "true");
    let described = |k: &str| errors.get(k).map(|_| format!("err-{k}"));
    let content = html! {
        (flash(ok))
        @if !errors.is_empty() {
            p.notice.error role="alert" { "La tâche n'a pas été enregistrée : corrigez les champs signalés." }
        }
        form.stack method="post" action=(action) {
            (ui.csrf_field())
            label for="label" { "Nom affiché" }
            input #label type="text" name="label" value=(get("label")) required aria-invalid=[invalid("label").or(invalid("id"))] aria-describedby=[described("label").or(described("id"))];
            (error("label"))
            (error("id"))
            label for="type" { "Type" }
            select #type name="type" aria-invalid=[invalid("type")] {
                option value="missed_appointments" selected[get("type") == "missed_appointments"] { "Rendez-vous manqués (absences)" }
                option value="birthdays" selected[get("type") == "birthdays"] { "Anniversaires" }
                option value="recall" selected[get("type") == "recall"] { "Rappel de suivi (patients à revoir)" }
            }
            (error("type"))
            label for="first_date" { "Première exécution le" }
            input #first_date type="date" name="first_date" value=(get("first_date")) required aria-invalid=[invalid("first_date")] aria-describedby=[described("first_date")];
            (error("first_date"))
            fieldset {
                legend { "Périodicité" }
                label for="every" { "Fréquence" }
                select #every name="every" aria-invalid=[invalid("every")] {
                    option value="day" selected[get("every") == "day"] { "Chaque jour" }
                    option value="week" selected[get("every") == "week"] { "Chaque semaine" }
                    option value="month" selected[get("every") == "month"] { "Chaque mois (le jour de la première exécution)" }
                    option value="cron" selected[get("every") == "cron" || !get("cron").is_empty()] { "Expression cron (avancé)" }
                }
                (error("every"))
                label for="time" { "Heure" }
                input #time type="time" name="time" value=(get("time")) aria-invalid=[invalid("time")] aria-describedby=[described("time")];
                (error("time"))
                p.label { "Jours (tâche hebdomadaire)" }
                div.days {
                    @for (key, name) in DAYS {
                        span.check {
                            input id={"day-" (key)} type="checkbox" name={"day." (key)} checked[on(&format!("day.{key}"))];
                            label for={"day-" (key)} { (name) }
                        }
                    }
                }
                (error("days"))
                label for="cron" { "Expression cron (minute heure jour mois jour-de-semaine)" }
                input #cron type="text" name="cron" value=(get("cron")) placeholder="30 8 * * mon-fri" aria-invalid=[invalid("cron")] aria-describedby=[described("cron")];
                (error("cron"))
            }
            fieldset {
                legend { "Patients concernés" }
                p.label { "Rendez-vous manqués : période, en jours par rapport au jour de l'exécution" }
                div.inline {
                    label for="range_from" { "du jour" }
                    input #range_from type="number" name="range_from" value=(get("range_from")) max="0";
                    label for="range_to" { "au jour" }
                    input #range_to type="number" name="range_to" value=(get("range_to")) max="0";
                }
                (error("range"))
                label for="recall_months" { "Rappel de suivi : patients dont le dernier rendez-vous remonte à (mois)" }
                input #recall_months type="number" name="recall_months" min="1" value=(get("recall_months"));
                (error("recall_months"))
                fieldset.practitioners {
                    legend { "Praticiens (aucun coché : tous)" }
                    @if choices.is_empty() {
                        p.muted { "Aucun praticien connu pour l'instant : la tâche concerne tous les praticiens." }
                    }
                    @for (id, name) in &choices {
                        div.check {
                            input id={"praticien-" (id)} type="checkbox" name={"praticien." (id)} checked[on(&format!("praticien.{id}"))];
                            label for={"praticien-" (id)} { (name) }
                        }
                    }
                    (error("practitioners"))
                }
                div.check {
                    input #exclude_later type="checkbox" name="exclude_later" checked[on("exclude_later")];
                    label for="exclude_later" { "Exclure les patients qui ont déjà un rendez-vous à venir" }
                }
                div.check {
                    input #exclude_seen type="checkbox" name="exclude_seen" checked[on("exclude_seen")];
                    label for="exclude_seen" { "Exclure les patients revus depuis" }
                }
            }
            label for="channel" { "Canal" }
            select #channel name="channel" aria-invalid=[invalid("channel")] {
                option value="sms" selected[get("channel") == "sms"] { "SMS" }
                option value="email" selected[get("channel") == "email"] { "Email" }
            }
            (error("channel"))
            label for="template" { "Texte du message (vide : texte par défaut du type de tâche)" }
            textarea #template name="template" rows="4" { (get("template")) }
            (error("template"))
            div.check {
                input #active type="checkbox" name="active" checked[on("active")];
                label for="active" { "Tâche active" }
            }
            button type="submit" { "Enregistrer" }
        }
        @if let Some(id) = existing {
            p { a.button href={"/programmateur/" (encode_query(id)) "/apercu"} { "Voir qui recevrait le message à la prochaine exécution" } }
            details.confirm {
                summary { "Supprimer la tâche…" }
                form method="post" action={"/programmateur/" (encode_query(id)) "/supprimer"} {
                    (ui.csrf_field())
                    p { "La tâche ne s'exécutera plus ; l'historique de ses envois reste consultable dans « Envoyés »." }
                    button.danger type="submit" { "Confirmer la suppression" }
                }
            }
            h2 { "Historique des exécutions" }
            @if runs.is_empty() {
                p.muted { "Pas encore exécutée." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Exécution" }
                        th scope="col" { "Patients trouvés" }
                        th scope="col" { "Messages" }
                        th scope="col" { "Envoyés" }
                        th scope="col" { "En attente" }
                        th scope="col" { "Échecs" }
                        th scope="col" { "Écartés" }
                    } }
                    tbody {
                        @for run in &runs {
                            tr {
                                td { (short(&run.started_at)) @if run.late { " " span.badge.failed { "en retard" } } }
                                td { (run.matched) }
                                td { (run.queued) }
                                td { (run.sent) }
                                td { (run.pending) }
                                td { (run.failed) }
                                td {
                                    @for (reason, n) in &run.skipped {
                                        (n) " × " (rappel_domain::notification::Reason::parse(reason).map(|r| r.french()).unwrap_or(reason)) br;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = match existing {
        Some(_) => "Modifier la tâche",
        None => "Nouvelle tâche",
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, html_page(layout(ui, Nav::Tasks, title, content))).into_response()
}

pub(crate) async fn create(
    State(state): State<AppState>,
    ui: Ui,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let label = form.get("label").map(|s| s.trim()).unwrap_or_default();
    if label.is_empty() {
        let errors = BTreeMap::from([(
            "label".to_string(),
            "Donnez un nom à la tâche (par exemple « Absences de la veille »).".to_string(),
        )]);
        return task_form(&state, &ui, None, &form, &errors, None).await;
    }
    // The id is made from the name, unique among the practice's tasks.
    let taken: Vec<String> = match state.engine.list_tasks(ui.practice_id()).await {
        Ok(tasks) => tasks.into_iter().map(|t| t.definition.id).collect(),
        Err(e) => return engine_error_page(&e),
    };
    let id = task_id(label, &taken);
    let def = match definition(&id, &form) {
        Ok(def) => def,
        Err((field, message)) => {
            return task_form(
                &state,
                &ui,
                None,
                &form,
                &BTreeMap::from([(field, message)]),
                None,
            )
            .await;
        }
    };
    match state.engine.create_task(ui.practice_id(), &def).await {
        Ok(_) => see_other_with(&format!("/programmateur/{}", encode_query(&id)), "tache"),
        Err(EngineError::Invalid { field, reason }) => {
            let errors = BTreeMap::from([(field, format!("Valeur refusée : {reason}."))]);
            task_form(&state, &ui, None, &form, &errors, None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(q): Query<Flash>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let task = match state.engine.get_task(ui.practice_id(), &id).await {
        Ok(t) => t,
        Err(e) => return engine_error_page(&e),
    };
    let form = form_of(&task.definition);
    task_form(
        &state,
        &ui,
        Some(&id),
        &form,
        &BTreeMap::new(),
        q.ok.as_deref(),
    )
    .await
}

pub(crate) async fn save(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    if let Err(e) = state.engine.get_task(ui.practice_id(), &id).await {
        return engine_error_page(&e);
    }
    let def = match definition(&id, &form) {
        Ok(def) => def,
        Err((field, message)) => {
            return task_form(
                &state,
                &ui,
                Some(&id),
                &form,
                &BTreeMap::from([(field, message)]),
                None,
            )
            .await;
        }
    };
    match state.engine.put_task(ui.practice_id(), &def).await {
        Ok(()) => see_other_with(&format!("/programmateur/{}", encode_query(&id)), "tache"),
        Err(EngineError::Invalid { field, reason }) => {
            let errors = BTreeMap::from([(field, format!("Valeur refusée : {reason}."))]);
            task_form(&state, &ui, Some(&id), &form, &errors, None).await
        }
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    match state.engine.delete_task(ui.practice_id(), &id).await {
        Ok(()) => see_other_with("/programmateur", "tache-supprimee"),
        Err(e) => engine_error_page(&e),
    }
}

pub(crate) async fn preview(
    State(state): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = ui.unless_admin() {
        return refused;
    }
    let preview = match state.engine.preview_task(ui.practice_id(), &id).await {
        Ok(p) => p,
        Err(e) => return engine_error_page(&e),
    };
    let content = html! {
        p { "Prochaine exécution : " strong { (short(&preview.at)) } ". "
            (super::format::count(preview.matched, "patient trouvé", "patients trouvés")) ", "
            @match preview.recipients.len() {
                0 => "aucun ne recevrait le message.",
                1 => "1 recevrait le message.",
                n => { (n) " recevraient le message." }
            }
        }
        h2 { "Destinataires" }
        @if preview.recipients.is_empty() {
            p.muted { "Personne pour l'instant." }
        } @else {
            table {
                thead { tr { th scope="col" { "Patient" } th scope="col" { "Envoi" } th scope="col" { "Message" } } }
                tbody {
                    @for r in &preview.recipients {
                        tr {
                            td { a href={"/patients/" (encode_query(&r.patient))} { (r.name) } }
                            td { (short(&r.send_at)) }
                            td { pre.message { (r.message.text) } }
                        }
                    }
                }
            }
        }
        h2 { "Écartés" }
        @if preview.skipped.is_empty() {
            p.muted { "Aucun." }
        } @else {
            ul {
                @for s in &preview.skipped {
                    li { a href={"/patients/" (encode_query(&s.patient))} { (s.patient) } " — " (s.explanation) }
                }
            }
        }
        p { a href={"/programmateur/" (encode_query(&id))} { "← Retour à la tâche" } }
    };
    html_page(layout(
        &ui,
        Nav::Tasks,
        "Aperçu de la prochaine exécution",
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::task_id;

    #[test]
    fn a_task_id_is_made_from_its_name_and_unique() {
        assert_eq!(
            task_id("Absences de la veille", &[]),
            "absences-de-la-veille"
        );
        assert_eq!(
            task_id("  Œuvre d'été : rappel !", &[]),
            "oeuvre-d-ete-rappel"
        );
        assert_eq!(task_id("***", &[]), "tache");
        let taken = vec!["rappel".to_string(), "rappel-2".to_string()];
        assert_eq!(task_id("Rappel", &taken), "rappel-3");
        assert!(task_id(&"x".repeat(200), &[]).len() <= 48);
    }
}
