//! Contact details of patients and practitioners: email addresses, phone and
//! mobile numbers, French postal codes, country codes and postal addresses.
//!
//! Every type here follows "parse, don't validate": its fields are private and
//! its only constructor can fail, so the planner and the channels rely on the
//! invariant without checking it again. A function that takes a
//! [`MobileNumber`] cannot be handed a landline; a [`PostalAddress`] always fits
//! a window envelope.
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

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $ty {
            type Err = ContactError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::parse(s)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Email

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

// ---------------------------------------------------------------------------
// Phone numbers

/// What a phone number is for, as far as its numbering plan tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    /// A mobile range: the number can receive SMS.
    Mobile,
    /// A fixed line, including French non-geographic `09` numbers (internet
    /// boxes), which cannot receive SMS.
    Landline,
    /// Premium-rate, shared-cost or free-phone numbers (French `08`).
    Special,
    /// A country whose numbering plan we do not know in detail.
    Unknown,
}

/// A phone number, normalised to E.164 (`+33612345678`).
///
/// Accepted input forms: the French national form (`06 12 34 56 78`,
/// `06.12.34.56.78`, `0612345678`, with spaces, dots, dashes, slashes or
/// parentheses), E.164 (`+33612345678`, `+33 6 12 34 56 78`, also the common
/// `+33 (0)6 12 34 56 78`) and the `00` international prefix (`0033 6…`).
///
/// A national number is always read in the French numbering plan, including
/// the overseas departments, which share it but have their own country codes:
/// `0690 12 34 56` is a Guadeloupe mobile, `+590690123456`. So is a `+33`
/// number in one of their ranges (`+33 6 90…`, a frequent mistake when adding
/// `+33` by hand): it is rewritten with its real country code. Numbers of
/// Saint-Pierre-et-Miquelon (`+508`, six digits) are outside that plan and
/// must be given in international form; a Belgian or Swiss number in its own
/// national form (`0470…`) is read as French, so must be given with `+32`/`+41`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    country_code: u16,
    kind: PhoneKind,
}

/// The E.164 maximum number of digits, country code included.
const E164_MAX_DIGITS: usize = 15;
/// The fewest digits we accept for a country whose plan we do not know.
const UNKNOWN_PLAN_MIN_DIGITS: usize = 8;

/// The ranges of the French numbering plan that belong to the overseas
/// departments (ARCEP), as the first three digits after the trunk `0`, with the
/// country code they are dialled with from abroad and their kind.
const OVERSEAS_RANGES: &[(&str, u16, PhoneKind)] = &[
    // Guadeloupe, Saint-Barthélemy, Saint-Martin.
    ("590", 590, PhoneKind::Landline),
    ("690", 590, PhoneKind::Mobile),
    ("691", 590, PhoneKind::Mobile),
    // Guyane.
    ("594", 594, PhoneKind::Landline),
    ("694", 594, PhoneKind::Mobile),
    // Martinique.
    ("596", 596, PhoneKind::Landline),
    ("696", 596, PhoneKind::Mobile),
    ("697", 596, PhoneKind::Mobile),
    // Réunion.
    ("262", 262, PhoneKind::Landline),
    ("692", 262, PhoneKind::Mobile),
    ("693", 262, PhoneKind::Mobile),
    // Mayotte.
    ("269", 262, PhoneKind::Landline),
    ("639", 262, PhoneKind::Mobile),
];

impl PhoneNumber {
    /// Parses a phone number in one of the forms described on the type.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ContactError::PhoneEmpty);
        }
        let (plus, digits) = strip_separators(input)?;
        if digits.is_empty() {
            return Err(phone_invalid("it has no digits"));
        }
        if plus {
            Self::from_international(&digits)
        } else if let Some(international) = digits.strip_prefix("00") {
            Self::from_international(international)
        } else if digits.starts_with('0') {
            Self::from_french_national(&digits)
        } else {
            Err(phone_invalid(
                "it must start with 0 (French form, such as 06 12 34 56 78), or with + or 00 followed by the country code (such as +33 6 12 34 56 78)",
            ))
        }
    }

    /// `digits` is the whole national number, trunk `0` included.
    fn from_french_national(digits: &str) -> Result<Self, ContactError> {
        if digits.len() != 10 {
            return Err(phone_invalid(
                "a French number has 10 digits (such as 06 12 34 56 78)",
            ));
        }
        Self::from_french_plan(&digits[1..])
    }

    /// `nsn` is the 9-digit national significant number (without trunk `0`).
    fn from_french_plan(nsn: &str) -> Result<Self, ContactError> {
        if let Some(&(_, code, kind)) = OVERSEAS_RANGES.iter().find(|(p, ..)| nsn.starts_with(p)) {
            return Ok(Self::new(code, nsn, kind));
        }
        let kind = match nsn.as_bytes().first() {
            Some(b'1'..=b'5' | b'9') => PhoneKind::Landline,
            Some(b'6' | b'7') => PhoneKind::Mobile,
            Some(b'8') => PhoneKind::Special,
            _ => {
                return Err(phone_invalid(
                    "a French number cannot start with 00 (after +33, no 0 at all)",
                ));
            }
        };
        Ok(Self::new(33, nsn, kind))
    }

    /// `digits`: country code and national number, without `+` or `00`.
    fn from_international(digits: &str) -> Result<Self, ContactError> {
        if digits.len() > E164_MAX_DIGITS + 1 {
            // One more than E.164 allows, for the `(0)` of `+33 (0)6…`.
            return Err(phone_invalid(
                "an international number has at most 15 digits",
            ));
        }
        let Some(code_len) = country_code_len(digits) else {
            return Err(phone_invalid(
                "the country code after + or 00 is missing or starts with 0",
            ));
        };
        let (code, nsn) = digits.split_at(code_len);
        let code = code
            .bytes()
            .fold(0_u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        // `+33 (0)6 12 34 56 78` is a common way to write French numbers: drop
        // the trunk 0 in the parentheses for the plans that have one.
        let nsn = match code {
            33 | 590 | 594 | 596 | 262 if nsn.len() == 10 => nsn.strip_prefix('0').unwrap_or(nsn),
            _ => nsn,
        };
        if code_len + nsn.len() > E164_MAX_DIGITS {
            return Err(phone_invalid(
                "an international number has at most 15 digits",
            ));
        }
        let kind = match code {
            33 => {
                if nsn.len() != 9 {
                    return Err(phone_invalid(
                        "a French number has 9 digits after +33 (such as +33 6 12 34 56 78)",
                    ));
                }
                return Self::from_french_plan(nsn);
            }
            590 | 594 | 596 | 262 => overseas_kind(code, nsn)?,
            508 => saint_pierre_kind(nsn)?,
            32 => belgian_kind(nsn)?,
            41 => swiss_kind(nsn)?,
            352 => luxembourg_kind(nsn)?,
            377 => monaco_kind(nsn)?,
            49 => german_kind(nsn)?,
            _ => {
                if code_len + nsn.len() < UNKNOWN_PLAN_MIN_DIGITS {
                    return Err(phone_invalid("an international number has 8 to 15 digits"));
                }
                PhoneKind::Unknown
            }
        };
        Ok(Self::new(code, nsn, kind))
    }

    fn new(country_code: u16, nsn: &str, kind: PhoneKind) -> Self {
        Self {
            e164: format!("+{country_code}{nsn}"),
            country_code,
            kind,
        }
    }

    /// The number in E.164 form, such as `+33612345678`: what SMS providers take.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The number as French people write it: `06 12 34 56 78` for France and
    /// for the overseas departments that share its plan (`06 90 12 34 56` is
    /// `+590690123456`); E.164 for any other country. Re-parsing it gives the
    /// same number.
    pub fn national(&self) -> String {
        let nsn = self.national_significant_number();
        // An overseas number outside the territory's own ranges (`+590 9…`)
        // would be read back as metropolitan from its national form.
        let in_french_plan = self.country_code == 33
            || OVERSEAS_RANGES
                .iter()
                .any(|&(prefix, code, _)| code == self.country_code && nsn.starts_with(prefix));
        if !in_french_plan {
            return self.e164.clone();
        }
        let digits = format!("0{nsn}");
        let pairs: Vec<&str> = (0..digits.len())
            .step_by(2)
            .map(|i| &digits[i..(i + 2).min(digits.len())])
            .collect();
        pairs.join(" ")
    }

    /// The country calling code, such as 33 for France or 262 for Réunion and Mayotte.
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// Mobile, landline, special or unknown, from the numbering plan.
    pub fn kind(&self) -> PhoneKind {
        self.kind
    }

    /// Whether the number is in a known mobile range. `false` for an
    /// [`PhoneKind::Unknown`] number (see [`MobileNumber`] for how those are treated).
    pub fn is_mobile(&self) -> bool {
        self.kind == PhoneKind::Mobile
    }

    fn national_significant_number(&self) -> &str {
        let code_len = self.country_code.to_string().len();
        &self.e164[1 + code_len..]
    }
}

