use jiff::civil::date;

use super::*;
use crate::task::fixtures::*;

// ---- periodicity across DST switches and month ends ----

#[test]
fn a_0230_run_on_the_spring_forward_day_runs_at_0330() {
    // 2026-03-29 in Europe/Paris: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    let def = daily("02:30");
    assert_eq!(
        occurrences(
            &def,
            "2026-03-28T00:00:00+01:00",
            "2026-03-31T00:00:00+02:00"
        ),
        [
            (
                "2026-03-28".to_string(),
                "2026-03-28T02:30+01:00".to_string()
            ),
            (
                "2026-03-29".to_string(),
                "2026-03-29T03:30+02:00".to_string()
            ),
            (
                "2026-03-30".to_string(),
                "2026-03-30T02:30+02:00".to_string()
            ),
        ]
    );
    let cron = with_cron("30 2 * * *");
    assert_eq!(
        occurrences(
            &cron,
            "2026-03-29T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00"
        ),
        [(
            "2026-03-29".to_string(),
            "2026-03-29T03:30+02:00".to_string()
        )]
    );
}

#[test]
fn a_0230_run_on_the_autumn_day_runs_once_at_its_first_instance() {
    // 2026-10-25 in Europe/Paris: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let def = daily("02:30");
    assert_eq!(
        occurrences(
            &def,
            "2026-10-24T12:00:00+02:00",
            "2026-10-26T12:00:00+01:00"
        ),
        [
            (
                "2026-10-25".to_string(),
                "2026-10-25T02:30+02:00".to_string()
            ),
            (
                "2026-10-26".to_string(),
                "2026-10-26T02:30+01:00".to_string()
            ),
        ]
    );
    // After the second 02:30, the latest occurrence is still the first one: one run.
    let latest = def
        .latest_due(&paris(), at("2026-10-25T02:45:00+01:00"))
        .unwrap();
    assert_eq!(latest.key, "2026-10-25");
    assert_eq!(wall(latest.at), "2026-10-25T02:30+02:00");
}

#[test]
fn a_half_hourly_cron_skips_the_missing_hour_and_does_not_repeat_the_doubled_one() {
    let def = with_cron("0,30 1-3 * * *");
    let spring: Vec<String> = occurrences(
        &def,
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    )
    .into_iter()
    .map(|(_, w)| w)
    .collect();
    // 02:00 and 02:30 land on 03:00 and 03:30, which run once each.
    assert_eq!(
        spring,
        [
            "2026-03-29T01:00+01:00",
            "2026-03-29T01:30+01:00",
            "2026-03-29T03:00+02:00",
            "2026-03-29T03:30+02:00",
        ]
    );
    let autumn: Vec<String> = occurrences(
        &def,
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
    )
    .into_iter()
    .map(|(_, w)| w)
    .collect();
    assert_eq!(
        autumn,
        [
            "2026-10-25T01:00+02:00",
            "2026-10-25T01:30+02:00",
            "2026-10-25T02:00+02:00",
            "2026-10-25T02:30+02:00",
            "2026-10-25T03:00+01:00",
            "2026-10-25T03:30+01:00",
        ]
    );
}

#[test]
fn monthly_on_the_31st_runs_on_the_last_day_of_shorter_months() {
    let def = TaskDef {
        every: Some(Every::Month),
        first_date: date(2026, 1, 31),
        ..daily("10:00")
    };
    let dates: Vec<String> = occurrences(
        &def,
        "2026-01-01T00:00:00+01:00",
        "2026-07-01T00:00:00+02:00",
    )
    .into_iter()
    .map(|(key, _)| key)
    .collect();
    assert_eq!(
        dates,
        [
            "2026-01-31",
            "2026-02-28",
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30"
        ]
    );
    assert!(
        def.runs_on(date(2028, 2, 29)),
        "a leap February ends on the 29th"
    );
    assert!(!def.runs_on(date(2028, 2, 28)));
    let on_the_30th = TaskDef {
        first_date: date(2026, 1, 30),
        ..def.clone()
    };
    assert!(on_the_30th.runs_on(date(2026, 2, 28)));
    assert!(on_the_30th.runs_on(date(2026, 3, 30)));
    assert!(!on_the_30th.runs_on(date(2026, 3, 31)));
}

#[test]
fn a_weekly_task_runs_on_its_days_only_and_never_before_its_first_date() {
    let def = TaskDef {
        every: Some(Every::Week),
        days: vec!["mon".into(), "thu".into()],
        first_date: date(2026, 3, 3),
        ..daily("09:00")
    };
    let dates: Vec<String> = occurrences(
        &def,
        "2026-02-20T00:00:00+01:00",
        "2026-03-13T00:00:00+01:00",
    )
    .into_iter()
    .map(|(key, _)| key)
    .collect();
    assert_eq!(dates, ["2026-03-05", "2026-03-09", "2026-03-12"]);
    assert_eq!(
        def.latest_due(&paris(), at("2026-03-04T12:00:00+01:00")),
        None
    );
}

