//! The declarative policy model: a preset (or a practice's own file) is TOML data — options with
//! defaults, rules with a trigger, a recipient, a channel, a timing and conditions.
//!
//! Parsing checks everything a practice can get wrong and reports it with the line it is on
//! (`rappel policy check`). The planner ([`crate::plan`]) interprets a checked [`Policy`].
//!
//! One concern, one file (some 750 lines): the policy's data types and the check that parses them
//! (with the line of each mistake) change together; the presets themselves are TOML in `presets/`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, civil::Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::facts::{CancelledBy, Source};
use crate::notification::{Channel, Kind, Reason};

/// The presets shipped with Rappel, embedded in the binary.
pub const PRESETS: &[(&str, &str)] = &[
    ("doctolib", include_str!("presets/doctolib.toml")),
    ("rosa", include_str!("presets/rosa.toml")),
    ("maddie", include_str!("presets/maddie.toml")),
    ("lifen", include_str!("presets/lifen.toml")),
];

pub fn preset_source(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Loads a shipped preset. They are checked by the test suite, so this cannot fail at run time.
pub fn preset(name: &str) -> Option<Policy> {
    preset_source(name).map(|src| Policy::parse(src).expect("shipped presets are valid"))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: BTreeMap<String, OptionSpec>,
    #[serde(default)]
    pub patient_defaults: PatientDefaults,
    #[serde(default)]
    pub quota: Option<QuotaSpec>,
    #[serde(default)]
    pub online_booking: Option<OnlineBookingSpec>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A practice option: its type, default and the French label the settings page shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    #[serde(rename = "type")]
    pub kind: OptionKind,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub label: String,
    /// Shown checked and disabled: the behaviour cannot be switched off (Rosa's confirmations).
    #[serde(default)]
    pub locked: bool,
    /// For `choice` options.
    #[serde(default)]
    pub choices: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    Bool,
    Integer,
    /// An integer that may be absent (`null` switches the behaviour off).
    OptionalInteger,
    Choice,
    String,
    /// `"21:00-08:00"` or `""` for none.
    TimeRange,
}

/// Defaults for the per-patient switches; a value may depend on an option (Maddie's plan).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientDefaults {
    #[serde(default)]
    pub email_notifications: Option<Switch>,
    #[serde(default)]
    pub sms_notifications: Option<Switch>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Switch {
    Fixed(bool),
    WhenOption {
        option: String,
        #[serde(rename = "in")]
        values: Vec<String>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// The option holding the number of SMS per calendar month (practice time).
    pub sms_per_month: String,
    /// Only when these options have these values (e.g. `plan = ["essentiel"]`).
    #[serde(default)]
    pub when: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineBookingSpec {
    /// The option holding the number of unexcused no-shows that blocks online booking.
    pub no_show_threshold: String,
    #[serde(default = "twelve")]
    pub window_months: i32,
}

fn twelve() -> i32 {
    12
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The appointment was booked (once).
    Booked,
    /// The appointment is booked and to come: reminders.
    Scheduled,
    /// Its time or place changed (one occurrence per coalesced group of changes).
    Moved,
    Cancelled,
    Deleted,
    NoShow,
    DocumentSent,
    /// The email carrying the document failed (bounce, refusal, no usable email).
    DocumentFailed,
    /// The email was delivered but the document not consulted after some days.
    DocumentUnread,
}

impl Trigger {
    pub fn is_document(self) -> bool {
        matches!(
            self,
            Trigger::DocumentSent | Trigger::DocumentFailed | Trigger::DocumentUnread
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Patient,
    Practitioner,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub kind: Kind,
    pub on: Trigger,
    pub to: Audience,
    /// One channel for a patient; for a practitioner, every listed channel whose contact is set.
    pub channels: Vec<Channel>,
    /// Used instead of the first channel when the patient has no usable contact for it.
    #[serde(default)]
    pub fallback: Option<Channel>,
    pub timing: Timing,
    #[serde(default)]
    pub when: Conditions,
    /// One message per patient and appointment day listing all its appointments.
    #[serde(default)]
    pub group: Option<Grouping>,
    #[serde(default)]
    pub auto_resend: bool,
    /// For `inbox` rules, and the notification-centre entry made when a message is handed off.
    #[serde(default)]
    pub inbox: Option<InboxSpec>,
    /// The entry made when the message cannot be sent for one of the listed reasons.
    #[serde(default)]
    pub inbox_if_not_sent: Option<InboxSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    PatientDay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxBox {
    ToVerify,
    Notifications,
}

impl InboxBox {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxBox::ToVerify => "to_verify",
            InboxBox::Notifications => "notifications",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSpec {
    #[serde(rename = "box")]
    pub inbox: InboxBox,
    /// Title and text in French; `{patient}` and `{title}` are replaced.
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub reasons: Vec<Reason>,
}

/// When a message is due. Exactly one of the anchors is set (checked by [`Policy::parse`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// After the triggering change; with a positive delay, later changes coalesce into it.
    #[serde(default, with = "opt_duration")]
    pub delay: Option<SignedDuration>,
    /// Relative to the appointment's local date (D): -1 is the day before.
    #[serde(default)]
    pub day: Option<i32>,
    /// Local send window on that day, start inclusive, end exclusive.
    #[serde(default, with = "opt_window")]
    pub window: Option<(Time, Time)>,
    /// Local time from which the message may go on that day (no end but quiet hours).
    #[serde(default, with = "opt_time")]
    pub from: Option<Time>,
    /// When the booking came after the planned moment, send this long after the booking instead.
    #[serde(default, with = "opt_duration")]
    pub late_after_booking: Option<SignedDuration>,
    /// This long before the appointment starts.
    #[serde(default, with = "opt_duration")]
    pub before_start: Option<SignedDuration>,
    /// With `before_start`: how late it may still go out (e.g. when booked just after the moment).
    #[serde(default, with = "opt_duration")]
    pub grace: Option<SignedDuration>,
    /// `max(start - cap, booked_at + lead / 2)`: "about 7 days before, never sooner than halfway".
    #[serde(default, with = "opt_duration")]
    pub halfway_cap: Option<SignedDuration>,
    /// After the trigger, a number of days read from an option (`postal_unread_days`).
    #[serde(default)]
    pub days_option: Option<String>,
}

/// Conditions on a rule. Unmet `option`/motive conditions leave an explained suppression; the
/// others mean the rule simply does not apply.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, with = "opt_duration")]
    pub lead_over: Option<SignedDuration>,
    #[serde(default, with = "opt_duration")]
    pub lead_at_most: Option<SignedDuration>,
    #[serde(default)]
    pub source: Option<Vec<Source>>,
    /// This option must be on (or set, for an optional integer); otherwise `option_disabled`.
    #[serde(default)]
    pub option: Option<String>,
    /// The rule applies only while this option is off.
    #[serde(default)]
    pub option_off: Option<String>,
    /// Options that must hold one of the listed values.
    #[serde(default)]
    pub options: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub cancelled_by: Option<Vec<CancelledBy>>,
    /// The change (move, cancellation) happened on one of these days relative to D (of the
    /// original date for a move): `[-1, 0]` is "the day before or the same day".
    #[serde(default)]
    pub change_on_days: Option<Vec<i32>>,
    /// Whether a motive with `notifications = false` silences the rule (default: yes for
    /// patient messages).
    #[serde(default)]
    pub ignore_motive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}line {line}: {reason}", file.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct PolicyError {
    pub file: Option<String>,
    pub line: usize,
    pub reason: String,
}

impl Policy {
    /// Parses and checks a policy file, reporting the first mistake with its line.
    pub fn parse(source: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(source).map_err(|e| PolicyError {
            file: None,
            line: e.span().map(|s| line_of(source, s.start)).unwrap_or(1),
            reason: e.message().to_string(),
        })?;
        if let Err((needle, reason)) = policy.check() {
            // Compare without spaces: `id="r1"` and `id = "r1"` are the same line to a reader.
            let squeeze = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            let line = needle
                .map(|n| squeeze(&n))
                .and_then(|n| source.lines().position(|l| squeeze(l).starts_with(&n)))
                .map(|index| index + 1)
                .unwrap_or(1);
            return Err(PolicyError {
                file: None,
                line,
                reason,
            });
        }
        Ok(policy)
    }

    /// Cross-field checks serde cannot express. The error carries a text to locate in the source.
    fn check(&self) -> Result<(), (Option<String>, String)> {
        for (name, spec) in &self.options {
            if let Some(default) = &spec.default {
                check_option_value(spec, default).map_err(|r| {
                    (
                        Some(format!("[options.{name}]")),
                        format!("option `{name}`: default {r}"),
                    )
                })?;
            }
            if spec.kind == OptionKind::Choice && spec.choices.is_empty() {
                return Err((
                    Some(format!("[options.{name}]")),
                    format!("option `{name}`: a choice needs `choices`"),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.rules {
            let at = Some(format!("id = \"{}\"", rule.id));
            let fail = |reason: String| Err((at.clone(), format!("rule `{}`: {reason}", rule.id)));
            if !seen.insert(rule.id.as_str()) {
                return fail("the id is used twice".into());
            }
            if rule.id.is_empty()
                || !rule
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return fail("the id must be letters, digits and `_`".into());
            }
            if rule.channels.is_empty() {
                return fail("`channels` is empty".into());
            }
            if rule.to == Audience::Patient && rule.channels.len() > 1 {
                return fail("a patient rule has one channel (use `fallback` for a second)".into());
            }
            if rule.to == Audience::Practitioner
                && rule
                    .channels
                    .iter()
                    .any(|c| !matches!(c, Channel::Email | Channel::Sms))
            {
                return fail("practitioner alerts go by email or sms".into());
            }
            if rule.channels.contains(&Channel::Inbox) && rule.inbox.is_none() {
                return fail("an `inbox` rule needs an `inbox` table".into());
            }
            if rule.channels.contains(&Channel::Postal) && !rule.on.is_document() {
                return fail("postal letters carry documents: use a document trigger".into());
            }
            if rule.on.is_document() != (rule.kind == Kind::Document) {
                return fail(
                    "document triggers go with kind = \"document\" and the reverse".into(),
                );
            }
            let t = &rule.timing;
            let anchors = [
                t.delay.is_some(),
                t.day.is_some(),
                t.before_start.is_some(),
                t.halfway_cap.is_some(),
                t.days_option.is_some(),
            ];
            if anchors.iter().filter(|a| **a).count() != 1 {
                return fail("timing needs exactly one of `delay`, `day`, `before_start`, `halfway_cap`, `days_option`".into());
            }
            if t.day.is_some() && t.window.is_some() && t.from.is_some() {
                return fail("timing: `window` and `from` exclude each other".into());
            }
            if t.day.is_none() && (t.window.is_some() || t.from.is_some()) {
                return fail("timing: `window` and `from` need `day`".into());
            }
            if let Some((start, end)) = t.window
                && start >= end
            {
                return fail("timing: the window must end after it starts".into());
            }
            if t.late_after_booking.is_some() && rule.on != Trigger::Scheduled {
                return fail("timing: `late_after_booking` is for `scheduled` rules".into());
            }
            if t.grace.is_some() && t.before_start.is_none() {
                return fail("timing: `grace` goes with `before_start`".into());
            }
            if (t.day.is_some() || t.before_start.is_some() || t.halfway_cap.is_some())
                && rule.on.is_document()
            {
                return fail("timing relative to an appointment on a document trigger".into());
            }
            if let Some(opt) = &t.days_option {
                self.need_option(opt, &[OptionKind::Integer, OptionKind::OptionalInteger])
                    .map_err(|r| (at.clone(), format!("rule `{}`: {r}", rule.id)))?;
            }
            let w = &rule.when;
            for opt in w.option.iter().chain(w.option_off.iter()) {
                self.need_option(opt, &[OptionKind::Bool, OptionKind::OptionalInteger])
                    .map_err(|r| (at.clone(), format!("rule `{}`: {r}", rule.id)))?;
            }
            for (opt, values) in &w.options {
                let spec = self.options.get(opt).ok_or_else(|| {
                    (
                        at.clone(),
                        format!("rule `{}`: unknown option `{opt}`", rule.id),
                    )
                })?;
                if let Some(v) = values.iter().find(|v| !spec.choices.contains(v)) {
                    return fail(format!("option `{opt}` has no choice `{v}`"));
                }
            }
            if w.cancelled_by.is_some() && rule.on != Trigger::Cancelled {
                return fail("`cancelled_by` is for `cancelled` rules".into());
            }
            if w.change_on_days.is_some() && !matches!(rule.on, Trigger::Cancelled | Trigger::Moved)
            {
                return fail("`change_on_days` is for `cancelled` and `moved` rules".into());
            }
            if rule.group.is_some()
                && (rule.on != Trigger::Scheduled || rule.to != Audience::Patient)
            {
                return fail("grouping is for patient reminders (`scheduled`)".into());
            }
        }
        if let Some(q) = &self.quota {
            self.need_option(
                &q.sms_per_month,
                &[OptionKind::Integer, OptionKind::OptionalInteger],
            )
            .map_err(|r| (Some("[quota]".into()), format!("quota: {r}")))?;
        }
        if let Some(o) = &self.online_booking {
            self.need_option(
                &o.no_show_threshold,
                &[OptionKind::Integer, OptionKind::OptionalInteger],
            )
            .map_err(|r| {
                (
                    Some("[online_booking]".into()),
                    format!("online_booking: {r}"),
                )
            })?;
        }
        for switch in [
            &self.patient_defaults.email_notifications,
            &self.patient_defaults.sms_notifications,
        ]
        .into_iter()
        .flatten()
        {
            if let Switch::WhenOption { option, .. } = switch {
                self.need_option(option, &[OptionKind::Choice, OptionKind::String])
                    .map_err(|r| {
                        (
                            Some("[patient_defaults]".into()),
                            format!("patient_defaults: {r}"),
                        )
                    })?;
            }
        }
        Ok(())
    }

    fn need_option(&self, name: &str, kinds: &[OptionKind]) -> Result<(), String> {
        match self.options.get(name) {
            None => Err(format!("unknown option `{name}`")),
            Some(spec) if !kinds.contains(&spec.kind) => {
                Err(format!("option `{name}` has the wrong type for this use"))
            }
            Some(_) => Ok(()),
        }
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Options every policy understands, whatever its preset.
pub fn common_options() -> BTreeMap<String, OptionSpec> {
    let spec = |kind, default: Value, label: &str| OptionSpec {
        kind,
        default: Some(default),
        label: label.to_string(),
        locked: false,
        choices: Vec::new(),
    };
    BTreeMap::from([
        (
            "quiet_hours_sms".to_string(),
            spec(
                OptionKind::TimeRange,
                Value::from("21:00-08:00"),
                "Pas de SMS entre",
            ),
        ),
        (
            "quiet_hours_push".to_string(),
            spec(
                OptionKind::TimeRange,
                Value::from("21:00-08:00"),
                "Pas de notification push entre",
            ),
        ),
        (
            "quiet_hours_email".to_string(),
            spec(OptionKind::TimeRange, Value::from(""), "Pas d'email entre"),
        ),
        (
            "sms_sender".to_string(),
            spec(
                OptionKind::String,
                Value::from("CABINET"),
                "Nom d'expéditeur des SMS",
            ),
        ),
        (
            // Issue 18: finished messages leave the tables after this many months.
            crate::settings::RETENTION_OPTION.to_string(),
            spec(
                OptionKind::Integer,
                Value::from(crate::settings::DEFAULT_RETENTION_MONTHS),
                "Conservation de l'historique des messages (mois)",
            ),
        ),
        (
            "appointment_links".to_string(),
            spec(
                OptionKind::Bool,
                Value::from(true),
                "Liens « Confirmer » et « Annuler » dans les rappels et confirmations",
            ),
        ),
        (
            "appointment_links_sms".to_string(),
            spec(
                OptionKind::Bool,
                Value::from(true),
                "Lien « Confirmer ou annuler » dans les rappels SMS (compte dans les SMS facturés)",
            ),
        ),
        (
            "patient_cancel_cutoff_hours".to_string(),
            spec(
                OptionKind::Integer,
                Value::from(4),
                "Le patient peut annuler jusqu'à (heures avant le rendez-vous)",
            ),
        ),
        (
            "practice_phone".to_string(),
            spec(
                OptionKind::String,
                Value::from(""),
                "Téléphone du cabinet (donné quand il est trop tard pour annuler en ligne)",
            ),
        ),
        (
            "show_motive_in_sms".to_string(),
            spec(
                OptionKind::Bool,
                Value::from(false),
                "Afficher le motif dans les SMS",
            ),
        ),
    ])
}

/// Checks one value against an option's type; the error says what was expected.
pub fn check_option_value(spec: &OptionSpec, value: &Value) -> Result<(), String> {
    let ok = match spec.kind {
        OptionKind::Bool => value.is_boolean(),
        OptionKind::Integer => value.as_i64().is_some_and(|v| v >= 0),
        OptionKind::OptionalInteger => value.is_null() || value.as_i64().is_some_and(|v| v >= 0),
        OptionKind::Choice => value
            .as_str()
            .is_some_and(|v| spec.choices.iter().any(|c| c == v)),
        OptionKind::String => value.is_string(),
        OptionKind::TimeRange => value.as_str().is_some_and(|v| parse_time_range(v).is_ok()),
    };
    if ok {
        return Ok(());
    }
    Err(match spec.kind {
        OptionKind::Bool => "must be true or false".to_string(),
        OptionKind::Integer => "must be a whole number ≥ 0".to_string(),
        OptionKind::OptionalInteger => "must be a whole number ≥ 0 or null".to_string(),
        OptionKind::Choice => format!("must be one of {}", spec.choices.join(", ")),
        OptionKind::String => "must be a string".to_string(),
        OptionKind::TimeRange => "must look like \"21:00-08:00\" (or \"\" for none)".to_string(),
    })
}

/// `"21:00-08:00"` → Some((21:00, 08:00)); `""` → None.
pub fn parse_time_range(text: &str) -> Result<Option<(Time, Time)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (a, b) = text.split_once('-').ok_or("expected HH:MM-HH:MM")?;
    let a: Time = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not a time"))?;
    let b: Time = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not a time"))?;
    if a == b {
        return Err("an empty range: use \"\" for none".into());
    }
    Ok(Some((a, b)))
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Parses `10m`, `7d`, `24h`, `1h30m`, `90s`.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let mut total = 0i64;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number
            .parse()
            .map_err(|_| format!("`{text}`: expected a number before `{c}`"))?;
        number.clear();
        total += n * match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("`{text}`: unknown unit `{c}` (use d, h, m, s)")),
        };
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(format!("`{text}`: expected a duration like 10m, 24h or 7d"));
    }
    Ok(SignedDuration::from_secs(total))
}

pub fn format_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs % 86_400 == 0 && secs != 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3_600 == 0 && secs != 0 {
        format!("{}h", secs / 3_600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

mod opt_duration {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<SignedDuration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SignedDuration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

mod opt_time {
    use jiff::civil::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.strftime("%H:%M").to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Time>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a time like 14:00")))
    }
}

mod opt_window {
    use jiff::civil::Time;
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(w: &Option<(Time, Time)>, s: S) -> Result<S::Ok, S::Error> {
        match w {
            Some((a, b)) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element(&a.strftime("%H:%M").to_string())?;
                seq.serialize_element(&b.strftime("%H:%M").to_string())?;
                seq.end()
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(Time, Time)>, D::Error> {
        let pair = <[String; 2]>::deserialize(d)?;
        let parse = |t: &str| {
            t.parse::<Time>()
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a time like 14:00")))
        };
        Ok(Some((parse(&pair[0])?, parse(&pair[1])?)))
    }
}