/// Keeps the digits and a leading `+`, dropping the separators people type.
fn strip_separators(input: &str) -> Result<(bool, String), ContactError> {
    let mut digits = String::with_capacity(input.len());
    let mut plus = false;
    for (i, c) in input.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            '+' => return Err(phone_invalid("'+' is allowed only at the start")),
            ' ' | '.' | '-' | '/' | '(' | ')' | '\u{A0}' | '\u{202F}' | '\t' => {}
            _ => {
                return Err(phone_invalid(
                    "it may contain only digits, spaces, dots, dashes, slashes, parentheses and a leading +",
                ));
            }
        }
    }
    Ok((plus, digits))
}

/// The length of the country calling code `digits` starts with.
///
/// ITU-T E.164 country codes form a prefix code, and which of them have one,
/// two or three digits is decided by their first two digits, so this needs no
/// table of every country: 1 (North America) and 7 (Russia, Kazakhstan) have
/// one digit; the listed two-digit prefixes are whole codes (20 Egypt, 33
/// France, 44 United Kingdom, 86 China…); every other code has three digits
/// (212 Morocco, 352 Luxembourg, 590 Guadeloupe…).
fn country_code_len(digits: &str) -> Option<usize> {
    let &[first, second, ..] = digits.as_bytes() else {
        return None;
    };
    let len = match (first, second) {
        (b'1' | b'7', _) => 1,
        (b'2', b'0' | b'7')
        | (b'3', b'0'..=b'4' | b'6' | b'9')
        | (b'4', b'0' | b'1' | b'3'..=b'9')
        | (b'5', b'1'..=b'8')
        | (b'6', b'0'..=b'6')
        | (b'8', b'1' | b'2' | b'4' | b'6')
        | (b'9', b'0'..=b'5' | b'8') => 2,
        (b'2'..=b'9', _) => 3,
        _ => return None,
    };
    // "+80" is the start of a three-digit code with nothing after it.
    (digits.len() >= len).then_some(len)
}

fn overseas_kind(code: u16, nsn: &str) -> Result<PhoneKind, ContactError> {
    if nsn.len() != 9 {
        return Err(phone_invalid(format!(
            "a number with country code +{code} has 9 digits after it"
        )));
    }
    match OVERSEAS_RANGES.iter().find(|(p, ..)| nsn.starts_with(p)) {
        Some(&(_, range_code, kind)) if range_code == code => Ok(kind),
        _ => match nsn.as_bytes().first() {
            Some(b'8') => Ok(PhoneKind::Special),
            Some(b'9') => Ok(PhoneKind::Landline),
            // We know the whole plan (it is the French one): a number outside
            // the territory's ranges is a typing mistake, not a new operator.
            _ => Err(phone_invalid(format!(
                "this number is not in a range of the French numbering plan for +{code}"
            ))),
        },
    }
}

/// Saint-Pierre-et-Miquelon has six-digit numbers: 41 fixed, 55 mobile.
fn saint_pierre_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    if nsn.len() != 6 {
        return Err(phone_invalid(
            "a Saint-Pierre-et-Miquelon number has 6 digits after +508",
        ));
    }
    Ok(if nsn.starts_with("55") {
        PhoneKind::Mobile
    } else if nsn.starts_with("41") {
        PhoneKind::Landline
    } else {
        PhoneKind::Unknown
    })
}

/// Belgium: mobiles are 4xx with 9 digits; other numbers have 8 digits (Liège
/// landlines also start with 4, but have 8 digits).
fn belgian_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    match nsn.len() {
        9 if nsn.starts_with('4') => Ok(PhoneKind::Mobile),
        8 if ["70", "77", "78", "800", "90"]
            .iter()
            .any(|p| nsn.starts_with(p)) =>
        {
            Ok(PhoneKind::Special)
        }
        8 => Ok(PhoneKind::Landline),
        _ => Err(phone_invalid(
            "a Belgian number has 8 digits after +32 (9 for a mobile)",
        )),
    }
}

/// Switzerland: 9 digits; mobiles are 75 to 79 (71 is St. Gallen, a landline area).
fn swiss_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    if nsn.len() != 9 {
        return Err(phone_invalid("a Swiss number has 9 digits after +41"));
    }
    Ok(match nsn.as_bytes() {
        [b'7', b'5'..=b'9', ..] => PhoneKind::Mobile,
        [b'8', b'0' | b'4', ..] | [b'9', b'0', ..] => PhoneKind::Special,
        _ => PhoneKind::Landline,
    })
}

/// Luxembourg: mobiles are 6xx xxx xxx; fixed numbers have no area code and a
/// variable length.
fn luxembourg_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    match (nsn.as_bytes().first(), nsn.len()) {
        (Some(b'6'), 9) => Ok(PhoneKind::Mobile),
        (Some(b'6'), _) => Err(phone_invalid(
            "a Luxembourg mobile number has 9 digits after +352",
        )),
        (Some(b'8' | b'9'), 8) if nsn.starts_with("800") || nsn.starts_with("90") => {
            Ok(PhoneKind::Special)
        }
        (_, 5..=11) => Ok(PhoneKind::Landline),
        _ => Err(phone_invalid(
            "a Luxembourg number has 5 to 11 digits after +352",
        )),
    }
}

/// Monaco: mobiles are 6 followed by 8 digits; fixed numbers 9x xx xx xx.
fn monaco_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    match (nsn.as_bytes().first(), nsn.len()) {
        (Some(b'6'), 9) => Ok(PhoneKind::Mobile),
        (Some(b'9'), 8) => Ok(PhoneKind::Landline),
        (Some(b'8'), 8) => Ok(PhoneKind::Special),
        (_, 8) => Ok(PhoneKind::Unknown),
        _ => Err(phone_invalid(
            "a Monaco number has 8 digits after +377 (9 for a mobile)",
        )),
    }
}

/// Germany: mobiles are 15x, 16x and 17x with 10 or 11 digits; fixed numbers
/// have area codes of variable length.
fn german_kind(nsn: &str) -> Result<PhoneKind, ContactError> {
    let is_mobile_range = ["15", "16", "17"].iter().any(|p| nsn.starts_with(p));
    match nsn.len() {
        10 | 11 if is_mobile_range => Ok(PhoneKind::Mobile),
        _ if is_mobile_range => Err(phone_invalid(
            "a German mobile number has 10 or 11 digits after +49",
        )),
        6..=11
            if ["137", "180", "700", "800", "900"]
                .iter()
                .any(|p| nsn.starts_with(p)) =>
        {
            Ok(PhoneKind::Special)
        }
        6..=11 => Ok(PhoneKind::Landline),
        _ => Err(phone_invalid(
            "a German number has 6 to 11 digits after +49",
        )),
    }
}

