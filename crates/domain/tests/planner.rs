//! Planner invariants (STYLE.md: property tests for planner invariants) and policy checks.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use proptest::prelude::*;
use rappel_domain::contact::Contact;
use rappel_domain::event::{Applied, EventBody, apply_to_appointment};
use rappel_domain::facts::{Appointment, AppointmentStatus, Motive, Patient, Practitioner, Source};
use rappel_domain::notification::{DesiredState, Kind};
use rappel_domain::plan::{PatientFacts, PlanContext, plan};
use rappel_domain::policy::{PRESETS, Policy, preset};
use rappel_domain::settings::Settings;

fn patient() -> Patient {
    Patient {
        id: "p1".into(),
        first_name: "Jeanne".into(),
        last_name: "Dupont".into(),
        email: Contact::from_input("jeanne@example.org"),
        mobile: Contact::from_input("06 12 34 56 78"),
        ..Patient::default()
    }
}

fn practitioners() -> BTreeMap<String, Practitioner> {
    BTreeMap::from([(
        "dr1".to_string(),
        Practitioner {
            id: "dr1".into(),
            name: "Dr Martin".into(),
            email: Contact::from_input("dr@example.org"),
            mobile: Contact::from_input("+33611111111"),
        },
    )])
}

fn booking(id: &str, booked_at: Timestamp, start: Timestamp, source: Source) -> Appointment {
    let body = EventBody::AppointmentBooked {
        id: id.into(),
        patient: "p1".into(),
        practitioner: "dr1".into(),
        motive: None,
        start,
        duration_minutes: None,
        location: None,
        source,
    };
    match apply_to_appointment(None, &body, booked_at).unwrap() {
        Applied::Changed(a) => a,
        Applied::Unchanged => unreachable!(),
    }
}

fn all_on(policy: &Policy) -> Settings {
    let mut stored = serde_json::Map::new();
    for (name, spec) in &policy.options {
        if spec.kind == rappel_domain::policy::OptionKind::Bool && !spec.locked {
            stored.insert(name.clone(), serde_json::Value::Bool(true));
        }
    }
    Settings::resolve(policy, &stored).unwrap()
}

fn run(
    policy: &Policy,
    settings: &Settings,
    appts: &[Appointment],
    now: Timestamp,
) -> Vec<rappel_domain::notification::Desired> {
    let tz = TimeZone::get("Europe/Paris").unwrap();
    let patient = patient();
    let practitioners = practitioners();
    let motives: BTreeMap<String, Motive> = BTreeMap::new();
    plan(
        PlanContext {
            policy,
            settings,
            tz: &tz,
        },
        PatientFacts {
            patient: &patient,
            appointments: appts,
            documents: &[],
            practitioners: &practitioners,
            motives: &motives,
            sent_groups: &[],
        },
        now,
    )
}

fn base() -> Timestamp {
    "2026-01-05T06:00:00+01:00".parse().unwrap()
}

fn arb_booking() -> impl Strategy<Value = (i64, i64, u8)> {
    // booked-at offset (minutes over ~1 year, crossing both DST switches), lead (minutes up to 30 days), source
    (0i64..525_600, 30i64..43_200, 0u8..3)
}

