//! SMS text analysis: which encoding a message body needs, how many segments
//! (billable parts) it takes, and whether a sender ID is acceptable.
//!
//! A practice pays per segment and may have a monthly SMS quota, so the planner
//! and the template editor need to know, before anything is sent, that a reminder
//! will cost one SMS and not three. The rules are those of GSM 03.38 / 3GPP TS 23.038
//! and TS 23.040:
//!
//! - a text made only of characters of the GSM 7-bit default alphabet is sent in
//!   GSM-7: 160 septets fit in one SMS, and a longer text is split into parts of
//!   153 septets (7 go to the concatenation header). Characters of the extension
//!   table (`€`, `[`, `{`, `^`…) take two septets (an escape and the character);
//! - a text with any other character is sent in UCS-2 (in practice UTF-16):
//!   70 code units in one SMS, parts of 67 units otherwise.
//!
//! ```
//! use rappel_domain::sms::{analyze, SmsEncoding};
//!
//! let info = analyze("Rappel : RDV demain à 14h30 chez Dr Martin.");
//! assert_eq!(info.encoding, SmsEncoding::Gsm7);
//! assert_eq!(info.segments, 1);
//! ```
//!
//! What this module deliberately does not do: it encodes nothing into bytes (the
//! SMS provider does that, and its API takes UTF-8), it does not know national
//! language shift tables (Turkish, Portuguese…: French providers do not use
//! them), and it assumes the common 6-byte concatenation header with an 8-bit
//! reference (153/67 per part); a provider using 16-bit references gets 152/66.

/// Septets that fit in a single GSM-7 SMS.
const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 SMS (the user data header takes the other 7).
const GSM7_PART: usize = 153;
/// UTF-16 code units that fit in a single UCS-2 SMS.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 SMS.
const UCS2_PART: usize = 67;

/// The character encoding an SMS body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsEncoding {
    /// The GSM 7-bit default alphabet with its extension table.
    Gsm7,
    /// UCS-2, in practice UTF-16: needed as soon as one character is outside GSM-7.
    Ucs2,
}

/// What sending a text as one SMS message would take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmsInfo {
    /// The encoding the whole text needs.
    pub encoding: SmsEncoding,
    /// Length in the encoding's units: septets for GSM-7 (extension-table
    /// characters count 2), UTF-16 code units for UCS-2 (characters outside the
    /// Basic Multilingual Plane, such as most emoji, count 2).
    pub units: usize,
    /// Number of SMS segments (billable parts). An empty text takes 0 segments:
    /// nothing would be sent, and a quota must not be charged for it.
    pub segments: usize,
    /// How many more one-unit characters fit in the last segment without adding
    /// a segment (an extension-table character or an emoji needs 2). For an
    /// empty text, the room of a whole single GSM-7 SMS.
    pub remaining_in_segment: usize,
}

/// Computes the encoding, length and segment count of an SMS body.
///
/// In a concatenated message a two-septet extension character, or a UTF-16
/// surrogate pair, is never split across two parts (handsets could not
/// reassemble it), so it moves to the next part and the previous one is left one
/// unit short. This is why 306 septets usually take 2 parts but can take 3.
pub fn analyze(text: &str) -> SmsInfo {
    if text.is_empty() {
        return SmsInfo {
            encoding: SmsEncoding::Gsm7,
            units: 0,
            segments: 0,
            remaining_in_segment: GSM7_SINGLE,
        };
    }
    if is_gsm7(text) {
        // `is_gsm7` guarantees every character has a width; 0 is unreachable.
        let widths = text.chars().map(|c| gsm7_septets(c).unwrap_or(0));
        count(SmsEncoding::Gsm7, widths, GSM7_SINGLE, GSM7_PART)
    } else {
        let widths = text.chars().map(char::len_utf16);
        count(SmsEncoding::Ucs2, widths, UCS2_SINGLE, UCS2_PART)
    }
}

