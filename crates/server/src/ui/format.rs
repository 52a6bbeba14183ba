//! French words and dates for the interface.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use maud::{Markup, html};
use rappel_domain::facts::Source;
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::policy::Policy;
use rappel_store::Status;

/// "lundi 23 novembre 2026" (the same words as the messages).
/// A message's last error, as stored in English by the engine and the channels, said in French
/// for the practice: the class of failure in French, the provider's own words after it.
pub fn error(stored: &str) -> String {
    if stored.starts_with("bounced") {
        return "l'email est revenu en erreur : le serveur du destinataire l'a refusé (adresse inexistante ou boîte pleine)".into();
    }
    if stored == "the provider reported it undelivered" {
        return "le prestataire signale que le message n'a pas été remis".into();
    }
    for (english, french) in [
        ("permanent failure: ", "échec définitif : "),
        (
            "temporary failure: ",
            "échec temporaire, nouvel essai prévu : ",
        ),
        (
            "the address no longer exists: ",
            "l'adresse n'existe plus : ",
        ),
    ] {
        if let Some(detail) = stored.strip_prefix(english) {
            return format!("{french}{detail}");
        }
    }
    stored.to_string()
}

/// « 1 courrier », « 3 courriers », « 0 courrier » (French uses the singular for 0 and 1).
pub fn count(n: impl TryInto<i64>, one: &str, many: &str) -> String {
    let n: i64 = n.try_into().unwrap_or(i64::MAX);
    if n.abs() <= 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A share as the French write it: « 12,5 % », with a comma and a narrow no-break space.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "—".into();
    }
    let tenths = (1000 * part + whole / 2) / whole;
    format!("{},{}\u{202f}%", tenths / 10, tenths % 10)
}

/// Who sent a delivery report, as the practice knows them.
pub fn report_source(source: &str) -> &str {
    match source {
        "dsn" => "le serveur de messagerie du destinataire (avis de non-remise)",
        "bounce" => "le serveur de messagerie du destinataire",
        "twilio" => "Twilio",
        "ovh" => "OVHcloud",
        "webhook" => "la passerelle SMS",
        "brevo" => "Brevo",
        "mailjet" => "Mailjet",
        other => other,
    }
}

/// Euro cents as the French write them: « 1,52 € ».
pub fn euros(cents: impl Into<i64>) -> String {
    let cents: i64 = cents.into();
    format!("{},{:02} €", cents / 100, cents % 100)
}

pub fn date(d: Date) -> String {
    rappel_domain::template::day_text(d, rappel_domain::template::Locale::Fr)
}

/// "23/11/2026 à 09:00" in the practice's time zone.
pub fn instant(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone())
        .strftime("%d/%m/%Y à %H:%M")
        .to_string()
}

/// "09:00".
pub fn time(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone()).strftime("%H:%M").to_string()
}

pub fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Confirmation => "Confirmation de rendez-vous",
        Kind::Reminder => "Rappel de rendez-vous",
        Kind::Moved => "Rendez-vous déplacé",
        Kind::Cancellation => "Annulation",
        Kind::Deletion => "Rendez-vous supprimé",
        Kind::NoShow => "Absence au rendez-vous",
        Kind::PractitionerBooking => "Alerte praticien : nouveau rendez-vous",
        Kind::PractitionerCancellation => "Alerte praticien : annulation",
        Kind::PractitionerMove => "Alerte praticien : déplacement",
        Kind::Document => "Document",
        Kind::Task => "Tâche programmée",
    }
}

pub fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Push => "Notification push",
        Channel::Postal => "Courrier",
        Channel::Inbox => "Boîte du cabinet",
    }
}

pub fn channel_str(c: &str) -> &str {
    Channel::parse(c).map(channel).unwrap_or(c)
}

/// The status as a coloured badge.
pub fn status(s: Status) -> Markup {
    let (class, label) = match s {
        Status::Pending => ("planned", "Prévu"),
        Status::Sending => ("planned", "En cours d'envoi"),
        Status::Sent => ("sent", "Envoyé"),
        Status::Delivered => ("delivered", "Distribué"),
        Status::Failed => ("failed", "Échec"),
        Status::Suppressed => ("suppressed", "Non envoyé"),
    };
    html! { span class={"badge " (class)} { (label) } }
}

