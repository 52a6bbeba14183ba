use super::*;
use proptest::prelude::*;

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn french_mobile_is_accepted_in_every_usual_form() {
    for input in [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "0612345678",
        " (06) 12 34 56 78 ",
        "06\u{A0}12\u{A0}34\u{A0}56\u{A0}78",
        "+33612345678",
        "+33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "0033 6 12 34 56 78",
        "0033612345678",
    ] {
        let p = phone(input);
        assert_eq!(p.e164(), "+33612345678", "{input:?}");
        assert_eq!(p.kind(), PhoneKind::Mobile, "{input:?}");
        assert_eq!(p.country_code(), 33);
    }
}

#[test]
fn french_07_numbers_are_mobiles() {
    assert_eq!(phone("07 81 23 45 67").kind(), PhoneKind::Mobile);
}

#[test]
fn french_numbers_are_classified_by_their_first_digit() {
    for (input, kind) in [
        ("01 23 45 67 89", PhoneKind::Landline),
        ("02 98 12 34 56", PhoneKind::Landline),
        ("03 20 12 34 56", PhoneKind::Landline),
        ("04 78 12 34 56", PhoneKind::Landline),
        ("05 56 12 34 56", PhoneKind::Landline),
        ("09 72 12 34 56", PhoneKind::Landline),
        ("08 00 12 34 56", PhoneKind::Special),
        ("08 92 12 34 56", PhoneKind::Special),
    ] {
        assert_eq!(phone(input).kind(), kind, "{input}");
        assert!(!phone(input).is_mobile());
    }
}

#[test]
fn overseas_national_numbers_get_their_own_country_code() {
    for (input, e164, code, kind) in [
        ("0690 12 34 56", "+590690123456", 590, PhoneKind::Mobile),
        ("0691 12 34 56", "+590691123456", 590, PhoneKind::Mobile),
        ("0590 12 34 56", "+590590123456", 590, PhoneKind::Landline),
        ("0696 12 34 56", "+596696123456", 596, PhoneKind::Mobile),
        ("0697 12 34 56", "+596697123456", 596, PhoneKind::Mobile),
        ("0596 12 34 56", "+596596123456", 596, PhoneKind::Landline),
        ("0694 12 34 56", "+594694123456", 594, PhoneKind::Mobile),
        ("0594 12 34 56", "+594594123456", 594, PhoneKind::Landline),
        ("0692 12 34 56", "+262692123456", 262, PhoneKind::Mobile),
        ("0693 12 34 56", "+262693123456", 262, PhoneKind::Mobile),
        ("0262 12 34 56", "+262262123456", 262, PhoneKind::Landline),
        ("0639 12 34 56", "+262639123456", 262, PhoneKind::Mobile),
        ("0269 12 34 56", "+262269123456", 262, PhoneKind::Landline),
    ] {
        let p = phone(input);
        assert_eq!(
            (p.e164(), p.country_code(), p.kind()),
            (e164, code, kind),
            "{input}"
        );
    }
}

#[test]
fn overseas_numbers_are_accepted_in_e164_form() {
    let p = phone("+590 690 12 34 56");
    assert_eq!((p.e164(), p.kind()), ("+590690123456", PhoneKind::Mobile));
    assert_eq!(phone("+262 639 12 34 56").kind(), PhoneKind::Mobile);
    assert_eq!(phone("+262 (0)692 12 34 56").e164(), "+262692123456");
}

#[test]
fn overseas_number_written_with_plus_33_is_given_its_real_country_code() {
    assert_eq!(phone("+33 6 92 12 34 56").e164(), "+262692123456");
    assert_eq!(phone("+33 6 90 12 34 56").e164(), "+590690123456");
}

#[test]
fn overseas_country_code_with_a_range_of_another_territory_is_refused() {
    // 0692 is Réunion: it does not exist under Guadeloupe's +590.
    let err = PhoneNumber::parse("+590 692 12 34 56").unwrap_err();
    assert!(err.to_string().contains("+590"), "{err}");
    assert!(PhoneNumber::parse("+590 612 34 56 78").is_err());
}

#[test]
fn saint_pierre_et_miquelon_numbers_have_six_digits_and_55_is_mobile() {
    let p = phone("+508 55 12 34");
    assert_eq!((p.e164(), p.kind()), ("+508551234", PhoneKind::Mobile));
    assert_eq!(phone("+508 41 12 34").kind(), PhoneKind::Landline);
    assert!(PhoneNumber::parse("+508 55 12 34 5").is_err());
}

