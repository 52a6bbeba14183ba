//! The last check before a message leaves: may this recipient be reached on this channel now?
//!
//! Run by the dispatcher when a message is due, from the facts of that moment (SPEC.md rule 3),
//! so a patient who adds an email or switches SMS on in time still gets the message. Returns the
//! typed address it allows ([`Destination`]), so that the dispatcher can only hand a message to
//! an address that parsed, or the machine-readable reason of SPEC.md rule 4 when not.

use crate::contact::{Contact, EmailAddress, MobileNumber, PhoneNumber, PostalAddress};
use crate::facts::{Patient, Practitioner, PushSubscription};
use crate::notification::{Channel, Reason};
use crate::policy::{Policy, Switch};
use crate::settings::Settings;

/// Where the gate lets a message go, one variant per channel, each with what that channel needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination<'a> {
    Email(&'a EmailAddress),
    /// A number that can receive SMS (a mobile, or a number of a plan we do not know).
    Sms(MobileNumber),
    /// The patient's devices; none for a patient of the practice's own application (`push =
    /// true` in a scenario), reached through the outbox.
    Push(&'a [PushSubscription]),
    /// A French address.
    Postal(&'a PostalAddress),
    Inbox,
}

/// The patient's effective switch for a channel: their own choice, else the preset/plan default.
pub fn patient_switch(
    policy: &Policy,
    settings: &Settings,
    patient: &Patient,
    channel: Channel,
) -> bool {
    let (own, default) = match channel {
        Channel::Email => (
            patient.email_notifications,
            &policy.patient_defaults.email_notifications,
        ),
        Channel::Sms => (
            patient.sms_notifications,
            &policy.patient_defaults.sms_notifications,
        ),
        _ => return true,
    };
    own.unwrap_or_else(|| match default {
        None => true,
        Some(Switch::Fixed(on)) => *on,
        Some(Switch::WhenOption { option, values }) => settings.is_one_of(option, values),
    })
}

pub fn check_patient<'a>(
    policy: &Policy,
    settings: &Settings,
    patient: &'a Patient,
    channel: Channel,
) -> Result<Destination<'a>, Reason> {
    match channel {
        Channel::Email => {
            if !patient_switch(policy, settings, patient, channel) {
                return Err(Reason::PatientEmailDisabled);
            }
            check_email(patient.email.as_ref())
        }
        Channel::Sms => {
            // The patient's own STOP outranks every default and every switch of the file.
            if patient.sms_opt_out.is_some() || !patient_switch(policy, settings, patient, channel)
            {
                return Err(Reason::PatientSmsDisabled);
            }
            check_mobile(patient.mobile.as_ref())
        }
        Channel::Push if !patient.has_push() => Err(Reason::NoPushSubscription),
        Channel::Push => Ok(Destination::Push(&patient.push_subscriptions)),
        Channel::Postal => match &patient.address {
            None => Err(Reason::NoPostalAddress),
            Some(address) if !address.is_france() => Err(Reason::ForeignAddress),
            Some(address) => Ok(Destination::Postal(address)),
        },
        Channel::Inbox => Ok(Destination::Inbox),
    }
}

/// A practitioner is reached by email or SMS only (the planner plans nothing else for them): a
/// push message or a letter has no address to go to.
pub fn check_practitioner(
    practitioner: &Practitioner,
    channel: Channel,
) -> Result<Destination<'_>, Reason> {
    match channel {
        Channel::Email => check_email(practitioner.email.as_ref()),
        Channel::Sms => check_mobile(practitioner.mobile.as_ref()),
        Channel::Push => Err(Reason::NoPushSubscription),
        Channel::Postal => Err(Reason::NoPostalAddress),
        Channel::Inbox => Ok(Destination::Inbox),
    }
}

fn check_email(email: Option<&Contact<EmailAddress>>) -> Result<Destination<'_>, Reason> {
    match email {
        None => Err(Reason::NoEmail),
        Some(Contact::Invalid(_)) => Err(Reason::InvalidEmail),
        Some(Contact::Valid(address)) => Ok(Destination::Email(address)),
    }
}

fn check_mobile(mobile: Option<&Contact<PhoneNumber>>) -> Result<Destination<'static>, Reason> {
    match mobile {
        None => Err(Reason::NoMobile),
        // A landline is not a mobile: SMS cannot reach it (`invalid_mobile`).
        Some(number) => number
            .mobile()
            .map(Destination::Sms)
            .ok_or(Reason::InvalidMobile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::preset;

    fn allowed<'a>(patient: &'a Patient, channel: Channel) -> Result<Destination<'a>, Reason> {
        let policy = preset("doctolib").expect("a preset");
        let settings = Settings::resolve(&policy, &serde_json::Map::new()).expect("settings");
        check_patient(&policy, &settings, patient, channel)
    }

    fn patient(email: &str, mobile: &str) -> Patient {
        Patient {
            id: "p1".into(),
            email: Contact::from_input(email),
            mobile: Contact::from_input(mobile),
            email_notifications: Some(true),
            sms_notifications: Some(true),
            ..Patient::default()
        }
    }

    #[test]
    fn the_gate_returns_the_parsed_address_it_allows() {
        let jeanne = patient("Jeanne@Example.org", "06 12 34 56 78");
        let Ok(Destination::Email(email)) = allowed(&jeanne, Channel::Email) else {
            panic!("an email destination")
        };
        assert_eq!(email.as_str(), "Jeanne@example.org");
        let Ok(Destination::Sms(mobile)) = allowed(&jeanne, Channel::Sms) else {
            panic!("an SMS destination")
        };
        assert_eq!(mobile.e164(), "+33612345678");
        assert_eq!(allowed(&jeanne, Channel::Inbox), Ok(Destination::Inbox));
    }

    #[test]
    fn the_gate_refuses_missing_blank_and_unparsable_contacts_with_their_reason() {
        let nothing = patient("", " ");
        assert_eq!(allowed(&nothing, Channel::Email), Err(Reason::NoEmail));
        assert_eq!(allowed(&nothing, Channel::Sms), Err(Reason::NoMobile));
        let typo = patient("jeanne.example.org", "06 12");
        assert_eq!(allowed(&typo, Channel::Email), Err(Reason::InvalidEmail));
        assert_eq!(allowed(&typo, Channel::Sms), Err(Reason::InvalidMobile));
        // A landline parses, and is kept as a phone number, but cannot receive SMS.
        let landline = patient("jeanne@example.org", "01 23 45 67 89");
        assert_eq!(allowed(&landline, Channel::Sms), Err(Reason::InvalidMobile));
    }

    #[test]
    fn the_gate_gives_a_practitioner_email_or_sms_only() {
        let martin = Practitioner {
            id: "dr-martin".into(),
            name: "Dr Martin".into(),
            email: Contact::from_input("martin@cabinet.example"),
            mobile: Contact::from_input("01 23 45 67 89"),
        };
        assert!(matches!(
            check_practitioner(&martin, Channel::Email),
            Ok(Destination::Email(e)) if e.as_str() == "martin@cabinet.example"
        ));
        assert_eq!(
            check_practitioner(&martin, Channel::Sms),
            Err(Reason::InvalidMobile)
        );
        assert_eq!(
            check_practitioner(&martin, Channel::Push),
            Err(Reason::NoPushSubscription)
        );
        assert_eq!(
            check_practitioner(&martin, Channel::Postal),
            Err(Reason::NoPostalAddress)
        );
    }
}
