//! Contact details of patients and practitioners: email addresses, phone and
//! mobile numbers, French postal codes, country codes and postal addresses.
//!
//! Every type here follows "parse, don't validate": its fields are private and
//! its only constructor can fail, so the planner and the channels rely on the
//! invariant without checking it again. A function that takes a
//! [`MobileNumber`] cannot be handed a landline; a [`PostalAddress`] always fits
//! a window envelope.
//!
//! The facts hold a patient's or practitioner's email and phone number as a [`Contact`]: parsed
//! once where they enter, kept as typed (and reported on) when they do not parse.
//!
//! These are patient data, so `Debug` redacts them (`EmailAddress(j***@example.org)`,
//! `PhoneNumber(+336******78)`): a `{:?}` in a log line or a panic message does not
//! leak them. `Display` and serde give the full value; serde deserialises through
//! the parser, so a bad value in an API body or a scenario file fails with the
//! parser's reason. Error messages never repeat the value they refuse, for the
//! same reason.
//!
//! ```
//! use rappel_domain::contact::{ContactError, MobileNumber};
//!
//! let mobile = MobileNumber::parse("06 12 34 56 78").unwrap();
//! assert_eq!(mobile.e164(), "+33612345678");
//! assert_eq!(MobileNumber::parse("01 23 45 67 89"), Err(ContactError::PhoneNotMobile));
//! ```
//!
//! What this module deliberately does not do:
//! - no I/O: it does not look up a domain's mail servers nor ask whether a number
//!   is in service. A bounce or an undelivered SMS is reported by the channels.
//! - no full RFC 5322: quoted local parts, comments and IP-literal domains are
//!   refused (patients do not have them and mail providers refuse many of them),
//!   and internationalised domains are not converted to punycode.
//! - no world numbering plan (no libphonenumber): France, its overseas
//!   departments and the mobile ranges of a few neighbouring countries are
//!   known; any other country is accepted on length alone.
//! - no address verification against the La Poste database (RNVP): only the
//!   layout rules of NF Z10-011 are applied.

/// Why a piece of contact data was refused. The messages are written for the
/// person who typed the value (an API 422 answer, a form); [`ContactError::code`]
/// gives the machine-readable form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("the email address is empty")]
    EmailEmpty,
    #[error("the email address has no '@' sign")]
    EmailNoAt,
    #[error("the email address has no domain after the '@' sign")]
    EmailNoDomain,
    #[error("the email address is invalid: {0}")]
    EmailInvalid(String),
    #[error("the phone number is empty")]
    PhoneEmpty,
    #[error("the phone number is invalid: {reason}")]
    PhoneInvalid { reason: String },
    #[error(
        "the phone number is a landline or a special-rate number, not a mobile: it cannot receive SMS"
    )]
    PhoneNotMobile,
    #[error(
        "the postal code is invalid: a French postal code has 5 digits and starts with a département number (01 to 95, 971 to 976, or 98)"
    )]
    PostalCodeInvalid,
    #[error("the postal address is invalid: {reason}")]
    AddressInvalid { reason: String },
    #[error("the country code is invalid: expected a two-letter ISO 3166-1 code such as FR or BE")]
    CountryInvalid,
}

impl ContactError {
    /// A short snake_case code for APIs and reason trails. Codes about email and
    /// mobile numbers are the non-delivery reasons of SPEC.md (`no_email`,
    /// `invalid_email`, `no_mobile`, `invalid_mobile`), so the planner can pass
    /// them through; a landline gets its own code (`landline`) because the fix
    /// the practice must make is different: ask the patient for a mobile.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmailEmpty => "no_email",
            Self::EmailNoAt | Self::EmailNoDomain | Self::EmailInvalid(_) => "invalid_email",
            Self::PhoneEmpty => "no_mobile",
            Self::PhoneInvalid { .. } => "invalid_mobile",
            Self::PhoneNotMobile => "landline",
            Self::PostalCodeInvalid => "invalid_postal_code",
            Self::AddressInvalid { .. } => "invalid_address",
            Self::CountryInvalid => "invalid_country",
        }
    }
}

fn email_invalid(reason: &str) -> ContactError {
    ContactError::EmailInvalid(reason.to_owned())
}

fn phone_invalid(reason: impl Into<String>) -> ContactError {
    ContactError::PhoneInvalid {
        reason: reason.into(),
    }
}

fn address_invalid(reason: impl Into<String>) -> ContactError {
    ContactError::AddressInvalid {
        reason: reason.into(),
    }
}

/// Serialises a type as its full string form (its `Display`) and deserialises
/// it through its parser, and gives it `FromStr`.
macro_rules! string_form {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::contact::ContactError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::parse(s)
            }
        }
    };
}

mod email;
mod phone;
mod postal;
mod typed;

pub use email::EmailAddress;
pub use phone::{MobileNumber, PhoneKind, PhoneNumber};
pub use postal::{
    ADDRESS_BLOCK_MAX_LINES, ADDRESS_LINE_MAX_CHARS, ADDRESS_MAX_LINES, CountryCode, PostalAddress,
    PostalCode,
};
pub use typed::{Contact, Unparsed, optional};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_string(s in "\\PC*|.*") {
            let _ = EmailAddress::parse(&s);
            let _ = PhoneNumber::parse(&s);
            let _ = MobileNumber::parse(&s);
            let _ = PostalCode::parse(&s);
            let _ = CountryCode::parse(&s);
        }

    }
}
