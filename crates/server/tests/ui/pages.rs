//! What the pages say: French errors, names instead of ids, the template editor, the dashboard, the task form, the patient's answers.

use super::*;

#[tokio::test]
async fn an_unknown_page_is_a_french_page_and_an_unknown_api_path_a_problem() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let page = app.page(Some(&token), "/nulle-part").await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );
    assert!(page.text().contains("Page introuvable"), "{}", page.text());
    let api = app.page(None, "/v1/nulle-part").await;
    assert_eq!(api.status, 404);
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
    app.stop().await;
}

#[tokio::test]
async fn settings_show_no_empty_box_for_a_preset_without_options_of_its_own() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let settings = app.page(Some(&token), "/parametres").await;
    assert_eq!(settings.status, 200);
    let html = settings.text();
    // Every <fieldset> has something in it besides its legend.
    for fieldset in html.split("<fieldset>").skip(1) {
        let body = fieldset.split("</fieldset>").next().unwrap();
        let after_legend = body.split("</legend>").nth(1).unwrap_or("");
        assert!(!after_legend.trim().is_empty(), "an empty box: {body}");
    }
    app.stop().await;
}

/// A planned SMS to a landline is shown as « Ne partira pas » with its reason at once, not
/// « Prévu » until the send fails; fixing the number on the file shows it planned again.
#[tokio::test]
async fn a_planned_message_the_send_checks_would_refuse_says_so_at_once() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let put = |mobile: &'static str| {
        let app = &app;
        async move {
            let r = app
                .json(
                    "PUT",
                    "/v1/patients/p1",
                    &serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "mobile": mobile}),
                )
                .await;
            assert!(r.status == 200 || r.status == 201, "{}", r.text());
        }
    };
    put("01 23 45 67 89").await;
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &serde_json::json!({"name": "Dr Martin"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    // Booked at 08:00 for 10:00 on D: the SMS reminder is planned 10 minutes later.
    let r = app
        .post_events(&serde_json::json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-02T10:00:00+01:00", "source": "staff"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let page = app.page(Some(&token), "/patients/p1").await.text();
    assert!(page.contains("Ne partira pas"), "{page}");
    assert!(page.contains("numéro fixe"), "{page}");
    put("06 12 34 56 78").await;
    let page = app.page(Some(&token), "/patients/p1").await.text();
    assert!(!page.contains("numéro fixe"), "{page}");
    assert!(page.contains("Prévu"), "{page}");
    app.stop().await;
}
/// The practice's language, not the code's: names instead of ids, and what a rule does instead
/// of its id.
#[tokio::test]
async fn pages_name_people_and_say_what_each_rule_does() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &serde_json::json!({"name": "Dr Martin", "email": "martin@cabinet.test"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1",
            &serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .post_events(&serde_json::json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-05T10:00:00+01:00", "source": "online"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let appointment = app.page(Some(&token), "/rendez-vous/a1").await.text();
    assert!(appointment.contains("Jeanne Dupont"), "{appointment}");
    assert!(appointment.contains("Dr Martin"), "{appointment}");
    let dashboard = app.page(Some(&token), "/").await.text();
    assert!(dashboard.contains("Praticien : Dr Martin"), "{dashboard}");
    let reminder = app
        .page(
            Some(&token),
            "/envoyes/a%3Aa1%2Freminder_email_d1%2Femail%2Fpatient%3Ap1%2F2026-03-05",
        )
        .await
        .text();
    assert!(
        reminder.contains("Rappel de rendez-vous par email, la veille entre 14:00 et 16:00"),
        "{reminder}"
    );
    assert!(!reminder.contains("reminder_email_d1"), "{reminder}");
    // Once sent, the detail says where it went.
    app.engine.dispatch_all_due().await.unwrap();
    let confirmation = app
        .page(
            Some(&token),
            "/envoyes/a%3Aa1%2Fconfirmation_email%2Femail%2Fpatient%3Ap1",
        )
        .await
        .text();
    assert!(
        confirmation.contains("Envoyé à : </strong>jeanne@example.org"),
        "{confirmation}"
    );
    app.stop().await;
}

pub(super) fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    body.finish()
}

/// Dr Martin, Jeanne Dupont (email and mobile) and her appointment `a1` booked online for
/// Thursday 5 March 2026 at 10:00.
pub(super) async fn martin_and_dupont(app: &TestApp) {
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &json!({"name": "Dr Martin", "email": "martin@cabinet.test"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1",
            &json!({"first_name": "Jeanne", "last_name": "Dupont",
                    "email": "jeanne@example.org", "mobile": "06 12 34 56 78"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let r = app
        .post_events(&json!({
            "type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
            "start": "2026-03-05T10:00:00+01:00", "source": "online"
        }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[tokio::test]
async fn the_template_editor_turns_text_with_fields_into_both_parts_of_an_email() {
    use rappel_domain::notification::{Channel, Kind};
    use rappel_domain::template::Locale;
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;

    // Only what the practice's policy sends is listed (Doctolib: no document by email).
    let list = app.page(Some(&token), "/modeles").await.text();
    assert!(list.contains("/modeles/reminder/sms"), "{list}");
    assert!(!list.contains("/modeles/document/email"), "{list}");

    // The default SMS reads as French with fields, not as template code.
    let sms = app.page(Some(&token), "/modeles/reminder/sms").await.text();
    assert!(
        sms.contains("{Cabinet} : Nous vous rappelons votre rendez-vous : {Rendez-vous}. Confirmer ou annuler : {Lien de réponse}"),
        "{sms}"
    );
    assert!(sms.contains("data-insert=\"{Prénom}\""), "{sms}");
    assert!(sms.contains("<code>{Heure}</code>"), "{sms}");

    let subject = "Votre rendez-vous du {Date du rendez-vous}";
    let body = "Bonjour {Prénom},\n\nÀ {Heure} avec {Praticien}.\nPlan : https://exemple.fr/plan\n\n{Cabinet}";
    let saved = app
        .form(
            Some(&token),
            "/modeles/reminder/email?langue=fr",
            &form_body(&[
                ("_csrf", &csrf),
                ("mode", "simple"),
                ("objet", subject),
                ("corps", body),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let view = app
        .engine
        .get_template(&app.practice, Kind::Reminder, Channel::Email, Locale::Fr)
        .await
        .unwrap();
    assert_eq!(view.overridden, ["subject", "text", "html"]);
    let rendered = app
        .engine
        .preview_template(
            &app.practice,
            Kind::Reminder,
            Channel::Email,
            Locale::Fr,
            &view.parts,
        )
        .await
        .unwrap();
    let output = |part: &str| {
        rendered
            .iter()
            .find(|p| p.part == part)
            .and_then(|p| p.output.clone())
            .unwrap()
    };
    assert!(
        output("subject").starts_with("Votre rendez-vous du "),
        "{rendered:?}"
    );
    let text = output("text");
    assert!(
        text.starts_with("Bonjour Jeanne,\n\nÀ 09h30 avec "),
        "{text}"
    );
    let html = output("html");
    assert!(
        html.contains("<p style=\"margin:0 0 16px;\">\nBonjour Jeanne,\n</p>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://exemple.fr/plan\" style=\"color:#1f4e79;\">"),
        "{html}"
    );

    // The page shows the text back, with the email's HTML in a sandboxed frame of this origin.
    let page = app
        .page(Some(&token), "/modeles/reminder/email?langue=fr")
        .await
        .text();
    assert!(page.contains("Bonjour {Prénom},"), "{page}");
    assert!(page.contains("personnalisé par le cabinet"), "{page}");
    assert!(
        page.contains("<iframe") && page.contains("sandbox=\"\""),
        "{page}"
    );
    let frame_at = page.find("/modeles/reminder/email/apercu.html?").unwrap();
    let frame_src = page[frame_at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let frame = app.page(Some(&token), &frame_src).await;
    assert_eq!(frame.status, 200);
    let csp = frame.header("content-security-policy").unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(frame.header("x-frame-options"), Some("SAMEORIGIN"));
    assert!(frame.text().contains("Bonjour Jeanne,"), "{}", frame.text());
    // Every other page still refuses to be framed.
    let other = app.page(Some(&token), "/modeles").await;
    assert_eq!(other.header("x-frame-options"), Some("DENY"));

    // An unknown field is refused at its line, in French; the saved template stays.
    let refused = app
        .form(
            Some(&token),
            "/modeles/reminder/email?langue=fr",
            &form_body(&[
                ("_csrf", &csrf),
                ("mode", "simple"),
                ("objet", subject),
                ("corps", "Bonjour,\n{Prenom}"),
            ]),
        )
        .await;
    assert_eq!(refused.status, 422);
    let text = refused.text();
    assert!(
        text.contains("Ligne 2 : « {Prenom} » n&#39;est pas un champ connu")
            || text.contains("Ligne 2 : « {Prenom} » n'est pas un champ connu"),
        "{text}"
    );
    let still = app
        .engine
        .get_template(&app.practice, Kind::Reminder, Channel::Email, Locale::Fr)
        .await
        .unwrap();
    assert_eq!(still.parts, view.parts);
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_shows_appointments_recipients_and_times_and_moves_by_day() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;

    let today = app.page(Some(&token), "/").await.text();
    for expected in [
        "Jour suivant",
        "Jour précédent",
        "type=\"date\"",
        "RDV du 05/03/2026 à 10:00 avec Dr Martin",
        "Praticien : Dr Martin",
        "martin@cabinet.test",
        "jeanne@example.org",
        "Prévu à",
        "Parti à",
    ] {
        assert!(today.contains(expected), "{expected} in {today}");
    }
    // Sent: the actual time beside the planned one.
    app.engine.dispatch_all_due().await.unwrap();
    let sent = app.page(Some(&token), "/").await.text();
    assert!(sent.contains("data-label=\"Parti à\">08:00"), "{sent}");

    // The eve of the appointment, by the date picker's field.
    let eve = app.page(Some(&token), "/?jour=2026-03-04").await.text();
    assert!(eve.contains("Mercredi 4 mars 2026"), "{eve}");
    assert!(eve.contains("Rappel de rendez-vous"), "{eve}");
    assert!(eve.contains("href=\"/?jour=2026-03-05\""), "{eve}");
    assert!(eve.contains("href=\"/?jour=2026-03-03\""), "{eve}");
    let empty = app.page(Some(&token), "/?jour=2026-04-20").await.text();
    assert!(empty.contains("Aucun message prévu ce jour-là."), "{empty}");
    let bad = app.page(Some(&token), "/?jour=demain").await;
    assert_eq!(bad.status, 200);
    assert!(bad.text().contains("Date non reconnue"), "{}", bad.text());
    app.stop().await;
}

#[tokio::test]
async fn tasks_pick_practitioners_from_a_list_and_get_their_id_from_their_name() {
    let app = app_with_users().await;
    let (token, csrf) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;
    let form = app
        .page(Some(&token), "/programmateur/nouvelle")
        .await
        .text();
    assert!(form.contains("name=\"praticien.dr1\""), "{form}");
    assert!(form.contains(">Dr Martin</label>"), "{form}");
    assert!(!form.contains("name=\"id\""), "{form}");
    let fields = |label: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("label", label.to_string()),
            ("type", "missed_appointments".to_string()),
            ("first_date", "2026-03-02".to_string()),
            ("every", "day".to_string()),
            ("time", "18:00".to_string()),
            ("range_from", "-1".to_string()),
            ("range_to", "-1".to_string()),
            ("channel", "sms".to_string()),
            ("active", "on".to_string()),
            ("praticien.dr1", "on".to_string()),
        ]
    };
    for expected in ["absences-de-la-veille", "absences-de-la-veille-2"] {
        let pairs = fields("Absences de la veille");
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .form(Some(&token), "/programmateur", &form_body(&pairs))
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(
            r.header("location"),
            Some(format!("/programmateur/{expected}?ok=tache").as_str())
        );
    }
    let tasks = app.engine.list_tasks(&app.practice).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[0].definition.practitioners.as_deref(),
        Some(&["dr1".to_string()][..])
    );
    let edit = app
        .page(Some(&token), "/programmateur/absences-de-la-veille")
        .await
        .text();
    assert!(edit.contains("name=\"praticien.dr1\" checked"), "{edit}");
    app.stop().await;
}

#[tokio::test]
async fn the_appointment_box_finds_appointments_by_the_patients_name() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    martin_and_dupont(&app).await;
    let by_id = app.page(Some(&token), "/rendez-vous?id=a1").await;
    assert_eq!(by_id.status, 303);
    assert_eq!(by_id.header("location"), Some("/rendez-vous/a1"));
    let by_name = app.page(Some(&token), "/rendez-vous?id=dupont").await;
    assert_eq!(by_name.status, 200);
    let text = by_name.text();
    assert!(text.contains("Jeanne Dupont"), "{text}");
    assert!(
        text.contains("href=\"/rendez-vous/a1\">RDV du 05/03/2026 à 10:00 avec Dr Martin"),
        "{text}"
    );
    let none = app
        .page(Some(&token), "/rendez-vous?id=Zorglub")
        .await
        .text();
    assert!(
        none.contains("Aucun patient ni rendez-vous ne correspond"),
        "{none}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_patient_s_answer_shows_on_the_timeline_and_the_dashboard() {
    let app = app_with_users().await;
    let (token, _) = app.sign_in("admin%40cabinet.test").await;
    for (path, body) in [
        (
            "/v1/practitioners/dr1",
            serde_json::json!({"name": "Dr Martin"}),
        ),
        (
            "/v1/patients/p1",
            serde_json::json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org"}),
        ),
    ] {
        let r = app.json("PUT", path, &body).await;
        assert!(r.status < 300, "{}", r.text());
    }
    // Tomorrow and the day after: both within the dashboard's week.
    for (id, start) in [
        ("a1", "2026-03-03T10:00:00+01:00"),
        ("a2", "2026-03-04T10:00:00+01:00"),
    ] {
        let r = app
            .post_events(&serde_json::json!({
                "type": "appointment.booked", "id": id, "patient": "p1", "practitioner": "dr1",
                "start": start, "source": "staff"
            }))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let now = app.engine.now();
    app.engine
        .confirm_appointment(&app.practice, "a1", rappel_engine::AnswerChannel::Sms, now)
        .await
        .unwrap();
    app.engine
        .cancel_appointment_for_patient(
            &app.practice,
            "a2",
            rappel_engine::AnswerChannel::Link,
            now,
        )
        .await
        .unwrap();
    let a1 = app.page(Some(&token), "/rendez-vous/a1").await.text();
    assert!(a1.contains("Réponse du patient"), "{a1}");
    assert!(a1.contains("Présence confirmée par le patient le"), "{a1}");
    assert!(a1.contains("par SMS"), "{a1}");
    let a2 = app.page(Some(&token), "/rendez-vous/a2").await.text();
    assert!(a2.contains("par le patient"), "{a2}");
    assert!(a2.contains("Annulé par le patient le"), "{a2}");
    let dashboard = app.page(Some(&token), "/").await.text();
    assert!(dashboard.contains("Réponses des patients"), "{dashboard}");
    assert!(
        dashboard.contains("href=\"/rendez-vous/a1\""),
        "{dashboard}"
    );
    assert!(dashboard.contains("Annulé par le patient"), "{dashboard}");
    // The settings page offers the new options with their French labels.
    let settings = app.page(Some(&token), "/parametres").await.text();
    for label in [
        "Liens « Confirmer » et « Annuler » dans les rappels et confirmations",
        "Le patient peut annuler jusqu&#39;à (heures avant le rendez-vous)",
        "Téléphone du cabinet",
    ] {
        assert!(
            settings.contains(label) || settings.contains(&label.replace("&#39;", "'")),
            "{label} missing"
        );
    }
    app.stop().await;
}
