//! Event webhooks of the email services French practices use: Brevo (ex-Sendinblue) and
//! Mailjet. Emails reach them through their SMTP relays (plain `RAPPEL_SMTP_URL`); they report
//! what became of each message by posting JSON events.
//!
//! Every email carries its Message-ID's hash in the headers each service echoes back
//! (`X-Mailin-custom` for Brevo, `X-MJ-CustomID` for Mailjet), so an event is matched to the
//! message Rappel sent, never to a recipient address (a patient may have several messages in
//! flight). Brevo also echoes the `Message-ID`, used when the custom header is missing.
//! Authenticity is the operator's token, checked by the server before these parsers run.

use serde_json::Value;

use crate::sms::ReportError;

/// What an event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailEventKind {
    /// The recipient's server accepted it.
    Delivered,
    /// Refused for good (hard bounce, invalid address, blocked by the service).
    Failed,
    /// A temporary refusal (soft bounce, deferral): noted, not failed.
    Delayed,
    /// The patient marked it as spam: their email notifications are turned off.
    Complaint,
}

/// One event, verified and matched to a Message-ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailEvent {
    /// `brevo` or `mailjet`, for logs and the sent box.
    pub provider: &'static str,
    /// The Message-ID Rappel gave the email (`<hex@rappel>`), its `provider_id`.
    pub message_id: String,
    pub kind: EmailEventKind,
    /// The service's words (`hard_bounce: 550 5.1.1 user unknown`), at most 300 characters.
    pub detail: Option<String>,
}

/// The value Rappel puts in the services' custom-ID headers: the Message-ID's hash.
pub fn custom_id(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .trim_end_matches("@rappel")
        .to_string()
}

/// The Message-ID of a custom ID or a Message-ID echoed by a service, if it is one of ours.
fn ours(value: &str) -> Option<String> {
    let hex = custom_id(value.trim());
    (hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("<{}@rappel>", hex.to_ascii_lowercase()))
}

fn events(body: &[u8]) -> Result<Vec<Value>, ReportError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(item @ Value::Object(_)) => Ok(vec![item]),
        Ok(_) => Err(ReportError::Malformed(
            "an event is a JSON object or an array of them".into(),
        )),
        Err(e) => Err(ReportError::Malformed(format!("not JSON: {e}"))),
    }
}

