//! `/v1/docs`: the document as one HTML page, rendered on the server with maud (every value
//! escaped) like the web interface. No script runs and nothing is loaded from elsewhere, which
//! the Content-Security-Policy also tells the browser.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::{METHODS, document};
use crate::error::PROBLEM_TYPES;

#[utoipa::path(
    get,
    path = "/v1/docs",
    tag = "Operations",
    operation_id = "docs",
    summary = "This document as a web page",
    security(),
    responses((status = 200, description = "HTML.", content_type = "text/html")),
)]
pub(crate) async fn page() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let html = PAGE.get_or_init(|| render(document()).into_string());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on the page runs or loads: say so to the browser as well.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        html.clone(),
    )
        .into_response()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `backquoted` spans as code.
fn inline(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// Blank lines as paragraph breaks, `backquoted` spans as code.
fn paragraphs(text: &str) -> Markup {
    html! {
        @for paragraph in text.split("\n\n").filter(|p| !p.is_empty()) {
            p { (inline(paragraph)) }
        }
    }
}

/// A schema in a few words: a link to a named one, a type with its format and values.
fn schema_name(schema: &Value) -> Markup {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return html! { a href={ "#schema-" (name) } { (name) } };
    }
    for (key, joint) in [("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            return html! {
                @for (i, option) in options.iter().enumerate() {
                    @if i > 0 { (joint) }
                    (schema_name(option))
                }
            };
        }
    }
    if let Some(items) = schema.get("items") {
        return html! { "array of " (schema_name(items)) };
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => String::new(),
    };
    let constant = schema.get("const").map(Value::to_string);
    let format = schema.get("format").and_then(Value::as_str);
    let values: Vec<String> = schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect()
        })
        .unwrap_or_default();
    html! {
        @if let Some(constant) = constant {
            code { (constant) }
        } @else if kind.is_empty() {
            "any"
        } @else {
            (kind)
        }
        @if let Some(format) = format { " (" (format) ")" }
        @if !values.is_empty() {
            ": "
            @for (i, value) in values.iter().enumerate() {
                @if i > 0 { ", " }
                code { (value) }
            }
        }
    }
}

/// The schema of a request body or an answer: its first media type's.
fn content_schema(holder: &Value) -> Option<(&str, &Value)> {
    let (media, content) = holder.get("content")?.as_object()?.iter().next()?;
    Some((
        media.as_str(),
        content.get("schema").unwrap_or(&Value::Null),
    ))
}

fn operation(doc: &Value, path: &str, method: &str, op: &Value, shared: &[Value]) -> Markup {
    let public = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    let params: Vec<&Value> = shared
        .iter()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .collect();
    let responses = op.get("responses").and_then(Value::as_object);
    html! {
        section.op id=(text(op, "operationId")) {
            h3 { span class={ "verb " (method) } { (method.to_uppercase()) } " " code { (path) } }
            p.summary { (text(op, "summary")) }
            @if public { p.note { "No API key needed." } }
            (paragraphs(text(op, "description")))
            @if !params.is_empty() {
                h4 { "Parameters" }
                table {
                    tr { th { "Name" } th { "In" } th { "Type" } th { "Description" } }
                    @for p in &params {
                        tr {
                            td {
                                code { (text(p, "name")) }
                                @if p.get("required") == Some(&Value::Bool(true)) { " " small { "required" } }
                            }
                            td { (text(p, "in")) }
                            td { @if let Some(schema) = p.get("schema") { (schema_name(schema)) } }
                            td { (inline(text(p, "description"))) }
                        }
                    }
                }
            }
            @if let Some(body) = op.get("requestBody") {
                h4 { "Request body" }
                p {
                    @if let Some((media, schema)) = content_schema(body) {
                        (media) ": " (schema_name(schema)) ". "
                    }
                    (inline(text(body, "description")))
                }
                // A body described in place (not a named schema) lists its fields here.
                @if let Some((_, schema)) = content_schema(body) { (fields(schema)) }
            }
            @if let Some(responses) = responses {
                h4 { "Responses" }
                table {
                    tr { th { "Status" } th { "Meaning" } th { "Body" } }
                    @for (code, answer) in responses {
                        (response_row(doc, code, answer))
                    }
                }
            }
        }
    }
}