/// Keeps the country code and first digit, and the last two digits: enough to
/// tell numbers apart in a log.
fn redacted_phone(e164: &str) -> String {
    // E.164 is ASCII, and every number we build has at least 9 characters.
    let head = e164.len().min(4);
    let tail = e164.len().saturating_sub(head).min(2);
    let hidden = e164.len() - head - tail;
    format!(
        "{}{}{}",
        &e164[..head],
        "*".repeat(hidden),
        &e164[e164.len() - tail..]
    )
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", redacted_phone(&self.e164))
    }
}

string_form!(PhoneNumber);

/// A phone number that can receive SMS: a [`PhoneNumber`] that is not a known
/// landline or special-rate number.
///
/// A number of a country whose plan we do not know ([`PhoneKind::Unknown`]) is
/// accepted: refusing it would stop every SMS to, say, a Spanish or an American
/// patient, while accepting it costs at worst one undelivered SMS, which the
/// provider reports. Only numbers we *know* cannot receive SMS are refused.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MobileNumber(PhoneNumber);

impl MobileNumber {
    /// Parses a phone number and refuses it with [`ContactError::PhoneNotMobile`]
    /// when it is a landline or a special-rate number.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        PhoneNumber::parse(input)?.try_into()
    }

    /// The number in E.164 form, such as `+33612345678`.
    pub fn e164(&self) -> &str {
        self.0.e164()
    }

    /// The number as French people write it; see [`PhoneNumber::national`].
    pub fn national(&self) -> String {
        self.0.national()
    }

    /// The country calling code.
    pub fn country_code(&self) -> u16 {
        self.0.country_code()
    }

    /// [`PhoneKind::Mobile`] or [`PhoneKind::Unknown`].
    pub fn kind(&self) -> PhoneKind {
        self.0.kind()
    }

    /// The underlying phone number.
    pub fn as_phone_number(&self) -> &PhoneNumber {
        &self.0
    }
}

impl TryFrom<PhoneNumber> for MobileNumber {
    type Error = ContactError;

    fn try_from(phone: PhoneNumber) -> Result<Self, Self::Error> {
        match phone.kind {
            PhoneKind::Mobile | PhoneKind::Unknown => Ok(Self(phone)),
            PhoneKind::Landline | PhoneKind::Special => Err(ContactError::PhoneNotMobile),
        }
    }
}

impl From<MobileNumber> for PhoneNumber {
    fn from(mobile: MobileNumber) -> Self {
        mobile.0
    }
}

impl fmt::Display for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber({})", redacted_phone(self.e164()))
    }
}

string_form!(MobileNumber);

// ---------------------------------------------------------------------------
// Postal codes and countries

/// A French postal code: five digits starting with a département number.
///
/// Accepted prefixes: 01 to 95 (Corsica's postal codes start with 20: 2A and 2B
/// are département codes, never postal codes), 971 to 976 for the overseas
/// departments and Saint-Pierre-et-Miquelon (Saint-Barthélemy and Saint-Martin
/// use 97133 and 97150), and 98 for Monaco (98000) and the overseas
/// collectivities of the Pacific (984 TAAF, 986 Wallis-et-Futuna, 987 French
/// Polynesia, 988 New Caledonia), which La Poste serves with French codes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostalCode(String);

impl PostalCode {
    /// Parses a postal code, ignoring surrounding whitespace.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let code = input.trim();
        let &[a, b, c, d, e] = code.as_bytes() else {
            return Err(ContactError::PostalCodeInvalid);
        };
        if ![a, b, c, d, e].iter().all(u8::is_ascii_digit) {
            return Err(ContactError::PostalCodeInvalid);
        }
        let known_prefix = matches!(
            (a, b, c),
            (b'0', b'1'..=b'9', _)
                | (b'1'..=b'8', _, _)
                | (b'9', b'0'..=b'5', _)
                | (b'9', b'7', b'1'..=b'6')
                | (b'9', b'8', b'0' | b'4' | b'6' | b'7' | b'8')
        );
        if !known_prefix {
            return Err(ContactError::PostalCodeInvalid);
        }
        Ok(Self(code.to_owned()))
    }

    /// The five digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The département (or territory) the code belongs to: two digits in
    /// metropolitan France (`"20"` for both Corsican départements), three for
    /// overseas (`"974"`) and for the `98` codes (`"980"` is Monaco).
    pub fn department(&self) -> &str {
        if self.0.starts_with("97") || self.0.starts_with("98") {
            &self.0[..3]
        } else {
            &self.0[..2]
        }
    }

    /// Whether the code is outside metropolitan France: an overseas department
    /// or collectivity (97x, 98x), Monaco (980xx) excepted.
    pub fn is_overseas(&self) -> bool {
        self.0.starts_with("97") || (self.0.starts_with("98") && !self.0.starts_with("980"))
    }
}

impl fmt::Display for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PostalCode {
    /// Keeps the département only: a full postal code narrows a patient down
    /// to a few thousand people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostalCode({}***)", &self.0[..2])
    }
}

string_form!(PostalCode);

/// The officially assigned ISO 3166-1 alpha-2 codes (249), sorted for binary search.
const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// An ISO 3166-1 alpha-2 country code, upper-cased (`FR`, `BE`…).
///
/// Only officially assigned codes are accepted: `UK` (use `GB`) and `EU` are
/// refused, as a postal service would not understand them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// France, the default country of a postal address.
    pub const FRANCE: Self = Self("FR");

    /// Parses a code in any case, ignoring surrounding whitespace.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let code = input.trim();
        if code.len() != 2 {
            return Err(ContactError::CountryInvalid);
        }
        let code = code.to_ascii_uppercase();
        ISO_3166_ALPHA2
            .binary_search(&code.as_str())
            .map(|i| Self(ISO_3166_ALPHA2[i]))
            .map_err(|_| ContactError::CountryInvalid)
    }

    /// The two upper-case letters.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Whether La Poste delivers there as in France: France itself and the
    /// territories that have their own ISO code but French postal codes and
    /// domestic rates (Guadeloupe, Martinique, Guyane, Réunion, Mayotte,
    /// Saint-Pierre-et-Miquelon, Saint-Barthélemy, Saint-Martin). Monaco is
    /// not included: it is a foreign country, although it uses a French postal code.
    pub fn is_france(self) -> bool {
        matches!(
            self.0,
            "FR" | "GP" | "MQ" | "GF" | "RE" | "YT" | "PM" | "BL" | "MF"
        )
    }

    /// For the overseas territories with their own ISO code, the postal code
    /// prefix they use.
    fn overseas_postal_prefix(self) -> Option<&'static str> {
        Some(match self.0 {
            "GP" | "BL" | "MF" => "971",
            "MQ" => "972",
            "GF" => "973",
            "RE" => "974",
            "PM" => "975",
            "YT" => "976",
            _ => return None,
        })
    }

    /// The country's name in French capitals, as La Poste wants it on the last
    /// line of an address abroad; the code itself for countries not listed.
    fn french_name(self) -> &'static str {
        match self.0 {
            "AD" => "ANDORRE",
            "AT" => "AUTRICHE",
            "BE" => "BELGIQUE",
            "CA" => "CANADA",
            "CH" => "SUISSE",
            "DE" => "ALLEMAGNE",
            "DZ" => "ALGERIE",
            "ES" => "ESPAGNE",
            "GB" => "ROYAUME-UNI",
            "IE" => "IRLANDE",
            "IT" => "ITALIE",
            "LU" => "LUXEMBOURG",
            "MA" => "MAROC",
            "MC" => "MONACO",
            "NL" => "PAYS-BAS",
            "PL" => "POLOGNE",
            "PT" => "PORTUGAL",
            "TN" => "TUNISIE",
            "US" => "ETATS-UNIS",
            other => other,
        }
    }
}

impl Default for CountryCode {
    fn default() -> Self {
        Self::FRANCE
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.0)
    }
}

string_form!(CountryCode);

// ---------------------------------------------------------------------------
// Postal addresses

