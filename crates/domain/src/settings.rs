//! Practice settings: the policy's options with the practice's values over their defaults.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use jiff::civil::Time;

use crate::notification::Channel;
use crate::policy::{OptionSpec, Policy, check_option_value, common_options, parse_time_range};

/// A practice's resolved options. Built only through [`Settings::resolve`], so every value has
/// the type its option declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    values: BTreeMap<String, Value>,
    /// Quiet hours of email, SMS and push, parsed once: the planner asks for them constantly.
    quiet: [Option<(Time, Time)>; 3],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SettingsError {
    pub key: String,
    pub reason: String,
}

/// The options the operator of a Rappel sets (the subscription and what it pays for), never a
/// practice: its key, its events and its web interface may not change them.
pub const OPERATOR_SETTINGS: &[&str] = &["plan", "sms_quota_per_month"];

/// How many months a practice keeps its finished messages (sent, delivered, failed or not
/// sent), their providers' reports, its handled to-verify entries and its delivered webhook
/// events; older ones are deleted in batches by the engine's retention pass.
pub const RETENTION_OPTION: &str = "history_retention_months";
/// Thirteen months: a year of history plus the month it is compared with.
pub const DEFAULT_RETENTION_MONTHS: i64 = 13;
/// The planner re-reads a patient's documents of the last 90 days (and appointments of the last
/// three): a retention shorter than four months could delete a row the planner would plan
/// again. Ten years is the longest a medical record is kept in France.
pub const RETENTION_MONTHS: std::ops::RangeInclusive<i64> = 4..=120;

/// Whether `key` is one of [`OPERATOR_SETTINGS`].
pub fn is_operator_setting(key: &str) -> bool {
    OPERATOR_SETTINGS.contains(&key)
}

/// Every option a policy understands: its own plus the common ones.
pub fn option_specs(policy: &Policy) -> BTreeMap<String, OptionSpec> {
    let mut specs = common_options();
    specs.extend(policy.options.clone());
    specs
}

/// A practice's telephone number as it is written for patients (`01 23 45 67 89`,
/// `+33 1 23 45 67 89`), or nothing: the patient's page prints it as a `tel:` link.
fn is_phone_text(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    text.chars().count() <= 32
        && digits <= 20
        && (text.trim().is_empty() || digits >= 3)
        && text
            .char_indices()
            .all(|(i, c)| c.is_ascii_digit() || " .-()".contains(c) || (c == '+' && i == 0))
}

impl Settings {
    /// Validates the stored values (unknown key or wrong type → error) and fills in defaults.
    pub fn resolve(
        policy: &Policy,
        stored: &Map<String, Value>,
    ) -> Result<Settings, SettingsError> {
        let specs = option_specs(policy);
        for (key, value) in stored {
            let spec = specs.get(key).ok_or_else(|| SettingsError {
                key: key.clone(),
                reason: format!(
                    "unknown setting for the {} preset (known: {})",
                    policy.name,
                    specs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
            if spec.locked && value != &Value::Bool(true) {
                return Err(SettingsError {
                    key: key.clone(),
                    reason: "this behaviour cannot be switched off".into(),
                });
            }
            check_option_value(spec, value).map_err(|reason| SettingsError {
                key: key.clone(),
                reason,
            })?;
            // A sender name an operator refuses means SMS silently not delivered: refuse it
            // when it is set, not at the first send.
            if key == "practice_phone"
                && let Some(phone) = value.as_str()
                && !is_phone_text(phone)
            {
                return Err(SettingsError {
                    key: key.clone(),
                    reason: "expected a telephone number: at most 20 digits, with spaces, dots, \
                             dashes, parentheses or a leading +"
                        .into(),
                });
            }
            if key == "sms_sender"
                && let Some(sender) = value.as_str()
            {
                crate::sms::validate_sender_id(sender).map_err(|e| SettingsError {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        if let Some(months) = stored.get(RETENTION_OPTION).and_then(Value::as_i64)
            && !RETENTION_MONTHS.contains(&months)
        {
            return Err(SettingsError {
                key: RETENTION_OPTION.into(),
                reason: format!(
                    "must be between {} and {} months (got {months})",
                    RETENTION_MONTHS.start(),
                    RETENTION_MONTHS.end()
                ),
            });
        }
        let mut values = BTreeMap::new();
        for (key, spec) in &specs {
            let value = stored
                .get(key)
                .cloned()
                .or_else(|| spec.default.clone())
                .unwrap_or(Value::Null);
            values.insert(key.clone(), value);
        }
        let quiet = ["quiet_hours_email", "quiet_hours_sms", "quiet_hours_push"].map(|key| {
            values
                .get(key)
                .and_then(Value::as_str)
                .and_then(|text| parse_time_range(text).ok().flatten())
        });
        Ok(Settings { values, quiet })
    }

    /// The channel's quiet hours (start, end) in practice time, if any.
    pub fn quiet_hours(&self, channel: Channel) -> Option<(Time, Time)> {
        match channel {
            Channel::Email => self.quiet[0],
            Channel::Sms => self.quiet[1],
            Channel::Push => self.quiet[2],
            Channel::Postal | Channel::Inbox => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// True for a `true` boolean or a set optional integer.
    pub fn is_on(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(_)) => true,
            Some(Value::String(s)) => !s.is_empty(),
            _ => false,
        }
    }

    pub fn integer(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Whether an option's value is one of `values` (as text).
    pub fn is_one_of(&self, key: &str, values: &[String]) -> bool {
        let Some(value) = self.get(key) else {
            return false;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        values.contains(&text)
    }

    /// Months of history the practice keeps ([`RETENTION_OPTION`]).
    pub fn retention_months(&self) -> i64 {
        self.integer(RETENTION_OPTION)
            .unwrap_or(DEFAULT_RETENTION_MONTHS)
    }

    pub fn as_map(&self) -> &BTreeMap<String, Value> {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::Settings;
    use crate::policy::Policy;

    fn doctolib() -> Policy {
        Policy::parse(include_str!("presets/doctolib.toml")).unwrap()
    }

    fn with(key: &str, value: Value) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(key.into(), value);
        map
    }

    #[test]
    fn an_sms_sender_operators_refuse_is_refused_when_set() {
        let policy = doctolib();
        let ok = Settings::resolve(&policy, &with("sms_sender", json!("CAB LILAS"))).unwrap();
        assert_eq!(ok.text("sms_sender"), Some("CAB LILAS"));
        for bad in ["Cab-Lilas!", "AB", "CABINETDESLILAS", " LILAS", "12345"] {
            let error = Settings::resolve(&policy, &with("sms_sender", json!(bad))).unwrap_err();
            assert_eq!(error.key, "sms_sender", "{bad}");
        }
    }

    #[test]
    fn history_is_kept_thirteen_months_unless_the_practice_says_between_4_and_120() {
        let policy = doctolib();
        assert_eq!(
            Settings::resolve(&policy, &Map::new())
                .unwrap()
                .retention_months(),
            13
        );
        let two_years = with("history_retention_months", json!(24));
        assert_eq!(
            Settings::resolve(&policy, &two_years)
                .unwrap()
                .retention_months(),
            24
        );
        for bad in [json!(0), json!(3), json!(121), json!(-1), json!("13")] {
            let error = Settings::resolve(&policy, &with("history_retention_months", bad.clone()))
                .unwrap_err();
            assert_eq!(error.key, "history_retention_months", "{bad}");
        }
    }
}