/// Counts units and packs them into segments of `single` units, or parts of
/// `part` units when the text does not fit in one, never splitting a character.
fn count(
    encoding: SmsEncoding,
    widths: impl Iterator<Item = usize> + Clone,
    single: usize,
    part: usize,
) -> SmsInfo {
    let units: usize = widths.clone().sum();
    if units <= single {
        return SmsInfo {
            encoding,
            units,
            segments: 1,
            remaining_in_segment: single - units,
        };
    }
    let mut segments = 1;
    let mut used = 0;
    for width in widths {
        if used + width > part {
            segments += 1;
            used = 0;
        }
        used += width;
    }
    SmsInfo {
        encoding,
        units,
        segments,
        remaining_in_segment: part - used,
    }
}

/// Whether the whole text can be sent in the GSM 7-bit alphabet (basic table
/// plus extension table). The empty text is.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

/// The number of septets a character takes in GSM-7: 1 for the basic table, 2
/// for the extension table (escape + character), `None` when it is not in GSM-7.
///
/// The table is GSM 03.38 (3GPP TS 23.038 §6.2.1). Note what is *not* in it and
/// often surprises: the backquote, the lower-case `ç` (only `Ç` is), the
/// accented capitals other than `É Ä Ö Ñ Ü Å`, `â ê î ô û ë ï`, `œ`, the
/// typographic apostrophe and quotes, and the non-breaking space.
fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // Basic table, in code order (0x00–0x7F; 0x1B is the escape to the
        // extension table, not a character).
        '@'
        | '£'
        | '$'
        | '¥'
        | 'è'
        | 'é'
        | 'ù'
        | 'ì'
        | 'ò'
        | 'Ç'
        | '\n'
        | 'Ø'
        | 'ø'
        | '\r'
        | 'Å'
        | 'å'
        | 'Δ'
        | '_'
        | 'Φ'
        | 'Γ'
        | 'Λ'
        | 'Ω'
        | 'Π'
        | 'Ψ'
        | 'Σ'
        | 'Θ'
        | 'Ξ'
        | 'Æ'
        | 'æ'
        | 'ß'
        | 'É'
        | ' '
        | '!'
        | '"'
        | '#'
        | '¤'
        | '%'
        | '&'
        | '\''
        | '('
        | ')'
        | '*'
        | '+'
        | ','
        | '-'
        | '.'
        | '/'
        | '0'..='9'
        | ':'
        | ';'
        | '<'
        | '='
        | '>'
        | '?'
        | '¡'
        | 'A'..='Z'
        | 'Ä'
        | 'Ö'
        | 'Ñ'
        | 'Ü'
        | '§'
        | '¿'
        | 'a'..='z'
        | 'ä'
        | 'ö'
        | 'ñ'
        | 'ü'
        | 'à' => Some(1),
        // Extension table: form feed, ^ { } \ [ ~ ] | €.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Replaces the characters of French typography that force a whole message into
/// UCS-2 (halving its length per SMS) by GSM-7 lookalikes: `’ ‘` → `'`,
/// `“ ” « »` → `"`, `– —` → `-`, `…` → `...`, `œ Œ` → `oe OE`, `ç` → `c`,
/// `â ê î ô û ë ï ÿ` → `a e i o u e i y` (and their capitals), non-breaking
/// spaces → space.
///
/// Characters that *are* GSM-7 are kept, accents included (`é è à ù ì ò É Ç`).
/// Anything else without an obvious lookalike (an emoji, a Greek small letter)
/// is kept as is, so the result may still need UCS-2: check with [`is_gsm7`].
/// Use it on templates a practice chose to make "SMS-cheap", not silently on
/// patient names.
pub fn to_gsm7_lossy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match gsm7_lookalike(c) {
            Some(replacement) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    out
}