/// Most characters per line of an address block (NF Z10-011), so that it shows
/// through the window of a DL or C5 envelope and La Poste's machines read it.
pub const ADDRESS_LINE_MAX_CHARS: usize = 38;
/// Most lines of an address block (NF Z10-011), recipient and country included.
pub const ADDRESS_BLOCK_MAX_LINES: usize = 6;
/// Most address lines (street, building, lieu-dit…) a [`PostalAddress`] holds:
/// the block's six lines minus the recipient and the postal code and city.
pub const ADDRESS_MAX_LINES: usize = 4;
/// Longest postal code accepted outside France (the longest in use have 10
/// characters, such as Brazil's or Iran's with their separator).
const FOREIGN_POSTAL_CODE_MAX_CHARS: usize = 10;

/// Countries whose postal code follows the city on the locality line.
const POSTCODE_AFTER_CITY: &[&str] = &["AU", "CA", "GB", "IE", "US"];

/// A postal address a letter can be sent to.
///
/// Address lines are normalised (surrounding and repeated whitespace removed,
/// control characters turned into spaces); blank lines are dropped, so a form
/// with an empty second line is accepted. After that there must be 1 to 4
/// lines of at most 38 characters. In France (see [`CountryCode::is_france`])
/// the postal code must be a valid [`PostalCode`], consistent with the
/// territory's own country code if one is used (`RE` with 974xx); elsewhere it
/// must be 1 to 10 characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostalAddress {
    lines: Vec<String>,
    postal_code: String,
    city: String,
    country: CountryCode,
}

impl PostalAddress {
    /// Builds an address; see the type for the rules.
    pub fn new(
        lines: Vec<String>,
        postal_code: &str,
        city: &str,
        country: CountryCode,
    ) -> Result<Self, ContactError> {
        let lines: Vec<String> = lines
            .iter()
            .map(|line| normalize_spaces(line))
            .filter(|line| !line.is_empty())
            .collect();
        if lines.is_empty() {
            return Err(address_invalid("it has no address line"));
        }
        if lines.len() > ADDRESS_MAX_LINES {
            return Err(address_invalid(format!(
                "it has {} address lines; at most {ADDRESS_MAX_LINES} fit on an envelope",
                lines.len()
            )));
        }
        if let Some((i, line)) = lines
            .iter()
            .enumerate()
            .find(|(_, line)| line.chars().count() > ADDRESS_LINE_MAX_CHARS)
        {
            return Err(address_invalid(format!(
                "address line {} has {} characters; at most {ADDRESS_LINE_MAX_CHARS} fit on an envelope",
                i + 1,
                line.chars().count()
            )));
        }

        let postal_code = normalize_spaces(postal_code);
        if country.is_france() {
            let code = PostalCode::parse(&postal_code)?;
            if let Some(prefix) = country.overseas_postal_prefix()
                && !code.as_str().starts_with(prefix)
            {
                return Err(address_invalid(format!(
                    "the postal code of an address in {country} starts with {prefix}"
                )));
            }
        } else if postal_code.is_empty() {
            return Err(address_invalid("the postal code is empty"));
        } else if postal_code.chars().count() > FOREIGN_POSTAL_CODE_MAX_CHARS {
            return Err(address_invalid(
                "the postal code is longer than 10 characters",
            ));
        }

        let city = normalize_spaces(city);
        if city.is_empty() {
            return Err(address_invalid("the city is empty"));
        }

        Ok(Self {
            lines,
            postal_code,
            city,
            country,
        })
    }

    /// The address lines (street, building, lieu-dit…), 1 to 4, each 1 to 38 characters.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The postal code, a valid [`PostalCode`] when the address is in France.
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }

    /// The city, as typed (whitespace normalised).
    pub fn city(&self) -> &str {
        &self.city
    }

    /// The country.
    pub fn country(&self) -> CountryCode {
        self.country
    }

    /// Whether a letter to this address is domestic mail for La Poste: France
    /// and its overseas departments, whether written with country `FR` and a 97x
    /// postal code or with the territory's own code (`GP`, `RE`…). See
    /// [`CountryCode::is_france`].
    pub fn is_france(&self) -> bool {
        self.country.is_france()
    }

    /// The address block for a French window envelope, following NF Z10-011:
    /// at most 6 lines of at most 38 characters.
    ///
    /// Line 1 is the recipient (civility and name, as given; omitted when
    /// blank), then the address lines, then the postal code and city in
    /// capitals without accents or punctuation (`42000 SAINT ETIENNE`), then,
    /// abroad, the country's name in French capitals. From the fourth line of
    /// the block on the norm wants no punctuation: commas, dots and semicolons
    /// are removed, apostrophes and hyphens become spaces. When the lines do not
    /// fit in six, the two shortest neighbouring address lines are merged;
    /// a line still too long is cut at 38 characters (long city names are first
    /// abbreviated the La Poste way, `SAINT` → `ST`).
    pub fn window_block(&self, recipient_name: &str) -> Vec<String> {
        let recipient = normalize_spaces(recipient_name);
        let country_line = (!self.is_france()).then(|| self.country.french_name().to_owned());
        let fixed_lines =
            usize::from(!recipient.is_empty()) + 1 + usize::from(country_line.is_some());

        let mut address_lines = self.lines.clone();
        merge_to_fit(
            &mut address_lines,
            ADDRESS_BLOCK_MAX_LINES.saturating_sub(fixed_lines),
        );

        let mut block: Vec<String> = Vec::with_capacity(ADDRESS_BLOCK_MAX_LINES);
        if !recipient.is_empty() {
            block.push(recipient);
        }
        for line in address_lines {
            let line = if block.len() >= 3 {
                without_punctuation(&line)
            } else {
                line
            };
            block.push(line);
        }
        block.push(self.locality_line());
        block.extend(country_line);

        block
            .into_iter()
            .map(|line| truncate_chars(&line, ADDRESS_LINE_MAX_CHARS))
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// `75011 PARIS`, or `LONDON SW1A 1AA` where the code follows the city.
    fn locality_line(&self) -> String {
        let city = ascii_capitals(&without_punctuation(&self.city));
        let code = self.postal_code.to_uppercase();
        let line = if POSTCODE_AFTER_CITY.contains(&self.country.as_str()) {
            format!("{city} {code}")
        } else {
            format!("{code} {city}")
        };
        if line.chars().count() <= ADDRESS_LINE_MAX_CHARS {
            return normalize_spaces(&line);
        }
        // La Poste's standard abbreviations for long locality names.
        let abbreviated: Vec<&str> = line
            .split_whitespace()
            .map(|word| match word {
                "SAINT" => "ST",
                "SAINTE" => "STE",
                other => other,
            })
            .collect();
        abbreviated.join(" ")
    }
}

/// Trims, turns control characters into spaces and collapses runs of whitespace.
fn normalize_spaces(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes the punctuation NF Z10-011 does not want from the fourth line on:
/// commas, dots, semicolons, colons, exclamation and question marks and quotes
/// go; apostrophes and hyphens become spaces (`l'Église` → `l Église`).
fn without_punctuation(s: &str) -> String {
    let replaced: String = s
        .chars()
        .filter(|c| !matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '"' | '«' | '»'))
        .map(|c| match c {
            '\'' | '’' | '‘' | '-' | '‐' | '‑' | '–' | '—' => ' ',
            other => other,
        })
        .collect();
    normalize_spaces(&replaced)
}

/// Upper-cases and removes the accents of Latin letters (`Étienne` →
/// `ETIENNE`, `Œ` → `OE`). Letters of other scripts are upper-cased and kept:
/// dropping them would lose the city.
fn ascii_capitals(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
                "A"
            }
            'æ' | 'Æ' => "AE",
            'ç' | 'Ç' => "C",
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "E",
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "I",
            'ñ' | 'Ñ' => "N",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => {
                "O"
            }
            'œ' | 'Œ' => "OE",
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
            'ý' | 'ÿ' | 'Ý' | 'Ÿ' => "Y",
            'ß' => "SS",
            other => {
                out.extend(other.to_uppercase());
                continue;
            }
        };
        out.push_str(folded);
    }
    out
}

