//! French postal codes, country codes and postal addresses laid out for a window envelope
//! (NF Z10-011).
//!
//! Over 700 lines, for one concern: about 550 of code (the postal code's prefixes, the ISO 3166
//! table, the address's rules and its window block) and the tests of each layout rule.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ContactError, address_invalid};

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
mod tests;
