use super::*;
use crate::render::render_with;
use crate::template::{Sample, TemplateKey, TemplateSet, check_template, preview_on, sample_start};

fn sample(locale: Locale) -> Sample {
    Sample::new(
        "Cabinet <Dupont> & fils",
        "Dr Martin",
        sample_start(),
        locale,
    )
}

fn set_of(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    compiled: &[(Part, String)],
) -> TemplateSet {
    let mut set = TemplateSet::default();
    for (part, source) in compiled {
        set.insert(
            TemplateKey {
                kind,
                channel,
                locale,
                part: *part,
            },
            source.clone(),
        );
    }
    set
}

#[test]
fn the_default_sms_reads_as_french_with_fields() {
    let m = default_message(Kind::Reminder, Channel::Sms, Locale::Fr);
    assert_eq!(m.subject, None);
    assert_eq!(
        m.body,
        "{Cabinet} : Nous vous rappelons votre rendez-vous : {Rendez-vous}. Confirmer ou annuler : \
         {Lien de réponse}"
    );
    let email = default_message(Kind::Reminder, Channel::Email, Locale::Fr);
    assert_eq!(
        email.subject.as_deref(),
        Some("Rappel de votre rendez-vous — {Cabinet}")
    );
    assert_eq!(
        email.body,
        "Bonjour {Patient},\n\nNous vous rappelons votre rendez-vous : {Rendez-vous}.\n\n\
         Confirmer ma présence : {Lien pour confirmer}\nAnnuler le rendez-vous : {Lien pour annuler}\n\n\
         Consignes : {Consignes}\n\n{Cabinet}"
    );
    let alert = default_message(Kind::PractitionerBooking, Channel::Sms, Locale::Fr);
    assert!(
        !alert.body.contains("{%") && !alert.body.contains("{{"),
        "{}",
        alert.body
    );
}

#[test]
fn every_default_written_with_fields_compiles_checks_and_sends_the_built_in_text() {
    for &kind in Kind::ALL {
        for &channel in Channel::ALL {
            if parts(channel).is_empty() {
                continue;
            }
            for &locale in Locale::ALL {
                let message = default_message(kind, channel, locale);
                assert!(
                    !message.body.contains("{%") && !message.body.contains("{{"),
                    "{kind}/{channel}/{locale:?}: {}",
                    message.body
                );
                let compiled = compile(kind, channel, locale, &message)
                    .unwrap_or_else(|e| panic!("{kind}/{channel}/{locale:?}: {e}\n{message:?}"));
                for (part, source) in &compiled {
                    check_template(kind, channel, *part, source)
                        .unwrap_or_else(|e| panic!("{kind}/{channel}/{part:?}: {e}\n{source}"));
                }
                // Read back as it was written.
                let sources: Vec<(Part, &str)> =
                    compiled.iter().map(|(p, s)| (*p, s.as_str())).collect();
                assert_eq!(
                    decompile(kind, channel, locale, &sources).as_ref(),
                    Some(&message),
                    "{kind}/{channel}/{locale:?}"
                );
                // The plain text a patient receives is the built-in one (a task's, without
                // appointments: with one, it puts the appointment on a line of its own, below).
                let s = sample(locale);
                let mut input = s.input(kind, channel, false);
                if kind == Kind::Task {
                    input.appointments.clear();
                }
                let built_in = render_with(&input, None);
                let own = render_with(&input, Some(&set_of(kind, channel, locale, &compiled)));
                assert!(own.template_errors.is_empty(), "{:?}", own.template_errors);
                assert_eq!(
                    own.text.trim_end(),
                    built_in.text.trim_end(),
                    "{kind}/{channel}/{locale:?}"
                );
                assert_eq!(own.subject, built_in.subject, "{kind}/{channel}/{locale:?}");
            }
        }
    }
}

