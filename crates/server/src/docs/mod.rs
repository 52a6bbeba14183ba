//! The API's description: an OpenAPI 3.1 document (`/v1/openapi.json`) derived from the code, and
//! a plain HTML page rendered from it on the server (`/v1/docs`), with no script and nothing
//! fetched from elsewhere, so it works offline and inside a practice's locked-down network.
//!
//! Every API route is registered through `utoipa_axum`'s `OpenApiRouter` with `routes!(…)`
//! (`crate::api_routes`, `crate::public_routes`): the handler's `#[utoipa::path]` gives its path,
//! operation, parameters and answers, and the types give the schemas, so a route is served and
//! documented from one registration. What no handler carries is merged here ([`finish`]): the
//! `webhooks` section (requests Rappel makes), the 400/422/500 every operation of a kind can
//! answer, and the schemas of [`schemas`]. `tests/api/operations.rs` checks that every registered route,
//! the web interface's included, is in the document or one of its deliberate exclusions, and the
//! document is snapshotted (`snapshots/`), so any change to it is a reviewed diff.

mod page;
pub(crate) mod params;
pub(crate) mod responses;
pub(crate) mod schemas;
mod webhooks;

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};
use utoipa::OpenApi;

pub(crate) use page::__path_page;
pub(crate) use page::page;

/// What no single route says: the introduction, the tags, the security scheme and the shared
/// problem answers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rappel API",
        description = "Rappel sends a practice's patient messages (confirmations, reminders, \
            cancellations, documents) according to the practice's policy. Practice software \
            tells Rappel what happens — appointments booked, moved, cancelled; patients \
            created or changed — and Rappel plans, sends, and explains what it sent and why \
            not the rest.\n\nEvery `/v1` operation needs `Authorization: Bearer <API key>` and \
            sees only the key's practice: another practice's ids answer 404 like unknown \
            ids. Errors are `application/problem+json` (RFC 9457) with `type`, `title`, \
            `status`, `detail` and, when one field is at fault, `field`. No string of a JSON \
            body may hold a NUL character (U+0000): 422 naming its path. By default each API \
            key may send 50 requests per second with bursts of 100 (429 with `Retry-After` \
            above), and request bodies are at most 1 MiB (413 above).",
    ),
    servers((url = "/")),
    security(("bearerAuth" = [])),
    tags(
        (name = "Directory", description = "Practitioners, visit reasons and patients, created or replaced by their id in the practice software."),
        (name = "Events", description = "What happens in the practice's agenda."),
        (name = "Follow-up", description = "What was sent, what will be, and why not the rest."),
        (name = "Documents", description = "Documents sent to patients: the encrypted file, the patient's expiring link (birth date asked), the delivery history and the resend by post."),
        (name = "Settings", description = "The practice's options."),
        (name = "Tasks", description = "Scheduled tasks (the programmateur): batches that message the patients who missed an appointment, whose birthday it is, or who are due for a recall, at a set time and periodicity."),
        (name = "Templates", description = "The practice's own message texts (minijinja), their live preview, the test send, and the webhook that tells the practice software what became of each message."),
        (name = "Replies", description = "Two-way SMS: what patients answered by SMS that a person must read (the « Messages reçus » box), and their SMS opt-outs (STOP). Providers post incoming SMS to `/v1/webhooks/sms/{twilio|ovh|webhook}/inbound`, proven like their delivery reports; the keywords OUI/CONFIRME, ANNULER, STOP/ARRET and START are answered by SMS."),
        (name = "Webhooks", description = "What SMS providers, mail relays and email services post to Rappel: delivery reports, the SMS patients send back, bounces and email events. No API key: each caller proves itself by its signature or by an operator's token."),
        (name = "Operations", description = "Health, metrics and this documentation (no API key)."),
    ),
    // The problem every error answer carries, and the enumerations that parameters name (the
    // bodies' schemas are collected with the bodies).
    components(schemas(
        crate::error::Problem,
        rappel_domain::notification::Channel,
        rappel_domain::notification::Kind,
        rappel_domain::template::Locale,
        params::NotificationStatus,
        params::InboxBox,
        schemas::Choice,
    ), responses(
        responses::BadRequest,
        responses::Unauthorized,
        responses::NotFound,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::Unprocessable,
        responses::TooManyRequests,
        responses::InternalError,
    )),
    modifiers(&BearerAuth),
)]
pub(crate) struct ApiDoc;

/// The practice's API key, sent as a bearer token.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The practice's API key (`rpl_…`)."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}

#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "Operations",
    operation_id = "openapi",
    summary = "This document (OpenAPI 3.1)",
    security(),
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json")),
)]
pub(crate) async fn openapi() -> Json<Value> {
    Json(document().clone())
}

/// The OpenAPI document, built once.
pub(crate) fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let derived = serde_json::to_value(crate::registered_openapi()).unwrap_or_default();
        finish(derived)
    })
}