#[test]
fn neighbouring_countries_mobile_ranges_are_known() {
    for (input, kind) in [
        ("+32 470 12 34 56", PhoneKind::Mobile),
        ("+32 4 123 45 67", PhoneKind::Landline),
        ("+32 2 123 45 67", PhoneKind::Landline),
        ("+41 79 123 45 67", PhoneKind::Mobile),
        ("+41 71 123 45 67", PhoneKind::Landline),
        ("+41 22 123 45 67", PhoneKind::Landline),
        ("+352 621 123 456", PhoneKind::Mobile),
        ("+352 22 33 44", PhoneKind::Landline),
        ("+377 6 12 34 56 78", PhoneKind::Mobile),
        ("+377 93 12 34 56", PhoneKind::Landline),
        ("+49 151 23456789", PhoneKind::Mobile),
        ("+49 170 1234567", PhoneKind::Mobile),
        ("+49 30 12345678", PhoneKind::Landline),
        ("+49 800 1234567", PhoneKind::Special),
    ] {
        assert_eq!(phone(input).kind(), kind, "{input}");
    }
}

#[test]
fn known_foreign_plans_refuse_wrong_lengths() {
    for input in [
        "+32 470 12 34 567",
        "+41 79 123 45 6",
        "+352 621 12 34",
        "+49 151 234",
    ] {
        assert!(PhoneNumber::parse(input).is_err(), "{input}");
    }
}

#[test]
fn numbers_of_other_countries_are_accepted_on_length_with_an_unknown_kind() {
    let p = phone("+34 612 34 56 78");
    assert_eq!(
        (p.e164(), p.country_code(), p.kind()),
        ("+34612345678", 34, PhoneKind::Unknown)
    );
    assert_eq!(phone("+1 415 555 2671").country_code(), 1);
    assert_eq!(phone("+212 6 12 34 56 78").country_code(), 212);
    assert_eq!(phone("00 44 7700 900123").country_code(), 44);
    assert!(!phone("+34 612 34 56 78").is_mobile());
}

#[test]
fn international_numbers_outside_8_to_15_digits_are_refused() {
    assert!(PhoneNumber::parse("+34 6123").is_err());
    assert!(PhoneNumber::parse("+34 612 345 678 901 234").is_err());
    assert!(PhoneNumber::parse("+1234567").is_err());
    assert!(PhoneNumber::parse("+12345678").is_ok());
}

#[test]
fn country_code_lengths_follow_the_e164_assignment() {
    for (digits, len) in [
        ("1415", 1),
        ("7495", 1),
        ("2012", 2),
        ("2711", 2),
        ("2126", 3),
        ("3061", 2),
        ("3361", 2),
        ("3516", 3),
        ("3776", 3),
        ("3912", 2),
        ("4201", 3),
        ("4477", 2),
        ("5016", 3),
        ("5511", 2),
        ("5906", 3),
        ("6112", 2),
        ("6791", 3),
        ("8130", 2),
        ("8521", 3),
        ("8610", 2),
        ("9122", 2),
        ("9715", 3),
        ("9821", 2),
        ("9989", 3),
    ] {
        assert_eq!(country_code_len(digits), Some(len), "{digits}");
    }
    assert_eq!(country_code_len("0123"), None);
    assert_eq!(country_code_len("3"), None);
    assert_eq!(country_code_len("80"), None);
}

