//! Five-field cron expressions, as Vixie cron reads them.

use jiff::civil::{Date, Time};

/// A five-field cron expression, `minute hour day-of-month month day-of-week`, read as Vixie cron
/// reads it: `*`, numbers, `a-b` ranges, `/step` on `*` or on a range (`5/15` is `5-59/15`),
/// comma lists, month names `jan`…`dec` and day names `sun`…`sat` (`mon-sun` is the whole week;
/// 0 and 7 are both Sunday). When both day fields are restricted a date matches either of them
/// (`0 9 1 * mon`: the 1st of the month *and* every Monday); when one starts with `*`, only the
/// other one counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    /// Bit 0 is Sunday.
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of `names[0]`.
    first_name_value: u32,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name_value: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name_value: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    first_name_value: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name_value: 1,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name_value: 0,
};

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        // Fields are read left to right, so the error names the first wrong one.
        let minutes = parse_field(fields[0], &MINUTE)?;
        let hours = parse_field(fields[1], &HOUR)? as u32;
        let days_of_month = parse_field(fields[2], &DAY_OF_MONTH)? as u32;
        let months = parse_field(fields[3], &MONTH)? as u16;
        let mut days_of_week = parse_field(fields[4], &DAY_OF_WEEK)?;
        // 7 is Sunday too.
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        Ok(Cron {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week: days_of_week as u8,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        })
    }

    /// Whether the expression fires on that date (at one of [`Cron::times`]).
    pub fn matches_date(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The wall times of a matching date, earliest first.
    pub fn times(&self) -> impl Iterator<Item = Time> + '_ {
        (0..24i8)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60i8)
                    .filter(|m| self.minutes & (1 << m) != 0)
                    .map(move |m| Time::constant(h, m, 0, 0))
            })
    }

    /// More than one run a day: occurrences are then keyed by date and time.
    pub fn fires_several_times_a_day(&self) -> bool {
        self.hours.count_ones() * self.minutes.count_ones() > 1
    }

    /// False for expressions that name no existing day (`0 9 30 feb *`).
    pub fn can_fire(&self) -> bool {
        if self.dom_star || !self.dow_star {
            // A weekday counts, and every month has every weekday.
            return true;
        }
        // Only the day of the month counts: one of them must exist in one of the months.
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12).any(|m| {
            self.months & (1 << m) != 0
                && (1..=LONGEST[m]).any(|d| self.days_of_month & (1 << d) != 0)
        })
    }
}

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "the {} field `{text}` has an empty item",
                field.name
            ));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = number(step).filter(|s| *s >= 1).ok_or_else(|| {
                    format!(
                        "the step `{step}` in the {} field must be a number ≥ 1",
                        field.name
                    )
                })?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let low = value(a, field, false)?;
            let high = value(b, field, true)?;
            if low > high {
                return Err(format!(
                    "the range `{range}` in the {} field goes backwards",
                    field.name
                ));
            }
            (low, high)
        } else {
            let low = value(range, field, false)?;
            // `5/15` means from 5 to the end, every 15, as in Vixie cron and cronie.
            (low, if step.is_some() { field.max } else { low })
        };
        let step = step.unwrap_or(1);
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A number or a name. `sun` ending a range is 7, so that `mon-sun` is the whole week.
fn value(text: &str, field: &Field, range_end: bool) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let v = match field.names.iter().position(|n| *n == lower) {
        Some(i) if range_end && field.name == DAY_OF_WEEK.name && i == 0 => 7,
        Some(i) => i as u32 + field.first_name_value,
        None => number(text).ok_or_else(|| {
            let names = if field.names.is_empty() {
                String::new()
            } else {
                format!(
                    " or a name ({} … {})",
                    field.names[0],
                    field.names[field.names.len() - 1]
                )
            };
            format!(
                "`{text}` in the {} field is not a number{names}",
                field.name
            )
        })?,
    };
    if v < field.min || v > field.max {
        return Err(format!(
            "`{text}` is out of range for the {} field ({}-{})",
            field.name, field.min, field.max
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::task::fixtures::*;

    fn times(expression: &str) -> Vec<String> {
        Cron::parse(expression)
            .unwrap()
            .times()
            .map(|t| t.strftime("%H:%M").to_string())
            .collect()
    }

    // ---- cron ----

    #[test]
    fn cron_reads_lists_ranges_steps_and_stars() {
        assert_eq!(
            times("0,30 8-9 * * *"),
            ["08:00", "08:30", "09:00", "09:30"]
        );
        assert_eq!(times("*/20 7 * * *"), ["07:00", "07:20", "07:40"]);
        assert_eq!(times("10-50/20 7 * * *"), ["07:10", "07:30", "07:50"]);
        // `5/20` is `5-59/20`, as in cronie.
        assert_eq!(times("5/20 7 * * *"), ["07:05", "07:25", "07:45"]);
        assert_eq!(times("0 */8 * * *"), ["00:00", "08:00", "16:00"]);
        assert!(
            Cron::parse("0 9 * * *")
                .unwrap()
                .matches_date(date(2026, 2, 28))
        );
    }

    #[test]
    fn cron_reads_month_and_day_names_in_any_case() {
        let cron = Cron::parse("0 8 * jan,JUL *").unwrap();
        assert!(cron.matches_date(date(2026, 1, 15)));
        assert!(cron.matches_date(date(2026, 7, 1)));
        assert!(!cron.matches_date(date(2026, 3, 2)));
        let weekdays = Cron::parse("0 8 * * Mon-FRI").unwrap();
        // 2026-03-02 is a Monday.
        let week: Vec<bool> = (2..=8)
            .map(|d| weekdays.matches_date(date(2026, 3, d)))
            .collect();
        assert_eq!(week, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn cron_sunday_is_0_7_or_sun_and_mon_sun_is_the_whole_week() {
        let sunday = date(2026, 3, 1);
        for expression in ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * sat-sun"] {
            let cron = Cron::parse(expression).unwrap();
            assert!(cron.matches_date(sunday), "{expression}");
            assert!(!cron.matches_date(date(2026, 3, 2)), "{expression}");
        }
        let all = Cron::parse("0 9 * * mon-sun").unwrap();
        assert!((1..=7).all(|d| all.matches_date(date(2026, 3, d))));
    }

    #[test]
    fn cron_day_fields_match_either_when_both_are_restricted_as_in_vixie_cron() {
        // The 1st of the month and every Monday.
        let either = Cron::parse("0 9 1 * mon").unwrap();
        assert!(either.matches_date(date(2026, 3, 1)), "the 1st, a Sunday");
        assert!(either.matches_date(date(2026, 3, 2)), "a Monday");
        assert!(!either.matches_date(date(2026, 3, 3)));
        // Only one field restricted: only that one counts.
        let first = Cron::parse("0 9 1 * *").unwrap();
        assert!(first.matches_date(date(2026, 3, 1)));
        assert!(!first.matches_date(date(2026, 3, 2)));
        let mondays = Cron::parse("0 9 * * mon").unwrap();
        assert!(!mondays.matches_date(date(2026, 3, 1)));
        assert!(mondays.matches_date(date(2026, 3, 2)));
        // A field starting with `*` counts as unrestricted even with a step (Vixie's rule):
        // both must then match — odd days that are Mondays.
        let odd_mondays = Cron::parse("0 9 */2 * mon").unwrap();
        assert!(
            !odd_mondays.matches_date(date(2026, 3, 2)),
            "Monday the 2nd"
        );
        assert!(odd_mondays.matches_date(date(2026, 3, 9)), "Monday the 9th");
        assert!(
            !odd_mondays.matches_date(date(2026, 3, 3)),
            "Tuesday the 3rd"
        );
    }

    #[test]
    fn malformed_cron_expressions_are_refused_with_the_field_and_reason() {
        let cases = [
            ("", "expected 5 fields"),
            ("0 9 * *", "found 4"),
            ("0 9 * * * *", "found 6"),
            ("60 9 * * *", "out of range for the minute field (0-59)"),
            ("0 24 * * *", "out of range for the hour field (0-23)"),
            (
                "0 9 0 * *",
                "out of range for the day-of-month field (1-31)",
            ),
            ("0 9 * 13 *", "out of range for the month field (1-12)"),
            ("0 9 * * 8", "out of range for the day-of-week field (0-7)"),
            (
                "*/0 9 * * *",
                "the step `0` in the minute field must be a number ≥ 1",
            ),
            (
                "0 9-7 * * *",
                "the range `9-7` in the hour field goes backwards",
            ),
            (
                "0 9 * * funday",
                "`funday` in the day-of-week field is not a number or a name (sun … sat)",
            ),
            ("0 9 1,,2 * *", "has an empty item"),
            ("0 +9 * * *", "`+9` in the hour field is not a number"),
            ("a b c d e", "`a` in the minute field is not a number"),
        ];
        for (expression, want) in cases {
            let error = Cron::parse(expression).expect_err(expression);
            assert!(error.contains(want), "{expression}: {error}");
            let def = with_cron(expression);
            assert_eq!(def.check().unwrap_err().field, "cron", "{expression}");
        }
    }

    #[test]
    fn a_cron_firing_more_than_hourly_is_refused() {
        with_cron("0 * * * *").check().unwrap();
        with_cron("*/30 8-18 * * mon-fri").check().unwrap();
        let error = with_cron("*/5 * * * *").check().unwrap_err();
        assert_eq!(error.field, "cron");
        assert!(error.reason.contains("fires 288 times"), "{error}");
    }

    #[test]
    fn a_cron_that_names_no_existing_day_is_refused_but_29_february_is_not() {
        for expression in ["0 9 30 feb *", "0 9 31 apr,jun,sep,nov *"] {
            let error = with_cron(expression).check().unwrap_err();
            assert_eq!(error.field, "cron");
            assert!(error.reason.contains("never fires"), "{error}");
        }
        let leap = with_cron("0 9 29 feb *");
        leap.check().unwrap();
        let next = leap
            .next_after(&paris(), at("2026-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(next.date, date(2028, 2, 29));
        // With a weekday too, the days match either: it fires every Monday of February.
        with_cron("0 9 30 feb mon").check().unwrap();
    }

    #[test]
    fn a_cron_firing_several_times_a_day_keys_occurrences_by_date_and_time() {
        let twice = with_cron("0 9,17 * * mon-fri");
        assert_eq!(
            occurrences(
                &twice,
                "2026-03-02T00:00:00+01:00",
                "2026-03-03T00:00:00+01:00"
            ),
            [
                (
                    "2026-03-02T09:00".to_string(),
                    "2026-03-02T09:00+01:00".to_string()
                ),
                (
                    "2026-03-02T17:00".to_string(),
                    "2026-03-02T17:00+01:00".to_string()
                ),
            ]
        );
        let once = with_cron("30 8 * * mon-fri");
        assert_eq!(
            occurrences(
                &once,
                "2026-03-06T00:00:00+01:00",
                "2026-03-10T00:00:00+01:00"
            ),
            [
                (
                    "2026-03-06".to_string(),
                    "2026-03-06T08:30+01:00".to_string()
                ),
                (
                    "2026-03-09".to_string(),
                    "2026-03-09T08:30+01:00".to_string()
                ),
            ],
            "once a day: keyed by the date alone, and not at the weekend"
        );
    }

    // ---- properties ----

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// One cron field item: `*`, `*/s`, `n`, `a-b`, `a-b/s`.
        fn item(min: u32, max: u32) -> impl Strategy<Value = String> {
            (min..=max, min..=max, 1u32..=10, 0u8..5).prop_map(|(a, b, step, shape)| {
                let (low, high) = (a.min(b), a.max(b));
                match shape {
                    0 => "*".to_string(),
                    1 => format!("*/{step}"),
                    2 => low.to_string(),
                    3 => format!("{low}-{high}"),
                    _ => format!("{low}-{high}/{step}"),
                }
            })
        }

        fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
            prop::collection::vec(item(min, max), 1..3).prop_map(|items| items.join(","))
        }

        /// Expressions a task accepts more often: one or two minutes an hour.
        fn task_expression() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(0u32..60, 1..3),
                field(0, 23),
                field(1, 31),
                field(1, 12),
                field(0, 7),
            )
                .prop_map(|(minutes, h, dom, mon, dow)| {
                    let m: Vec<String> = minutes.iter().map(u32::to_string).collect();
                    format!("{} {h} {dom} {mon} {dow}", m.join(","))
                })
        }

        fn expression() -> impl Strategy<Value = String> {
            (
                field(0, 59),
                field(0, 23),
                field(1, 31),
                field(1, 12),
                field(0, 7),
            )
                .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn any_text_parses_or_is_refused_without_panicking(text in "[0-9a-z*/,\\- ]{0,30}") {
                let _ = Cron::parse(&text);
            }

            #[test]
            fn well_formed_expressions_parse_and_their_times_are_sorted_and_distinct(e in expression()) {
                let cron = Cron::parse(&e).unwrap();
                let times: Vec<Time> = cron.times().collect();
                prop_assert!(!times.is_empty());
                prop_assert!(times.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(cron.fires_several_times_a_day(), times.len() > 1);
            }

        }

        proptest! {
            // Each case walks up to a year of dates in a debug build: fewer cases.
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn occurrences_follow_each_other_with_distinct_keys_and_latest_due_agrees(
                e in task_expression(),
                start_hours in 0i64..(24 * 400),
            ) {
                let def = with_cron(&e);
                prop_assume!(def.check().is_ok());
                let tz = paris();
                let mut after = at("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_hours(start_hours);
                let mut keys: Vec<String> = Vec::new();
                for _ in 0..12 {
                    let Some(next) = def.next_after(&tz, after) else { break };
                    prop_assert!(next.at > after);
                    prop_assert!(def.runs_on(next.date));
                    prop_assert!(!keys.contains(&next.key), "{} twice", next.key);
                    // Just at the occurrence, it is the latest due one.
                    let latest = def.latest_due(&tz, next.at);
                    prop_assert_eq!(latest.as_ref(), Some(&next));
                    keys.push(next.key.clone());
                    after = next.at;
                }
            }
        }
    }
}
