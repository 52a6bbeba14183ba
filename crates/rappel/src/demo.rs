//! `rappel serve --demo`: on an empty database, a practice with practitioners, patients and
//! appointments over the coming days, so a new user sees plans and reasons at once.

use jiff::{SignedDuration, Timestamp, ToSpan};
use rappel_domain::contact::Contact;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Motive, Patient, Practitioner, Source};
use rappel_engine::Engine;

use crate::config::Config;

/// The demo users' password, printed at start.
pub const DEMO_PASSWORD: &str = "demo-rappel-2026";

pub async fn seed(engine: &Engine, config: &Config) -> anyhow::Result<()> {
    if engine.practice_count().await? > 0 {
        println!("demo: the database already has practices; nothing created");
        return Ok(());
    }
    let key = engine
        .create_practice(
            "Cabinet du Dr Martin (démo)",
            "doctolib",
            "Europe/Paris",
            Default::default(),
        )
        .await?;
    let practice = key.id.as_str();
    for (id, name, email) in [
        (
            "dr-martin",
            "Dr Claire Martin",
            Some("martin@cabinet.example"),
        ),
        ("dr-nguyen", "Dr Paul Nguyen", None),
    ] {
        engine
            .put_practitioner(
                practice,
                &Practitioner {
                    id: id.into(),
                    name: name.into(),
                    email: email.and_then(Contact::from_input),
                    mobile: None,
                },
            )
            .await?;
    }
    engine
        .put_motive(
            practice,
            &Motive {
                id: "consult".into(),
                name: "Consultation".into(),
                notifications: true,
                instructions: Some("Apportez votre carte Vitale.".into()),
            },
        )
        .await?;
    let patients = [
        (
            "p-dupont",
            "Jeanne",
            "Dupont",
            Some("jeanne.dupont@example.org"),
            Some("06 12 34 56 78"),
        ),
        (
            "p-moreau",
            "Inès",
            "Moreau",
            Some("ines.moreau@example.org"),
            Some("07 01 02 03 04"),
        ),
        ("p-benali", "Karim", "Benali", None, Some("06 55 44 33 22")),
        (
            "p-fontaine",
            "Sarah",
            "Fontaine",
            Some("sarah.fontaine@example.org"),
            Some("01 42 00 00 00"),
        ),
    ];
    for (id, first, last, email, mobile) in patients {
        engine
            .put_patient(
                practice,
                &Patient {
                    id: id.into(),
                    first_name: first.into(),
                    last_name: last.into(),
                    email: email.and_then(Contact::from_input),
                    mobile: mobile.and_then(Contact::from_input),
                    ..Patient::default()
                },
            )
            .await?;
    }
    let now = Timestamp::now();
    let today = now
        .to_zoned(jiff::tz::TimeZone::get("Europe/Paris")?)
        .date();
    let at = |days: i64, hour: i8| -> anyhow::Result<Timestamp> {
        Ok(today
            .checked_add(days.days())?
            .at(hour, 0, 0, 0)
            .in_tz("Europe/Paris")?
            .timestamp())
    };
    let bookings = [
        ("rdv-1", "p-dupont", "dr-martin", at(1, 9)?, Source::Online),
        ("rdv-2", "p-moreau", "dr-martin", at(2, 11)?, Source::Staff),
        ("rdv-3", "p-benali", "dr-nguyen", at(3, 15)?, Source::Staff),
        (
            "rdv-4",
            "p-fontaine",
            "dr-nguyen",
            at(10, 10)?,
            Source::Online,
        ),
        ("rdv-5", "p-dupont", "dr-martin", at(1, 16)?, Source::Staff),
    ];
    let events: Vec<Event> = bookings
        .into_iter()
        .map(|(id, patient, practitioner, start, source)| Event {
            at: Some(now - SignedDuration::from_secs(1)),
            body: EventBody::AppointmentBooked {
                id: id.into(),
                patient: patient.into(),
                practitioner: practitioner.into(),
                motive: Some("consult".into()),
                start,
                duration_minutes: Some(30),
                location: Some("12 rue des Lilas, Paris 11e".into()),
                source,
            },
        })
        .collect();
    engine.ingest(practice, &events).await?;
    // Known passwords are fine for a demo database only; `rappel user create` makes real ones.
    for (email, name, role) in [
        (
            "admin@cabinet.example",
            "Claire Martin",
            rappel_engine::Role::Admin,
        ),
        (
            "accueil@cabinet.example",
            "Sophie Accueil",
            rappel_engine::Role::Secretariat,
        ),
    ] {
        engine
            .create_user(practice, email, name, role, DEMO_PASSWORD)
            .await?;
    }
    println!("demo practice created: {}", key.id);
    println!(
        "web interface: {}/ — sign in as admin@cabinet.example (administrateur) or \
         accueil@cabinet.example (secrétariat), password {DEMO_PASSWORD}",
        config.public_url
    );
    println!("API key (shown once): {}", key.api_key);
    println!(
        "open {}/v1/docs — try: curl -H 'Authorization: Bearer {}' {}/v1/appointments/rdv-1/timeline",
        config.public_url, key.api_key, config.public_url
    );
    Ok(())
}
