//! French words and dates for the interface.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use maud::{Markup, html};
use rappel_domain::notification::{Channel, Kind};
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
pub fn message_reason(m: &rappel_engine::Message) -> Markup {
    html! {
        @if let Some(reason) = m.row.reason {
            (reason.french())
        } @else if let Some(rappel_engine::Outlook::WillNotGo(reason)) = m.outlook {
            (reason.french())
        } @else if let Some(stored) = &m.row.last_error {
            span.muted { (error(stored)) }
        } @else if m.outlook == Some(rappel_engine::Outlook::AfterQuietHours) {
            span.muted { "décalé à la fin des heures calmes du cabinet" }
        }
    }
}

pub fn recipient(r: &rappel_domain::notification::Recipient) -> String {
    match r {
        rappel_domain::notification::Recipient::Patient(_) => "Patient".into(),
        rappel_domain::notification::Recipient::Practitioner(id) => format!("Praticien {id}"),
    }
}
