//! Phone and mobile numbers, normalised to E.164 and classified by their numbering plan.
//!
//! Over 700 lines, for one concern: about 500 of code (the French plan, its overseas ranges and
//! six neighbouring plans, each a few lines that cannot be shared) and the tests of every plan.

use std::fmt;

use super::{ContactError, phone_invalid};

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

#[cfg(test)]
mod tests;