#[test]
fn malformed_phone_numbers_are_refused_with_a_reason() {
    for input in [
        "06 12 34 56 7",
        "06 12 34 56 789",
        "612345678",
        "06 12 AB 56 78",
        "06+12345678",
        "+",
        "--",
        "+0612345678",
        "+33 6 12 34 56 7",
        "+33 0 0 12 34 56 78",
        "15",
    ] {
        match PhoneNumber::parse(input) {
            Err(e @ ContactError::PhoneInvalid { .. }) => {
                assert_eq!(e.code(), "invalid_mobile")
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

#[test]
fn blank_phone_number_is_refused_as_empty() {
    assert_eq!(PhoneNumber::parse(" \t"), Err(ContactError::PhoneEmpty));
    assert_eq!(ContactError::PhoneEmpty.code(), "no_mobile");
}

#[test]
fn national_form_is_french_pairs_for_the_french_plan_and_e164_otherwise() {
    assert_eq!(phone("+33612345678").national(), "06 12 34 56 78");
    assert_eq!(phone("+262692123456").national(), "06 92 12 34 56");
    assert_eq!(phone("+32470123456").national(), "+32470123456");
    assert_eq!(phone("+50855 1234").national(), "+508551234");
}

#[test]
fn phone_debug_redacts_the_middle_digits() {
    assert_eq!(
        format!("{:?}", phone("06 12 34 56 78")),
        "PhoneNumber(+336******78)"
    );
    assert_eq!(
        format!("{:?}", MobileNumber::parse("06 12 34 56 78").unwrap()),
        "MobileNumber(+336******78)"
    );
}

#[test]
fn phone_serialises_as_e164_and_deserialises_through_the_parser() {
    let p = phone("06 12 34 56 78");
    assert_eq!(serde_json::to_string(&p).unwrap(), "\"+33612345678\"");
    let back: PhoneNumber = serde_json::from_str("\"06.12.34.56.78\"").unwrap();
    assert_eq!(back, p);
    assert_eq!("0612345678".parse::<PhoneNumber>(), Ok(p));
}

// --- Mobile numbers ----------------------------------------------------

#[test]
fn mobile_number_accepts_a_french_mobile() {
    let m = MobileNumber::parse("06 12 34 56 78").unwrap();
    assert_eq!(m.e164(), "+33612345678");
    assert_eq!(m.national(), "06 12 34 56 78");
    assert_eq!(m.to_string(), "+33612345678");
}

#[test]
fn mobile_number_refuses_a_landline_with_the_landline_code() {
    let err = MobileNumber::parse("01 23 45 67 89").unwrap_err();
    assert_eq!(err, ContactError::PhoneNotMobile);
    assert_eq!(err.code(), "landline");
    assert_eq!(
        MobileNumber::parse("0590 12 34 56"),
        Err(ContactError::PhoneNotMobile)
    );
    assert_eq!(
        MobileNumber::parse("09 72 12 34 56"),
        Err(ContactError::PhoneNotMobile)
    );
}

#[test]
fn mobile_number_refuses_a_special_rate_number() {
    assert_eq!(
        MobileNumber::parse("08 92 12 34 56"),
        Err(ContactError::PhoneNotMobile)
    );
}

#[test]
fn mobile_number_accepts_a_foreign_number_of_unknown_kind_because_we_cannot_tell() {
    let m = MobileNumber::parse("+34 612 34 56 78").unwrap();
    assert_eq!(m.kind(), PhoneKind::Unknown);
}

#[test]
fn mobile_number_passes_on_the_phone_number_parse_error() {
    assert_eq!(MobileNumber::parse(""), Err(ContactError::PhoneEmpty));
    assert!(matches!(
        MobileNumber::parse("06"),
        Err(ContactError::PhoneInvalid { .. })
    ));
}

#[test]
fn mobile_number_converts_from_and_to_phone_number() {
    let landline = phone("01 23 45 67 89");
    assert_eq!(
        MobileNumber::try_from(landline),
        Err(ContactError::PhoneNotMobile)
    );
    let mobile = MobileNumber::try_from(phone("0612345678")).unwrap();
    assert_eq!(PhoneNumber::from(mobile.clone()), phone("+33612345678"));
    assert_eq!(mobile.as_phone_number().kind(), PhoneKind::Mobile);
}

#[test]
fn mobile_number_deserialisation_refuses_a_landline_with_the_reason() {
    let err = serde_json::from_str::<MobileNumber>("\"01 23 45 67 89\"").unwrap_err();
    assert!(err.to_string().contains("not a mobile"), "{err}");
}

fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9 .()+-]{0,20}",
        "0[1-9]( ?[0-9]{2}){4}",
        "0(590|690|691|594|694|596|696|697|262|269|692|693|639)[0-9]{6}",
        "(\\+|00)33 ?(\\(0\\))?[1-9][0-9]{8}",
        "\\+(32|41|352|377|49|508|590|262)[0-9]{6,11}",
        "\\+[1-9][0-9]{7,14}",
    ]
}

proptest! {
    #[test]
    fn phone_parser_never_panics_on_phone_like_input(s in phone_like()) {
        let _ = PhoneNumber::parse(&s);
    }

    #[test]
    fn parsed_phone_e164_and_national_forms_reparse_to_the_same_number(s in phone_like()) {
        if let Ok(p) = PhoneNumber::parse(&s) {
            prop_assert_eq!(PhoneNumber::parse(p.e164()), Ok(p.clone()));
            prop_assert_eq!(PhoneNumber::parse(&p.national()), Ok(p.clone()));
            prop_assert!(p.e164().len() <= 16);
        }
    }
}