#[test]
fn a_task_saved_from_its_default_names_an_appointment_only_when_it_has_one() {
    for &channel in Channel::ALL {
        if parts(channel).is_empty() {
            continue;
        }
        for &locale in Locale::ALL {
            let message = default_message(Kind::Task, channel, locale);
            let compiled = compile(Kind::Task, channel, locale, &message).unwrap();
            let set = set_of(Kind::Task, channel, locale, &compiled);
            let s = sample(locale);
            let mut input = s.input(Kind::Task, channel, false);
            let with = render_with(&input, Some(&set));
            input.appointments.clear();
            let without = render_with(&input, Some(&set));
            assert!(with.template_errors.is_empty() && without.template_errors.is_empty());
            // A birthday: the label, and no dangling « : . ».
            assert!(
                !without.text.contains(": .") && !without.text.contains(":."),
                "{channel}/{locale:?}: {}",
                without.text
            );
            assert!(
                !without.text.contains("Rendez-vous :") && !without.text.contains("Appointment:")
            );
            // A missed appointment: its date on the line after the label.
            let line = with
                .text
                .lines()
                .find(|l| l.starts_with("Rendez-vous :") || l.starts_with("Appointment:"))
                .unwrap_or_else(|| panic!("{channel}/{locale:?}: {}", with.text));
            assert!(line.chars().any(|c| c.is_ascii_digit()), "its date: {line}");
        }
    }
    assert_eq!(
        default_message(Kind::Task, Channel::Sms, Locale::Fr).body,
        "{Cabinet} : {Tâche}.\nRendez-vous : {Rendez-vous}. N'hésitez pas à reprendre rendez-vous."
    );
}

#[test]
fn one_body_gives_the_text_and_the_html_with_paragraphs_and_links() {
    let message = SimpleMessage {
        subject: Some("Votre rendez-vous du {Date du rendez-vous}".into()),
        body: "Bonjour {Prénom},\n\nÀ {Heure} avec {Praticien}.\nPlan : https://exemple.fr/plan?a=1&b=2.\n\n\n<b>{Cabinet}</b>"
            .into(),
    };
    let compiled = compile(Kind::Reminder, Channel::Email, Locale::Fr, &message).unwrap();
    assert_eq!(compiled.len(), 3);
    let s = sample(Locale::Fr);
    let rendered = render_with(
        &s.input(Kind::Reminder, Channel::Email, false),
        Some(&set_of(
            Kind::Reminder,
            Channel::Email,
            Locale::Fr,
            &compiled,
        )),
    );
    assert!(
        rendered.template_errors.is_empty(),
        "{:?}",
        rendered.template_errors
    );
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Votre rendez-vous du mercredi 11 mars 2026")
    );
    assert_eq!(
        rendered.text,
        "Bonjour Jeanne,\n\nÀ 09h30 avec Dr Martin.\nPlan : https://exemple.fr/plan?a=1&b=2.\n\n<b>Cabinet <Dupont> & fils</b>\n"
    );
    let html = rendered.html.unwrap();
    assert!(
        html.contains("<p style=\"margin:0 0 16px;\">\nBonjour Jeanne,\n</p>"),
        "{html}"
    );
    assert!(html.contains("À 09h30 avec Dr Martin.<br>\n"), "{html}");
    assert!(
        html.contains("<a href=\"https://exemple.fr/plan?a=1&amp;b=2\" style=\"color:#1f4e79;\">https://exemple.fr/plan?a=1&amp;b=2</a>."),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;Cabinet &lt;Dupont&gt; &amp; fils&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<Dupont>"), "{html}");
}

#[test]
fn a_line_whose_fields_are_empty_is_left_out() {
    let message = SimpleMessage {
        subject: Some("Rappel".into()),
        body: "Bonjour {Prénom},\n\nConsignes : {Consignes}\n\nÀ bientôt, {Cabinet}".into(),
    };
    let compiled = compile(Kind::Reminder, Channel::Email, Locale::Fr, &message).unwrap();
    let text = &compiled.iter().find(|(p, _)| *p == Part::Text).unwrap().1;
    let mut s = sample(Locale::Fr);
    s.motive.instructions = None;
    let out = preview_on(
        &s.input(Kind::Reminder, Channel::Email, false),
        Part::Text,
        Locale::Fr,
        text,
    )
    .unwrap();
    assert_eq!(
        out,
        "Bonjour Jeanne,\n\nÀ bientôt, Cabinet <Dupont> & fils\n"
    );
    let s = sample(Locale::Fr);
    let out = preview_on(
        &s.input(Kind::Reminder, Channel::Email, false),
        Part::Text,
        Locale::Fr,
        text,
    )
    .unwrap();
    assert_eq!(
        out,
        "Bonjour Jeanne,\n\nConsignes : Merci d'arriver 10 minutes en avance.\n\nÀ bientôt, Cabinet <Dupont> & fils\n"
    );
}