#[test]
fn after_three_days_down_the_latest_due_occurrence_is_the_last_one_only() {
    let def = daily("08:00");
    let latest = def
        .latest_due(&paris(), at("2026-03-05T10:00:00+01:00"))
        .unwrap();
    assert_eq!(latest.key, "2026-03-05");
    let before = def
        .latest_due(&paris(), at("2026-03-05T07:59:00+01:00"))
        .unwrap();
    assert_eq!(before.key, "2026-03-04");
}

// ---- definitions ----

#[test]
fn the_scenarios_md_example_reads_and_writes_back_with_the_same_names() {
    let source = r#"
            id = "t1"
            label = "Relance des RDV manqués"
            type = "missed_appointments"
            first_date = "2026-03-02"
            every = "day"
            time = "08:00"
            range = [-1, -1]
            practitioners = ["dr1"]
            channel = "email"
            exclude_patients_with_later_appointment = false
            exclude_patients_seen_since = true
            active = true
        "#;
    let def: TaskDef = toml::from_str(source).unwrap();
    def.check().unwrap();
    let json = serde_json::to_value(&def).unwrap();
    assert_eq!(json["time"], "08:00");
    assert_eq!(json["every"], "day");
    assert_eq!(json["type"], "missed_appointments");
    assert!(json.get("cron").is_none());
    let back: TaskDef = serde_json::from_value(json).unwrap();
    assert_eq!(back, def);
}

#[test]
fn invalid_combinations_are_refused_naming_the_field() {
    let base = daily("08:00");
    let missed = TaskDef {
        task_type: TaskType::MissedAppointments,
        range: Some([-1, -1]),
        ..base.clone()
    };
    missed.check().unwrap();
    let cases: Vec<(TaskDef, &str)> = vec![
        (
            TaskDef {
                cron: Some("0 8 * * *".into()),
                ..base.clone()
            },
            "cron",
        ),
        (
            TaskDef {
                every: None,
                ..base.clone()
            },
            "every",
        ),
        (
            TaskDef {
                time: None,
                ..base.clone()
            },
            "time",
        ),
        (
            TaskDef {
                every: Some(Every::Week),
                ..base.clone()
            },
            "days",
        ),
        (
            TaskDef {
                every: Some(Every::Week),
                days: vec!["lundi".into()],
                ..base.clone()
            },
            "days",
        ),
        (
            TaskDef {
                days: vec!["mon".into()],
                ..base.clone()
            },
            "days",
        ),
        (
            TaskDef {
                time: Some(Time::midnight()),
                ..with_cron("0 8 * * *")
            },
            "time",
        ),
        (
            TaskDef {
                days: vec!["mon".into()],
                ..with_cron("0 8 * * *")
            },
            "days",
        ),
        (
            TaskDef {
                channel: Channel::Postal,
                ..base.clone()
            },
            "channel",
        ),
        (
            TaskDef {
                range: None,
                ..missed.clone()
            },
            "range",
        ),
        (
            TaskDef {
                range: Some([-1, -3]),
                ..missed.clone()
            },
            "range",
        ),
        (
            TaskDef {
                range: Some([-1, 2]),
                ..missed.clone()
            },
            "range",
        ),
        (
            TaskDef {
                range: Some([-400, -1]),
                ..missed.clone()
            },
            "range",
        ),
        (
            TaskDef {
                range: Some([-1, -1]),
                ..base.clone()
            },
            "range",
        ),
        (
            TaskDef {
                task_type: TaskType::Recall,
                ..base.clone()
            },
            "recall_months",
        ),
        (
            TaskDef {
                task_type: TaskType::Recall,
                recall_months: Some(0),
                ..base.clone()
            },
            "recall_months",
        ),
        (
            TaskDef {
                recall_months: Some(6),
                ..base.clone()
            },
            "recall_months",
        ),
        (
            TaskDef {
                exclude_patients_seen_since: true,
                ..base.clone()
            },
            "exclude_patients_seen_since",
        ),
        (
            TaskDef {
                practitioners: Some(Vec::new()),
                ..base.clone()
            },
            "practitioners",
        ),
        (
            TaskDef {
                id: " ".into(),
                ..base.clone()
            },
            "id",
        ),
    ];
    for (def, field) in cases {
        assert_eq!(field_of(&def), field, "{def:?}");
    }
}
