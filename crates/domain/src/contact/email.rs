//! Email addresses: a pragmatic subset of RFC 5322 that mail providers accept.

use std::fmt;

use super::{ContactError, email_invalid};

/// RFC 5321 limits: a path is at most 256 octets including the angle brackets.
const EMAIL_MAX_CHARS: usize = 254;
const LOCAL_PART_MAX_CHARS: usize = 64;
const DOMAIN_LABEL_MAX_CHARS: usize = 63;

/// An email address that a mail provider will accept: a pragmatic subset of the
/// RFC 5322 `addr-spec`.
///
/// The local part (before the `@`) is kept as typed, since it may be
/// case-sensitive on the receiving server; the domain is lower-cased, since it
/// is not. Two addresses differing only by the case of their local part are
/// therefore different values.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    value: String,
    /// Byte index of the `@` in `value`.
    at: usize,
}

impl EmailAddress {
    /// Parses an address, ignoring surrounding whitespace.
    ///
    /// The local part is a dot-atom of ASCII `atext` (letters, digits and
    /// ``! # $ % & ' * + - / = ? ^ _ ` { | } ~``), at most 64 characters, without
    /// a leading, trailing or double dot. The domain has at least two labels of
    /// letters (Unicode letters allowed, for internationalised domains), digits
    /// and inner hyphens, at most 63 characters each, and ends with a top-level
    /// domain of at least two letters (or a punycode `xn--` one). Lengths are
    /// counted in characters; the punycode form of an internationalised domain
    /// may be longer, which only the receiving server can check.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ContactError::EmailEmpty);
        }
        let Some((local, domain)) = input.split_once('@') else {
            return Err(ContactError::EmailNoAt);
        };
        if domain.contains('@') {
            return Err(email_invalid("it contains more than one '@' sign"));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(email_invalid("it contains a space"));
        }
        if local.is_empty() {
            return Err(email_invalid("there is nothing before the '@' sign"));
        }
        if domain.is_empty() {
            return Err(ContactError::EmailNoDomain);
        }
        validate_local_part(local)?;
        let domain = domain.to_lowercase();
        validate_domain(&domain)?;
        let value = format!("{local}@{domain}");
        if value.chars().count() > EMAIL_MAX_CHARS {
            return Err(email_invalid("it is longer than 254 characters"));
        }
        Ok(Self {
            at: local.len(),
            value,
        })
    }

    /// The whole address, with its domain lower-cased.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The part before the `@`, as typed.
    pub fn local_part(&self) -> &str {
        &self.value[..self.at]
    }

    /// The part after the `@`, lower-cased.
    pub fn domain(&self) -> &str {
        &self.value[self.at + 1..]
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn validate_local_part(local: &str) -> Result<(), ContactError> {
    if local.chars().any(|c| !(is_atext(c) || c == '.')) {
        return Err(email_invalid(
            "the part before the '@' may contain only unaccented letters, digits, dots and ! # $ % & ' * + - / = ? ^ _ ` { | } ~",
        ));
    }
    if local.len() > LOCAL_PART_MAX_CHARS {
        return Err(email_invalid(
            "the part before the '@' is longer than 64 characters",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(email_invalid(
            "the part before the '@' must not start or end with a dot, nor contain two dots in a row",
        ));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), ContactError> {
    if !domain.contains('.') {
        return Err(email_invalid(
            "the domain has no dot (expected something like example.org)",
        ));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(email_invalid(
                "the domain must not start or end with a dot, nor contain two dots in a row",
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_alphabetic() || c.is_ascii_digit() || c == '-')
        {
            return Err(email_invalid(
                "the domain may contain only letters, digits, hyphens and dots",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(email_invalid(
                "a part of the domain starts or ends with a hyphen",
            ));
        }
        if label.chars().count() > DOMAIN_LABEL_MAX_CHARS {
            return Err(email_invalid(
                "a part of the domain is longer than 63 characters",
            ));
        }
    }
    // The loop above saw at least two non-empty labels.
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let is_punycode = tld.len() > 4 && tld.starts_with("xn--");
    let is_letters = tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic);
    if !(is_letters || is_punycode) {
        return Err(email_invalid(
            "the domain must end with at least two letters after the last dot (such as .fr or .org)",
        ));
    }
    Ok(())
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for EmailAddress {
    /// Shows the first character of the local part and the domain only: enough
    /// to tell addresses apart in a log, not enough to write to the patient.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.local_part().chars().next().unwrap_or('?');
        write!(f, "EmailAddress({first}***@{})", self.domain())
    }
}

string_form!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn email_is_trimmed_and_its_domain_lower_cased_but_not_its_local_part() {
        let e = email("  Jeanne.Dupont@Example.ORG \n");
        assert_eq!(e.as_str(), "Jeanne.Dupont@example.org");
        assert_eq!(e.local_part(), "Jeanne.Dupont");
        assert_eq!(e.domain(), "example.org");
        assert_eq!(e.to_string(), "Jeanne.Dupont@example.org");
    }

    #[test]
    fn email_accepts_every_atext_character_in_the_local_part() {
        let e = email("a.b+tag!#$%&'*-/=?^_`{|}~@sub.example.fr");
        assert_eq!(e.local_part(), "a.b+tag!#$%&'*-/=?^_`{|}~");
    }

    #[test]
    fn email_accepts_internationalised_and_punycode_domains() {
        assert_eq!(email("marie@Café.fr").domain(), "café.fr");
        assert_eq!(email("ivan@пример.рф").domain(), "пример.рф");
        assert_eq!(
            email("ivan@xn--e1afmkfd.xn--p1ai").domain(),
            "xn--e1afmkfd.xn--p1ai"
        );
    }

    #[test]
    fn email_without_at_sign_is_refused_as_no_at() {
        assert_eq!(
            EmailAddress::parse("jeanne.example.org"),
            Err(ContactError::EmailNoAt)
        );
    }

    #[test]
    fn blank_email_is_refused_as_empty() {
        assert_eq!(EmailAddress::parse("  "), Err(ContactError::EmailEmpty));
        assert_eq!(ContactError::EmailEmpty.code(), "no_email");
    }

    #[test]
    fn email_with_nothing_after_the_at_sign_is_refused_as_no_domain() {
        assert_eq!(
            EmailAddress::parse("jeanne@"),
            Err(ContactError::EmailNoDomain)
        );
    }

    #[test]
    fn malformed_emails_are_refused_with_a_reason() {
        let cases = [
            ("@example.org", "nothing before"),
            ("a@b@example.org", "more than one '@'"),
            ("jeanne dupont@example.org", "space"),
            (".jeanne@example.org", "dot"),
            ("jeanne.@example.org", "dot"),
            ("jea..nne@example.org", "dot"),
            ("jéanne@example.org", "unaccented"),
            ("jeanne@localhost", "no dot"),
            ("jeanne@example..org", "two dots"),
            ("jeanne@example.org.", "end with a dot"),
            ("jeanne@-example.org", "hyphen"),
            ("jeanne@example-.org", "hyphen"),
            ("jeanne@exam_ple.org", "only letters"),
            ("jeanne@example.f", "two letters"),
            ("jeanne@example.123", "two letters"),
            ("jeanne@[192.168.0.1]", "only letters"),
            ("\"jeanne\"@example.org", "unaccented"),
        ];
        for (input, reason) in cases {
            match EmailAddress::parse(input) {
                Err(e @ ContactError::EmailInvalid(_)) => {
                    assert!(e.to_string().contains(reason), "{input:?}: {e}");
                    assert_eq!(e.code(), "invalid_email");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn email_length_limits_are_64_for_the_local_part_63_per_label_and_254_in_all() {
        assert!(EmailAddress::parse(&format!("{}@example.org", "a".repeat(64))).is_ok());
        assert!(EmailAddress::parse(&format!("{}@example.org", "a".repeat(65))).is_err());
        assert!(EmailAddress::parse(&format!("a@{}.org", "b".repeat(63))).is_ok());
        assert!(EmailAddress::parse(&format!("a@{}.org", "b".repeat(64))).is_err());
        // 1 + 1 + (3 × 63 + 60 + 3 dots) = 254 characters.
        let domain = [
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
            "e".repeat(60),
        ]
        .join(".");
        let at_limit = format!("a@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(EmailAddress::parse(&at_limit).is_ok());
        let err = EmailAddress::parse(&format!("ab@{domain}")).unwrap_err();
        assert!(err.to_string().contains("254"), "{err}");
    }

    #[test]
    fn email_debug_redacts_the_local_part() {
        assert_eq!(
            format!("{:?}", email("jeanne.dupont@example.org")),
            "EmailAddress(j***@example.org)"
        );
    }

    #[test]
    fn email_serialises_as_a_string_and_deserialises_through_the_parser() {
        let e = email("jeanne@Example.org");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"jeanne@example.org\"");
        let back: EmailAddress = serde_json::from_str("\" jeanne@example.org \"").unwrap();
        assert_eq!(back, e);
        let err = serde_json::from_str::<EmailAddress>("\"jeanne.example.org\"").unwrap_err();
        assert!(err.to_string().contains("no '@' sign"), "{err}");
    }

    proptest! {
        #[test]
        fn parsed_email_reparses_to_the_same_address(
            s in "[a-zA-Z0-9.+_-]{1,20}@([a-zA-Zé0-9-]{1,10}\\.){1,3}[a-zA-Z]{2,6}",
        ) {
            if let Ok(e) = EmailAddress::parse(&s) {
                prop_assert_eq!(EmailAddress::parse(e.as_str()), Ok(e.clone()));
            }
        }
    }
}