/// Merges neighbouring lines until at most `max` remain, each time the pair
/// whose merge is shortest, so that as little as possible is cut off later.
fn merge_to_fit(lines: &mut Vec<String>, max: usize) {
    while lines.len() > max.max(1) {
        let Some(i) = (0..lines.len() - 1)
            .min_by_key(|&i| lines[i].chars().count() + lines[i + 1].chars().count())
        else {
            return;
        };
        let next = lines.remove(i + 1);
        lines[i] = format!("{}, {next}", lines[i]);
    }
}

/// Cuts a line to `max` characters, between two words when that loses less than
/// half of the line.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    let cut_between_words = s.chars().nth(max).is_some_and(char::is_whitespace);
    let cut = match cut.rfind(' ') {
        Some(space) if !cut_between_words && cut[..space].chars().count() >= max / 2 => {
            &cut[..space]
        }
        _ => cut.as_str(),
    };
    cut.trim_end().to_owned()
}

impl fmt::Display for PostalAddress {
    /// The address on one line: `12 rue des Lilas, 75011 Paris`, with the
    /// country code appended outside France.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            write!(f, "{line}, ")?;
        }
        write!(f, "{} {}", self.postal_code, self.city)?;
        if self.country != CountryCode::FRANCE {
            write!(f, ", {}", self.country)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostalAddress {
    /// Shows the shape of the address, the département and the country only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code_head: String = self.postal_code.chars().take(2).collect();
        f.debug_struct("PostalAddress")
            .field("lines", &format_args!("[{} redacted]", self.lines.len()))
            .field("postal_code", &format_args!("{code_head}***"))
            .field("city", &format_args!("[redacted]"))
            .field("country", &self.country)
            .finish()
    }
}

/// The serde shape of a [`PostalAddress`]:
/// `{ lines = [...], postal_code = "75011", city = "Paris", country = "FR" }`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostalAddressRepr {
    lines: Vec<String>,
    postal_code: String,
    city: String,
    #[serde(default)]
    country: CountryCode,
}

impl Serialize for PostalAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PostalAddressRepr {
            lines: self.lines.clone(),
            postal_code: self.postal_code.clone(),
            city: self.city.clone(),
            country: self.country,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PostalAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = PostalAddressRepr::deserialize(deserializer)?;
        Self::new(repr.lines, &repr.postal_code, &repr.city, repr.country)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn address(lines: &[&str], postal_code: &str, city: &str, country: &str) -> PostalAddress {
        let lines = lines.iter().map(|l| (*l).to_owned()).collect();
        let country = CountryCode::parse(country).unwrap();
        PostalAddress::new(lines, postal_code, city, country).unwrap()
    }

    fn address_error(lines: &[&str], postal_code: &str, country: &str) -> ContactError {
        let lines = lines.iter().map(|l| (*l).to_owned()).collect();
        let country = CountryCode::parse(country).unwrap();
        PostalAddress::new(lines, postal_code, "Paris", country).unwrap_err()
    }

    // --- Email -------------------------------------------------------------

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

    // --- Phone numbers -----------------------------------------------------

    #[test]
    fn french_mobile_is_accepted_in_every_usual_form() {
        for input in [
            "06 12 34 56 78",
            "06.12.34.56.78",
            "06-12-34-56-78",
            "0612345678",
            " (06) 12 34 56 78 ",
            "06\u{A0}12\u{A0}34\u{A0}56\u{A0}78",
            "+33612345678",
            "+33 6 12 34 56 78",
            "+33 (0)6 12 34 56 78",
            "0033 6 12 34 56 78",
            "0033612345678",
        ] {
            let p = phone(input);
            assert_eq!(p.e164(), "+33612345678", "{input:?}");
            assert_eq!(p.kind(), PhoneKind::Mobile, "{input:?}");
            assert_eq!(p.country_code(), 33);
        }
    }

    #[test]
    fn french_07_numbers_are_mobiles() {
        assert_eq!(phone("07 81 23 45 67").kind(), PhoneKind::Mobile);
    }

    #[test]
    fn french_numbers_are_classified_by_their_first_digit() {
        for (input, kind) in [
            ("01 23 45 67 89", PhoneKind::Landline),
            ("02 98 12 34 56", PhoneKind::Landline),
            ("03 20 12 34 56", PhoneKind::Landline),
            ("04 78 12 34 56", PhoneKind::Landline),
            ("05 56 12 34 56", PhoneKind::Landline),
            ("09 72 12 34 56", PhoneKind::Landline),
            ("08 00 12 34 56", PhoneKind::Special),
            ("08 92 12 34 56", PhoneKind::Special),
        ] {
            assert_eq!(phone(input).kind(), kind, "{input}");
            assert!(!phone(input).is_mobile());
        }
    }

    #[test]
    fn overseas_national_numbers_get_their_own_country_code() {
        for (input, e164, code, kind) in [
            ("0690 12 34 56", "+590690123456", 590, PhoneKind::Mobile),
            ("0691 12 34 56", "+590691123456", 590, PhoneKind::Mobile),
            ("0590 12 34 56", "+590590123456", 590, PhoneKind::Landline),
            ("0696 12 34 56", "+596696123456", 596, PhoneKind::Mobile),
            ("0697 12 34 56", "+596697123456", 596, PhoneKind::Mobile),
            ("0596 12 34 56", "+596596123456", 596, PhoneKind::Landline),
            ("0694 12 34 56", "+594694123456", 594, PhoneKind::Mobile),
            ("0594 12 34 56", "+594594123456", 594, PhoneKind::Landline),
            ("0692 12 34 56", "+262692123456", 262, PhoneKind::Mobile),
            ("0693 12 34 56", "+262693123456", 262, PhoneKind::Mobile),
            ("0262 12 34 56", "+262262123456", 262, PhoneKind::Landline),
            ("0639 12 34 56", "+262639123456", 262, PhoneKind::Mobile),
            ("0269 12 34 56", "+262269123456", 262, PhoneKind::Landline),
        ] {
            let p = phone(input);
            assert_eq!(
                (p.e164(), p.country_code(), p.kind()),
                (e164, code, kind),
                "{input}"
            );
        }
    }

    #[test]
    fn overseas_numbers_are_accepted_in_e164_form() {
        let p = phone("+590 690 12 34 56");
        assert_eq!((p.e164(), p.kind()), ("+590690123456", PhoneKind::Mobile));
        assert_eq!(phone("+262 639 12 34 56").kind(), PhoneKind::Mobile);
        assert_eq!(phone("+262 (0)692 12 34 56").e164(), "+262692123456");
    }

    #[test]
    fn overseas_number_written_with_plus_33_is_given_its_real_country_code() {
        assert_eq!(phone("+33 6 92 12 34 56").e164(), "+262692123456");
        assert_eq!(phone("+33 6 90 12 34 56").e164(), "+590690123456");
    }

    #[test]
    fn overseas_country_code_with_a_range_of_another_territory_is_refused() {
        // 0692 is Réunion: it does not exist under Guadeloupe's +590.
        let err = PhoneNumber::parse("+590 692 12 34 56").unwrap_err();
        assert!(err.to_string().contains("+590"), "{err}");
        assert!(PhoneNumber::parse("+590 612 34 56 78").is_err());
    }

    #[test]
    fn saint_pierre_et_miquelon_numbers_have_six_digits_and_55_is_mobile() {
        let p = phone("+508 55 12 34");
        assert_eq!((p.e164(), p.kind()), ("+508551234", PhoneKind::Mobile));
        assert_eq!(phone("+508 41 12 34").kind(), PhoneKind::Landline);
        assert!(PhoneNumber::parse("+508 55 12 34 5").is_err());
    }