fn text(item: &Value, key: &str) -> Option<String> {
    match item.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clip(text: String) -> String {
    let text = crate::bounce::redact_addresses(&text);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Brevo's transactional webhook: one event object per call (or an array when batched), with
/// `event` (`delivered`, `hard_bounce`, `soft_bounce`, `blocked`, `invalid_email`, `deferred`,
/// `spam`, `complaint`, …), `message-id`, `X-Mailin-custom` and `reason`. Events that say
/// nothing of delivery (opens, clicks, `request`) and events of other senders' messages are
/// skipped.
pub fn brevo(body: &[u8]) -> Result<Vec<EmailEvent>, ReportError> {
    let mut out = Vec::new();
    for item in events(body)? {
        let event = text(&item, "event")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = match event.as_str() {
            "delivered" => EmailEventKind::Delivered,
            "hard_bounce" | "hardbounce" | "blocked" | "invalid_email" | "invalid" => {
                EmailEventKind::Failed
            }
            "soft_bounce" | "softbounce" | "deferred" => EmailEventKind::Delayed,
            "spam" | "complaint" => EmailEventKind::Complaint,
            _ => continue,
        };
        let Some(message_id) = text(&item, "X-Mailin-custom")
            .and_then(|v| ours(&v))
            .or_else(|| text(&item, "message-id").and_then(|v| ours(&v)))
        else {
            continue;
        };
        let detail = text(&item, "reason").map(|r| clip(format!("{event}: {r}")));
        out.push(EmailEvent {
            provider: "brevo",
            message_id,
            kind,
            detail: detail.or(Some(event)),
        });
    }
    Ok(out)
}

/// Mailjet's event API: an array of events (or one object), with `event` (`sent` — accepted by
/// the recipient's server —, `bounce` with `hard_bounce`, `blocked`, `spam`, …), `CustomID`,
/// `error_related_to`, `error` and `comment`.
pub fn mailjet(body: &[u8]) -> Result<Vec<EmailEvent>, ReportError> {
    let mut out = Vec::new();
    for item in events(body)? {
        let event = text(&item, "event")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let hard = item
            .get("hard_bounce")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let kind = match event.as_str() {
            "sent" => EmailEventKind::Delivered,
            "bounce" if hard => EmailEventKind::Failed,
            "bounce" => EmailEventKind::Delayed,
            "blocked" => EmailEventKind::Failed,
            "spam" => EmailEventKind::Complaint,
            _ => continue,
        };
        let Some(message_id) = text(&item, "CustomID").and_then(|v| ours(&v)) else {
            continue;
        };
        let words: Vec<String> = ["error_related_to", "error", "comment", "source"]
            .iter()
            .filter_map(|k| text(&item, k))
            .collect();
        let detail = if words.is_empty() {
            event.clone()
        } else {
            format!("{event}: {}", words.join(", "))
        };
        out.push(EmailEvent {
            provider: "mailjet",
            message_id,
            kind,
            detail: Some(clip(detail)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1b436ee3859710b4cb4fb5e91c472521e74ec820b890b6d41b99692ceac226dd";

    #[test]
    fn brevo_events_are_matched_by_the_custom_header_or_the_message_id() {
        // Brevo's documented hard_bounce example, with Rappel's headers echoed.
        let body = format!(
            r#"{{"event":"hard_bounce","email":"jeanne@example.org","id":1,"date":"2026-03-02 09:00:00","ts":1772438400,"message-id":"<{ID}@rappel>","ts_event":1772438400,"subject":"Document","X-Mailin-custom":"{ID}","reason":"550 5.1.1 user unknown","ts_epoch":1772438400000}}"#
        );
        let events = brevo(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message_id, format!("<{ID}@rappel>"));
        assert_eq!(events[0].kind, EmailEventKind::Failed);
        assert_eq!(
            events[0].detail.as_deref(),
            Some("hard_bounce: 550 5.1.1 user unknown")
        );
        let opened = format!(r#"{{"event":"opened","message-id":"<{ID}@rappel>"}}"#);
        assert!(brevo(opened.as_bytes()).unwrap().is_empty());
        let foreign = r#"{"event":"delivered","message-id":"<abc@brevo>"}"#;
        assert!(brevo(foreign.as_bytes()).unwrap().is_empty());
        assert!(brevo(b"not json").is_err());
    }

    #[test]
    fn mailjet_events_are_matched_by_the_custom_id_only() {
        let body = format!(
            r#"[{{"event":"bounce","time":1772438400,"MessageID":19421777835146490,"Message_GUID":"1ab23cd4-e567-8901-2345-6789f0gh1i2j","email":"jeanne@example.org","mj_campaign_id":0,"mj_contact_id":1,"customcampaign":"","CustomID":"{ID}","Payload":"","blocked":false,"hard_bounce":true,"error_related_to":"recipient","error":"user unknown"}},
               {{"event":"bounce","CustomID":"{ID}","hard_bounce":false,"error":"mailbox full"}},
               {{"event":"spam","CustomID":"{ID}","source":"JMRPP"}},
               {{"event":"sent","email":"jeanne@example.org"}}]"#
        );
        let events = mailjet(body.as_bytes()).unwrap();
        let kinds: Vec<EmailEventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EmailEventKind::Failed,
                EmailEventKind::Delayed,
                EmailEventKind::Complaint
            ]
        );
        assert_eq!(
            events[0].detail.as_deref(),
            Some("bounce: recipient, user unknown")
        );
    }
}
