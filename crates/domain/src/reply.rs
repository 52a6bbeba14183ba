//! What a patient's SMS reply asks for: the keywords of two-way SMS (issue 16).
//!
//! A reply is a keyword only when the whole message is one, once read the way people type on a
//! phone: any case, with or without accents, surrounded by spaces, punctuation or emoji
//! (« oui », « Oui. », « ARRÊT », « arret ! »). A sentence that merely contains a keyword
//! (« oui mais je serai en retard », « stop, je rappelle demain ») is not one: a person at the
//! practice must read it, so it goes to the « Messages reçus » box.
//!
//! | keyword | what it does |
//! | --- | --- |
//! | `OUI`, `CONFIRME`, `CONFIRMER` | confirms the patient's next appointment; also lifts an SMS opt-out |
//! | `ANNULER`, `ANNULE` | asks to cancel the next appointment (same cutoff as the link) |
//! | `STOP`, `ARRET`, `ARRETER` | the patient's SMS opt-out |
//! | `START` | lifts the opt-out |
//!
//! `OUI` while opted out does both, in that order: it lifts the opt-out (the patient is
//! plainly answering our SMS and wants the conversation), then confirms. This module decides
//! nothing else: the engine applies the keyword and answers.

/// A keyword a reply consists of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// `OUI` / `CONFIRME`.
    Confirm,
    /// `ANNULER`.
    Cancel,
    /// `STOP` / `ARRET`.
    Stop,
    /// `START`.
    Start,
}

impl Keyword {
    /// The keyword's name in webhooks and the API: `confirm`, `cancel`, `stop`, `start`.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Confirm => "confirm",
            Keyword::Cancel => "cancel",
            Keyword::Stop => "stop",
            Keyword::Start => "start",
        }
    }

    /// Whether this keyword lifts an SMS opt-out the patient has set.
    pub fn lifts_opt_out(self) -> bool {
        matches!(self, Keyword::Start | Keyword::Confirm)
    }
}

/// The keyword `text` consists of, if it is one.
///
/// ```
/// use rappel_domain::reply::{Keyword, keyword};
/// assert_eq!(keyword(" Oui. "), Some(Keyword::Confirm));
/// assert_eq!(keyword("ARRÊT"), Some(Keyword::Stop));
/// assert_eq!(keyword("oui mais en retard"), None);
/// ```
pub fn keyword(text: &str) -> Option<Keyword> {
    let folded = fold(text);
    match folded.as_str() {
        "oui" | "confirme" | "confirmer" => Some(Keyword::Confirm),
        "annuler" | "annule" => Some(Keyword::Cancel),
        "stop" | "arret" | "arreter" => Some(Keyword::Stop),
        "start" => Some(Keyword::Start),
        _ => None,
    }
}

/// Lower-cased letters and digits without their accents, words joined by one space, every
/// other character (punctuation, emoji, spaces) dropped.
fn fold(text: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let base = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' | 'ì' => 'i',
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' | 'ý' => 'y',
            'œ' => {
                out.push('o');
                'e'
            }
            c => c,
        };
        if base.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(base);
        } else if base.is_whitespace() {
            gap = true;
        }
        // Punctuation and symbols vanish without separating: « o.u.i » is not a word we
        // expect, but « oui. » and « ok! » must read as their letters.
    }
    out
}

/// The SMS that answers a `STOP`.
pub fn opted_out_text(practice_name: &str) -> String {
    format!(
        "{practice_name} : vous ne recevrez plus de SMS de notre part. Répondez START pour les réactiver."
    )
}

/// The SMS that answers a `START` (or an `OUI` that lifted an opt-out).
pub fn opted_in_text(practice_name: &str) -> String {
    format!("{practice_name} : vos SMS sont réactivés. Répondez STOP pour ne plus en recevoir.")
}

/// The SMS that answers a `START` from a patient who had not opted out.
pub fn already_opted_in_text(practice_name: &str) -> String {
    format!("{practice_name} : vos SMS sont déjà activés.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_read_whatever_the_case_accents_spaces_and_punctuation() {
        for (text, expected) in [
            ("oui", Keyword::Confirm),
            ("Oui.", Keyword::Confirm),
            ("  OUI !! ", Keyword::Confirm),
            ("Confirmé", Keyword::Confirm),
            ("CONFIRME", Keyword::Confirm),
            ("annuler", Keyword::Cancel),
            ("Annulé", Keyword::Cancel),
            ("STOP", Keyword::Stop),
            ("Stop.", Keyword::Stop),
            ("ARRÊT", Keyword::Stop),
            ("arret", Keyword::Stop),
            ("Arrêter", Keyword::Stop),
            ("start", Keyword::Start),
            ("Start 🙂", Keyword::Start),
        ] {
            assert_eq!(keyword(text), Some(expected), "{text:?}");
        }
    }

    #[test]
    fn sentences_and_other_words_are_not_keywords() {
        for text in [
            "",
            "   ",
            "oui mais je serai en retard",
            "stop, je rappelle demain",
            "non",
            "ouii",
            "Pouvez-vous me rappeler ?",
        ] {
            assert_eq!(keyword(text), None, "{text:?}");
        }
    }

    #[test]
    fn only_start_and_oui_lift_an_opt_out() {
        assert!(Keyword::Start.lifts_opt_out());
        assert!(Keyword::Confirm.lifts_opt_out());
        assert!(!Keyword::Cancel.lifts_opt_out());
        assert!(!Keyword::Stop.lifts_opt_out());
    }
}