/// The GSM-7 replacement of a character that is not in GSM-7, if it has one.
fn gsm7_lookalike(c: char) -> Option<&'static str> {
    let replacement = match c {
        '’' | '‘' | '‚' | '‛' | '′' | '`' | '´' => "'",
        '“' | '”' | '„' | '«' | '»' | '″' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '−' => "-",
        '…' => "...",
        // No-break space, narrow no-break space (before « ; : ! ? » in French
        // typography), thin space, tab.
        '\u{A0}' | '\u{202F}' | '\u{2009}' | '\t' => " ",
        'œ' => "oe",
        'Œ' => "OE",
        'ç' => "c",
        'â' | 'á' | 'ã' => "a",
        'À' | 'Â' | 'Á' | 'Ã' => "A",
        'ê' | 'ë' => "e",
        'È' | 'Ê' | 'Ë' => "E",
        'î' | 'ï' | 'í' => "i",
        'Ì' | 'Î' | 'Ï' | 'Í' => "I",
        'ô' | 'ó' | 'õ' => "o",
        'Ò' | 'Ô' | 'Ó' | 'Õ' => "O",
        'û' | 'ú' => "u",
        'Ù' | 'Û' | 'Ú' => "U",
        'ÿ' | 'ý' => "y",
        'Ÿ' | 'Ý' => "Y",
        _ => return None,
    };
    Some(replacement)
}

/// Why an alphanumeric sender ID (the name shown instead of a number, e.g.
/// "DrMartin") is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderIdError {
    /// Operators truncate or reject sender IDs outside 3–11 characters.
    #[error("the SMS sender name must be 3 to 11 characters long (it has {0})")]
    Length(usize),
    /// Only unaccented letters, digits and spaces go through every French operator.
    #[error(
        "the SMS sender name may contain only unaccented letters, digits and spaces (found {0:?})"
    )]
    InvalidCharacter(char),
    /// A leading or trailing space would be trimmed by some operators and not by others.
    #[error("the SMS sender name must not start or end with a space")]
    EdgeSpace,
    /// A sender ID made only of digits looks like a phone number the patient
    /// could reply to; operators refuse it.
    #[error("the SMS sender name must contain at least one letter")]
    NoLetter,
}

/// Checks an alphanumeric sender ID against the rules French SMS providers
/// apply: 3 to 11 characters, only ASCII letters, digits and spaces, no
/// leading or trailing space, at least one letter.
///
/// We are stricter than some providers (which accept `. - _ &`) because a sender
/// ID refused by one operator means SMS silently not delivered to its customers.
pub fn validate_sender_id(sender_id: &str) -> Result<(), SenderIdError> {
    let length = sender_id.chars().count();
    if !(3..=11).contains(&length) {
        return Err(SenderIdError::Length(length));
    }
    if let Some(c) = sender_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == ' '))
    {
        return Err(SenderIdError::InvalidCharacter(c));
    }
    if sender_id.starts_with(' ') || sender_id.ends_with(' ') {
        return Err(SenderIdError::EdgeSpace);
    }
    if !sender_id.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(SenderIdError::NoLetter);
    }
    Ok(())
}

/// Names a practice's SMS may not go out under: public bodies and services whose name is the
/// bait of SMS phishing in France. Compared without accents, case or separators.
const IMPERSONATED: &[&str] = &[
    "ameli",
    "assurancemaladie",
    "securitesociale",
    "cpam",
    "impots",
    "dgfip",
    "tresorpublic",
    "urssaf",
    "laposte",
    "colissimo",
    "chronopost",
    "doctolib",
    "franceconnect",
    "antai",
    "gouv",
    "police",
    "gendarmerie",
    "pajemploi",
    "poleemploi",
    "francetravail",
    "msa",
    "caf",
    "ants",
];

/// The impersonated name a sender name (or a practice's name used as one) contains, if any.
/// `A.M.E.L.I`, `Impôts`, `La Poste` and `C P A M` are all caught. Names of four letters or
/// fewer (`caf`, `ants`, `msa`, `cpam`) are matched as whole words or as the whole name, so that
/// a practice called « Cabinet des Enfants » is not refused for `ants`.
pub fn impersonated_name(sender: &str) -> Option<&'static str> {
    let folded: String = sender
        .chars()
        .map(fold_accent)
        .collect::<String>()
        .to_lowercase();
    let compact: String = folded.chars().filter(char::is_ascii_alphanumeric).collect();
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    IMPERSONATED.iter().copied().find(|name| {
        if name.len() > 4 {
            compact.contains(name)
        } else {
            compact == *name || words.contains(name)
        }
    })
}