pub(crate) const METHODS: &[&str] = &["get", "put", "post", "patch", "delete"];

/// Merges into the derived document what no handler carries.
fn finish(mut doc: Value) -> Value {
    for (name, schema) in schemas::all() {
        let slot = &mut doc["components"]["schemas"][&name];
        // A hand schema only fills the placeholder of its marker type: it never replaces a
        // derived one (`hand_schemas_replace_only_placeholders` checks it).
        if slot.is_null() || *slot == placeholder() {
            *slot = schema;
        }
    }
    merge_strict_flattens(&mut doc);
    doc["webhooks"] = webhooks::all_webhooks();
    shared_answers(&mut doc);
    doc
}

/// A type that `#[serde(flatten)]`s one that refuses unknown fields (a task's answer flattens
/// its definition, `TaskDef`) is derived as `allOf` of the two, which no instance can satisfy:
/// the strict member's `additionalProperties: false` refuses the other's fields. Such a schema
/// becomes the one object serde writes: the members' properties and required fields together.
fn merge_strict_flattens(doc: &mut Value) {
    let Some(all) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let resolve = |schema: &Value| -> Option<Value> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => all
                .get(reference.trim_start_matches("#/components/schemas/"))
                .cloned(),
            None => Some(schema.clone()),
        }
    };
    for (name, schema) in &all {
        let Some(members) = schema.get("allOf").and_then(Value::as_array) else {
            continue;
        };
        let members: Vec<Value> = members.iter().filter_map(resolve).collect();
        let strict = members
            .iter()
            .any(|m| m.get("additionalProperties") == Some(&Value::Bool(false)));
        if !strict || members.iter().any(|m| m.get("properties").is_none()) {
            continue;
        }
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for member in &members {
            if let Some(p) = member["properties"].as_object() {
                properties.extend(p.clone());
            }
            if let Some(r) = member.get("required").and_then(Value::as_array) {
                required.extend(r.iter().cloned());
            }
        }
        let mut merged = json!({"type": "object", "properties": properties, "required": required});
        if let Some(description) = schema.get("description") {
            merged["description"] = description.clone();
        }
        doc["components"]["schemas"][name] = merged;
    }
}

/// What a marker type of [`schemas`] puts in the document before its schema is merged.
fn placeholder() -> Value {
    serde_json::to_value(<schemas::Patient as utoipa::PartialSchema>::schema()).unwrap_or_default()
}

/// Every operation with a path parameter can answer 400 (a parameter that is not valid
/// percent-encoded UTF-8) and, under `/v1`, 422 (an id of more than 128 characters or with
/// control characters, an unknown template kind or channel); every operation behind the API key
/// can answer 500. Added here once rather than in each operation, so that a new route cannot
/// forget them.
fn shared_answers(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let mut codes = Vec::new();
        if path.contains('{') {
            codes.push(("400", "BadRequest"));
            if path.starts_with("/v1/") {
                codes.push(("422", "Unprocessable"));
            }
        }
        for method in METHODS {
            let Some(op) = item.get_mut(*method) else {
                continue;
            };
            let public = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let internal = (!public).then_some(("500", "InternalError"));
            for (code, name) in codes.iter().copied().chain(internal) {
                responses
                    .entry(code)
                    .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(value: &'a Value, key: &str) -> &'a str {
        value.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    #[test]
    fn every_operation_has_an_id_a_summary_and_responses() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(*method) {
                    assert!(!text(op, "operationId").is_empty(), "{method} {path}");
                    assert!(!text(op, "summary").is_empty(), "{method} {path}");
                    assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(value: &Value, doc: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref") {
                        let pointer = reference.trim_start_matches('#');
                        assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(document(), document());
    }

    #[test]
    fn a_task_answer_accepts_its_read_only_members() {
        let task = &document()["components"]["schemas"]["Task"];
        assert!(task.get("allOf").is_none(), "{task}");
        for field in ["id", "type", "created_at", "next_run_at"] {
            assert!(task["properties"][field].is_object(), "{field}");
        }
        assert!(task.get("additionalProperties").is_none());
    }

    #[test]
    fn hand_schemas_replace_only_placeholders() {
        let derived = serde_json::to_value(crate::registered_openapi()).unwrap();
        for name in schemas::all().keys() {
            let slot = &derived["components"]["schemas"][name];
            assert!(
                slot.is_null() || *slot == placeholder(),
                "`{name}` is derived: remove its hand schema"
            );
        }
    }

    /// The document as served: any change to it shows here as a diff to review
    /// (`cargo insta review`, or `INSTA_UPDATE=always` to accept).
    #[test]
    fn the_document_is_the_reviewed_one() {
        let text = serde_json::to_string_pretty(document()).unwrap();
        insta::assert_snapshot!("openapi.json", text);
    }
}