#[test]
fn unknown_or_absent_fields_and_stray_braces_are_refused_in_french_with_their_line() {
    let body = |b: &str| SimpleMessage {
        subject: None,
        body: b.into(),
    };
    let e = compile(
        Kind::Reminder,
        Channel::Sms,
        Locale::Fr,
        &body("Bonjour\n{Prenom}"),
    )
    .unwrap_err();
    assert_eq!((e.part, e.line), (Part::Text, 2));
    assert!(
        e.reason.contains("« {Prenom} » n'est pas un champ connu"),
        "{}",
        e.reason
    );
    assert!(e.reason.contains("{Prénom}"), "{}", e.reason);
    let e = compile(
        Kind::Reminder,
        Channel::Sms,
        Locale::Fr,
        &body("Motif : {Motif}"),
    )
    .unwrap_err();
    assert!(
        e.reason.contains("aucune information de santé"),
        "{}",
        e.reason
    );
    let e = compile(
        Kind::Document,
        Channel::Sms,
        Locale::Fr,
        &body("Le {Date du rendez-vous}"),
    )
    .unwrap_err();
    assert!(e.reason.contains("aucun rendez-vous"), "{}", e.reason);
    let e = compile(Kind::Reminder, Channel::Sms, Locale::Fr, &body("a { b")).unwrap_err();
    assert!(e.reason.contains("pas fermé"), "{}", e.reason);
    let e = compile(Kind::Reminder, Channel::Sms, Locale::Fr, &body(" \n ")).unwrap_err();
    assert!(e.reason.contains("vide"), "{}", e.reason);
    // Case and spaces inside the braces do not matter.
    assert!(
        compile(
            Kind::Reminder,
            Channel::Sms,
            Locale::Fr,
            &body("{ prénom }")
        )
        .is_ok()
    );
}

#[test]
fn every_available_field_has_a_value_on_the_sample_and_code_edits_are_not_simple() {
    for &kind in Kind::ALL {
        for &channel in Channel::ALL {
            if parts(channel).is_empty() {
                continue;
            }
            for field in Field::ALL.iter().filter(|f| f.available(kind, channel)) {
                let message = SimpleMessage {
                    subject: Some("x".into()),
                    body: format!("[{}]", field.token()),
                };
                let compiled = compile(kind, channel, Locale::Fr, &message).unwrap();
                let text = &compiled.iter().find(|(p, _)| *p == Part::Text).unwrap().1;
                let s = sample(Locale::Fr);
                let out = preview_on(&s.input(kind, channel, false), Part::Text, Locale::Fr, text)
                    .unwrap();
                assert!(out.len() > 2, "{kind}/{channel}/{field:?}: {out:?}");
            }
        }
    }
    let message = SimpleMessage {
        subject: None,
        body: "Bonjour {Prénom}".into(),
    };
    let compiled = compile(Kind::Reminder, Channel::Sms, Locale::Fr, &message).unwrap();
    let edited = compiled[0]
        .1
        .replace("Bonjour", "Bonjour {{ patient.name }}");
    assert_eq!(
        decompile(
            Kind::Reminder,
            Channel::Sms,
            Locale::Fr,
            &[(Part::Text, &edited)]
        ),
        None
    );
    assert_eq!(
        decompile(
            Kind::Reminder,
            Channel::Sms,
            Locale::Fr,
            &[(Part::Text, "Bonjour")]
        ),
        None
    );
}