/// The letter without its accent, for the letters of French (and `œ`, `æ`).
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' | 'À' | 'Â' | 'Ä' | 'Á' => 'a',
        'ç' | 'Ç' => 'c',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'î' | 'ï' | 'í' | 'ì' | 'Î' | 'Ï' => 'i',
        'ô' | 'ö' | 'ó' | 'ò' | 'õ' | 'Ô' | 'Ö' => 'o',
        'ù' | 'û' | 'ü' | 'ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ÿ' | 'Ÿ' => 'y',
        'ñ' | 'Ñ' => 'n',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sender_names_that_impersonate_public_services_are_caught_in_any_spelling() {
        for (sender, name) in [
            ("AMELI", "ameli"),
            ("A.M.E.L.I", "ameli"),
            ("Ameli Info", "ameli"),
            ("IMPOTS", "impots"),
            ("Impôts", "impots"),
            ("impots-gouv", "impots"),
            ("CPAM 75", "cpam"),
            ("C P A M", "cpam"),
            ("DGFiP", "dgfip"),
            ("CAF", "caf"),
            ("Ma CAF", "caf"),
            ("URSSAF", "urssaf"),
            ("ANTS", "ants"),
            ("La Poste", "laposte"),
            ("LAPOSTE", "laposte"),
            ("Doctolib", "doctolib"),
        ] {
            assert_eq!(impersonated_name(sender), Some(name), "{sender}");
        }
        for fine in [
            "Cabinet A",
            "Dr Martin",
            "Enfants Sante",
            "Cafe Dentaire",
            "KineParis",
        ] {
            assert_eq!(impersonated_name(fine), None, "{fine}");
        }
    }

    fn info(encoding: SmsEncoding, units: usize, segments: usize, remaining: usize) -> SmsInfo {
        SmsInfo {
            encoding,
            units,
            segments,
            remaining_in_segment: remaining,
        }
    }

    #[test]
    fn empty_text_takes_no_segment_and_leaves_a_whole_gsm7_sms() {
        assert_eq!(analyze(""), info(SmsEncoding::Gsm7, 0, 0, 160));
        assert!(is_gsm7(""));
    }

    #[test]
    fn gsm7_text_of_160_septets_fits_in_one_sms() {
        assert_eq!(
            analyze(&"a".repeat(160)),
            info(SmsEncoding::Gsm7, 160, 1, 0)
        );
    }

    #[test]
    fn gsm7_text_of_161_septets_takes_two_parts_of_153() {
        assert_eq!(
            analyze(&"a".repeat(161)),
            info(SmsEncoding::Gsm7, 161, 2, 145)
        );
    }

    #[test]
    fn gsm7_text_of_306_septets_fills_exactly_two_parts() {
        assert_eq!(
            analyze(&"a".repeat(306)),
            info(SmsEncoding::Gsm7, 306, 2, 0)
        );
    }

    #[test]
    fn gsm7_text_of_307_septets_takes_three_parts() {
        assert_eq!(
            analyze(&"a".repeat(307)),
            info(SmsEncoding::Gsm7, 307, 3, 152)
        );
    }

    #[test]
    fn extension_characters_count_two_septets() {
        // 158 + 2 = 160: still one SMS; one more basic character makes two.
        let text = format!("{}€", "a".repeat(158));
        assert_eq!(analyze(&text), info(SmsEncoding::Gsm7, 160, 1, 0));
        let text = format!("{}[", "a".repeat(159));
        assert_eq!(analyze(&text), info(SmsEncoding::Gsm7, 161, 2, 145));
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{0C}'] {
            assert_eq!(analyze(&c.to_string()).units, 2, "{c:?}");
        }
    }

    #[test]
    fn extension_character_straddling_a_part_boundary_moves_to_the_next_part() {
        // 152 + 2 + 152 = 306 septets, which would fit in 2 × 153 if the euro
        // sign could be split; it cannot, so part 1 holds 152 septets, part 2
        // holds the euro sign and 151 letters, and the last letter needs part 3.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(analyze(&text), info(SmsEncoding::Gsm7, 306, 3, 152));
    }

    #[test]
    fn extension_character_ending_exactly_at_a_part_boundary_stays_in_its_part() {
        let text = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(analyze(&text), info(SmsEncoding::Gsm7, 306, 2, 0));
    }

    #[test]
    fn ucs2_text_of_70_units_fits_in_one_sms() {
        assert_eq!(analyze(&"ç".repeat(70)), info(SmsEncoding::Ucs2, 70, 1, 0));
    }

    #[test]
    fn ucs2_text_of_71_units_takes_two_parts_of_67() {
        assert_eq!(analyze(&"ç".repeat(71)), info(SmsEncoding::Ucs2, 71, 2, 63));
    }

    #[test]
    fn ucs2_text_of_134_units_fills_exactly_two_parts_and_135_takes_three() {
        assert_eq!(
            analyze(&"ç".repeat(134)),
            info(SmsEncoding::Ucs2, 134, 2, 0)
        );
        assert_eq!(
            analyze(&"ç".repeat(135)),
            info(SmsEncoding::Ucs2, 135, 3, 66)
        );
    }

    #[test]
    fn emoji_forces_ucs2_and_counts_two_utf16_units() {
        assert_eq!(analyze("À demain 😀"), info(SmsEncoding::Ucs2, 11, 1, 59));
        assert!(!is_gsm7("😀"));
    }

    #[test]
    fn surrogate_pair_straddling_a_part_boundary_moves_to_the_next_part() {
        // 66 + 2 + 66 = 134 units would be 2 × 67 if the emoji could be split.
        let text = format!("{}😀{}", "ç".repeat(66), "ç".repeat(66));
        assert_eq!(analyze(&text), info(SmsEncoding::Ucs2, 134, 3, 66));
    }

    #[test]
    fn french_text_with_gsm7_accents_stays_gsm7() {
        let text = "Rappel : RDV le 12/03 à 14h30 chez le Dr Hélène Müller. Où ? Cabinet Ça-va, 3e étage. Tarif : 25 €";
        assert!(is_gsm7(text));
        let info = analyze(text);
        assert_eq!(info.encoding, SmsEncoding::Gsm7);
        // Every character is one septet except the euro sign.
        assert_eq!(info.units, text.chars().count() + 1);
    }

    #[test]
    fn lowercase_c_cedilla_forces_ucs2_although_capital_c_cedilla_does_not() {
        assert!(is_gsm7("Ç"));
        assert!(!is_gsm7("ç"));
        assert_eq!(analyze("Reçu").encoding, SmsEncoding::Ucs2);
    }

    #[test]
    fn oe_ligature_and_typographic_apostrophe_force_ucs2() {
        assert_eq!(analyze("sœur").encoding, SmsEncoding::Ucs2);
        assert_eq!(analyze("l’après-midi").encoding, SmsEncoding::Ucs2);
        assert_eq!(analyze("l'après-midi").encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn backquote_and_circumflex_accents_are_not_gsm7() {
        for text in [
            "`", "â", "ê", "î", "ô", "û", "ë", "ï", "À", "È", "\u{A0}", "\t",
        ] {
            assert!(!is_gsm7(text), "{text:?}");
        }
    }

    #[test]
    fn greek_capitals_and_symbols_of_the_basic_table_are_one_septet() {
        let text = "ΔΦΓΛΩΠΨΣΘΞ@£$¥¤§¡¿_ÆæßØøÅå";
        assert!(is_gsm7(text));
        assert_eq!(analyze(text).units, text.chars().count());
    }

    #[test]
    fn lossy_conversion_makes_french_typography_gsm7_and_keeps_gsm7_accents() {
        let text =
            "Rendez-vous l’après-midi « à 14 h » chez Dr Lœuvre — reçu… Âge : 3\u{A0}ans\u{202F}!";
        let converted = to_gsm7_lossy(text);
        assert_eq!(
            converted,
            "Rendez-vous l'après-midi \" à 14 h \" chez Dr Loeuvre - recu... Age : 3 ans !"
        );
        assert!(is_gsm7(&converted));
        assert_eq!(to_gsm7_lossy("éèàùìòÉÇ"), "éèàùìòÉÇ");
        assert_eq!(to_gsm7_lossy("âêîôûëïÿ"), "aeioueiy");
    }

    #[test]
    fn lossy_conversion_keeps_characters_without_a_lookalike() {
        assert_eq!(to_gsm7_lossy("Bonne journée 😀"), "Bonne journée 😀");
        assert!(!is_gsm7(&to_gsm7_lossy("😀")));
    }

    #[test]
    fn every_lookalike_replaces_a_non_gsm7_character_by_gsm7_text() {
        // Walk the Latin-1, Latin Extended-A and General Punctuation blocks.
        let candidates = ('\u{0}'..='\u{17F}').chain('\u{2000}'..='\u{206F}');
        for c in candidates {
            if let Some(replacement) = gsm7_lookalike(c) {
                assert!(gsm7_septets(c).is_none(), "{c:?} is GSM-7 and must be kept");
                assert!(is_gsm7(replacement), "{c:?} → {replacement:?}");
            }
        }
    }

    #[test]
    fn sender_id_of_letters_digits_and_spaces_is_accepted() {
        for id in ["DrMartin", "Cabinet 12", "ABC", "Kine Paris1", "SOS 24"] {
            assert_eq!(validate_sender_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn sender_id_shorter_than_3_or_longer_than_11_characters_is_refused() {
        assert_eq!(validate_sender_id("Dr"), Err(SenderIdError::Length(2)));
        assert_eq!(validate_sender_id(""), Err(SenderIdError::Length(0)));
        assert_eq!(
            validate_sender_id("CabinetMedical"),
            Err(SenderIdError::Length(14))
        );
    }

    #[test]
    fn sender_id_with_accents_or_punctuation_is_refused() {
        assert_eq!(
            validate_sender_id("Dr Hélène"),
            Err(SenderIdError::InvalidCharacter('é'))
        );
        assert_eq!(
            validate_sender_id("Dr.Martin"),
            Err(SenderIdError::InvalidCharacter('.'))
        );
    }

    #[test]
    fn sender_id_starting_or_ending_with_a_space_is_refused() {
        assert_eq!(validate_sender_id(" Martin"), Err(SenderIdError::EdgeSpace));
        assert_eq!(validate_sender_id("Martin "), Err(SenderIdError::EdgeSpace));
    }

    #[test]
    fn sender_id_made_only_of_digits_is_refused() {
        assert_eq!(validate_sender_id("0612345"), Err(SenderIdError::NoLetter));
        assert_eq!(validate_sender_id("12 34"), Err(SenderIdError::NoLetter));
    }

    #[test]
    fn sender_id_error_messages_are_readable_sentences() {
        assert_eq!(
            SenderIdError::Length(14).to_string(),
            "the SMS sender name must be 3 to 11 characters long (it has 14)"
        );
    }

    proptest! {
        #[test]
        fn segments_hold_every_unit_and_lose_at_most_one_unit_per_part(
            text in prop_oneof!["\\PC{0,400}", "[a-z €\\[{]{0,400}", "[a-zç😀]{0,200}"],
        ) {
            let info = analyze(&text);
            let (single, part) = match info.encoding {
                SmsEncoding::Gsm7 => (GSM7_SINGLE, GSM7_PART),
                SmsEncoding::Ucs2 => (UCS2_SINGLE, UCS2_PART),
            };
            if text.is_empty() {
                prop_assert_eq!(info.segments, 0);
            } else if info.units <= single {
                prop_assert_eq!(info.segments, 1);
                prop_assert_eq!(info.remaining_in_segment, single - info.units);
            } else {
                // Each part loses at most one unit to a character that did not fit.
                let at_least = info.units.div_ceil(part);
                let at_most = info.units.div_ceil(part - 1);
                prop_assert!(at_least <= info.segments && info.segments <= at_most);
                prop_assert!(info.remaining_in_segment < part);
            }
        }

        #[test]
        fn lossy_conversion_of_latin_text_is_gsm7(text in "[ -~àâäçéèêëîïôöùûüÿÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸœŒ’‘“”«»–—…\u{A0}\u{202F}]{0,200}") {
            let converted = to_gsm7_lossy(&text);
            prop_assert!(is_gsm7(&converted), "{:?} → {:?}", text, converted);
        }

        #[test]
        fn sender_id_validation_never_panics(id in "\\PC{0,20}") {
            let _ = validate_sender_id(&id);
        }
    }
}
