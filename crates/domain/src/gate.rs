//! The last check before a message leaves: may this recipient be reached on this channel now?
//!
//! Run by the dispatcher when a message is due, from the facts of that moment (SPEC.md rule 3),
//! so a patient who adds an email or switches SMS on in time still gets the message. Returns the
//! machine-readable reason of SPEC.md rule 4 when not.

use crate::contact::{EmailAddress, MobileNumber};
use crate::facts::{Patient, Practitioner};
use crate::notification::{Channel, Reason};
use crate::policy::{Policy, Switch};
use crate::settings::Settings;

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

pub fn check_patient(
    policy: &Policy,
    settings: &Settings,
    patient: &Patient,
    channel: Channel,
) -> Result<(), Reason> {
    match channel {
        Channel::Email => {
            if !patient_switch(policy, settings, patient, channel) {
                return Err(Reason::PatientEmailDisabled);
            }
            check_email(patient.email.as_deref())
        }
        Channel::Sms => {
            // The patient's own STOP outranks every default and every switch of the file.
            if patient.sms_opt_out.is_some() || !patient_switch(policy, settings, patient, channel)
            {
                return Err(Reason::PatientSmsDisabled);
            }
            check_mobile(patient.mobile.as_deref())
        }
        Channel::Push if !patient.has_push() => Err(Reason::NoPushSubscription),
        Channel::Push => Ok(()),
        Channel::Postal => match &patient.address {
            None => Err(Reason::NoPostalAddress),
            Some(address) if !address.is_france() => Err(Reason::ForeignAddress),
            Some(_) => Ok(()),
        },
        Channel::Inbox => Ok(()),
    }
}

pub fn check_practitioner(practitioner: &Practitioner, channel: Channel) -> Result<(), Reason> {
    match channel {
        Channel::Email => check_email(practitioner.email.as_deref()),
        Channel::Sms => check_mobile(practitioner.mobile.as_deref()),
        _ => Ok(()),
    }
}

fn check_email(email: Option<&str>) -> Result<(), Reason> {
    match email.map(str::trim).filter(|e| !e.is_empty()) {
        None => Err(Reason::NoEmail),
        Some(e) if EmailAddress::parse(e).is_err() => Err(Reason::InvalidEmail),
        Some(_) => Ok(()),
    }
}

fn check_mobile(mobile: Option<&str>) -> Result<(), Reason> {
    match mobile.map(str::trim).filter(|m| !m.is_empty()) {
        None => Err(Reason::NoMobile),
        // A landline is not a mobile: SMS cannot reach it (`invalid_mobile`).
        Some(m) if MobileNumber::parse(m).is_err() => Err(Reason::InvalidMobile),
        Some(_) => Ok(()),
    }
}
