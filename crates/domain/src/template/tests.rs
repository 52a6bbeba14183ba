use super::*;

fn sample(locale: Locale) -> Sample {
    Sample::new(
        "Cabinet <Dupont> & fils",
        "Dr Martin",
        sample_start(),
        locale,
    )
}

#[test]
fn every_built_in_template_renders_on_sample_data_in_both_locales() {
    for &kind in Kind::ALL {
        for &channel in Channel::ALL {
            for &locale in Locale::ALL {
                for &part in parts(channel) {
                    let source = default_source(kind, channel, locale, part).unwrap();
                    if let Err(error) = check_template(kind, channel, part, &source) {
                        panic!("{kind}/{channel}/{locale:?}/{part:?}: {error}\n{source}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_french_reminder_email_reads_as_before_the_templates() {
    let s = sample(Locale::Fr);
    let rendered = render_with(&s.input(Kind::Reminder, Channel::Email, false), None);
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Rappel de votre rendez-vous — Cabinet <Dupont> & fils")
    );
    assert_eq!(
        rendered.text,
        "Bonjour Jeanne Exemple,\n\nNous vous rappelons votre rendez-vous : mercredi 11 mars 2026 \
         à 09h30 avec Dr Martin, 12 rue de la Paix, 75002 Paris (Consultation).\n\n\
         Confirmer ma présence : https://rappel.example/r/AbCdEfGhIjKlMnOp?choix=confirmer\n\
         Annuler le rendez-vous : https://rappel.example/r/AbCdEfGhIjKlMnOp?choix=annuler\n\n\
         Consignes : Merci d'arriver 10 minutes en avance.\n\nCabinet <Dupont> & fils\n"
    );
    // Without links (switched off, or a message about several appointments), as before.
    let mut input = s.input(Kind::Reminder, Channel::Email, false);
    input.answer_links = None;
    assert_eq!(
        render_with(&input, None).text,
        "Bonjour Jeanne Exemple,\n\nNous vous rappelons votre rendez-vous : mercredi 11 mars 2026 \
         à 09h30 avec Dr Martin, 12 rue de la Paix, 75002 Paris (Consultation).\n\nConsignes : \
         Merci d'arriver 10 minutes en avance.\n\nCabinet <Dupont> & fils\n"
    );
    let html = rendered.html.unwrap();
    assert!(
        html.contains("<title>Cabinet &lt;Dupont&gt; &amp; fils</title>"),
        "{html}"
    );
    assert!(html.contains("Bonjour Jeanne Exemple,"), "{html}");
    assert!(!html.contains("<Dupont>"), "{html}");
}

#[test]
fn sms_carries_no_motive_unless_enabled_and_never_instructions() {
    let s = sample(Locale::Fr);
    let plain = render_with(&s.input(Kind::Reminder, Channel::Sms, false), None);
    assert_eq!(
        plain.text,
        "Cabinet <Dupont> & fils : Nous vous rappelons votre rendez-vous : mercredi 11 mars 2026 \
         à 09h30 avec Dr Martin, 12 rue de la Paix, 75002 Paris. Confirmer ou annuler : \
         https://rappel.example/r/AbCdEfGhIjKlMnOp"
    );
    assert!(plain.subject.is_none() && plain.html.is_none());
    let with_motive = render_with(&s.input(Kind::Reminder, Channel::Sms, true), None);
    assert!(with_motive.text.contains("(Consultation)"));
    assert!(!with_motive.text.contains("arriver"));
    // A practice template cannot reach them either.
    let mut set = TemplateSet::default();
    let key = TemplateKey {
        kind: Kind::Reminder,
        channel: Channel::Sms,
        locale: Locale::Fr,
        part: Part::Text,
    };
    set.insert(
        key,
        "{% for a in appointments %}[{{ a.instructions }}]{% endfor %}".into(),
    );
    let own = render_with(&s.input(Kind::Reminder, Channel::Sms, true), Some(&set));
    assert_eq!(own.text, "[]");
    let refused = check_template(Kind::Reminder, Channel::Sms, Part::Text, &set.sources[&key]);
    assert!(refused.is_err(), "instructions are not a variable of SMS");
}

#[test]
fn an_english_patient_gets_english_with_english_dates() {
    let s = sample(Locale::En);
    let rendered = render_with(&s.input(Kind::Confirmation, Channel::Email, false), None);
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Your appointment is confirmed — Cabinet <Dupont> & fils")
    );
    assert!(
        rendered
            .text
            .starts_with("Hello Jeanne Exemple,\n\nYour appointment is confirmed: Wednesday 11 March 2026 at 09:30 with Dr Martin"),
        "{}",
        rendered.text
    );
    assert_eq!(Locale::for_patient(Some("en-GB")), Locale::En);
    assert_eq!(Locale::for_patient(Some("EN")), Locale::En);
    assert_eq!(Locale::for_patient(Some("de")), Locale::Fr);
    assert_eq!(Locale::for_patient(None), Locale::Fr);
}

#[test]
fn a_practice_template_replaces_the_built_in_part_only() {
    let s = sample(Locale::Fr);
    let mut set = TemplateSet::default();
    set.insert(
        TemplateKey {
            kind: Kind::Reminder,
            channel: Channel::Email,
            locale: Locale::Fr,
            part: Part::Text,
        },
        "À demain {{ patient.first_name }} ! {{ appointments[0].time_text }}".into(),
    );
    let rendered = render_with(&s.input(Kind::Reminder, Channel::Email, false), Some(&set));
    assert_eq!(rendered.text, "À demain Jeanne ! 09h30");
    assert!(
        rendered
            .subject
            .unwrap()
            .starts_with("Rappel de votre rendez-vous")
    );
    assert!(rendered.template_errors.is_empty());
}

#[test]
fn html_templates_escape_what_the_facts_contain() {
    let mut s = sample(Locale::Fr);
    s.patient.first_name = "<script>alert(1)</script>".into();
    let source = "<p>{{ patient.first_name }}</p>";
    let mut set = TemplateSet::default();
    set.insert(
        TemplateKey {
            kind: Kind::Reminder,
            channel: Channel::Email,
            locale: Locale::Fr,
            part: Part::Html,
        },
        source.into(),
    );
    let rendered = render_with(&s.input(Kind::Reminder, Channel::Email, false), Some(&set));
    assert_eq!(
        rendered.html.as_deref(),
        Some("<p>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>")
    );
    // The text part is not HTML: nothing to escape there.
    assert!(rendered.text.contains("<script>"));
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let error = check_template(Kind::Reminder, Channel::Email, Part::Text, source).unwrap_err();
    assert!(error.reason.contains("too long"), "{error}");
}

#[test]
fn a_huge_output_is_refused() {
    let source = "{% for i in range(5000) %}0123456789{% endfor %}";
    let error = check_template(Kind::Reminder, Channel::Sms, Part::Text, source).unwrap_err();
    assert!(error.reason.contains("longer than 1024 bytes"), "{error}");
    // At send time the built-in text replaces it, and the failure is kept.
    let mut set = TemplateSet::default();
    set.insert(
        TemplateKey {
            kind: Kind::Reminder,
            channel: Channel::Sms,
            locale: Locale::Fr,
            part: Part::Text,
        },
        source.into(),
    );
    let s = sample(Locale::Fr);
    let rendered = render_with(&s.input(Kind::Reminder, Channel::Sms, false), Some(&set));
    assert!(
        rendered
            .text
            .starts_with("Cabinet <Dupont> & fils : Nous vous rappelons")
    );
    assert_eq!(
        rendered.template_errors.len(),
        1,
        "{:?}",
        rendered.template_errors
    );
}

#[test]
fn templates_cannot_include_import_or_extend_files() {
    for source in [
        "{% include \"/etc/passwd\" %}",
        "{% import \"macros.html\" as m %}",
        "{% extends \"base.html\" %}",
    ] {
        let error = check_template(Kind::Reminder, Channel::Email, Part::Text, source).unwrap_err();
        assert_eq!(error.line, Some(1), "{source}: {error}");
    }
}

#[test]
fn an_unknown_variable_is_refused_with_its_line() {
    let source = "Bonjour {{ patient.first_name }},\n\nVotre rendez-vous : {{ rendezvous.date }}\n";
    let error = check_template(Kind::Reminder, Channel::Email, Part::Text, source).unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.reason.contains("does not exist"), "{error}");
    // So is a patient in a practitioner alert, which has none.
    let error = check_template(
        Kind::PractitionerBooking,
        Channel::Email,
        Part::Text,
        "{{ patient.last_name }}",
    )
    .unwrap_err();
    assert_eq!(error.line, Some(1));
    // Optional values may be tested.
    assert!(
        check_template(
            Kind::PractitionerBooking,
            Channel::Email,
            Part::Text,
            "{% if patient %}{{ patient.name }}{% endif %}ok",
        )
        .is_ok()
    );
}

#[test]
fn a_syntax_error_names_its_line() {
    let error = check_template(
        Kind::Reminder,
        Channel::Email,
        Part::Subject,
        "Rappel\n{% if patient %}\n{{ patient.name }",
    )
    .unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
}

#[test]
fn a_part_the_channel_does_not_have_is_refused() {
    assert!(check_template(Kind::Reminder, Channel::Sms, Part::Html, "<p>x</p>").is_err());
}

#[test]
fn the_built_in_html_escapes_facts_once_and_links_the_document() {
    let mut s = sample(Locale::Fr);
    s.practitioner.name = "Dr O'Brien & Fils".into();
    let rendered = render_with(&s.input(Kind::Reminder, Channel::Email, false), None);
    let html = rendered.html.unwrap();
    assert!(html.contains("avec Dr O&#x27;Brien &amp; Fils"), "{html}");
    assert!(!html.contains("&amp;amp;"), "{html}");
    let rendered = render_with(&s.input(Kind::Document, Channel::Email, false), None);
    let html = rendered.html.unwrap();
    assert!(
        html.contains("<a href=\"https:&#x2f;&#x2f;rappel.example&#x2f;d&#x2f;exemple\"")
            || html.contains("<a href=\"https://rappel.example/d/exemple\""),
        "{html}"
    );
    assert!(rendered.text.contains("« Compte rendu de consultation »"));
    // SMS never names the document.
    let sms = render_with(&s.input(Kind::Document, Channel::Sms, false), None);
    assert!(!sms.text.contains("Compte rendu"), "{}", sms.text);
    assert!(sms.text.contains("https://rappel.example/d/exemple"));
}

/// Every built-in message as the patient (or the practitioner) reads it, per kind: each channel
/// and language on the same sample appointment. A change of wording or layout shows here as a
/// snapshot diff to review (`INSTA_UPDATE=always cargo test -p rappel-domain snapshot`, then
/// read the `.snap` diff before committing).
#[test]
fn every_rendered_message_kind_channel_and_language_is_snapshotted() {
    for &kind in Kind::ALL {
        let mut out = String::new();
        for &channel in Channel::ALL {
            for &locale in Locale::ALL {
                let s = sample(locale);
                let rendered = render_with(&s.input(kind, channel, false), None);
                assert!(
                    rendered.template_errors.is_empty(),
                    "{kind}/{channel}/{locale:?}: {:?}",
                    rendered.template_errors
                );
                out.push_str(&format!("===== {channel} · {}\n", locale.as_str()));
                if let Some(subject) = &rendered.subject {
                    out.push_str(&format!("--- subject\n{subject}\n"));
                }
                out.push_str(&format!("--- text\n{}\n", rendered.text.trim_end()));
                if let Some(html) = &rendered.html {
                    out.push_str(&format!("--- html\n{}\n", html.trim_end()));
                }
            }
        }
        insta::assert_snapshot!(format!("rendered_{kind}"), out);
    }
}

/// The grouped SMS reminder (a rule's `group = "patient_day"`: two appointments of one day in one
/// message, without the answer links, which are for one appointment), the one rendered form that
/// the matrix above does not reach, as the patient reads it in each language.
#[test]
fn the_grouped_sms_reminder_is_snapshotted_in_each_language() {
    let mut out = String::new();
    for &locale in Locale::ALL {
        let s = sample(locale);
        let later = Appointment {
            id: "sample-appointment-2".into(),
            start: s.appointment.start + jiff::SignedDuration::from_hours(2),
            ..s.appointment.clone()
        };
        let mut input = s.input(Kind::Reminder, Channel::Sms, false);
        input.answer_links = None;
        input.appointments.push(AppointmentView {
            appointment: &later,
            practitioner: Some(&s.practitioner),
            motive: Some(&s.motive),
        });
        let rendered = render_with(&input, None);
        assert!(
            rendered.template_errors.is_empty(),
            "{locale:?}: {:?}",
            rendered.template_errors
        );
        out.push_str(&format!(
            "===== sms · {}\n--- text\n{}\n",
            locale.as_str(),
            rendered.text.trim_end()
        ));
    }
    insta::assert_snapshot!("rendered_grouped_sms_reminder", out);
}
