//! Snapshots of the whole plan of each preset on a handful of calendars, including both DST
//! switches (STYLE.md: snapshot tests for the queue state). A change to a preset or to the
//! planner shows here as a reviewable diff (`cargo insta review`, or INSTA_UPDATE=always).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{Timestamp, tz::TimeZone};
use rappel_domain::contact::Contact;
use rappel_domain::event::{Applied, EventBody, apply_to_appointment};
use rappel_domain::facts::{Appointment, Motive, Patient, Practitioner, Source};
use rappel_domain::notification::DesiredState;
use rappel_domain::plan::{PatientFacts, PlanContext, plan};
use rappel_domain::policy::preset;
use rappel_domain::settings::Settings;

struct Calendar {
    name: &'static str,
    /// (id, booked at, start, source)
    bookings: &'static [(&'static str, &'static str, &'static str, Source)],
}

const CALENDARS: &[Calendar] = &[
    Calendar {
        name: "online booking 10 days ahead",
        bookings: &[(
            "a1",
            "2026-03-01T10:00:00+01:00",
            "2026-03-11T09:30:00+01:00",
            Source::Online,
        )],
    },
    Calendar {
        name: "late booking on D-1 at 15:00",
        bookings: &[(
            "a1",
            "2026-03-04T15:00:00+01:00",
            "2026-03-05T10:00:00+01:00",
            Source::Online,
        )],
    },
    Calendar {
        name: "spring DST: booked 20 March for 30 March",
        bookings: &[(
            "a1",
            "2026-03-20T09:00:00+01:00",
            "2026-03-30T10:00:00+02:00",
            Source::Staff,
        )],
    },
    Calendar {
        name: "autumn DST: booked 20 October for 26 October 08:00",
        bookings: &[(
            "a1",
            "2026-10-20T09:00:00+02:00",
            "2026-10-26T08:00:00+01:00",
            Source::Referral,
        )],
    },
    Calendar {
        name: "two appointments the same day",
        bookings: &[
            (
                "a1",
                "2026-03-02T09:00:00+01:00",
                "2026-03-05T09:00:00+01:00",
                Source::Staff,
            ),
            (
                "a2",
                "2026-03-02T09:00:00+01:00",
                "2026-03-05T11:00:00+01:00",
                Source::Staff,
            ),
        ],
    },
];

fn render_plan(preset_name: &str, settings: &serde_json::Map<String, serde_json::Value>) -> String {
    let policy = preset(preset_name).unwrap();
    let settings = Settings::resolve(&policy, settings).unwrap();
    let tz = TimeZone::get("Europe/Paris").unwrap();
    let patient = Patient {
        id: "p1".into(),
        first_name: "Jeanne".into(),
        last_name: "Dupont".into(),
        email: Contact::from_input("jeanne@example.org"),
        mobile: Contact::from_input("06 12 34 56 78"),
        push: true,
        ..Patient::default()
    };
    let practitioners = BTreeMap::from([(
        "dr1".to_string(),
        Practitioner {
            id: "dr1".into(),
            name: "Dr Martin".into(),
            email: Contact::from_input("dr@example.org"),
            mobile: Contact::from_input("+33611111111"),
        },
    )]);
    let motives: BTreeMap<String, Motive> = BTreeMap::new();
    let ctx = PlanContext {
        policy: &policy,
        settings: &settings,
        tz: &tz,
    };
    let mut out = String::new();
    for calendar in CALENDARS {
        let appointments: Vec<Appointment> = calendar
            .bookings
            .iter()
            .map(|(id, booked_at, start, source)| {
                let body = EventBody::AppointmentBooked {
                    id: (*id).into(),
                    patient: "p1".into(),
                    practitioner: "dr1".into(),
                    motive: None,
                    start: start.parse().unwrap(),
                    duration_minutes: None,
                    location: None,
                    source: *source,
                };
                match apply_to_appointment(None, &body, booked_at.parse().unwrap()).unwrap() {
                    Applied::Changed(a) => a,
                    Applied::Unchanged => unreachable!(),
                }
            })
            .collect();
        let now: Timestamp = appointments.iter().map(|a| a.booked_at).max().unwrap();
        let facts = PatientFacts {
            patient: &patient,
            appointments: &appointments,
            documents: &[],
            practitioners: &practitioners,
            motives: &motives,
            sent_groups: &[],
        };
        let mut desired = plan(ctx, facts, now);
        desired.sort_by(|a, b| (a.due, &a.key).cmp(&(b.due, &b.key)));
        writeln!(out, "## {}", calendar.name).unwrap();
        for d in desired {
            let local = |t: Timestamp| {
                t.to_zoned(tz.clone())
                    .strftime("%a %d %b %H:%M %:z")
                    .to_string()
            };
            let state = match d.state {
                DesiredState::Pending => "pending".to_string(),
                DesiredState::Suppressed(r) => format!("suppressed: {r}"),
            };
            writeln!(
                out,
                "{:<26} {:<6} {:<17} {:<22} due {}  until {}  [{}]  {}",
                d.rule,
                d.channel.to_string(),
                d.recipient.to_string(),
                d.kind.to_string(),
                local(d.due),
                d.window_end.map(local).unwrap_or_else(|| "-".into()),
                d.appointments.join(","),
                state
            )
            .unwrap();
        }
        out.push('\n');
    }
    out
}

fn options(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn doctolib_plans() {
    insta::assert_snapshot!(render_plan("doctolib", &options(&[])));
}

#[test]
fn rosa_plans_with_every_option() {
    let all = options(&[
        ("change_email", true.into()),
        ("reminder_7d", true.into()),
        ("reminder_1d", true.into()),
        ("sms_reminder_1d", true.into()),
    ]);
    insta::assert_snapshot!(render_plan("rosa", &all));
}

#[test]
fn rosa_plans_without_options() {
    insta::assert_snapshot!(render_plan("rosa", &options(&[])));
}

#[test]
fn maddie_plans_on_the_essentiel_plan() {
    insta::assert_snapshot!(render_plan(
        "maddie",
        &options(&[("plan", "essentiel".into())])
    ));
}
