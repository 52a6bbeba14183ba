//! The vocabulary of notifications: kinds, channels, recipients, suppression reasons, and the
//! desired notification the planner produces.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a message is about (SCENARIOS.md `kind`).
    Kind {
        Confirmation => "confirmation",
        Reminder => "reminder",
        Moved => "moved",
        Cancellation => "cancellation",
        Deletion => "deletion",
        NoShow => "no_show",
        PractitionerBooking => "practitioner_booking",
        PractitionerCancellation => "practitioner_cancellation",
        PractitionerMove => "practitioner_move",
        Document => "document",
        Task => "task",
    }
);

impl Kind {
    /// Kinds that announce an appointment to come to the patient: they are useless once it has
    /// started (SPEC.md decision 1). Practitioner alerts are not among them: a practitioner
    /// must hear of a booking made online six minutes before it starts.
    pub fn announces_appointment(self) -> bool {
        matches!(self, Kind::Confirmation | Kind::Reminder)
    }

    /// Notices that tell the patient an appointment will not happen as planned (cancelled,
    /// deleted, moved). Their `window_end` is the appointment's original start, and quiet hours
    /// yield to it: a notice that quiet hours would hold past that start goes at once, because
    /// it is the only thing that spares the patient a wasted trip (SPEC.md decision 1). They are
    /// never too late to send.
    pub fn is_change_notice(self) -> bool {
        matches!(self, Kind::Cancellation | Kind::Deletion | Kind::Moved)
    }

    /// The instant after which a message of this kind with this `window_end` is no longer sent
    /// (`window_passed`), also when a retry would come after it. `None`: it never expires.
    pub fn expires_at(self, window_end: Option<Timestamp>) -> Option<Timestamp> {
        if self.is_change_notice() {
            None
        } else {
            window_end
        }
    }
}

string_enum!(
    /// How a message travels. `Inbox` is internal: an entry in one of the practice's boxes.
    Channel {
        Email => "email",
        Sms => "sms",
        Push => "push",
        Postal => "postal",
        Inbox => "inbox",
    }
);

string_enum!(
    /// Why a notification the policy wanted was not sent (SPEC.md rule 4).
    Reason {
        PatientEmailDisabled => "patient_email_disabled",
        PatientSmsDisabled => "patient_sms_disabled",
        NoEmail => "no_email",
        InvalidEmail => "invalid_email",
        NoMobile => "no_mobile",
        InvalidMobile => "invalid_mobile",
        NoPushSubscription => "no_push_subscription",
        MotiveNotificationsDisabled => "motive_notifications_disabled",
        OptionDisabled => "option_disabled",
        WindowPassed => "window_passed",
        QuotaExhausted => "quota_exhausted",
        Superseded => "superseded",
        Grouped => "grouped",
        NoPostalAddress => "no_postal_address",
        ForeignAddress => "foreign_address",
        PatientErased => "patient_erased",
        ManualLetterSent => "manual_letter_sent",
    }
);

impl Reason {
    /// Reasons the planner decides from policy and time. A later plan may revise them (an
    /// option switched back on, an appointment moved to a later date); the others are final.
    pub fn is_revisable(self) -> bool {
        matches!(
            self,
            Reason::Superseded
                | Reason::Grouped
                | Reason::OptionDisabled
                | Reason::MotiveNotificationsDisabled
                | Reason::WindowPassed
        )
    }

    /// The explanation a practice manager reads, in French.
    pub fn french(self) -> &'static str {
        match self {
            Reason::PatientEmailDisabled => "le patient a désactivé les emails",
            Reason::PatientSmsDisabled => "les SMS ne sont pas activés pour ce patient",
            Reason::NoEmail => "aucune adresse email dans la fiche patient",
            Reason::InvalidEmail => "l'adresse email de la fiche est invalide",
            Reason::NoMobile => "aucun numéro de mobile dans la fiche",
            Reason::InvalidMobile => {
                "le numéro de la fiche n'est pas un mobile (numéro fixe ou invalide)"
            }
            Reason::NoPushSubscription => {
                "le patient n'a pas activé les notifications de l'application"
            }
            Reason::MotiveNotificationsDisabled => {
                "les notifications sont désactivées pour ce motif"
            }
            Reason::OptionDisabled => "l'option correspondante n'est pas activée pour le cabinet",
            Reason::WindowPassed => "le moment d'envoi était déjà passé",
            Reason::QuotaExhausted => "le quota mensuel de SMS est épuisé",
            Reason::Superseded => "remplacé après un changement (déplacement, annulation…)",
            Reason::Grouped => "regroupé avec un autre rendez-vous du même jour",
            Reason::NoPostalAddress => "aucune adresse postale dans la fiche",
            Reason::ForeignAddress => "adresse à l'étranger : pas de courrier hors de France",
            Reason::PatientErased => "données du patient effacées (RGPD)",
            Reason::ManualLetterSent => {
                "un courrier de ce document a été demandé à la main : pas de second courrier"
            }
        }
    }
}

/// Who receives a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    Patient(String),
    Practitioner(String),
}

impl Recipient {
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        match kind {
            "patient" => Some(Recipient::Patient(id.to_string())),
            "practitioner" => Some(Recipient::Practitioner(id.to_string())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::Patient(id) => write!(f, "patient:{id}"),
            Recipient::Practitioner(id) => write!(f, "practitioner:{id}"),
        }
    }
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Recipient::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected patient:ID or practitioner:ID"))
    }
}

/// Whether the planner wants the message sent or explains why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesiredState {
    Pending,
    Suppressed(Reason),
}

/// One message the policy wants to exist, keyed by a deterministic identity key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// `subject/rule/channel/recipient[/occurrence]`; unique within a practice.
    pub key: String,
    /// The patient whose facts produced it: the scope of reconciliation.
    pub patient: String,
    pub rule: String,
    pub kind: Kind,
    pub channel: Channel,
    pub recipient: Recipient,
    pub appointments: Vec<String>,
    pub document: Option<String>,
    pub task: Option<String>,
    pub auto_resend: bool,
    /// Earliest send instant (quiet hours already applied).
    pub due: Timestamp,
    /// After this instant the message is useless and is not sent (`window_passed`); for a
    /// change notice, the original start that quiet hours yield to ([`Kind::is_change_notice`]).
    pub window_end: Option<Timestamp>,
    pub state: DesiredState,
}
