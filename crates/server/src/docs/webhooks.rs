//! The `webhooks` section of the document: the events Rappel posts to the practice's own endpoint
//! (the patient's answers, two-way SMS), signed per Standard Webhooks. They are requests Rappel
//! makes, not routes it serves, so no handler carries them: they are written here and merged
//! into the derived document.

use serde_json::{Value, json};

/// The outbound webhook events: the patient's answers through a link and through SMS.
pub(super) fn all_webhooks() -> Value {
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