/// What a rule does, in the practice's words: « Rappel de rendez-vous par SMS, la veille à partir
/// de 13:00 — rendez-vous pris 7 jours avant ou moins » instead of `reminder_sms_d1`.
pub fn rule_label(policy: &Policy, rule: &str) -> String {
    if rule.starts_with("task:") {
        return "traitement programmé (programmateur)".into();
    }
    if rule == rappel_engine::REPLY_RULE {
        return "réponse automatique à un SMS du patient".into();
    }
    if rule == "manual_postal" {
        return "renvoi par courrier demandé par le cabinet".into();
    }
    let Some(rule) = policy.rules.iter().find(|r| r.id == rule) else {
        return rule.to_string();
    };
    let mut label = format!(
        "{} par {}",
        kind(rule.kind),
        channel(rule.channels[0]).to_lowercase()
    );
    if let Some(fallback) = rule.fallback {
        label.push_str(&format!(
            " (ou {} sans contact)",
            channel(fallback).to_lowercase()
        ));
    }
    let t = &rule.timing;
    let day = |d: i32| match d {
        0 => "le jour même".to_string(),
        -1 => "la veille".to_string(),
        d if d < 0 => format!("{} jours avant", -d),
        d => format!("{d} jours après"),
    };
    let when = if let (Some(d), Some((a, b))) = (t.day, t.window) {
        format!(
            "{} entre {} et {}",
            day(d),
            a.strftime("%H:%M"),
            b.strftime("%H:%M")
        )
    } else if let (Some(d), Some(from)) = (t.day, t.from) {
        format!("{} à partir de {}", day(d), from.strftime("%H:%M"))
    } else if let Some(d) = t.day {
        day(d)
    } else if let Some(before) = t.before_start {
        format!("{} h avant le rendez-vous", before.as_hours())
    } else if let Some(cap) = t.halfway_cap {
        format!(
            "environ {} jours avant (jamais avant la moitié du délai)",
            cap.as_hours() / 24
        )
    } else if t.days_option.is_some() {
        "après le délai réglé dans les paramètres".to_string()
    } else if let Some(delay) = t.delay {
        if delay.is_zero() {
            "aussitôt".to_string()
        } else {
            format!("environ {} min après", delay.as_mins())
        }
    } else {
        String::new()
    };
    if !when.is_empty() {
        label.push_str(", ");
        label.push_str(&when);
    }
    let w = &rule.when;
    let mut conditions = Vec::new();
    if let Some(sources) = &w.source {
        for source in sources {
            conditions.push(
                match source {
                    Source::Online => "rendez-vous pris en ligne",
                    Source::Staff => "rendez-vous pris par le cabinet",
                    Source::Referral => "rendez-vous pris par un confrère",
                }
                .to_string(),
            );
        }
    }
    if let Some(days) = w.lead_over {
        conditions.push(format!("rendez-vous pris plus de {} avant", lead(days)));
    }
    if let Some(days) = w.lead_at_most {
        conditions.push(format!("rendez-vous pris {} avant ou moins", lead(days)));
    }
    if let Some(option) = &w.option {
        conditions.push(format!("option « {} »", option_label(policy, option)));
    }
    if !conditions.is_empty() {
        label.push_str(" — ");
        label.push_str(&conditions.join(", "));
    }
    label
}

fn lead(d: jiff::SignedDuration) -> String {
    let hours = d.as_hours();
    if hours % 24 == 0 {
        let days = hours / 24;
        if days == 1 {
            "1 jour".into()
        } else {
            format!("{days} jours")
        }
    } else {
        format!("{hours} h")
    }
}

/// An option's label from the policy, or its key when it has none.
pub fn option_label(policy: &Policy, key: &str) -> String {
    policy
        .options
        .get(key)
        .map(|spec| spec.label.clone())
        .filter(|label| !label.is_empty())
        .unwrap_or_else(|| key.to_string())
}

/// A reason in French; « option non activée » names the option of the message's rule.
pub fn reason(policy: &Policy, rule: &str, reason: Reason) -> String {
    if reason == Reason::OptionDisabled
        && let Some(option) = policy
            .rules
            .iter()
            .find(|r| r.id == rule)
            .and_then(|r| r.when.option.as_deref())
    {
        return format!(
            "option non activée dans les paramètres du cabinet : « {} »",
            option_label(policy, option)
        );
    }
    reason.french().to_string()
}

/// A message's status as the practice should read it today: « Ne partira pas » for a planned
/// message the send-time checks would refuse, « Prévu » otherwise.
pub fn message_status(m: &rappel_engine::Message) -> Markup {
    match m.outlook {
        Some(rappel_engine::Outlook::WillNotGo(_)) => {
            html! { span class="badge failed" { "Ne partira pas" } }
        }
        _ => status(m.row.status),
    }
}

/// Why: the reason a message was not sent, the reason a planned one will not go, the error of a
/// failed one, or that quiet hours moved it.
pub fn message_reason(policy: &Policy, m: &rappel_engine::Message) -> Markup {
    html! {
        @if let Some(why) = m.row.reason {
            (reason(policy, &m.row.rule, why))
        } @else if let Some(rappel_engine::Outlook::WillNotGo(why)) = m.outlook {
            (reason(policy, &m.row.rule, why))
        } @else if let Some(stored) = &m.row.last_error {
            span.muted { (error(stored)) }
        } @else if m.outlook == Some(rappel_engine::Outlook::AfterQuietHours) {
            span.muted { "décalé à la fin des heures calmes du cabinet" }
        }
    }
}

/// Who a message went (or goes) to, by name for a practitioner.
pub fn message_recipient(m: &rappel_engine::Message) -> String {
    match (&m.row.recipient, &m.practitioner_name) {
        (rappel_domain::notification::Recipient::Practitioner(_), Some(name)) => {
            format!("Praticien : {name}")
        }
        (r, _) => recipient(r),
    }
}

pub fn recipient(r: &rappel_domain::notification::Recipient) -> String {
    match r {
        rappel_domain::notification::Recipient::Patient(_) => "Patient".into(),
        rappel_domain::notification::Recipient::Practitioner(id) => format!("Praticien {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_the_french_way() {
        assert_eq!(percent(0, 12), "0,0\u{202f}%");
        assert_eq!(percent(1, 8), "12,5\u{202f}%");
        assert_eq!(percent(2, 3), "66,7\u{202f}%");
        assert_eq!(percent(1, 0), "—");
        assert_eq!(count(0, "courrier", "courriers"), "0 courrier");
        assert_eq!(count(1usize, "courrier", "courriers"), "1 courrier");
        assert_eq!(count(3i32, "courrier", "courriers"), "3 courriers");
        assert_eq!(euros(152), "1,52 €");
    }
}
