//! FHIR R4: the appointment as a resource that follows the patient's answer.

use super::*;

/// The codes of the R4 value sets the resource uses (hl7.org/fhir/R4/valueset-appointmentstatus,
/// valueset-participationstatus, valueset-participantrequired), copied from the specification.
pub(super) const APPOINTMENT_STATUS: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];
pub(super) const PARTICIPATION_STATUS: &[&str] =
    &["accepted", "declined", "tentative", "needs-action"];
pub(super) const PARTICIPANT_REQUIRED: &[&str] = &["required", "optional", "information-only"];

/// The R4 `Appointment` rules a resource of ours must meet: the required elements (`status`,
/// `participant` 1..*, each with `status`), the invariants app-1 (a participant has a type or an
/// actor), app-2 (start and end together), app-3 (only proposed or cancelled ones lack them) and
/// app-4 (a cancelation reason only when cancelled or noshow), codes from the value sets, FHIR
/// ids and instants in their regular expressions, and no element the resource does not define.
pub(super) fn check_r4_appointment(resource: &Value) {
    const ELEMENTS: &[&str] = &[
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "status",
        "cancelationReason",
        "serviceCategory",
        "serviceType",
        "specialty",
        "appointmentType",
        "reasonCode",
        "reasonReference",
        "priority",
        "description",
        "supportingInformation",
        "start",
        "end",
        "minutesDuration",
        "slot",
        "created",
        "comment",
        "patientInstruction",
        "basedOn",
        "participant",
        "requestedPeriod",
    ];
    let object = resource.as_object().expect("an object");
    for key in object.keys() {
        assert!(
            ELEMENTS.contains(&key.as_str()),
            "`{key}` is not an R4 Appointment element"
        );
    }
    assert_eq!(resource["resourceType"], "Appointment");
    let status = resource["status"].as_str().expect("status is required");
    assert!(APPOINTMENT_STATUS.contains(&status), "{status}");
    if let Some(id) = resource.get("id") {
        let id = id.as_str().unwrap();
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
            "{id}"
        );
    }
    let instant = |v: &Value| {
        let text = v.as_str().expect("an instant is a string");
        // R4 instant: YYYY-MM-DDThh:mm:ss(.sss)(Z|+hh:mm), seconds and zone required.
        assert!(text.parse::<jiff::Timestamp>().is_ok(), "{text}");
        assert!(text.len() >= 20 && text.as_bytes()[10] == b'T', "{text}");
    };
    assert_eq!(
        resource.get("start").is_some(),
        resource.get("end").is_some(),
        "app-2"
    );
    match (resource.get("start"), resource.get("end")) {
        (Some(start), Some(end)) => {
            instant(start);
            instant(end);
        }
        _ => assert!(
            ["proposed", "cancelled", "waitlist"].contains(&status),
            "app-3"
        ),
    }
    if resource.get("cancelationReason").is_some() {
        assert!(["cancelled", "noshow"].contains(&status), "app-4");
    }
    if let Some(minutes) = resource.get("minutesDuration") {
        assert!(minutes.as_u64().is_some_and(|m| m >= 1), "positiveInt");
    }
    let participants = resource["participant"]
        .as_array()
        .expect("participant 1..*");
    assert!(!participants.is_empty());
    for p in participants {
        for key in p.as_object().unwrap().keys() {
            assert!(
                [
                    "id",
                    "extension",
                    "modifierExtension",
                    "type",
                    "actor",
                    "required",
                    "status",
                    "period"
                ]
                .contains(&key.as_str()),
                "`{key}` is not an element of Appointment.participant"
            );
        }
        let status = p["status"]
            .as_str()
            .expect("participant.status is required");
        assert!(PARTICIPATION_STATUS.contains(&status), "{status}");
        if let Some(required) = p.get("required") {
            assert!(PARTICIPANT_REQUIRED.contains(&required.as_str().unwrap()));
        }
        assert!(p.get("actor").is_some() || p.get("type").is_some(), "app-1");
        if let Some(actor) = p.get("actor") {
            for key in actor.as_object().unwrap().keys() {
                assert!(
                    ["reference", "type", "identifier", "display"].contains(&key.as_str()),
                    "`{key}` is not an element of Reference"
                );
            }
            if let Some(reference) = actor.get("reference") {
                let reference = reference.as_str().unwrap();
                let (kind, id) = reference.split_once('/').unwrap();
                assert!(["Patient", "Practitioner", "Location"].contains(&kind));
                assert!(!id.is_empty() && id.len() <= 64);
            }
        }
    }
}