    #[test]
    fn neighbouring_countries_mobile_ranges_are_known() {
        for (input, kind) in [
            ("+32 470 12 34 56", PhoneKind::Mobile),
            ("+32 4 123 45 67", PhoneKind::Landline),
            ("+32 2 123 45 67", PhoneKind::Landline),
            ("+41 79 123 45 67", PhoneKind::Mobile),
            ("+41 71 123 45 67", PhoneKind::Landline),
            ("+41 22 123 45 67", PhoneKind::Landline),
            ("+352 621 123 456", PhoneKind::Mobile),
            ("+352 22 33 44", PhoneKind::Landline),
            ("+377 6 12 34 56 78", PhoneKind::Mobile),
            ("+377 93 12 34 56", PhoneKind::Landline),
            ("+49 151 23456789", PhoneKind::Mobile),
            ("+49 170 1234567", PhoneKind::Mobile),
            ("+49 30 12345678", PhoneKind::Landline),
            ("+49 800 1234567", PhoneKind::Special),
        ] {
            assert_eq!(phone(input).kind(), kind, "{input}");
        }
    }

    #[test]
    fn known_foreign_plans_refuse_wrong_lengths() {
        for input in [
            "+32 470 12 34 567",
            "+41 79 123 45 6",
            "+352 621 12 34",
            "+49 151 234",
        ] {
            assert!(PhoneNumber::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn numbers_of_other_countries_are_accepted_on_length_with_an_unknown_kind() {
        let p = phone("+34 612 34 56 78");
        assert_eq!(
            (p.e164(), p.country_code(), p.kind()),
            ("+34612345678", 34, PhoneKind::Unknown)
        );
        assert_eq!(phone("+1 415 555 2671").country_code(), 1);
        assert_eq!(phone("+212 6 12 34 56 78").country_code(), 212);
        assert_eq!(phone("00 44 7700 900123").country_code(), 44);
        assert!(!phone("+34 612 34 56 78").is_mobile());
    }

    #[test]
    fn international_numbers_outside_8_to_15_digits_are_refused() {
        assert!(PhoneNumber::parse("+34 6123").is_err());
        assert!(PhoneNumber::parse("+34 612 345 678 901 234").is_err());
        assert!(PhoneNumber::parse("+1234567").is_err());
        assert!(PhoneNumber::parse("+12345678").is_ok());
    }

    #[test]
    fn country_code_lengths_follow_the_e164_assignment() {
        for (digits, len) in [
            ("1415", 1),
            ("7495", 1),
            ("2012", 2),
            ("2711", 2),
            ("2126", 3),
            ("3061", 2),
            ("3361", 2),
            ("3516", 3),
            ("3776", 3),
            ("3912", 2),
            ("4201", 3),
            ("4477", 2),
            ("5016", 3),
            ("5511", 2),
            ("5906", 3),
            ("6112", 2),
            ("6791", 3),
            ("8130", 2),
            ("8521", 3),
            ("8610", 2),
            ("9122", 2),
            ("9715", 3),
            ("9821", 2),
            ("9989", 3),
        ] {
            assert_eq!(country_code_len(digits), Some(len), "{digits}");
        }
        assert_eq!(country_code_len("0123"), None);
        assert_eq!(country_code_len("3"), None);
        assert_eq!(country_code_len("80"), None);
    }

    #[test]
    fn malformed_phone_numbers_are_refused_with_a_reason() {
        for input in [
            "06 12 34 56 7",
            "06 12 34 56 789",
            "612345678",
            "06 12 AB 56 78",
            "06+12345678",
            "+",
            "--",
            "+0612345678",
            "+33 6 12 34 56 7",
            "+33 0 0 12 34 56 78",
            "15",
        ] {
            match PhoneNumber::parse(input) {
                Err(e @ ContactError::PhoneInvalid { .. }) => {
                    assert_eq!(e.code(), "invalid_mobile")
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn blank_phone_number_is_refused_as_empty() {
        assert_eq!(PhoneNumber::parse(" \t"), Err(ContactError::PhoneEmpty));
        assert_eq!(ContactError::PhoneEmpty.code(), "no_mobile");
    }

    #[test]
    fn national_form_is_french_pairs_for_the_french_plan_and_e164_otherwise() {
        assert_eq!(phone("+33612345678").national(), "06 12 34 56 78");
        assert_eq!(phone("+262692123456").national(), "06 92 12 34 56");
        assert_eq!(phone("+32470123456").national(), "+32470123456");
        assert_eq!(phone("+50855 1234").national(), "+508551234");
    }

    #[test]
    fn phone_debug_redacts_the_middle_digits() {
        assert_eq!(
            format!("{:?}", phone("06 12 34 56 78")),
            "PhoneNumber(+336******78)"
        );
        assert_eq!(
            format!("{:?}", MobileNumber::parse("06 12 34 56 78").unwrap()),
            "MobileNumber(+336******78)"
        );
    }

    #[test]
    fn phone_serialises_as_e164_and_deserialises_through_the_parser() {
        let p = phone("06 12 34 56 78");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+33612345678\"");
        let back: PhoneNumber = serde_json::from_str("\"06.12.34.56.78\"").unwrap();
        assert_eq!(back, p);
        assert_eq!("0612345678".parse::<PhoneNumber>(), Ok(p));
    }

    // --- Mobile numbers ----------------------------------------------------

    #[test]
    fn mobile_number_accepts_a_french_mobile() {
        let m = MobileNumber::parse("06 12 34 56 78").unwrap();
        assert_eq!(m.e164(), "+33612345678");
        assert_eq!(m.national(), "06 12 34 56 78");
        assert_eq!(m.to_string(), "+33612345678");
    }

    #[test]
    fn mobile_number_refuses_a_landline_with_the_landline_code() {
        let err = MobileNumber::parse("01 23 45 67 89").unwrap_err();
        assert_eq!(err, ContactError::PhoneNotMobile);
        assert_eq!(err.code(), "landline");
        assert_eq!(
            MobileNumber::parse("0590 12 34 56"),
            Err(ContactError::PhoneNotMobile)
        );
        assert_eq!(
            MobileNumber::parse("09 72 12 34 56"),
            Err(ContactError::PhoneNotMobile)
        );
    }

    #[test]
    fn mobile_number_refuses_a_special_rate_number() {
        assert_eq!(
            MobileNumber::parse("08 92 12 34 56"),
            Err(ContactError::PhoneNotMobile)
        );
    }

    #[test]
    fn mobile_number_accepts_a_foreign_number_of_unknown_kind_because_we_cannot_tell() {
        let m = MobileNumber::parse("+34 612 34 56 78").unwrap();
        assert_eq!(m.kind(), PhoneKind::Unknown);
    }

    #[test]
    fn mobile_number_passes_on_the_phone_number_parse_error() {
        assert_eq!(MobileNumber::parse(""), Err(ContactError::PhoneEmpty));
        assert!(matches!(
            MobileNumber::parse("06"),
            Err(ContactError::PhoneInvalid { .. })
        ));
    }

    #[test]
    fn mobile_number_converts_from_and_to_phone_number() {
        let landline = phone("01 23 45 67 89");
        assert_eq!(
            MobileNumber::try_from(landline),
            Err(ContactError::PhoneNotMobile)
        );
        let mobile = MobileNumber::try_from(phone("0612345678")).unwrap();
        assert_eq!(PhoneNumber::from(mobile.clone()), phone("+33612345678"));
        assert_eq!(mobile.as_phone_number().kind(), PhoneKind::Mobile);
    }

    #[test]
    fn mobile_number_deserialisation_refuses_a_landline_with_the_reason() {
        let err = serde_json::from_str::<MobileNumber>("\"01 23 45 67 89\"").unwrap_err();
        assert!(err.to_string().contains("not a mobile"), "{err}");
    }

    // --- Postal codes and countries ------------------------------------------

    #[test]
    fn postal_codes_of_metropolitan_france_corsica_and_overseas_are_accepted() {
        for code in [
            "75011", "01000", "20000", "20200", "95000", "97110", "97133", "97150", "97400",
            "97600", "97500", "98000", "98800", "98714",
        ] {
            assert!(PostalCode::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn postal_codes_with_an_unknown_prefix_or_shape_are_refused() {
        for code in [
            "00100",
            "96000",
            "97000",
            "97700",
            "98100",
            "2A000",
            "7501",
            "750110",
            "75 011",
            "",
            "７５０１１",
        ] {
            assert_eq!(
                PostalCode::parse(code),
                Err(ContactError::PostalCodeInvalid),
                "{code}"
            );
        }
        assert_eq!(
            ContactError::PostalCodeInvalid.code(),
            "invalid_postal_code"
        );
    }

    #[test]
    fn postal_code_knows_its_department_and_whether_it_is_overseas() {
        let paris = PostalCode::parse("75011").unwrap();
        assert_eq!((paris.department(), paris.is_overseas()), ("75", false));
        let reunion = PostalCode::parse("97400").unwrap();
        assert_eq!((reunion.department(), reunion.is_overseas()), ("974", true));
        let noumea = PostalCode::parse("98800").unwrap();
        assert_eq!((noumea.department(), noumea.is_overseas()), ("988", true));
        let monaco = PostalCode::parse("98000").unwrap();
        assert_eq!((monaco.department(), monaco.is_overseas()), ("980", false));
        assert_eq!(PostalCode::parse("20090").unwrap().department(), "20");
    }

    #[test]
    fn postal_code_debug_keeps_only_the_department() {
        assert_eq!(
            format!("{:?}", PostalCode::parse("75011").unwrap()),
            "PostalCode(75***)"
        );
    }

    #[test]
    fn country_code_is_upper_cased_and_checked_against_iso_3166() {
        assert_eq!(CountryCode::parse(" fr ").unwrap().as_str(), "FR");
        assert_eq!(CountryCode::parse("be").unwrap().to_string(), "BE");
        for code in ["UK", "EU", "XX", "F", "FRA", "", "é"] {
            assert_eq!(
                CountryCode::parse(code),
                Err(ContactError::CountryInvalid),
                "{code}"
            );
        }
    }

    #[test]
    fn iso_3166_table_is_sorted_and_made_of_two_capital_letters() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ISO_3166_ALPHA2
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn overseas_country_codes_count_as_france_for_mail_but_monaco_does_not() {
        for code in ["FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF"] {
            assert!(CountryCode::parse(code).unwrap().is_france(), "{code}");
        }
        for code in ["MC", "BE", "NC", "PF"] {
            assert!(!CountryCode::parse(code).unwrap().is_france(), "{code}");
        }
    }

    // --- Postal addresses --------------------------------------------------

    #[test]
    fn address_lines_are_normalised_and_blank_lines_dropped() {
        let a = address(
            &["  12   rue des Lilas ", "", "\tBât. B\n"],
            " 75011 ",
            " Paris ",
            "FR",
        );
        assert_eq!(a.lines(), ["12 rue des Lilas", "Bât. B"]);
        assert_eq!(
            (a.postal_code(), a.city(), a.country()),
            ("75011", "Paris", CountryCode::FRANCE)
        );
        assert!(a.is_france());
    }

    #[test]
    fn address_needs_one_to_four_lines_of_at_most_38_characters() {
        assert!(matches!(
            address_error(&[], "75011", "FR"),
            ContactError::AddressInvalid { .. }
        ));
        assert!(matches!(
            address_error(&["  "], "75011", "FR"),
            ContactError::AddressInvalid { .. }
        ));
        let err = address_error(&["a", "b", "c", "d", "e"], "75011", "FR");
        assert!(err.to_string().contains("5 address lines"), "{err}");
        let err = address_error(&["1", &"x".repeat(39)], "75011", "FR");
        assert!(
            err.to_string().contains("address line 2 has 39 characters"),
            "{err}"
        );
        assert_eq!(err.code(), "invalid_address");
        assert!(
            PostalAddress::new(vec!["é".repeat(38)], "75011", "Paris", CountryCode::FRANCE).is_ok()
        );
    }

    #[test]
    fn address_in_france_needs_a_valid_french_postal_code() {
        assert_eq!(
            address_error(&["1 rue"], "7501", "FR"),
            ContactError::PostalCodeInvalid
        );
        assert_eq!(
            address_error(&["1 rue"], "96000", "FR"),
            ContactError::PostalCodeInvalid
        );
        assert_eq!(
            address_error(&["1 rue"], "1000", "RE"),
            ContactError::PostalCodeInvalid
        );
    }

    #[test]
    fn address_with_an_overseas_country_code_needs_that_territorys_postal_code() {
        assert!(address(&["1 rue"], "97400", "Saint-Denis", "RE").is_france());
        assert!(address(&["1 rue"], "97133", "Gustavia", "BL").is_france());
        let err = address_error(&["1 rue"], "75011", "RE");
        assert!(err.to_string().contains("starts with 974"), "{err}");
    }

    #[test]
    fn address_in_france_may_use_country_fr_with_an_overseas_postal_code() {
        assert!(address(&["1 rue de Paris"], "97400", "Saint-Denis", "FR").is_france());
    }

    #[test]
    fn address_abroad_needs_a_postal_code_of_1_to_10_characters() {
        let a = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
        assert!(!a.is_france());
        assert_eq!(
            address(&["10 Downing Street"], "SW1A 2AA", "London", "GB").postal_code(),
            "SW1A 2AA"
        );
        assert!(matches!(
            address_error(&["x"], " ", "BE"),
            ContactError::AddressInvalid { .. }
        ));
        assert!(matches!(
            address_error(&["x"], "12345678901", "BE"),
            ContactError::AddressInvalid { .. }
        ));
    }

    #[test]
    fn address_needs_a_city() {
        let err = PostalAddress::new(vec!["1 rue".into()], "75011", " ", CountryCode::FRANCE)
            .unwrap_err();
        assert!(err.to_string().contains("city"), "{err}");
    }

    #[test]
    fn address_deserialises_from_the_scenario_shape_with_france_by_default() {
        #[derive(Deserialize)]
        struct Patient {
            address: PostalAddress,
        }
        let p: Patient = toml::from_str(
            r#"address = { lines = ["12 rue des Lilas"], postal_code = "75011", city = "Paris" }"#,
        )
        .unwrap();
        assert_eq!(
            p.address,
            address(&["12 rue des Lilas"], "75011", "Paris", "FR")
        );
        let p: Patient = toml::from_str(
            r#"address = { lines = ["Rue de la Loi 16"], postal_code = "1000", city = "Bruxelles", country = "be" }"#,
        )
        .unwrap();
        assert_eq!(p.address.country().as_str(), "BE");
    }

    #[test]
    fn address_deserialisation_fails_with_the_constructors_reason() {
        let err = serde_json::from_str::<PostalAddress>(
            r#"{"lines": ["1 rue"], "postal_code": "7501", "city": "Paris"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("postal code is invalid"), "{err}");
        let err = serde_json::from_str::<PostalAddress>(
            r#"{"lines": ["1 rue"], "postal_code": "75011", "city": "Paris", "country": "UK"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("country code is invalid"), "{err}");
        let err = serde_json::from_str::<PostalAddress>(
            r#"{"lines": ["1 rue"], "postcode": "75011", "city": "Paris"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("postcode"), "{err}");
    }

    #[test]
    fn address_serialises_to_the_scenario_shape() {
        let a = address(&["12 rue des Lilas"], "75011", "Paris", "FR");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris", "country": "FR"})
        );
        assert_eq!(serde_json::from_value::<PostalAddress>(json).unwrap(), a);
    }

    #[test]
    fn address_display_is_one_line_and_debug_is_redacted() {
        let a = address(&["12 rue des Lilas", "Bât. B"], "75011", "Paris", "FR");
        assert_eq!(a.to_string(), "12 rue des Lilas, Bât. B, 75011 Paris");
        assert_eq!(
            format!("{a:?}"),
            "PostalAddress { lines: [2 redacted], postal_code: 75***, city: [redacted], country: CountryCode(FR) }"
        );
        let b = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
        assert_eq!(b.to_string(), "Rue de la Loi 16, 1000 Bruxelles, BE");
    }

    #[test]
    fn window_block_of_a_simple_french_address() {
        let a = address(&["12, rue des Lilas"], "75011", "Paris", "FR");
        assert_eq!(
            a.window_block("Mme Jeanne Dupont"),
            ["Mme Jeanne Dupont", "12, rue des Lilas", "75011 PARIS"]
        );
    }

    #[test]
    fn window_block_removes_punctuation_from_the_fourth_line_on_and_accents_from_the_city() {
        let a = address(
            &[
                "Appartement 12, 3e étage",
                "Bât. B, Résidence l’Orée",
                "12, rue de l'Église-Neuve",
            ],
            "42000",
            "Saint-Étienne",
            "FR",
        );
        assert_eq!(
            a.window_block("M. Jean-Pierre Martin"),
            [
                "M. Jean-Pierre Martin",
                "Appartement 12, 3e étage",
                "Bât. B, Résidence l’Orée",
                "12 rue de l Église Neuve",
                "42000 SAINT ETIENNE",
            ]
        );
    }

    #[test]
    fn window_block_of_an_overseas_address_has_no_country_line() {
        let a = address(&["1 rue de la Source"], "97400", "Saint-Denis", "RE");
        assert_eq!(
            a.window_block("Mme Payet"),
            ["Mme Payet", "1 rue de la Source", "97400 SAINT DENIS"]
        );
    }

    #[test]
    fn window_block_of_a_foreign_address_ends_with_the_country_in_french() {
        let a = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
        assert_eq!(
            a.window_block("M. Jan Peeters"),
            [
                "M. Jan Peeters",
                "Rue de la Loi 16",
                "1000 BRUXELLES",
                "BELGIQUE"
            ]
        );
        let b = address(&["1 Main Street"], "12345", "Tokyo", "JP");
        assert_eq!(
            b.window_block("Mr Sato").last().map(String::as_str),
            Some("JP")
        );
    }

    #[test]
    fn window_block_puts_the_postcode_after_the_city_where_the_country_does() {
        let a = address(&["10 Downing Street"], "sw1a 2aa", "London", "GB");
        assert_eq!(
            a.window_block("Mr Smith"),
            [
                "Mr Smith",
                "10 Downing Street",
                "LONDON SW1A 2AA",
                "ROYAUME-UNI"
            ]
        );
    }

    #[test]
    fn window_block_merges_the_shortest_neighbouring_lines_when_more_than_six() {
        let a = address(
            &["Chez M. Durand", "Bât. A", "Esc. 2", "Rue de la Loi 16"],
            "1000",
            "Bruxelles",
            "BE",
        );
        assert_eq!(
            a.window_block("M. Jan Peeters"),
            [
                "M. Jan Peeters",
                "Chez M. Durand",
                "Bât. A, Esc. 2",
                "Rue de la Loi 16",
                "1000 BRUXELLES",
                "BELGIQUE",
            ]
        );
    }

    #[test]
    fn window_block_keeps_four_address_lines_in_france() {
        let a = address(
            &[
                "Chez M. Durand",
                "Bât. A",
                "12 rue des Lilas",
                "Lieu-dit Le Bourg",
            ],
            "75011",
            "Paris",
            "FR",
        );
        let block = a.window_block("Mme Dupont");
        assert_eq!(block.len(), 6);
        assert_eq!(block[4], "Lieu dit Le Bourg");
    }

    #[test]
    fn window_block_without_recipient_starts_with_the_address() {
        let a = address(&["12 rue des Lilas"], "75011", "Paris", "FR");
        assert_eq!(a.window_block("  "), ["12 rue des Lilas", "75011 PARIS"]);
    }

    #[test]
    fn window_block_abbreviates_then_cuts_long_lines_to_38_characters() {
        let a = address(
            &["1 place de l'Église"],
            "51300",
            "Saint-Remy-en-Bouzemont-Saint-Genest-et-Isson",
            "FR",
        );
        let block = a.window_block(&format!("Mme {}", "Dupont-".repeat(10)));
        // Cut between words rather than in the middle of one.
        assert_eq!(block[2], "51300 ST REMY EN BOUZEMONT ST GENEST");
        assert!(block.iter().all(|l| l.chars().count() <= 38), "{block:?}");
        assert_eq!(block[0].chars().count(), 38);
    }

    // --- Properties ----------------------------------------------------------

    fn phone_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9 .()+-]{0,20}",
            "0[1-9]( ?[0-9]{2}){4}",
            "0(590|690|691|594|694|596|696|697|262|269|692|693|639)[0-9]{6}",
            "(\\+|00)33 ?(\\(0\\))?[1-9][0-9]{8}",
            "\\+(32|41|352|377|49|508|590|262)[0-9]{6,11}",
            "\\+[1-9][0-9]{7,14}",
        ]
    }

    fn valid_address() -> impl Strategy<Value = PostalAddress> {
        let line = "[ -~À-ÿ’«»]{1,38}";
        let lines = prop::collection::vec(line, 1..=4);
        let place = prop_oneof![
            (
                "FR",
                "(0[1-9]|[1-8][0-9]|9[0-5]|97[1-6]|98[04678])[0-9]{2,3}"
            ),
            ("GP", "971[0-9]{2}"),
            ("RE", "974[0-9]{2}"),
            ("BE|CH|GB|US|JP|MC|DE", "[A-Za-z0-9 -]{1,10}"),
        ];
        (lines, place, "\\PC{1,60}").prop_filter_map(
            "valid address",
            |(lines, (country, postal_code), city)| {
                let country = CountryCode::parse(&country).ok()?;
                PostalAddress::new(lines, &postal_code, &city, country).ok()
            },
        )
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_string(s in "\\PC*|.*") {
            let _ = EmailAddress::parse(&s);
            let _ = PhoneNumber::parse(&s);
            let _ = MobileNumber::parse(&s);
            let _ = PostalCode::parse(&s);
            let _ = CountryCode::parse(&s);
        }

        #[test]
        fn phone_parser_never_panics_on_phone_like_input(s in phone_like()) {
            let _ = PhoneNumber::parse(&s);
        }

        #[test]
        fn parsed_phone_e164_and_national_forms_reparse_to_the_same_number(s in phone_like()) {
            if let Ok(p) = PhoneNumber::parse(&s) {
                prop_assert_eq!(PhoneNumber::parse(p.e164()), Ok(p.clone()));
                prop_assert_eq!(PhoneNumber::parse(&p.national()), Ok(p.clone()));
                prop_assert!(p.e164().len() <= 16);
            }
        }

        #[test]
        fn parsed_email_reparses_to_the_same_address(
            s in "[a-zA-Z0-9.+_-]{1,20}@([a-zA-Zé0-9-]{1,10}\\.){1,3}[a-zA-Z]{2,6}",
        ) {
            if let Ok(e) = EmailAddress::parse(&s) {
                prop_assert_eq!(EmailAddress::parse(e.as_str()), Ok(e.clone()));
            }
        }

        #[test]
        fn window_block_has_at_most_six_non_empty_lines_of_at_most_38_characters(
            a in valid_address(),
            recipient in "\\PC{0,60}",
        ) {
            let block = a.window_block(&recipient);
            prop_assert!(block.len() <= ADDRESS_BLOCK_MAX_LINES, "{:?}", block);
            prop_assert!(block.len() >= 2, "{:?}", block);
            for line in &block {
                prop_assert!(!line.is_empty() && line.chars().count() <= ADDRESS_LINE_MAX_CHARS, "{:?}", block);
            }
        }

        #[test]
        fn address_survives_a_serde_round_trip(a in valid_address()) {
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<PostalAddress>(&json).unwrap(), a);
        }
    }
}
