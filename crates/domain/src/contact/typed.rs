//! A contact of the facts: parsed once when it enters them, kept as typed when it does not parse.

use std::fmt;
use std::str::FromStr;

use super::{ContactError, MobileNumber, PhoneNumber};

/// A patient's or practitioner's email address (`Contact<EmailAddress>`) or phone number
/// (`Contact<PhoneNumber>`, which knows whether it is a mobile), parsed where it enters the facts
/// (the API, a form, a scenario file, a stored row or event being read) and never again.
///
/// A value that does not parse is not refused but kept as typed, [`Contact::Invalid`]: the
/// patient file belongs to the practice software, and SPEC.md decision 7 says what an email that
/// does not parse means (no email: SMS fallback, postal rules for documents), reported as
/// `invalid_email` so that the practice sees what to correct. The API refuses a new phone number
/// that does not parse (`server/src/validate.rs`); an older record or a scenario file may still
/// hold one, which the planner reports as `invalid_mobile`.
///
/// Serialised as one string, as the raw field was: a valid value in its normal form (the form the
/// API has always stored: an email with its domain lower-cased, a phone number in E.164), an
/// invalid one as typed. Reading goes through the parser, so the rows and events stored before
/// the field was typed load unchanged. A blank string is no contact at all: the facts hold `None`
/// for it (see [`Contact::from_input`] and [`optional`]), as the API's blank-means-null rule.
#[derive(Clone, PartialEq, Eq)]
pub enum Contact<T> {
    Valid(T),
    Invalid(Unparsed),
}

/// What was typed for a contact that does not parse: never blank, kept as typed (surrounding
/// spaces included), so that the practice sees what to correct.
#[derive(Clone, PartialEq, Eq)]
pub struct Unparsed(String);

impl Unparsed {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<T: FromStr<Err = ContactError>> Contact<T> {
    /// Parses what was typed: `None` when it is blank, [`Contact::Invalid`] when it does not
    /// parse, never an error.
    pub fn from_input(input: &str) -> Option<Self> {
        if input.trim().is_empty() {
            return None;
        }
        Some(match input.parse() {
            Ok(value) => Self::Valid(value),
            Err(_) => Self::Invalid(Unparsed(input.to_string())),
        })
    }
}

impl<T> Contact<T> {
    /// The parsed value, `None` when the contact does not parse.
    pub fn valid(&self) -> Option<&T> {
        match self {
            Self::Valid(value) => Some(value),
            Self::Invalid(_) => None,
        }
    }
}

impl Contact<PhoneNumber> {
    /// The number as a [`MobileNumber`], when it is one that can receive SMS; `None` for a
    /// landline, a special-rate number or a value that does not parse.
    pub fn mobile(&self) -> Option<MobileNumber> {
        self.valid()
            .and_then(|number| MobileNumber::try_from(number.clone()).ok())
    }

    /// The number as French people write it ([`PhoneNumber::national`]), one that does not parse
    /// as typed: what the web interface shows.
    pub fn national(&self) -> String {
        match self {
            Self::Valid(number) => number.national(),
            Self::Invalid(raw) => raw.as_str().to_string(),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Contact<T> {
    /// The full value: the normal form of a valid one, what was typed of an invalid one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid(value) => value.fmt(f),
            Self::Invalid(raw) => f.write_str(raw.as_str()),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Contact<T> {
    /// A valid value redacts itself; of an invalid one only its length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid(value) => f.debug_tuple("Valid").field(value).finish(),
            Self::Invalid(raw) => raw.fmt(f),
        }
    }
}

impl fmt::Debug for Unparsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid({} characters)", self.0.chars().count())
    }
}

impl<T: fmt::Display> serde::Serialize for Contact<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, T: FromStr<Err = ContactError>> serde::Deserialize<'de> for Contact<T> {
    /// Refuses a blank string, which is no contact: an optional field reads it as `None`
    /// through [`optional`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_input(&raw).ok_or_else(|| {
            serde::de::Error::custom("a contact is not blank: leave it out or write null")
        })
    }
}

