//! The API's description: a hand-written OpenAPI 3.1 document (`/v1/openapi.json`) and a plain
//! HTML page rendered from it on the server (`/v1/docs`), with no script and nothing fetched
//! from elsewhere, so it works offline and inside a practice's locked-down network.
//!
//! Written by hand rather than derived from the handlers: the document is a promise to
//! integrators, and a test checks that every route the router serves is in it.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rappel_domain::event::EVENT_TYPES;
use serde_json::{Map, Value, json};

use crate::error::PROBLEM_TYPES;

pub(crate) async fn openapi() -> Json<Value> {
    Json(document().clone())
}

pub(crate) async fn page() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let html = PAGE.get_or_init(|| render(document()));
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

/// The OpenAPI document, built once.
pub(crate) fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rappel API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Rappel sends a practice's patient messages (confirmations, reminders, \
                cancellations, documents) according to the practice's policy. Practice software \
                tells Rappel what happens — appointments booked, moved, cancelled; patients \
                created or changed — and Rappel plans, sends, and explains what it sent and why \
                not the rest.\n\nEvery `/v1` operation needs `Authorization: Bearer <API key>` and \
                sees only the key's practice: another practice's ids answer 404 like unknown \
                ids. Errors are `application/problem+json` (RFC 9457) with `type`, `title`, \
                `status`, `detail` and, when one field is at fault, `field`. No string of a JSON \
                body may hold a NUL character (U+0000): 422 naming its path. By default each API \
                key may send 50 requests per second with bursts of 100 (429 with `Retry-After` \
                above), and request bodies are at most 1 MiB (413 above)."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "Directory", "description": "Practitioners, visit reasons and patients, created or replaced by their id in the practice software."},
            {"name": "Events", "description": "What happens in the practice's agenda."},
            {"name": "Follow-up", "description": "What was sent, what will be, and why not the rest."},
            {"name": "Documents", "description": "Documents sent to patients: the encrypted file, the patient's expiring link (birth date asked), the delivery history and the resend by post."},
            {"name": "Settings", "description": "The practice's options."},
            {"name": "Tasks", "description": "Scheduled tasks (the programmateur): batches that message the patients who missed an appointment, whose birthday it is, or who are due for a recall, at a set time and periodicity."},
            {"name": "Templates", "description": "The practice's own message texts (minijinja), their live preview, the test send, and the webhook that tells the practice software what became of each message."},
            {"name": "Replies", "description": "Two-way SMS: what patients answered by SMS that a person must read (the « Messages reçus » box), and their SMS opt-outs (STOP). Providers post incoming SMS to `/v1/webhooks/sms/{twilio|ovh|webhook}/inbound`, proven like their delivery reports; the keywords OUI/CONFIRME, ANNULER, STOP/ARRET and START are answered by SMS."},
            {"name": "Operations", "description": "Health, metrics and this documentation (no API key)."}
        ],
        "paths": paths(),
        "webhooks": all_webhooks(),
        "components": components(),
    });
    document_path_parameters(&mut doc);
    doc
}

/// An R4 `Appointment` as `GET /v1/appointments/{id}` gives it (one `json!` would exceed the
/// macro's recursion limit inside the path's document).
fn fhir_appointment_example() -> Value {
    json!({
        "resourceType": "Appointment", "id": "a1",
        "identifier": [{"system": "urn:rappel:cab1:appointment", "value": "a1"}],
        "status": "booked", "start": "2026-03-05T09:00:00Z", "end": "2026-03-05T09:30:00Z",
        "minutesDuration": 30, "created": "2026-03-02T07:00:00Z",
        "participant": [
            {"actor": {"type": "Patient", "reference": "Patient/p1", "identifier": {"system": "urn:rappel:cab1:patient", "value": "p1"}}, "required": "required", "status": "accepted"},
            {"actor": {"type": "Practitioner", "reference": "Practitioner/dr1", "identifier": {"system": "urn:rappel:cab1:practitioner", "value": "dr1"}, "display": "Dr Martin"}, "required": "required", "status": "accepted"}
        ]
    })
}

/// The events Rappel posts to the practice's endpoint when a patient answers (issue 16), signed
/// like every other event (Standard Webhooks).
/// The outbound webhook events: the patient's answers through a link and through SMS.
fn all_webhooks() -> Value {
    let mut all = answer_webhooks();
    if let (Some(all), Value::Object(two_way)) = (all.as_object_mut(), two_way_webhooks()) {
        all.extend(two_way);
    }
    all
}

fn answer_webhooks() -> Value {
    let event = |name: &str, summary: &str, description: &str, data: Value, example: Value| {
        json!({
            "post": {
                "operationId": format!("webhook_{}", name.replace('.', "_")),
                "summary": summary,
                "description": description,
                "security": [],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {
                        "schema": {
                            "type": "object", "required": ["type", "timestamp", "data"],
                            "properties": {
                                "type": {"const": name},
                                "timestamp": {"type": "string", "format": "date-time", "description": "When the event was queued."},
                                "data": data
                            }
                        },
                        "example": example
                    }}
                },
                "responses": {"2XX": {"description": "Delivered. 408, 429, 5xx and network errors are retried for 24 hours; any other answer fails the event."}}
            }
        })
    };
    let common = |extra: Value| {
        let mut properties = json!({
            "appointment": {"type": "string", "description": "The appointment's id."},
            "patient": {"type": "string", "description": "The patient's id."},
            "start": {"type": "string", "format": "date-time", "description": "The start the patient answered about."},
            "channel": {"type": "string", "enum": ["link", "sms"], "description": "The page behind a message's link, or an SMS reply."},
            "at": {"type": "string", "format": "date-time", "description": "When the patient answered."}
        });
        if let (Some(map), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        json!({"type": "object", "required": ["appointment", "patient", "start", "channel", "at"], "properties": properties})
    };
    json!({
        "appointment.confirmed_by_patient": event(
            "appointment.confirmed_by_patient",
            "The patient confirmed they will come",
            "Once per appointment and start: confirming again is not news, confirming after a move is. The appointment itself is unchanged.",
            common(json!({})),
            json!({"type": "appointment.confirmed_by_patient", "timestamp": "2026-03-04T12:00:01Z",
                   "data": {"appointment": "a1", "patient": "p1", "start": "2026-03-05T09:00:00Z", "channel": "sms", "at": "2026-03-04T12:00:00Z"}})
        ),
        "appointment.cancel_requested": event(
            "appointment.cancel_requested",
            "The patient cancelled the appointment",
            "Sent when a patient cancels before the practice's `patient_cancel_cutoff_hours`: Rappel has applied `appointment.cancelled` with `by = \"patient\"` (its plan follows) and tells the practice software, which owns the agenda, to free the slot. Once per appointment; a cancellation refused after the cutoff sends nothing.",
            common(json!({"by": {"const": "patient"}})),
            json!({"type": "appointment.cancel_requested", "timestamp": "2026-03-04T12:00:01Z",
                   "data": {"appointment": "a1", "patient": "p1", "start": "2026-03-05T09:00:00Z", "by": "patient", "channel": "link", "at": "2026-03-04T12:00:00Z"}})
        )
    })
}

/// Every operation with a path parameter can answer 400 (a parameter that is not valid
/// percent-encoded UTF-8) and, under `/v1`, 422 (an id of more than 128 characters or with
/// control characters, an unknown template kind or channel). Added here once rather than in
/// each operation, so that a new route cannot forget them.
fn document_path_parameters(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.contains('{') {
            continue;
        }
        let mut codes = vec![(400, "BadRequest")];
        if path.starts_with("/v1/") {
            codes.push((422, "Unprocessable"));
        }
        for method in METHODS {
            let Some(responses) = item
                .get_mut(*method)
                .and_then(|op| op.get_mut("responses"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (code, name) in &codes {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
            }
        }
    }
}

fn id_param(what: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("The {what}'s id in the practice software (1 to 128 characters, no control characters)."),
        "schema": id_schema()
    })
}

/// An id chosen by the practice software, as `validate::id` checks it: Rust's `char::is_control`
/// is Unicode's Cc category, C0, DEL and C1.
fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"})
}

/// `schema` with a description.
fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