fn source(n: u8) -> Source {
    [Source::Online, Source::Staff, Source::Referral][n as usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn planning_is_deterministic_and_every_pending_instant_lies_in_its_window((offset, lead, src) in arb_booking()) {
        let booked_at = base() + SignedDuration::from_mins(offset);
        let start = booked_at + SignedDuration::from_mins(lead);
        let appt = booking("a1", booked_at, start, source(src));
        for (name, _) in PRESETS {
            let policy = preset(name).unwrap();
            let settings = all_on(&policy);
            let first = run(&policy, &settings, std::slice::from_ref(&appt), booked_at);
            let second = run(&policy, &settings, std::slice::from_ref(&appt), booked_at);
            prop_assert_eq!(&first, &second);
            for d in first.iter().filter(|d| d.state == DesiredState::Pending) {
                if let Some(end) = d.window_end {
                    prop_assert!(d.due < end, "{} due {} after its window end {}", d.key, d.due, end);
                }
                if d.kind.announces_appointment() {
                    prop_assert!(d.due < start, "{} due {} not before the appointment {}", d.key, d.due, start);
                }
            }
        }
    }

    #[test]
    fn moving_an_appointment_and_moving_it_back_restores_the_plan((offset, lead, _src) in arb_booking(), shift in 60i64..20_000) {
        let booked_at = base() + SignedDuration::from_mins(offset);
        let start = booked_at + SignedDuration::from_mins(lead);
        let appt = booking("a1", booked_at, start, Source::Staff);
        let later = booked_at + SignedDuration::from_mins(1);
        let there = EventBody::AppointmentMoved { id: "a1".into(), start: Some(start + SignedDuration::from_mins(shift)), location: None };
        let back = EventBody::AppointmentMoved { id: "a1".into(), start: Some(start), location: None };
        let Applied::Changed(moved) = apply_to_appointment(Some(&appt), &there, later).unwrap() else { unreachable!() };
        let Applied::Changed(restored) = apply_to_appointment(Some(&moved), &back, later).unwrap() else { unreachable!() };
        for (name, _) in PRESETS {
            let policy = preset(name).unwrap();
            let settings = all_on(&policy);
            let strip = |v: Vec<rappel_domain::notification::Desired>| -> Vec<_> {
                v.into_iter().filter(|d| !matches!(d.kind, Kind::Moved | Kind::PractitionerMove)).collect()
            };
            let original = strip(run(&policy, &settings, std::slice::from_ref(&appt), later));
            let again = strip(run(&policy, &settings, std::slice::from_ref(&restored), later));
            prop_assert_eq!(original, again);
        }
    }
}

#[test]
fn every_shipped_preset_is_a_valid_policy() {
    for (name, source) in PRESETS {
        let policy = Policy::parse(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(policy.name, *name);
    }
}

#[test]
fn a_policy_mistake_is_reported_with_its_line_and_reason() {
    let source = "name = \"mine\"\n\n[[rules]]\nid = \"r1\"\nkind = \"reminder\"\non = \"scheduled\"\nto = \"patient\"\nchannels = [\"email\"]\ntiming = { day = -1 }\nwhen = { option = \"nope\" }\n";
    let error = Policy::parse(source).unwrap_err();
    assert_eq!(error.line, 4);
    assert!(
        error.reason.contains("unknown option `nope`"),
        "{}",
        error.reason
    );

    let typo = "name = \"mine\"\n[[rules]]\nid = \"r1\"\nkind = \"remindr\"\n";
    let error = Policy::parse(typo).unwrap_err();
    assert_eq!(error.line, 4);
}

#[test]
fn reminders_follow_local_wall_time_across_the_autumn_switch() {
    // DST ends on 25 October 2026: D-1 14:00 is +02:00, the appointment day is +01:00.
    let policy = preset("doctolib").unwrap();
    let settings = Settings::resolve(&policy, &serde_json::Map::new()).unwrap();
    let booked_at: Timestamp = "2026-10-22T10:00:00+02:00".parse().unwrap();
    let start: Timestamp = "2026-10-26T09:00:00+01:00".parse().unwrap();
    let plan = run(
        &policy,
        &settings,
        &[booking("a1", booked_at, start, Source::Staff)],
        booked_at,
    );
    let email = plan.iter().find(|d| d.rule == "reminder_email_d1").unwrap();
    assert_eq!(
        email.due,
        "2026-10-25T14:00:00+01:00".parse::<Timestamp>().unwrap()
    );
    let sms = plan.iter().find(|d| d.rule == "reminder_sms_d1").unwrap();
    assert_eq!(
        sms.due,
        "2026-10-25T13:00:00+01:00".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn a_cancelled_appointment_wants_no_reminder_but_the_absence_message() {
    let policy = preset("doctolib").unwrap();
    let settings = Settings::resolve(&policy, &serde_json::Map::new()).unwrap();
    let booked_at: Timestamp = "2026-03-01T10:00:00+01:00".parse().unwrap();
    let mut appt = booking(
        "a1",
        booked_at,
        "2026-03-05T10:00:00+01:00".parse().unwrap(),
        Source::Staff,
    );
    let at: Timestamp = "2026-03-03T12:00:00+01:00".parse().unwrap();
    appt.status = AppointmentStatus::Cancelled {
        at,
        by: rappel_domain::facts::CancelledBy::PractitionerAbsence,
        excused: true,
    };
    let plan = run(&policy, &settings, &[appt], at);
    assert!(plan.iter().all(|d| d.kind != Kind::Reminder));
    let cancel = plan.iter().find(|d| d.kind == Kind::Cancellation).unwrap();
    assert_eq!(cancel.due, at + SignedDuration::from_mins(10));
}