/// With `RAPPEL_FHIR_DUMP_DIR` set, each resource checked is also written there, for
/// `scripts/fhir_schema_check.sh` to validate against HL7's R4 JSON schema.
pub(super) fn dump(name: &str, resource: &Value) {
    if let Some(dir) = std::env::var_os("RAPPEL_FHIR_DUMP_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

pub(super) fn patient_participant(resource: &Value) -> Value {
    resource["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["actor"]["type"] == "Patient")
        .cloned()
        .unwrap()
}

pub(super) async fn fhir(app: &TestApp, key: &str) -> Value {
    let r = app
        .send(
            "GET",
            "/v1/appointments/a1",
            Some(key),
            &[("Accept", "application/fhir+json")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    r.json()
}

#[tokio::test]
async fn the_appointment_as_fhir_r4_follows_the_patient_answer() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    let key = app.key.clone();
    let booked = fhir(&app, &key).await;
    check_r4_appointment(&booked);
    dump("booked", &booked);
    assert_eq!(booked["id"], "a1");
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["start"], "2026-03-05T09:00:00Z");
    assert_eq!(booked["end"], "2026-03-05T09:30:00Z");
    assert_eq!(patient_participant(&booked)["status"], "needs-action");
    assert_eq!(
        patient_participant(&booked)["actor"]["reference"],
        "Patient/p1"
    );
    let practitioner = booked["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["actor"]["type"] == "Practitioner")
        .unwrap()
        .clone();
    assert_eq!(practitioner["actor"]["reference"], "Practitioner/dr1");
    assert_eq!(practitioner["actor"]["display"], "Dr Martin");

    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);
    app.answer(&token, "confirm").await;
    let confirmed = fhir(&app, &key).await;
    check_r4_appointment(&confirmed);
    dump("confirmed", &confirmed);
    assert_eq!(patient_participant(&confirmed)["status"], "accepted");

    app.answer(&token, "cancel").await;
    let cancelled = fhir(&app, &key).await;
    check_r4_appointment(&cancelled);
    dump("cancelled", &cancelled);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(patient_participant(&cancelled)["status"], "declined");
    assert_eq!(
        cancelled["cancelationReason"]["text"],
        "Annulé par le patient"
    );

    // Plain JSON stays the default; another practice's id is 404 either way.
    let plain = app.get("/v1/appointments/a1").await;
    assert_eq!(plain.header("content-type"), Some("application/json"));
    let stranger = app
        .engine
        .create_practice("Cabinet C", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    app.send(
        "GET",
        "/v1/appointments/a1",
        Some(&stranger.api_key),
        &[("Accept", "application/fhir+json")],
        None,
    )
    .await
    .problem(404);
    app.stop().await;
}

#[test]
fn an_id_fhir_cannot_hold_is_given_as_an_identifier_only() {
    let appointment: rappel_domain::facts::Appointment = serde_json::from_value(json!({
        "id": "rdv 2026/03 #1", "patient": "p/1", "practitioner": "dr1",
        "start": "2026-03-05T09:00:00Z", "duration_minutes": 0, "source": "staff",
        "booked_at": "2026-03-01T09:00:00Z", "status": "no_show", "at": "2026-03-05T10:00:00Z",
        "version": 2
    }))
    .unwrap();
    let resource = rappel_engine::fhir::appointment_resource("cab 1", &appointment, None, None);
    check_r4_appointment(&resource);
    dump("noshow-with-non-fhir-ids", &resource);
    assert!(resource.get("id").is_none());
    assert_eq!(resource["status"], "noshow");
    assert_eq!(resource["identifier"][0]["value"], "rdv 2026/03 #1");
    assert_eq!(
        resource["identifier"][0]["system"],
        "urn:rappel:cab%201:appointment"
    );
    let patient = patient_participant(&resource);
    assert!(patient["actor"].get("reference").is_none());
    assert_eq!(patient["actor"]["identifier"]["value"], "p/1");
}