/// A name that must not be blank: at least one character that is not Unicode White_Space (what
/// Rust's `str::trim` removes), listed rather than `\S`, whose meaning varies between regex
/// engines.
fn non_blank(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]",
        "description": description,
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn json_body(schema: &str, description: &str) -> Value {
    json!({
        "required": true,
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn problems(codes: &[u16]) -> Map<String, Value> {
    codes
        .iter()
        .map(|code| {
            let name = match code {
                400 => "BadRequest",
                401 => "Unauthorized",
                404 => "NotFound",
                413 => "PayloadTooLarge",
                415 => "UnsupportedMediaType",
                422 => "Unprocessable",
                429 => "TooManyRequests",
                _ => "InternalError",
            };
            (
                code.to_string(),
                json!({"$ref": format!("#/components/responses/{name}")}),
            )
        })
        .collect()
}

fn responses(success: &[(u16, Value)], errors: &[u16]) -> Value {
    let mut all = problems(errors);
    for (code, answer) in success {
        all.insert(code.to_string(), answer.clone());
    }
    all.insert(
        "500".into(),
        json!({"$ref": "#/components/responses/InternalError"}),
    );
    Value::Object(all)
}

/// A create-or-replace pair (`GET` and `PUT`) for one kind of directory resource.
fn directory(what: &str, schema: &str, put_description: &str) -> Value {
    json!({
        "parameters": [id_param(what)],
        "get": {
            "tags": ["Directory"],
            "operationId": format!("get{schema}"),
            "summary": format!("Read a {what}"),
            "responses": responses(&[(200, ok(&format!("The {what}."), schema))], &[401, 404, 429]),
        },
        "put": {
            "tags": ["Directory"],
            "operationId": format!("put{schema}"),
            "summary": format!("Create or replace a {what}"),
            "description": put_description,
            "requestBody": json_body(schema, &format!("The whole {what}; `id` may be left out and must equal the path's otherwise.")),
            "responses": responses(
                &[
                    (201, json!({
                        "description": format!("Created; `Location` names the new {what}."),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
                    })),
                    (200, ok(&format!("Replaced, or unchanged when it was the same; the stored {what}."), schema)),
                ],
                &[400, 401, 413, 415, 422, 429],
            ),
        }
    })
}

fn paths() -> Value {
    let mut paths = Map::new();
    paths.insert(
        "/v1/practitioners/{id}".into(),
        directory(
            "practitioner",
            "Practitioner",
            "Practitioner alerts go to the contacts given. `email` and `mobile` are checked \
             strictly (422 naming the field).",
        ),
    );
    paths.insert(
        "/v1/motives/{id}".into(),
        directory(
            "visit reason",
            "Motive",
            "`notifications: false` silences every patient message about appointments for \
             this reason; changing it re-plans open appointments.",
        ),
    );
    let mut patient = directory(
        "patient",
        "Patient",
        "Contacts are checked strictly and stored in normal form: `email` must be an address a \
         mail server accepts; `mobile` must be a phone number (a landline is accepted, and \
         SMS to it are then reported as `invalid_mobile`); `address` must fit a window \
         envelope; `birth_date` is `YYYY-MM-DD`. A 422 names the field (`mobile`, \
         `address.postal_code`…). Blank strings and null mean none. The patient's messages are \
         re-planned at once. An erased patient's id cannot be used again (422).",
    );
    patient["delete"] = json!({
        "tags": ["Directory"],
        "operationId": "erasePatient",
        "summary": "Erase a patient (GDPR)",
        "description": "Removes the patient's personal data and documents and cancels their \
            pending messages (they show as suppressed with reason `patient_erased`). The id is \
            kept so that nothing is recorded again under it. Erasing twice is harmless.",
        "responses": responses(&[(204, json!({"description": "Erased."}))], &[401, 404, 429]),
    });
    paths.insert("/v1/patients/{id}".into(), patient);
    paths.insert(
        "/v1/patients/{id}/push-subscriptions".into(),
        json!({
            "parameters": [id_param("patient")],
            "put": {
                "tags": ["Directory"],
                "operationId": "putPushSubscription",
                "summary": "Record a browser's Web Push subscription for a patient",
                "description": "The body is the browser's `PushSubscription.toJSON()`, as the \
                    practice's web page receives it from `pushManager.subscribe` (with the \
                    server's VAPID public key). `endpoint` must be an https URL to a public \
                    address (the webhook URL's check); `keys.p256dh` a P-256 public key (65 bytes, uncompressed) and \
                    `keys.auth` a 16-byte secret, both base64url (422 naming the field \
                    otherwise). A subscription with the same endpoint is replaced. The patient's \
                    messages are re-planned at once; push messages go to the first subscription. \
                    A subscription the push service reports gone (404, 410) is removed by itself.",
                "requestBody": json_body("PushSubscription", "The subscription."),
                "responses": responses(
                    &[
                        (201, ok("Added; the subscription as stored.", "PushSubscription")),
                        (200, ok("Replaced, or unchanged; the subscription as stored.", "PushSubscription")),
                    ],
                    &[400, 401, 404, 413, 415, 422, 429],
                ),
            },
            "delete": {
                "tags": ["Directory"],
                "operationId": "deletePushSubscription",
                "summary": "Remove a patient's Web Push subscription",
                "description": "The browser unsubscribed. The patient's messages are re-planned.",
                "parameters": [{
                    "name": "endpoint", "in": "query", "required": true,
                    "description": "The subscription's endpoint (https), URL-encoded.",
                    "schema": {"type": "string", "pattern": "^https://"}
                }],
                "responses": responses(&[(204, json!({"description": "Removed."}))], &[401, 404, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/patients/{id}/timeline".into(),
        json!({
            "parameters": [id_param("patient")],
            "get": {
                "tags": ["Follow-up"],
                "operationId": "patientTimeline",
                "summary": "Everything sent, planned or not sent to a patient",
                "responses": responses(&[(200, ok("The patient's messages, oldest first.", "Timeline"))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/patients/{id}/online-booking".into(),
        json!({
            "parameters": [id_param("patient")],
            "get": {
                "tags": ["Follow-up"],
                "operationId": "onlineBooking",
                "summary": "Whether the patient may still book online",
                "description": "False once the patient missed more appointments without excuse \
                    than the practice's threshold allows over the policy's window.",
                "responses": responses(&[(200, ok("The decision and, when refused, why (in French).", "OnlineBooking"))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/appointments/{id}".into(),
        json!({
            "parameters": [id_param("appointment")],
            "get": {
                "tags": ["Follow-up"],
                "operationId": "getAppointment",
                "summary": "Read an appointment as the events made it, with the patient's answer",
                "description": "With `Accept: application/fhir+json`, the appointment is an HL7 FHIR R4 \
                    `Appointment` resource (data only): `status` booked, cancelled, \
                    entered-in-error (deleted), noshow or fulfilled (attended); `start`, `end`, \
                    `minutesDuration`; a `Patient` participant whose `status` is the patient's \
                    answer (`accepted`: confirmed for the current time; `declined`: cancelled by \
                    the patient; else `needs-action`), a `Practitioner` participant, the place as \
                    a `Location` participant known by its `display`. An id that is not a FHIR id \
                    (`[A-Za-z0-9.-]{1,64}`) is given only as an `identifier` \
                    (`urn:rappel:PRACTICE:appointment`, `…:patient`, `…:practitioner`).",
                "responses": responses(&[(200, json!({
                    "description": "The appointment with its `status` and `patient_answer`; or, to `Accept: application/fhir+json`, its FHIR R4 `Appointment`.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Appointment"}},
                        "application/fhir+json": {
                            "schema": {"$ref": "#/components/schemas/FhirAppointment"},
                            "example": fhir_appointment_example()
                        }
                    }
                }))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/appointments/{id}/timeline".into(),
        json!({
            "parameters": [id_param("appointment")],
            "get": {
                "tags": ["Follow-up"],
                "operationId": "appointmentTimeline",
                "summary": "Every message about an appointment: sent, planned, or not sent and why",
                "responses": responses(&[(200, ok("The appointment's messages, oldest first.", "Timeline"))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert("/v1/events".into(), events_path());
    paths.insert(
        "/v1/settings".into(),
        json!({
            "get": {
                "tags": ["Settings"],
                "operationId": "getSettings",
                "summary": "The practice's options and what each one is",
                "responses": responses(&[(200, ok("Preset, time zone, resolved values and option descriptions.", "Settings"))], &[401, 429]),
            },
            "patch": {
                "tags": ["Settings"],
                "operationId": "patchSettings",
                "summary": "Change some options",
                "description": "The body's keys replace those options' values; the others keep \
                    theirs. Open work is re-planned at once. An unknown key, a value of the \
                    wrong type, or switching off a locked behaviour is 422 naming the key; so \
                    is a change of `plan` or `sms_quota_per_month` (the operator sets them: \
                    `rappel practice set`) and an `sms_sender` that passes for a public \
                    service (AMELI, CPAM, impôts…), and a `history_retention_months` outside \
                    4 to 120 (finished messages older than that are deleted).",
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "description": "Option name → new value (see `options` of GET).",
                        "additionalProperties": true
                    }}}
                },
                "responses": responses(&[(200, ok("The settings after the change (the same document as GET).", "Settings"))], &[400, 401, 413, 415, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/notifications".into(),
        json!({
            "get": {
                "tags": ["Follow-up"],
                "operationId": "listNotifications",
                "summary": "The sent box: every message, by due time",
                "description": "A page of the practice's messages ordered by due time, then \
                    key. Pass `next_cursor` back as `cursor` for the next page; it is null on \
                    the last page. A bad filter value is 422 naming the parameter.",
                "parameters": [
                    query_param("status", "Only messages in this state.", json!({"type": "string", "enum": ["planned", "sending", "sent", "delivered", "failed", "suppressed"]})),
                    query_param("channel", "Only this channel.", json!({"type": "string", "enum": ["email", "sms", "push", "postal", "inbox"]})),
                    query_param("kind", "Only this kind of message.", json!({"type": "string", "enum": ["confirmation", "reminder", "moved", "cancellation", "deletion", "no_show", "practitioner_booking", "practitioner_cancellation", "practitioner_move", "document", "task"]})),
                    query_param("since", "Only messages due at or after this instant (RFC 3339).", json!({"type": "string", "format": "date-time"})),
                    query_param("cursor", "The `next_cursor` of the previous page.", json!({"type": "string"})),
                    query_param("limit", "Page size, 1 to 500 (default 50).", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50})),
                ],
                "responses": responses(&[(200, ok("One page.", "NotificationPage"))], &[400, 401, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/inbox".into(),
        json!({
            "get": {
                "tags": ["Follow-up"],
                "operationId": "listInbox",
                "summary": "The to-verify box and the notification centre",
                "parameters": [
                    query_param("box", "One box only (both when absent).", json!({"type": "string", "enum": ["to_verify", "notifications"]})),
                    query_param("resolved", "Include resolved entries.", json!({"type": "boolean", "default": false})),
                ],
                "responses": responses(&[(200, ok("Entries, newest first.", "Inbox"))], &[400, 401, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/inbox/{id}/resolve".into(),
        json!({
            "parameters": [id_param("inbox entry")],
            "post": {
                "tags": ["Follow-up"],
                "operationId": "resolveInboxEntry",
                "summary": "Mark an inbox entry as dealt with",
                "description": "Resolving an entry again changes nothing.",
                "responses": responses(&[(200, ok("The entry, with `resolved_at`.", "InboxEntry"))], &[401, 404, 429]),
            }
        }),
    );
    documents_paths(&mut paths);
    two_way_paths(&mut paths);
    tasks_paths(&mut paths);
    templates_paths(&mut paths);
    paths.insert("/v1/openapi.json".into(), json!({
        "get": {
            "tags": ["Operations"], "operationId": "openapi", "security": [],
            "summary": "This document (OpenAPI 3.1)",
            "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {}}}}
        }
    }));
    paths.insert(
        "/v1/docs".into(),
        json!({
            "get": {
                "tags": ["Operations"], "operationId": "docs", "security": [],
                "summary": "This document as a web page",
                "responses": {"200": {"description": "HTML.", "content": {"text/html": {}}}}
            }
        }),
    );
    paths.insert("/health".into(), json!({
        "get": {
            "tags": ["Operations"], "operationId": "health", "security": [],
            "summary": "Liveness",
            "responses": {"200": {"description": "`{\"status\": \"ok\"}`", "content": {"application/json": {}}}}
        }
    }));
    paths.insert("/metrics".into(), json!({
        "get": {
            "tags": ["Operations"], "operationId": "metrics", "security": [],
            "summary": "Prometheus metrics",
            "description": "Requests by route and status, events ingested, notifications by \
                status and channel, queue depth, dispatch lag, and this process's hand-offs by \
                channel and outcome with a histogram of their lateness (hand-off time minus \
                due time).",
            "responses": {"200": {"description": "Prometheus text format 0.0.4.", "content": {"text/plain": {}}}}
        }
    }));
    Value::Object(paths)
}

/// Documents (issue 5) and the patient's page behind a document link.
fn documents_paths(paths: &mut Map<String, Value>) {
    paths.insert(
        "/v1/documents".into(),
        json!({
            "post": {
                "tags": ["Documents"],
                "operationId": "uploadDocument",
                "summary": "Send a document (PDF) to a patient",
                "description": "multipart/form-data with `file` (the PDF: it must start with `%PDF-` and end with `%%EOF`), `id`, `patient` and `title`. The file is kept encrypted (AES-256-GCM) outside the database, and `document.sent` is applied exactly as through `POST /v1/events`: the patient gets an email with a personal link that expires (30 days), never the document itself. The same file again answers 200 and changes nothing; another file under the same id is refused (422). A PDF whose streams decode to more than 64 MB together, or with more than 100,000 objects (a decompression bomb), is 422 naming `file`, and nothing is stored. Files over the configured limit (10 MiB by default) get 413.",
                "requestBody": {
                    "required": true,
                    "content": {"multipart/form-data": {"schema": {
                        "type": "object", "required": ["file", "id", "patient", "title"],
                        "additionalProperties": false,
                        "properties": {
                            "file": {"type": "string", "contentMediaType": "application/pdf"},
                            "id": described(id_schema(), "The document's id in the practice software."),
                            "patient": described(id_schema(), "The patient's id."),
                            "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$", "description": "Shown to the patient (1 to 200 characters, no control characters)."}
                        }
                    }}}
                },
                "responses": responses(&[(201, ok("Stored and sent.", "DocumentUpload")), (200, ok("Already known: nothing changed.", "DocumentUpload"))], &[400, 401, 413, 415, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/documents/{id}".into(),
        json!({
            "parameters": [id_param("document")],
            "get": {
                "tags": ["Documents"],
                "operationId": "getDocument",
                "summary": "A document and its delivery history",
                "description": "The email's state, the consultation time (the first download through the patient's link), the stored file's size and SHA-256, and every message about the document (email, letters, inbox entries) as timeline entries.",
                "responses": responses(&[(200, ok("The document.", "Document"))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/documents/{id}/resend-postal".into(),
        json!({
            "parameters": [id_param("document")],
            "post": {
                "tags": ["Documents"],
                "operationId": "resendDocumentByPost",
                "summary": "Send the document again, by post",
                "description": "Queues a letter (`d:DOC/manual_postal/postal/ADDRESS`, ADDRESS naming the patient's postal address of the moment), not flagged as an automatic resend. It goes like any letter: to a French address on file, or not at all with the reason. A letter costs money, so the request is idempotent per document and address: while a letter of the document is on its way, or once one went to this address, the answer is that letter with 200 and `created: false`. Only a letter that failed or was not sent can be asked again; a corrected address makes a new one. The document's open to-verify entries are marked handled.",
                "responses": responses(&[(202, ok("The queued letter (`created: true`).", "TimelineEntry")), (200, ok("The letter already on its way or sent to this address (`created: false`); nothing new was queued.", "TimelineEntry"))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/postal/costs".into(),
        json!({
            "get": {
                "tags": ["Documents"],
                "operationId": "postalCosts",
                "summary": "What the practice's letters cost in a month",
                "description": "Every letter handed off during the month (the practice's calendar month, in its time zone) with what it cost, in euro cents: the postal provider's price, or the configured tariff (postage by weight step plus printing per sheet; `RAPPEL_POSTAL_POSTAGE_CENTS`, `RAPPEL_POSTAL_POSTAGE_HEAVY_CENTS`, `RAPPEL_POSTAL_SHEET_CENTS`). Without `month`, the current month by the engine's clock.",
                "parameters": [query_param("month", "The month, `YYYY-MM` (default: the current month in the practice's time zone).", json!({"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}))],
                "responses": responses(&[(200, ok("The month's letters and their total.", "PostalSpend"))], &[401, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/settings/logo".into(),
        json!({
            "put": {
                "tags": ["Settings"],
                "operationId": "putLogo",
                "summary": "Upload the practice's logo",
                "description": "The body is the image itself, PNG or JPEG, recognised by its content (`Content-Type: image/png` or `image/jpeg`; another declared type is 415). At most 2 MB and 16 megapixels; anything else is 422 with `field: logo`, and the previous logo stays. It is shrunk to fit within 150 × 75 px keeping its proportions (never enlarged) and stored as PNG. It heads the confirmation and reminder emails of appointments booked by the practice's staff (online bookings carry the booking platform's header) and the letterhead of letters.",
                "requestBody": {"required": true, "content": {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}, "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}}}},
                "responses": responses(&[(200, ok("The stored logo's size.", "LogoInfo"))], &[401, 413, 415, 422, 429]),
            },
            "get": {
                "tags": ["Settings"],
                "operationId": "getLogo",
                "summary": "The practice's logo, as stored (PNG)",
                "responses": responses(&[(200, json!({"description": "The logo.", "content": {"image/png": {}}}))], &[401, 404, 429]),
            },
            "delete": {
                "tags": ["Settings"],
                "operationId": "deleteLogo",
                "summary": "Remove the practice's logo",
                "description": "Messages and letters made after this carry no logo; those already sent keep theirs. 404 when there is none.",
                "responses": responses(&[(204, json!({"description": "Removed."}))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/d/{token}".into(),
        json!({
            "parameters": [{"name": "token", "in": "path", "required": true, "description": "The link's token (from the email).", "schema": {"type": "string"}}],
            "get": {
                "tags": ["Documents"], "operationId": "documentLinkPage", "security": [],
                "summary": "The patient's page: asks for the birth date",
                "description": "French HTML, no JavaScript. 404 for an unknown link, 410 for an expired one, 429 while locked (5 wrong answers lock the link for an hour); none of them names the practice or the document.",
                "responses": {"200": {"description": "The form.", "content": {"text/html": {}}}, "404": {"description": "Unknown link.", "content": {"text/html": {}}}, "410": {"description": "Expired link.", "content": {"text/html": {}}}, "429": {"description": "Locked.", "content": {"text/html": {}}}}
            },
            "post": {
                "tags": ["Documents"], "operationId": "openDocumentLink", "security": [],
                "summary": "Check the birth date and serve the PDF",
                "description": "Form fields `birth_date` (AAAA-MM-JJ, from the date picker) or `birth_date_text` (JJ/MM/AAAA). Right: the PDF (`inline`, `no-store`); the first download records `document.consulted`. Wrong: the form again (422) with the attempts left.",
                "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"birth_date": {"type": "string", "format": "date"}, "birth_date_text": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The document.", "content": {"application/pdf": {}}}, "422": {"description": "Wrong or unreadable date: the form again.", "content": {"text/html": {}}}, "404": {"description": "Unknown link.", "content": {"text/html": {}}}, "410": {"description": "Expired link.", "content": {"text/html": {}}}, "429": {"description": "Locked.", "content": {"text/html": {}}}}
            }
        }),
    );
    paths.insert(
        "/r/{token}".into(),
        json!({
            "parameters": [{"name": "token", "in": "path", "required": true, "description": "The link's token (16 characters, from a reminder or a confirmation).", "schema": {"type": "string"}}],
            "get": {
                "tags": ["Follow-up"], "operationId": "appointmentLinkPage", "security": [],
                "summary": "The patient's appointment page: confirm or cancel",
                "description": "French HTML for a phone, no JavaScript, the headers of `/d/`. Shows the date, time, practitioner and place (the motive only with `show_motive_in_sms`), a « Confirmer ma présence » form and, until `patient_cancel_cutoff_hours` before the start, an « Annuler le rendez-vous » form (after it, the practice's `practice_phone`). `?choix=confirmer` or `?choix=annuler` (the email's buttons) opens it on one form. A cancelled, moved or past appointment says what happened. An unknown, expired (at the start the message announced) or switched-off (`appointment_links = false`) link is one and the same 404 page, naming nothing. A GET never changes anything.",
                "parameters": [{"name": "choix", "in": "query", "required": false, "schema": {"type": "string", "enum": ["confirmer", "annuler"]}}],
                "responses": {"200": {"description": "The appointment, or what happened to it.", "content": {"text/html": {}}}, "404": {"description": "Unknown, expired or switched-off link.", "content": {"text/html": {}}}}
            },
            "post": {
                "tags": ["Follow-up"], "operationId": "answerAppointmentLink", "security": [],
                "summary": "Confirm or cancel the appointment",
                "description": "Form fields `token` (the page's own: the form carries it, so another site cannot forge the request without the link itself) and `action` (`confirm` or `cancel`); a foreign `Origin` is refused. A confirmation is recorded (`appointment.confirmed_by_patient`); a cancellation before the cutoff applies `appointment.cancelled` by the patient (`appointment.cancel_requested`). Twice is once.",
                "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["token", "action"], "properties": {"token": {"type": "string"}, "action": {"type": "string", "enum": ["confirm", "cancel"]}}}}}},
                "responses": {"200": {"description": "Done, or already done, or what happened to the appointment.", "content": {"text/html": {}}}, "403": {"description": "The form does not carry the page's token, or comes from another site.", "content": {"text/html": {}}}, "404": {"description": "Unknown, expired or switched-off link.", "content": {"text/html": {}}}, "409": {"description": "Too late to cancel online: the page gives the practice's telephone.", "content": {"text/html": {}}}}
            }
        }),
    );
}

fn tasks_paths(paths: &mut Map<String, Value>) {
    paths.insert(
        "/v1/tasks".into(),
        json!({
            "get": {
                "tags": ["Tasks"],
                "operationId": "listTasks",
                "summary": "The practice's scheduled tasks",
                "responses": responses(&[(200, ok("Every task, by id.", "TaskList"))], &[401, 429]),
            },
            "post": {
                "tags": ["Tasks"],
                "operationId": "createTask",
                "summary": "Create a scheduled task",
                "description": "The body is a task with the names of the scenario files' \
                    `[[tasks]]`; `id` is required and new (an existing id is 422: change a task \
                    with PATCH). A definition that cannot run is 422 naming the field and the \
                    reason: an unknown `type`, `every` and `cron` both given or neither, a weekly \
                    task without `days`, a malformed `cron`, a missed-appointments task without \
                    a `range` or with one that goes backwards or into the future, a recall \
                    without `recall_months`… The task first runs at its first occurrence after \
                    its creation.",
                "requestBody": json_body("Task", "The task."),
                "responses": responses(
                    &[(201, json!({
                        "description": "Created; `Location` names the task.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}
                    }))],
                    &[400, 401, 413, 415, 422, 429],
                ),
            }
        }),
    );
    paths.insert(
        "/v1/tasks/{id}".into(),
        json!({
            "parameters": [id_param("task")],
            "get": {
                "tags": ["Tasks"],
                "operationId": "getTask",
                "summary": "Read a scheduled task",
                "responses": responses(&[(200, ok("The task, with `next_run_at`.", "Task"))], &[401, 404, 429]),
            },
            "patch": {
                "tags": ["Tasks"],
                "operationId": "patchTask",
                "summary": "Change some fields of a scheduled task",
                "description": "A JSON merge patch: each member replaces that field, `null` \
                    removes it (`{\"every\": null, \"time\": null, \"cron\": \"30 8 * * mon-fri\"}` \
                    turns a daily task into a cron one). The merged task is checked as a whole \
                    (422 naming the field). `id` cannot change. A period that already ran does \
                    not run again because its time changed.",
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "description": "Any fields of Task.",
                        "additionalProperties": true
                    }}}
                },
                "responses": responses(&[(200, ok("The task after the change.", "Task"))], &[400, 401, 404, 413, 415, 422, 429]),
            },
            "delete": {
                "tags": ["Tasks"],
                "operationId": "deleteTask",
                "summary": "Delete a scheduled task",
                "description": "Messages already queued by its runs still go out and stay in the \
                    patients' timelines.",
                "responses": responses(&[(204, json!({"description": "Deleted."}))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/tasks/{id}/runs".into(),
        json!({
            "parameters": [id_param("task")],
            "get": {
                "tags": ["Tasks"],
                "operationId": "taskRuns",
                "summary": "The task's run history, with counts",
                "description": "Each occurrence runs once across all Rappel processes. After \
                    downtime only the latest missed occurrence runs, once, and its run says \
                    `late`. Counts: `matched` patients = `queued` + those the task's exclusions \
                    left out; `sent`, `pending` and `failed` messages; `skipped` by reason (the \
                    exclusions `later_appointment` and `seen_since`, and the send-time reasons \
                    such as `no_email`, `patient_sms_disabled`, `quota_exhausted`).",
                "parameters": [
                    query_param("limit", "How many runs, latest first, 1 to 100 (default 20).", json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20})),
                ],
                "responses": responses(&[(200, ok("Runs, latest first.", "TaskRuns"))], &[400, 401, 404, 422, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/tasks/{id}/preview".into(),
        json!({
            "parameters": [id_param("task")],
            "post": {
                "tags": ["Tasks"],
                "operationId": "previewTask",
                "summary": "Dry run: who the next run would message",
                "description": "Runs the task's selection as of its next run (`at`: a run \
                    waiting to happen, else the next one by the schedule; an inactive or \
                    finished task: now), from today's facts, and applies the send-time checks \
                    (contacts, switches, quiet hours): the patients who would get a message, \
                    with the message and when it would go, and the ones who would not, with \
                    the reason. Sends and records nothing. The SMS quota is only checked when \
                    sending.",
                "responses": responses(&[(200, ok("The dry run.", "TaskPreview"))], &[401, 404, 429]),
            }
        }),
    );
}

fn events_path() -> Value {
    json!({
        "post": {
            "tags": ["Events"],
            "operationId": "postEvents",
            "summary": "Tell Rappel what happened",
            "description": "One event or an array of events, applied atomically in order: if \
                one is refused, none is applied, and the 422 names it (`events[2].start`). Every id \
                in an event (`id`, `patient`, `practitioner`, `motive`, `document`) follows the \
                rule of ids in paths: 1 to 128 characters, no control characters. `at` \
                (when it happened) defaults to the time of receipt. An event that changes \
                nothing (the same booking sent twice) counts as `unchanged`. With an \
                `Idempotency-Key` header, a retry with the same key and body gets the first \
                answer again (with `Idempotent-Replayed: true`); the same key with another body \
                is 422.",
            "parameters": [{
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "1 to 255 visible ASCII characters, e.g. a UUID, unique per request.",
                "schema": {"type": "string", "maxLength": 255}
            }],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/Event"}}
                ]}}}
            },
            "responses": responses(&[(202, ok("Applied.", "IngestReport"))], &[400, 401, 404, 413, 415, 422, 429]),
        }
    })
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn instant(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn nullable_string(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn event_variant(name: &str, required: &[&str], properties: Value) -> Value {
    let mut props = properties.as_object().cloned().unwrap_or_default();
    props.insert("type".into(), json!({"const": name}));
    props.insert(
        "at".into(),
        instant("When it happened (RFC 3339); the time of receipt when absent."),
    );
    let mut required: Vec<&str> = required.to_vec();
    required.insert(0, "type");
    json!({"type": "object", "title": name, "required": required, "properties": props})
}

fn event_schema() -> Value {
    let id = string("The appointment's id.");
    let variants = vec![
        event_variant(
            "appointment.booked",
            &["id", "patient", "practitioner", "start", "source"],
            json!({
                "id": id, "patient": string("The patient's id."),
                "practitioner": string("The practitioner's id."),
                "motive": string("The visit reason's id."),
                "start": instant("When the appointment starts."),
                "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30},
                "location": string("Where, in words."),
                "source": {"type": "string", "enum": ["online", "staff", "referral"]}
            }),
        ),
        event_variant(
            "appointment.moved",
            &["id"],
            json!({"id": id, "start": instant("The new start."), "location": string("The new place.")}),
        ),
        event_variant(
            "appointment.cancelled",
            &["id", "by"],
            json!({
                "id": id,
                "by": {"type": "string", "enum": ["practitioner_absence", "patient", "practice"]},
                "excused": {"type": "boolean", "default": true}
            }),
        ),
        event_variant("appointment.deleted", &["id"], json!({"id": id})),
        event_variant("appointment.no_show", &["id"], json!({"id": id})),
        event_variant("appointment.attended", &["id"], json!({"id": id})),
        event_variant(
            "patient.updated",
            &["id"],
            json!({
                "id": string("The patient's id; the patient is created when unknown."),
                "first_name": {"type": "string"}, "last_name": {"type": "string"},
                "email": {"type": ["string", "null"]}, "mobile": {"type": ["string", "null"]},
                "push": {"type": "boolean"},
                "email_notifications": {"type": ["boolean", "null"]},
                "sms_notifications": {"type": ["boolean", "null"]},
                "birth_date": {"type": ["string", "null"], "format": "date"},
                "address": {"oneOf": [{"$ref": "#/components/schemas/PostalAddress"}, {"type": "null"}]},
                "locale": {"type": ["string", "null"]}
            }),
        ),
        json!({
            "type": "object", "title": "settings.updated", "required": ["type"],
            "description": "Any option keys of GET /v1/settings, with their new values.",
            "properties": {"type": {"const": "settings.updated"}, "at": instant("When it happened.")},
            "additionalProperties": true
        }),
        event_variant(
            "document.sent",
            &["id", "patient", "title"],
            json!({"id": string("The document's id."), "patient": string("The patient's id."), "title": string("The document's title.")}),
        ),
        event_variant(
            "delivery.bounced",
            &["document"],
            json!({"document": string("The document whose email bounced.")}),
        ),
        event_variant(
            "delivery.delivered",
            &["document"],
            json!({"document": string("The document whose email was delivered.")}),
        ),
        event_variant(
            "document.consulted",
            &["id"],
            json!({"id": string("The document's id.")}),
        ),
    ];
    debug_assert_eq!(variants.len(), EVENT_TYPES.len());
    json!({
        "description": format!("An event; `type` is one of {}.", EVENT_TYPES.join(", ")),
        "oneOf": variants,
        "discriminator": {"propertyName": "type"}
    })
}

/// The schemas of scheduled tasks (a separate `json!` keeps the macro within its recursion limit).
fn task_schemas() -> Value {
    json!({
        "Task": task_schema(),
        "TaskList": {
            "type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}}
        },
        "TaskRun": {
            "type": "object",
            "required": ["occurrence", "scheduled_for", "started_at", "late", "late_ms", "matched", "queued", "sent", "pending", "failed", "skipped"],
            "properties": {
                "occurrence": string("The period that ran: `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM` for a cron task that fires several times a day."),
                "scheduled_for": instant("When it was due."),
                "started_at": instant("When it ran."),
                "late": {"type": "boolean", "description": "Ran more than a minute after `scheduled_for` (Rappel was down at the time)."},
                "late_ms": {"type": "integer"},
                "matched": {"type": "integer", "description": "Patients the criteria matched: `queued` plus those the exclusions left out."},
                "queued": {"type": "integer", "description": "Messages the run queued."},
                "sent": {"type": "integer", "description": "Handed to the provider (sent or delivered)."},
                "pending": {"type": "integer", "description": "Waiting (quiet hours) or being sent."},
                "failed": {"type": "integer"},
                "skipped": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Patients not messaged, by reason."}
            }
        },
        "TaskRuns": {
            "type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/TaskRun"}}}
        },
        "TaskPreview": {
            "type": "object", "required": ["task", "date", "at", "channel", "matched", "recipients", "skipped"],
            "properties": {
                "task": string("The task's id."),
                "date": {"type": "string", "format": "date", "description": "The run date used: today, practice time."},
                "at": instant("The instant of the dry run."),
                "channel": {"type": "string", "enum": ["email", "sms"]},
                "matched": {"type": "integer", "description": "Patients the criteria matched (recipients and skipped)."},
                "recipients": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "patient": string("The patient's id."),
                        "name": string("The patient's name."),
                        "appointments": {"type": "array", "items": {"type": "string"}, "description": "The missed appointments it is about."},
                        "send_at": instant("Now, or the end of the channel's quiet hours."),
                        "message": {"type": "object", "properties": {"subject": string("Email only."), "text": {"type": "string"}}}
                    }
                }},
                "skipped": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "patient": string("The patient's id."),
                        "appointments": {"type": "array", "items": {"type": "string"}},
                        "reason": string("`later_appointment`, `seen_since`, or a reason of the Timeline (`no_email`…)."),
                        "explanation": string("The reason in French.")
                    }
                }}
            }
        }
    })
}

fn task_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "first_date", "channel"],
        "description": "A scheduled task, with the names of the scenario files' `[[tasks]]`. \
            The periodicity is `every` (with `time`, and `days` when weekly) or `cron`, never \
            both. Answers also carry the read-only `created_at` and `next_run_at`.",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$", "description": "Chosen by the client, 1 to 128 characters, no control characters."},
            "label": string("Shown in the message (Relance des RDV manqués)."),
            "type": {"type": "string", "enum": ["missed_appointments", "birthdays", "recall"], "description": "Missed appointments in `range`; patients whose birthday is the run date (29 February: 28 February in common years); patients last seen more than `recall_months` months ago with nothing booked."},
            "first_date": {"type": "string", "format": "date", "description": "Local date of the first run."},
            "every": {"type": "string", "enum": ["day", "week", "month"], "description": "Monthly runs on the first date's day of the month, or the last day of shorter months."},
            "days": {"type": "array", "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, "description": "With `every: week`."},
            "time": string("Local run time, HH:MM, with `every`. A time skipped by the spring clock change runs an hour later; one repeated in autumn runs once."),
            "cron": string("Instead of `every`/`days`/`time`: `minute hour day-of-month month day-of-week` in practice time, with `*`, lists, ranges, steps and names (`30 8 * * mon-fri`). When both day fields are restricted, a day matching either runs (as in Vixie cron)."),
            "range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2, "description": "missed_appointments: from D+a to D+b, relative to the run date, a ≤ b ≤ 0 ([-1, -1]: the day before)."},
            "practitioners": {"type": "array", "items": {"type": "string"}, "description": "Only these practitioners' patients; all when absent."},
            "channel": {"type": "string", "enum": ["email", "sms"]},
            "template": string("The message template's name."),
            "exclude_patients_with_later_appointment": {"type": "boolean", "default": false, "description": "Leave out patients with an appointment to come."},
            "exclude_patients_seen_since": {"type": "boolean", "default": false, "description": "missed_appointments: leave out patients who came to the practice after the missed appointment."},
            "recall_months": {"type": "integer", "minimum": 1, "maximum": 120, "description": "recall: months since the last visit."},
            "active": {"type": "boolean", "default": true},
            "created_at": {"type": "string", "format": "date-time", "readOnly": true, "description": "When the task was created (a request that sends it is refused)."},
            "next_run_at": {"type": ["string", "null"], "format": "date-time", "readOnly": true, "description": "The next run, null when inactive (a request that sends it is refused)."}
        }
    })
}

fn components() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    json!({
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The practice's API key (`rpl_…`)."}
        },
        "responses": {
            "BadRequest": problem("Malformed JSON, query string or header, or a path that is not valid percent-encoded UTF-8."),
            "Unauthorized": problem("Missing or invalid API key."),
            "NotFound": problem("No such resource in this practice."),
            "PayloadTooLarge": problem("The body is over the limit (1 MiB by default)."),
            "UnsupportedMediaType": problem("The body is not JSON."),
            "Unprocessable": problem("A value is wrong; `field` names it."),
            "TooManyRequests": {
                "description": "The API key's rate is exceeded.",
                "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            },
            "InternalError": problem("A failure on the server; its cause is logged, not sent."),
        },
        "schemas": schemas(),
    })
}

fn schemas() -> Value {
    let mut all = json!({
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": string("A URI reference naming the kind of problem (its description is on /v1/docs)."),
                "title": string("The kind of problem, in words."),
                "status": {"type": "integer"},
                "detail": string("What is wrong with this request."),
                "field": string("The field at fault, as a path: `mobile`, `address.postal_code`, `events[2].start`, `Idempotency-Key`.")
            }
        },
        "Practitioner": {
            "type": "object", "required": ["name"],
            "properties": {
                "id": {"type": ["string", "null"], "description": "Equal to the path's when given (422 otherwise); null or absent: the path's."},
                "name": non_blank("As patients see it (Dr Martin)."),
                "email": string("For practitioner alerts by email."),
                "mobile": string("For practitioner alerts by SMS; national or E.164 form, stored in E.164.")
            }
        },
        "Motive": {
            "type": "object", "required": ["name"],
            "properties": {
                "id": {"type": ["string", "null"], "description": "Equal to the path's when given (422 otherwise); null or absent: the path's."},
                "name": non_blank("The visit reason."),
                "notifications": {"type": "boolean", "default": true, "description": "False silences every patient message about it."},
                "instructions": string("Shown in confirmations and reminders (Apportez votre carte Vitale).")
            }
        },
        "PostalAddress": {
            "type": "object", "required": ["lines", "postal_code", "city"],
            "properties": {
                "lines": {"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "string", "maxLength": 38}},
                "postal_code": string("Five digits in France (75011)."),
                "city": {"type": "string"},
                "country": {"type": "string", "default": "FR", "description": "ISO 3166-1 alpha-2."}
            }
        },
        "Patient": {
            "type": "object",
            "properties": {
                "id": {"type": ["string", "null"], "description": "Equal to the path's when given (422 otherwise); null or absent: the path's."},
                "first_name": {"type": "string"},
                "last_name": {"type": "string"},
                "email": {"type": ["string", "null"]},
                "mobile": {"type": ["string", "null"], "description": "National (06 12 34 56 78) or E.164; stored in E.164."},
                "push": {"type": "boolean", "default": false, "description": "Uses the mobile application."},
                "email_notifications": {"type": ["boolean", "null"], "description": "Null: the preset's default."},
                "sms_notifications": {"type": ["boolean", "null"], "description": "Null: the preset's default."},
                "birth_date": {"type": ["string", "null"], "format": "date"},
                "address": {"oneOf": [{"$ref": "#/components/schemas/PostalAddress"}, {"type": "null"}]},
                "locale": {"type": ["string", "null"]}
            }
        },
        "PushSubscription": {
            "type": "object", "required": ["endpoint", "keys"],
            "description": "A browser's `PushSubscription.toJSON()` (`expirationTime` is accepted and ignored).",
            "properties": {
                "endpoint": {"type": "string", "pattern": "^https://", "description": "The push service URL (https) the browser gave."},
                "keys": {
                    "type": "object", "required": ["p256dh", "auth"],
                    "properties": {
                        "p256dh": string("The browser's P-256 public key, uncompressed, base64url (87 characters)."),
                        "auth": string("The 16-byte authentication secret, base64url (22 characters).")
                    }
                }
            }
        },
        "Appointment": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "patient": {"type": "string"}, "practitioner": {"type": "string"},
                "motive": {"type": "string"}, "start": instant("Start."),
                "duration_minutes": {"type": "integer"}, "location": {"type": "string"},
                "source": {"type": "string", "enum": ["online", "staff", "referral"]},
                "booked_at": instant("When it was booked."),
                "status": {"type": "string", "enum": ["booked", "cancelled", "deleted", "no_show", "attended"]},
                "at": instant("When the status changed (all but booked)."),
                "by": string("Who cancelled (cancelled)."),
                "excused": {"type": "boolean", "description": "Whether the cancellation is excused (cancelled)."},
                "moves": {"type": "array", "items": {"type": "object"}, "description": "Earlier times and places."},
                "version": {"type": "integer", "description": "Bumped by every change."}
            }
        },
        "Event": event_schema(),
        "IngestReport": {
            "type": "object", "required": ["applied", "unchanged"],
            "properties": {
                "applied": {"type": "integer", "description": "Events that changed something."},
                "unchanged": {"type": "integer", "description": "Events already known: nothing to do."}
            }
        },
        "TimelineEntry": {
            "type": "object",
            "properties": {
                "at": string("Hand-off (sent), decision (suppressed) or planned instant, with the practice's offset."),
                "status": {"type": "string", "enum": ["planned", "sending", "sent", "delivered", "failed", "suppressed"]},
                "channel": {"type": "string", "enum": ["email", "sms", "push", "postal", "inbox"]},
                "recipient": string("patient:ID or practitioner:ID."),
                "kind": {"type": "string"},
                "appointments": {"type": "array", "items": {"type": "string"}},
                "document": nullable_string("The document's id."),
                "task": nullable_string("The scheduled task's id."),
                "auto_resend": {"type": "boolean"},
                "reason": nullable_string("Why it was not sent (quota_exhausted, invalid_mobile…)."),
                "explanation": nullable_string("The reason in French, for the practice."),
                "last_error": nullable_string("The provider's last error."),
                "key": string("The message's stable identity.")
            }
        },
        "Timeline": {
            "type": "object", "required": ["entries"],
            "properties": {"entries": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEntry"}}}
        },
        "NotificationPage": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEntry"}},
                "next_cursor": nullable_string("Pass as `cursor` for the next page; null on the last page.")
            }
        },
        "InboxEntry": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "box": {"type": "string", "enum": ["to_verify", "notifications"]},
                "document": nullable_string("The document concerned."),
                "patient": nullable_string("The patient concerned."),
                "title": {"type": "string"}, "text": {"type": "string"},
                "created_at": instant("When it was added."),
                "resolved_at": {"type": ["string", "null"], "format": "date-time"},
                "document_title": nullable_string("The document's title."),
                "patient_name": nullable_string("The patient's name."),
                "reason": nullable_string("Why the entry exists, in French."),
                "actions": {"type": "array", "items": {"type": "string", "enum": ["resend_postal", "fix_email", "fix_address", "resolve"]}, "description": "What the practice can do next."}
            }
        },
        "Document": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "patient": {"type": "string"}, "title": {"type": "string"},
                "sent_at": instant("When it was sent."),
                "email": {"type": "string", "enum": ["pending", "sent", "delivered", "failed"]},
                "consulted_at": {"type": ["string", "null"], "format": "date-time", "description": "First download through the patient's link."},
                "file": {"type": ["object", "null"], "properties": {"size": {"type": "integer"}, "sha256": {"type": "string"}}},
                "deliveries": {"type": "array", "items": {"allOf": [
                    {"$ref": "#/components/schemas/TimelineEntry"},
                    {"type": "object", "properties": {"cost_cents": {"type": ["integer", "null"], "description": "What the letter cost, in euro cents (null for other messages)."}}}
                ]}}
            }
        },
        "PostalSpend": {
            "type": "object", "required": ["month", "currency", "letters", "total_cents", "items"],
            "properties": {
                "month": string("`YYYY-MM`."),
                "currency": {"type": "string", "enum": ["EUR"]},
                "letters": {"type": "integer"},
                "total_cents": {"type": "integer"},
                "items": {"type": "array", "items": {
                    "type": "object", "required": ["key", "sent_at", "cost_cents"],
                    "properties": {
                        "key": string("The letter's identity key."),
                        "document": {"type": ["string", "null"]},
                        "sent_at": instant("When it was handed off."),
                        "cost_cents": {"type": "integer"}
                    }
                }}
            }
        },
        "LogoInfo": {
            "type": "object", "required": ["width", "height", "updated_at"],
            "properties": {
                "width": {"type": "integer", "maximum": 150},
                "height": {"type": "integer", "maximum": 75},
                "updated_at": instant("When it was stored.")
            }
        },
        "DocumentUpload": {
            "type": "object", "required": ["document", "ingest"],
            "properties": {
                "document": {"$ref": "#/components/schemas/Document"},
                "ingest": {"type": "object", "description": "As `POST /v1/events` answers."}
            }
        },
        "Inbox": {
            "type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/InboxEntry"}}}
        },
        "OnlineBooking": {
            "type": "object", "required": ["allowed", "reason"],
            "properties": {"allowed": {"type": "boolean"}, "reason": nullable_string("Why not, in French.")}
        },
        "Settings": {
            "type": "object", "required": ["preset", "timezone", "settings", "options"],
            "properties": {
                "preset": string("doctolib, rosa, maddie, lifen or custom."),
                "timezone": string("IANA time zone (Europe/Paris)."),
                "settings": {"type": "object", "additionalProperties": true, "description": "Every option's value in force."},
                "options": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["bool", "integer", "optional_integer", "choice", "string", "time_range"]},
                        "default": {}, "label": {"type": "string"},
                        "locked": {"type": "boolean"},
                        "choices": {"type": "array", "items": {"type": "string"}}
                    }
                }}
            }
        }
    });
    if let (Value::Object(all), Value::Object(tasks)) = (&mut all, task_schemas()) {
        all.extend(tasks);
    }
    all["Appointment"]["properties"]["patient_answer"] = patient_answer_schema();
    all["FhirAppointment"] = fhir_appointment_schema();
    all
}

/// The patient's answer on an appointment (issue 16).
fn patient_answer_schema() -> Value {
    json!({
        "type": ["object", "null"],
        "description": "The patient's latest answer, through the link of a reminder or an SMS reply; null when none.",
        "required": ["answer", "channel", "at", "current"],
        "properties": {
            "answer": {"type": "string", "enum": ["confirmed", "cancelled"]},
            "channel": {"type": "string", "enum": ["link", "sms"]},
            "at": instant("When the patient answered."),
            "current": {"type": "boolean", "description": "False when the appointment moved since: the answer was about an earlier time."}
        }
    })
}

/// What `GET /v1/appointments/{id}` answers to `Accept: application/fhir+json`.
fn fhir_appointment_schema() -> Value {
    json!({
        "type": "object",
        "description": "An HL7 FHIR R4 Appointment (hl7.org/fhir/R4/appointment.html).",
        "required": ["resourceType", "status", "participant"],
        "properties": {
            "resourceType": {"const": "Appointment"},
            "id": {"type": "string", "pattern": "^[A-Za-z0-9\\-\\.]{1,64}$"},
            "identifier": {"type": "array", "items": {"type": "object"}},
            "status": {"type": "string", "enum": ["proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error", "checked-in", "waitlist"]},
            "cancelationReason": {"type": "object"},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "minutesDuration": {"type": "integer", "minimum": 1},
            "created": {"type": "string"},
            "participant": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["status"],
                "properties": {
                    "actor": {"type": "object"},
                    "required": {"type": "string", "enum": ["required", "optional", "information-only"]},
                    "status": {"type": "string", "enum": ["accepted", "declined", "tentative", "needs-action"]}
                }
            }}
        }
    })
}

// ---- the HTML page -------------------------------------------------------------------------

const METHODS: &[&str] = &["get", "put", "post", "patch", "delete"];

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes, then shows `backquoted` spans as code and blank lines as paragraph breaks.
fn prose(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(&part.replace("\n\n", "</p><p>"));
        }
    }
    out
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", escape(name));
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        return options
            .iter()
            .map(schema_name)
            .collect::<Vec<_>>()
            .join(" or ");
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    let mut kind = match schema.get("type") {
        Some(Value::String(t)) => escape(t),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .map(escape)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => match schema.get("const") {
            Some(c) => format!("<code>{}</code>", escape(&c.to_string())),
            None => "any".into(),
        },
    };
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        kind = format!("{kind} ({})", escape(format));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(v.as_str().unwrap_or_default())))
            .collect();
        kind = format!("{kind}: {}", names.join(", "));
    }
    kind
}

fn operation_html(out: &mut String, path: &str, method: &str, op: &Value, shared: &[Value]) {
    let anchor = text(op, "operationId");
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{}\"><h3><span class=\"verb {method}\">{}</span> <code>{}</code></h3><p class=\"summary\">{}</p>",
        escape(anchor),
        method.to_uppercase(),
        escape(path),
        escape(text(op, "summary")),
    );
    if op
        .get("security")
        .is_some_and(|s| s.as_array().is_some_and(Vec::is_empty))
    {
        out.push_str("<p class=\"note\">No API key needed.</p>");
    }
    let description = text(op, "description");
    if !description.is_empty() {
        let _ = write!(out, "<p>{}</p>", prose(description));
    }
    let params: Vec<&Value> = shared
        .iter()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .collect();
    if !params.is_empty() {
        out.push_str("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr>");
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(p, "name")),
                if p.get("required") == Some(&Value::Bool(true)) {
                    " <small>required</small>"
                } else {
                    ""
                },
                escape(text(p, "in")),
                p.get("schema").map(schema_name).unwrap_or_default(),
                prose(text(p, "description")),
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        let schema = body
            .pointer("/content/application~1json/schema")
            .map(schema_name)
            .unwrap_or_default();
        let _ = write!(
            out,
            "<h4>Request body</h4><p>JSON: {schema}. {}</p>",
            prose(text(body, "description"))
        );
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str(
            "<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>",
        );
        for (code, answer) in responses {
            let (description, body) = match answer.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    let shared = document().pointer(&format!("/components/responses/{name}"));
                    (
                        shared
                            .map(|r| text(r, "description"))
                            .unwrap_or_default()
                            .to_string(),
                        "<a href=\"#schema-Problem\">Problem</a>".to_string(),
                    )
                }
                None => {
                    let body = answer
                        .get("content")
                        .and_then(Value::as_object)
                        .and_then(|c| c.values().next())
                        .and_then(|m| m.get("schema"))
                        .map(schema_name)
                        .unwrap_or_default();
                    (text(answer, "description").to_string(), body)
                }
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{body}</td></tr>",
                escape(code),
                prose(&description)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

fn schema_html(out: &mut String, name: &str, schema: &Value) {
    let _ = write!(
        out,
        "<section class=\"schema\" id=\"schema-{0}\"><h3>{0}</h3>",
        escape(name)
    );
    let description = text(schema, "description");
    if !description.is_empty() {
        let _ = write!(out, "<p>{}</p>", prose(description));
    }
    let variants = schema.get("oneOf").and_then(Value::as_array);
    let objects: Vec<&Value> = match variants {
        Some(list) => list.iter().collect(),
        None => vec![schema],
    };
    for object in objects {
        let Some(properties) = object.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let title = text(object, "title");
        if !title.is_empty() {
            let _ = write!(out, "<h4><code>{}</code></h4>", escape(title));
        }
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
        for (field, spec) in properties {
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                escape(field),
                if required.contains(&field.as_str()) {
                    " <small>required</small>"
                } else {
                    ""
                },
                schema_name(spec),
                prose(text(spec, "description")),
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
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
fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1><p class=\"note\">Version {version} · \
         <a href=\"/v1/openapi.json\">OpenAPI 3.1 document</a></p><p>{description}</p>",
        title = escape(text(info, "title")),
        version = escape(text(info, "version")),
        description = prose(text(info, "description")),
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                text(t, "name").to_string(),
                text(t, "description").to_string(),
            )
        })
        .collect();
    out.push_str("<nav><h2>Operations</h2><ul>");
    for (path, item) in &paths {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                let _ = write!(
                    out,
                    "<li><a href=\"#{}\"><code>{} {}</code></a> — {}</li>",
                    escape(text(op, "operationId")),
                    method.to_uppercase(),
                    escape(path),
                    escape(text(op, "summary"))
                );
            }
        }
    }
    out.push_str("</ul></nav>");
    for (tag, description) in &tags {
        let _ = write!(out, "<h2>{}</h2><p>{}</p>", escape(tag), prose(description));
        for (path, item) in &paths {
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for method in METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                let tagged = op
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(tag)));
                if tagged {
                    operation_html(&mut out, path, method, op, &shared);
                }
            }
        }
    }
    out.push_str("<h2>Problem types</h2><p>Every error is <code>application/problem+json</code>; its <code>type</code> points here.</p><table><tr><th>Type</th><th>Status</th><th>Title</th><th>When</th></tr>");
    for (slug, status, title, when) in PROBLEM_TYPES {
        let _ = write!(
            out,
            "<tr id=\"problem-{slug}\"><td><code>/v1/docs#problem-{slug}</code></td><td>{status}</td><td>{}</td><td>{}</td></tr>",
            escape(title),
            prose(when)
        );
    }
    out.push_str("</table><h2>Schemas</h2>");
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            schema_html(&mut out, name, schema);
        }
    }
    out.push_str("</body></html>");
    out
}

/// Templates, the test send and the outbound webhook (`routes/templates.rs`).
fn templates_paths(paths: &mut Map<String, Value>) {
    let parts = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "minijinja sources of the parts of a message: email `subject`, `text` and `html` (auto-escaped); SMS `text`; push `subject` (title) and `text`; postal `text`. Variables: `practice.name`, `patient.first_name`/`last_name`/`name` (absent in practitioner alerts), `practitioner.name`, `appointments[]` with `date_text` (« mercredi 11 mars 2026 »), `time_text` (« 09h30 »), `start` (RFC 3339), `location`, `practitioner`, `motive` (in SMS and push only with `show_motive_in_sms`), `instructions` (never in SMS or push), `document.title` (not in SMS or push) and `document.link`, `task.label`, `links.page`, `links.confirm` and `links.cancel` (the patient's page to confirm or cancel the appointment: in confirmation and reminder emails and SMS reminders about one appointment, unless `appointment_links` is off), `locale`. No include, import or extends; a fuel limit stops endless loops; output is at most 64 KiB (1 KiB for SMS, push and subjects).",
        "properties": {
            "subject": {"type": ["string", "null"], "description": "Null or absent: the built-in part."},
            "text": {"type": ["string", "null"], "description": "Null or absent: the built-in part."},
            "html": {"type": ["string", "null"], "description": "Null or absent: the built-in part."}
        }
    });
    let kind_channel = json!([
        {"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": ["confirmation", "reminder", "moved", "cancellation", "deletion", "no_show", "practitioner_booking", "practitioner_cancellation", "practitioner_move", "document", "task"]}},
        {"name": "channel", "in": "path", "required": true, "schema": {"type": "string", "enum": ["email", "sms", "push", "postal"]}},
        query_param("locale", "`fr` (default) or `en`: the patient's locale chooses (`en*` → en).", json!({"type": "string", "enum": ["fr", "en"], "default": "fr"}))
    ]);
    let view = json!({
        "description": "The template in force: `origin` is `default` or `practice`, `overridden` lists the parts the practice rewrote, `parts` holds every part's source.",
        "content": {"application/json": {"schema": {"type": "object"}}}
    });
    let body = |description: &str, schema: Value| json!({"required": true, "description": description, "content": {"application/json": {"schema": schema}}});
    paths.insert(
        "/v1/templates".into(),
        json!({"get": {
            "tags": ["Templates"], "operationId": "listTemplates",
            "summary": "Every kind × channel × locale with the source in force",
            "parameters": [query_param("locale", "Only this locale.", json!({"type": "string", "enum": ["fr", "en"]}))],
            "responses": responses(&[(200, view.clone())], &[401, 422, 429]),
        }}),
    );
    paths.insert(
        "/v1/templates/{kind}/{channel}".into(),
        json!({
            "parameters": kind_channel,
            "get": {"tags": ["Templates"], "operationId": "getTemplate", "summary": "Read a template (the built-in one until the practice writes its own)",
                "responses": responses(&[(200, view.clone())], &[401, 404, 422, 429])},
            "put": {"tags": ["Templates"], "operationId": "putTemplate", "summary": "Write the practice's own template",
                "description": "The parts given replace the built-in ones; parts left out return to them. Each part is checked on sample data: a syntax error or an unknown variable is 422 with `field` naming the part and `detail` its line.",
                "requestBody": body("The parts.", parts.clone()),
                "responses": responses(&[(200, view)], &[400, 401, 404, 415, 422, 429])},
            "delete": {"tags": ["Templates"], "operationId": "deleteTemplate", "summary": "Return to the built-in template",
                "responses": responses(&[(204, json!({"description": "The built-in template is in force."}))], &[401, 404, 422, 429])}
        }),
    );
    paths.insert(
        "/v1/templates/preview".into(),
        json!({"post": {
            "tags": ["Templates"], "operationId": "previewTemplate",
            "summary": "Render sources on sample data (live preview)",
            "description": "Sample data: « Jeanne Exemple », an appointment tomorrow at 09:30 with the practice's first practitioner. Each part answers its `output` or its `error` (`line`, `reason`); an SMS text also its `sms_segments` and `sms_encoding`. Parts left out are the built-in ones. Nothing is stored.",
            "requestBody": body("`kind`, `channel`, `locale` and the parts.", json!({"type": "object", "required": ["kind", "channel"], "additionalProperties": false, "properties": {"kind": {"type": "string", "enum": ["confirmation", "reminder", "moved", "cancellation", "deletion", "no_show", "practitioner_booking", "practitioner_cancellation", "practitioner_move", "document", "task"]}, "channel": {"type": "string", "enum": ["email", "sms", "push", "postal"]}, "locale": {"type": ["string", "null"], "enum": ["fr", "en", null], "description": "Null or absent: the practice's."}, "subject": {"type": ["string", "null"]}, "text": {"type": ["string", "null"]}, "html": {"type": ["string", "null"]}}})),
            "responses": responses(&[(200, json!({"description": "`ok` and each part's output or error.", "content": {"application/json": {"schema": {"type": "object"}}}}))], &[400, 401, 415, 422, 429]),
        }}),
    );
    paths.insert(
        "/v1/test-send".into(),
        json!({"post": {
            "tags": ["Templates"], "operationId": "testSend",
            "summary": "Send a message on sample data to any address, now",
            "description": "Renders the kind through the practice's templates on sample data and hands it to the channel at once, outside the queue (nothing is recorded). `to` is an email address, a mobile number (E.164 or French national) or a push endpoint (its HTTPS URL to a public address, with `p256dh` and `auth`). A test SMS goes only to French numbers (or the operator's `RAPPEL_TEST_SMS_COUNTRY_CODES`; otherwise 422 `to`), counts against the month's SMS quota, at most 10 a day (422 `channel` past either), and never under a sender name that passes for a public service (422 `sms_sender`). The answer says whether the channel accepted it.",
            "requestBody": body("What to send where.", json!({"type": "object", "required": ["kind", "channel", "to"], "additionalProperties": false, "properties": {"kind": {"type": "string", "enum": ["confirmation", "reminder", "moved", "cancellation", "deletion", "no_show", "practitioner_booking", "practitioner_cancellation", "practitioner_move", "document", "task"]}, "channel": {"type": "string", "enum": ["email", "sms", "push"]}, "to": {"type": "string"}, "locale": {"type": ["string", "null"], "enum": ["fr", "en", null], "description": "Null or absent: the practice's."}, "p256dh": {"type": ["string", "null"]}, "auth": {"type": ["string", "null"]}}})),
            "responses": responses(&[(202, json!({"description": "Handed to the channel: the rendered message, `accepted`, and the channel's `error` when it refused.", "content": {"application/json": {"schema": {"type": "object"}}}}))], &[400, 401, 415, 422, 429]),
        }}),
    );
    let webhook = json!({"description": "The endpoint (`url`, `created_at`; `secret` only in the answer of a PUT that generated it).", "content": {"application/json": {"schema": {"type": "object"}}}});
    paths.insert(
        "/v1/webhook".into(),
        json!({
            "get": {"tags": ["Templates"], "operationId": "getWebhook", "summary": "Where status changes are posted", "responses": responses(&[(200, webhook.clone())], &[401, 404, 429])},
            "put": {"tags": ["Templates"], "operationId": "putWebhook", "summary": "Post status changes to the practice software",
                "description": "Rappel then POSTs `notification.sent`, `notification.delivered`, `notification.failed` and `notification.suppressed` events (`{type, timestamp, data: {key, kind, channel, recipient, status, appointments, document, reason, error}}`), and the patient's answers `appointment.confirmed_by_patient` and `appointment.cancel_requested` (see `webhooks` in this document) signed per Standard Webhooks: `webhook-id` (the same on every attempt), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`. A 2xx answer delivers; 408, 429, 5xx and network errors are retried after 1 minute, then twice as long each time up to 6 hours, for 24 hours; any other answer fails the event. Without `secret`, one is generated (`whsec_…`) and shown once. `url` must be https (plain http only where the operator allows it), carry no user information, and name a public address: loopback, private, link-local (169.254.169.254), CGNAT, unique-local and the like are 422 naming `url`, in any spelling (`127.1`, `0x7f000001`, `[::1]`, `localhost.`). Each request checks the address again, follows no redirect, and its error says only refused or unreachable.",
                "requestBody": body("The endpoint.", json!({"type": "object", "required": ["url"], "additionalProperties": false, "properties": {"url": {"type": "string", "format": "uri"}, "secret": {"type": ["string", "null"], "description": "whsec_ followed by base64 of at least 24 random bytes; null or absent: one is generated."}}})),
                "responses": responses(&[(200, webhook)], &[400, 401, 415, 422, 429])},
            "delete": {"tags": ["Templates"], "operationId": "deleteWebhook", "summary": "Stop posting status changes", "responses": responses(&[(204, json!({"description": "Removed."}))], &[401, 404, 429])}
        }),
    );
    paths.insert(
        "/v1/webhook/deliveries".into(),
        json!({"get": {
            "tags": ["Templates"], "operationId": "listWebhookDeliveries",
            "summary": "The latest events and where each stands",
            "parameters": [query_param("limit", "1 to 500 (default 50).", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}))],
            "responses": responses(&[(200, json!({"description": "Events, newest first: `status` pending, delivered or failed, `attempts`, `last_error`.", "content": {"application/json": {"schema": {"type": "object"}}}}))], &[401, 422, 429]),
        }}),
    );
}

/// Two-way SMS (issue 16): the received messages and the SMS opt-out register.
fn two_way_paths(paths: &mut Map<String, Value>) {
    let received = json!({
        "type": "object",
        "required": ["id", "patient", "appointment", "provider", "keyword", "text", "received_at", "handled_at"],
        "properties": {
            "id": {"type": "string", "description": "Rappel's id of the message (`rcv_…`)."},
            "patient": {"type": "string"},
            "appointment": {"type": ["string", "null"], "description": "The appointment it most likely answers: the patient's next one when it came."},
            "appointment_start": {"type": "string", "format": "date-time"},
            "provider": {"type": "string", "enum": ["twilio", "ovh", "webhook", "simulate"]},
            "keyword": {"type": ["string", "null"], "enum": ["confirm", "cancel", "stop", "start", null], "description": "The keyword the message consisted of; null for free text."},
            "text": {"type": "string", "description": "What the patient wrote (health data)."},
            "received_at": {"type": "string", "format": "date-time"},
            "handled_at": {"type": ["string", "null"], "format": "date-time", "description": "At once for STOP and START; by the practice otherwise."}
        }
    });
    let example = json!({"items": [{
        "id": "rcv_4f1c2a9b7d3e8f0a1b2c3d4e", "patient": "p1", "appointment": "a1",
        "appointment_start": "2026-03-04T08:30:00Z", "provider": "twilio", "keyword": null,
        "text": "Je serai en retard de 10 minutes", "received_at": "2026-03-03T12:05:00Z", "handled_at": null
    }]});
    paths.insert(
        "/v1/received-messages".into(),
        json!({"get": {
            "tags": ["Replies"], "operationId": "listReceivedMessages",
            "summary": "SMS patients sent back that wait for the practice",
            "description": "Newest first, at most 500. A reply is attached to the patient by the number, within the practice whose SMS it answers (the last one sent to that number); a number no SMS was sent to is stored nowhere. Free text waits here until marked handled; `handled=true` also lists the handled messages and the keywords (STOP, START, OUI, ANNULER), which are answered by SMS at once.",
            "parameters": [query_param("handled", "Include handled messages and keywords.", json!({"type": "boolean", "default": false}))],
            "responses": responses(&[(200, json!({"description": "Received messages.", "content": {"application/json": {
                "schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": received}}},
                "example": example
            }}}))], &[400, 401, 422, 429]),
        }}),
    );
    paths.insert(
        "/v1/received-messages/{id}/resolve".into(),
        json!({
            "parameters": [id_param("received message")],
            "post": {
                "tags": ["Replies"], "operationId": "resolveReceivedMessage",
                "summary": "Mark a received message handled",
                "description": "Again changes nothing (`changed: false`).",
                "responses": responses(&[(200, json!({"description": "Handled.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"id": {"type": "string"}, "handled": {"type": "boolean"}, "changed": {"type": "boolean"}}
                }}}}))], &[401, 404, 429]),
            }
        }),
    );
    paths.insert(
        "/v1/patients/{id}/sms-opt-out".into(),
        json!({
            "parameters": [id_param("patient")],
            "get": {
                "tags": ["Replies"], "operationId": "getSmsOptOut",
                "summary": "Whether the patient opted out of SMS (STOP), and since when",
                "description": "While opted out, every SMS to the patient is suppressed with the reason `patient_sms_disabled`. Only the patient's START or OUI, or the practice (DELETE here, or the patient page), lifts it; a PUT of the patient does not.",
                "responses": responses(&[(200, json!({"description": "The opt-out.", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["opted_out"], "properties": {
                        "opted_out": {"type": "boolean"},
                        "opted_out_at": {"type": "string", "format": "date-time"},
                        "source": {"type": "string", "description": "`sms`: the patient's STOP."}
                    }},
                    "example": {"opted_out": true, "opted_out_at": "2026-03-03T12:05:00Z", "source": "sms"}
                }}}))], &[401, 404, 429]),
            },
            "delete": {
                "tags": ["Replies"], "operationId": "liftSmsOptOut",
                "summary": "Lift the patient's SMS opt-out (the patient asked the practice)",
                "description": "Queues `patient.sms_opted_in` with `source: \"api\"` when there was one. 204 either way.",
                "responses": responses(&[(204, json!({"description": "No opt-out any more."}))], &[401, 404, 429]),
            }
        }),
    );
}

/// The outbound events of two-way SMS, posted to the practice's webhook like the status events.
fn two_way_webhooks() -> Value {
    let event = |name: &str, summary: &str, description: &str, data: Value, example: Value| {
        json!({"post": {
            "tags": ["Replies"], "operationId": format!("webhook_{}", name.replace('.', "_")),
            "summary": summary,
            "description": format!("{description} Signed per Standard Webhooks with the endpoint's secret (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried like the status events. Carries identities, never the patient's text or number."),
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"type": "object", "required": ["type", "timestamp", "data"], "properties": {
                    "type": {"type": "string", "const": name},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "data": data
                }},
                "example": example
            }}},
            "responses": {"2XX": {"description": "Delivered."}}
        }})
    };
    let opt = json!({"type": "object", "required": ["patient", "source", "at"], "properties": {
        "patient": {"type": "string"},
        "source": {"type": "string", "enum": ["sms", "api", "ui"], "description": "`sms`: the patient's keyword; `api` or `ui`: the practice."},
        "at": {"type": "string", "format": "date-time"}
    }});
    json!({
        "patient.sms_opted_out": event(
            "patient.sms_opted_out", "A patient answered STOP (or ARRET)",
            "The patient gets no SMS from the practice any more (`patient_sms_disabled`).",
            opt.clone(),
            json!({"type": "patient.sms_opted_out", "timestamp": "2026-03-03T12:05:00Z", "data": {"patient": "p1", "source": "sms", "at": "2026-03-03T12:05:00Z"}})
        ),
        "patient.sms_opted_in": event(
            "patient.sms_opted_in", "A patient's SMS opt-out was lifted",
            "By the patient's START or OUI (`source: sms`), or by the practice (`api`, `ui`).",
            opt,
            json!({"type": "patient.sms_opted_in", "timestamp": "2026-03-05T08:00:00Z", "data": {"patient": "p1", "source": "sms", "at": "2026-03-05T08:00:00Z"}})
        ),
        "message.received": event(
            "message.received", "A patient sent an SMS back",
            "Every reply attached to a patient, keyword or free text; the text itself is read with `GET /v1/received-messages`.",
            json!({"type": "object", "required": ["id", "patient", "appointment", "channel", "keyword", "received_at"], "properties": {
                "id": {"type": "string"}, "patient": {"type": "string"},
                "appointment": {"type": ["string", "null"]},
                "channel": {"type": "string", "const": "sms"},
                "keyword": {"type": ["string", "null"], "enum": ["confirm", "cancel", "stop", "start", null]},
                "received_at": {"type": "string", "format": "date-time"}
            }}),
            json!({"type": "message.received", "timestamp": "2026-03-03T12:05:00Z", "data": {"id": "rcv_4f1c2a9b7d3e8f0a1b2c3d4e", "patient": "p1", "appointment": "a1", "channel": "sms", "keyword": null, "received_at": "2026-03-03T12:05:00Z"}})
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_page_escapes_what_it_shows() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(prose("use `x<y`"), "use <code>x&lt;y</code>");
    }
}