fn response_row(doc: &Value, code: &str, answer: &Value) -> Markup {
    let shared = answer
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| doc.pointer(reference.trim_start_matches('#')));
    let answer = shared.unwrap_or(answer);
    html! {
        tr {
            td { code { (code) } }
            td { (inline(text(answer, "description"))) }
            td {
                @if let Some((_, schema)) = content_schema(answer) {
                    @if !schema.is_null() { (schema_name(schema)) }
                }
            }
        }
    }
}

fn schema_section(name: &str, schema: &Value) -> Markup {
    let objects: Vec<&Value> = ["oneOf", "allOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array))
        .map(|list| list.iter().collect())
        .unwrap_or_else(|| vec![schema]);
    html! {
        section.schema id={ "schema-" (name) } {
            h3 { (name) }
            (paragraphs(text(schema, "description")))
            @for object in objects {
                @if !text(object, "title").is_empty() { h4 { code { (text(object, "title")) } } }
                (fields(object))
            }
        }
    }
}

/// An object schema's fields, as a table (nothing when it has none).
fn fields(object: &Value) -> Markup {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return html! {};
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        table {
            tr { th { "Field" } th { "Type" } th { "Description" } }
            @for (field, spec) in properties {
                tr {
                    td {
                        code { (field) }
                        @if required.contains(&field.as_str()) { " " small { "required" } }
                    }
                    td { (schema_name(spec)) }
                    td { (inline(text(spec, "description"))) }
                }
            }
        }
    }
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2430}\
h1{margin-bottom:0}h2{margin-top:2.5rem;border-bottom:2px solid #d8dee8}h3{margin:.2rem 0}\
.op,.schema{border:1px solid #d8dee8;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}\
.verb{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;font-size:.85rem;padding:.1rem .4rem}\
.get{background:#2f6f4f}.put{background:#8a5a00}.post{background:#1f5fa8}.patch{background:#6b4fa8}.delete{background:#a83232}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #e3e7ee;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f4f6f9}code{background:#f1f3f6;padding:0 .2rem;border-radius:3px}.summary{font-weight:600}.note{color:#5a6472}\
nav ul{columns:2}small{color:#8a5a00}";

/// The page: introduction, table of contents, operations by tag, problem types, schemas.
fn render(doc: &Value) -> Markup {
    let info = &doc["info"];
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    let tags: Vec<&Value> = doc["tags"].as_array().into_iter().flatten().collect();
    let operations = || {
        paths.iter().flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |method| Some((path.as_str(), *method, item, item.get(*method)?)))
        })
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (text(info, "title")) }
                style { (STYLE) }
            }
            body {
                h1 { (text(info, "title")) }
                p.note {
                    "Version " (text(info, "version")) " · "
                    a href="/v1/openapi.json" { "OpenAPI 3.1 document" }
                }
                (paragraphs(text(info, "description")))
                nav {
                    h2 { "Operations" }
                    ul {
                        @for (path, method, _, op) in operations() {
                            li {
                                a href={ "#" (text(op, "operationId")) } {
                                    code { (method.to_uppercase()) " " (path) }
                                }
                                " — " (text(op, "summary"))
                            }
                        }
                    }
                }
                @for tag in &tags {
                    h2 { (text(tag, "name")) }
                    (paragraphs(text(tag, "description")))
                    @for (path, method, item, op) in operations() {
                        @let tagged = op
                            .get("tags")
                            .and_then(Value::as_array)
                            .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(text(tag, "name"))));
                        @if tagged {
                            @let shared: Vec<Value> = item
                                .get("parameters")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default();
                            (operation(doc, path, method, op, &shared))
                        }
                    }
                }
                h2 { "Problem types" }
                p {
                    "Every error is " code { "application/problem+json" } "; its "
                    code { "type" } " points here."
                }
                table {
                    tr { th { "Type" } th { "Status" } th { "Title" } th { "When" } }
                    @for (slug, status, title, when) in PROBLEM_TYPES {
                        tr id={ "problem-" (slug) } {
                            td { code { "/v1/docs#problem-" (slug) } }
                            td { (status) }
                            td { (title) }
                            td { (inline(when)) }
                        }
                    }
                }
                h2 { "Schemas" }
                @if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
                    @for (name, schema) in schemas {
                        (schema_section(name, schema))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows() {
        assert_eq!(
            inline("<a href=\"x\">&</a>").into_string(),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(inline("use `x<y`").into_string(), "use <code>x&lt;y</code>");
        assert_eq!(
            paragraphs("one\n\ntwo").into_string(),
            "<p>one</p><p>two</p>"
        );
    }
}