/// Reads an optional contact field (`#[serde(default, deserialize_with = "…")]`): missing,
/// `null` and blank are `None`, anything else a [`Contact`], valid or not.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<Contact<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr<Err = ContactError>,
{
    let raw = <Option<String> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(raw.as_deref().and_then(Contact::from_input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{EmailAddress, PhoneKind};

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(
            default,
            deserialize_with = "optional",
            skip_serializing_if = "Option::is_none"
        )]
        email: Option<Contact<EmailAddress>>,
        #[serde(
            default,
            deserialize_with = "optional",
            skip_serializing_if = "Option::is_none"
        )]
        mobile: Option<Contact<PhoneNumber>>,
    }

    fn email(s: &str) -> Contact<EmailAddress> {
        Contact::from_input(s).expect("not blank")
    }

    fn phone(s: &str) -> Contact<PhoneNumber> {
        Contact::from_input(s).expect("not blank")
    }

    #[test]
    fn a_contact_is_parsed_once_into_its_type() {
        let Contact::Valid(e) = email("jeanne@Example.org") else {
            panic!("a valid email")
        };
        assert_eq!(e.as_str(), "jeanne@example.org");
        let Contact::Valid(n) = phone("06 12 34 56 78") else {
            panic!("a valid number")
        };
        assert_eq!((n.e164(), n.kind()), ("+33612345678", PhoneKind::Mobile));
        assert_eq!(
            phone("01 23 45 67 89").valid().map(PhoneNumber::kind),
            Some(PhoneKind::Landline)
        );
    }

    #[test]
    fn an_email_that_does_not_parse_is_kept_as_typed() {
        let kept = email(" jeanne.example.org ");
        let Contact::Invalid(raw) = &kept else {
            panic!("an invalid email")
        };
        assert_eq!(raw.as_str(), " jeanne.example.org ");
        assert_eq!(kept.to_string(), " jeanne.example.org ");
        assert_eq!(kept.valid(), None);
    }

    #[test]
    fn a_blank_contact_is_none() {
        assert_eq!(Contact::<EmailAddress>::from_input(""), None);
        assert_eq!(Contact::<PhoneNumber>::from_input(" \t"), None);
        let holder: Holder = serde_json::from_str(r#"{"email": "  ", "mobile": null}"#).unwrap();
        assert_eq!(
            holder,
            Holder {
                email: None,
                mobile: None
            }
        );
        let bare = serde_json::from_str::<Contact<EmailAddress>>("\"\"").unwrap_err();
        assert!(bare.to_string().contains("not blank"), "{bare}");
    }

    #[test]
    fn only_a_number_in_a_mobile_range_or_of_an_unknown_plan_is_a_mobile() {
        assert_eq!(
            phone("06 12 34 56 78")
                .mobile()
                .map(|m| m.e164().to_string()),
            Some("+33612345678".into())
        );
        assert_eq!(
            phone("+34 612 345 678").mobile().map(|m| m.kind()),
            Some(PhoneKind::Unknown)
        );
        assert_eq!(phone("01 23 45 67 89").mobile(), None);
        assert_eq!(phone("08 00 12 34 56").mobile(), None);
        assert_eq!(phone("06 12").mobile(), None);
        assert_eq!(phone("+33612345678").national(), "06 12 34 56 78");
        assert_eq!(phone("06 12").national(), "06 12");
    }

    #[test]
    fn contacts_serialise_as_the_strings_they_were_stored_as() {
        // The API's normal forms come back unchanged, an invalid email as typed.
        for json in [
            r#"{"email":"jeanne@example.org","mobile":"+33612345678"}"#,
            r#"{"email":"jeanne.example.org","mobile":"+33123456789"}"#,
            r#"{"email":"Jeanne@example.org"}"#,
            r#"{"mobile":"06 12"}"#,
            r#"{}"#,
        ] {
            let holder: Holder = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&holder).unwrap(), json);
        }
        // A valid value typed in another spelling (a scenario file) comes back in its normal form.
        let holder: Holder =
            serde_json::from_str(r#"{"email":"jeanne@EXAMPLE.org","mobile":"06 12 34 56 78"}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_string(&holder).unwrap(),
            r#"{"email":"jeanne@example.org","mobile":"+33612345678"}"#
        );
    }

    proptest::proptest! {
        /// What is stored is read back as the same contact: a valid one's normal form parses to
        /// the same value, an invalid one stays as typed.
        #[test]
        fn a_contact_reads_back_from_its_json_as_itself(
            s in "\\PC*|[0-9 +().-]{0,20}|(\\+33|0|00|\\+590|\\+262|\\+32|\\+41|\\+49|\\+352|\\+377|\\+508|\\+1)[0-9 ]{5,12}|[a-zA-Z0-9.+_-]{1,12}@([a-zA-Z0-9-]{1,8}\\.){1,2}[a-z]{2,4}",
        ) {
            if let Some(email) = Contact::<EmailAddress>::from_input(&s) {
                let json = serde_json::to_string(&email).unwrap();
                proptest::prop_assert_eq!(serde_json::from_str::<Contact<EmailAddress>>(&json).unwrap(), email);
            }
            if let Some(phone) = Contact::<PhoneNumber>::from_input(&s) {
                let json = serde_json::to_string(&phone).unwrap();
                proptest::prop_assert_eq!(serde_json::from_str::<Contact<PhoneNumber>>(&json).unwrap(), phone);
            }
        }
    }

    #[test]
    fn contact_debug_redacts_valid_and_invalid_values() {
        assert_eq!(
            format!("{:?}", email("jeanne@example.org")),
            "Valid(EmailAddress(j***@example.org))"
        );
        assert_eq!(format!("{:?}", email("jeanne@@x")), "Invalid(9 characters)");
        assert_eq!(
            format!("{:?}", phone("06 12 34 56 78")),
            "Valid(PhoneNumber(+336******78))"
        );
    }
}
