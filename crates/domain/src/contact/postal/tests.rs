use super::*;
use proptest::prelude::*;

fn address(lines: &[&str], postal_code: &str, city: &str, country: &str) -> PostalAddress {
    let lines = lines.iter().map(|l| (*l).to_owned()).collect();
    let country = CountryCode::parse(country).unwrap();
    PostalAddress::new(lines, postal_code, city, country).unwrap()
}

fn address_error(lines: &[&str], postal_code: &str, country: &str) -> ContactError {
    let lines = lines.iter().map(|l| (*l).to_owned()).collect();
    let country = CountryCode::parse(country).unwrap();
    PostalAddress::new(lines, postal_code, "Paris", country).unwrap_err()
}

#[test]
fn postal_codes_of_metropolitan_france_corsica_and_overseas_are_accepted() {
    for code in [
        "75011", "01000", "20000", "20200", "95000", "97110", "97133", "97150", "97400", "97600",
        "97500", "98000", "98800", "98714",
    ] {
        assert!(PostalCode::parse(code).is_ok(), "{code}");
    }
}

#[test]
fn postal_codes_with_an_unknown_prefix_or_shape_are_refused() {
    for code in [
        "00100",
        "96000",
        "97000",
        "97700",
        "98100",
        "2A000",
        "7501",
        "750110",
        "75 011",
        "",
        "７５０１１",
    ] {
        assert_eq!(
            PostalCode::parse(code),
            Err(ContactError::PostalCodeInvalid),
            "{code}"
        );
    }
    assert_eq!(
        ContactError::PostalCodeInvalid.code(),
        "invalid_postal_code"
    );
}

#[test]
fn postal_code_knows_its_department_and_whether_it_is_overseas() {
    let paris = PostalCode::parse("75011").unwrap();
    assert_eq!((paris.department(), paris.is_overseas()), ("75", false));
    let reunion = PostalCode::parse("97400").unwrap();
    assert_eq!((reunion.department(), reunion.is_overseas()), ("974", true));
    let noumea = PostalCode::parse("98800").unwrap();
    assert_eq!((noumea.department(), noumea.is_overseas()), ("988", true));
    let monaco = PostalCode::parse("98000").unwrap();
    assert_eq!((monaco.department(), monaco.is_overseas()), ("980", false));
    assert_eq!(PostalCode::parse("20090").unwrap().department(), "20");
}

#[test]
fn postal_code_debug_keeps_only_the_department() {
    assert_eq!(
        format!("{:?}", PostalCode::parse("75011").unwrap()),
        "PostalCode(75***)"
    );
}

#[test]
fn country_code_is_upper_cased_and_checked_against_iso_3166() {
    assert_eq!(CountryCode::parse(" fr ").unwrap().as_str(), "FR");
    assert_eq!(CountryCode::parse("be").unwrap().to_string(), "BE");
    for code in ["UK", "EU", "XX", "F", "FRA", "", "é"] {
        assert_eq!(
            CountryCode::parse(code),
            Err(ContactError::CountryInvalid),
            "{code}"
        );
    }
}

#[test]
fn iso_3166_table_is_sorted_and_made_of_two_capital_letters() {
    assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
    assert!(
        ISO_3166_ALPHA2
            .iter()
            .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
    );
}

#[test]
fn overseas_country_codes_count_as_france_for_mail_but_monaco_does_not() {
    for code in ["FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF"] {
        assert!(CountryCode::parse(code).unwrap().is_france(), "{code}");
    }
    for code in ["MC", "BE", "NC", "PF"] {
        assert!(!CountryCode::parse(code).unwrap().is_france(), "{code}");
    }
}

// --- Postal addresses --------------------------------------------------

#[test]
fn address_lines_are_normalised_and_blank_lines_dropped() {
    let a = address(
        &["  12   rue des Lilas ", "", "\tBât. B\n"],
        " 75011 ",
        " Paris ",
        "FR",
    );
    assert_eq!(a.lines(), ["12 rue des Lilas", "Bât. B"]);
    assert_eq!(
        (a.postal_code(), a.city(), a.country()),
        ("75011", "Paris", CountryCode::FRANCE)
    );
    assert!(a.is_france());
}

#[test]
fn address_needs_one_to_four_lines_of_at_most_38_characters() {
    assert!(matches!(
        address_error(&[], "75011", "FR"),
        ContactError::AddressInvalid { .. }
    ));
    assert!(matches!(
        address_error(&["  "], "75011", "FR"),
        ContactError::AddressInvalid { .. }
    ));
    let err = address_error(&["a", "b", "c", "d", "e"], "75011", "FR");
    assert!(err.to_string().contains("5 address lines"), "{err}");
    let err = address_error(&["1", &"x".repeat(39)], "75011", "FR");
    assert!(
        err.to_string().contains("address line 2 has 39 characters"),
        "{err}"
    );
    assert_eq!(err.code(), "invalid_address");
    assert!(
        PostalAddress::new(vec!["é".repeat(38)], "75011", "Paris", CountryCode::FRANCE).is_ok()
    );
}

#[test]
fn address_in_france_needs_a_valid_french_postal_code() {
    assert_eq!(
        address_error(&["1 rue"], "7501", "FR"),
        ContactError::PostalCodeInvalid
    );
    assert_eq!(
        address_error(&["1 rue"], "96000", "FR"),
        ContactError::PostalCodeInvalid
    );
    assert_eq!(
        address_error(&["1 rue"], "1000", "RE"),
        ContactError::PostalCodeInvalid
    );
}

#[test]
fn address_with_an_overseas_country_code_needs_that_territorys_postal_code() {
    assert!(address(&["1 rue"], "97400", "Saint-Denis", "RE").is_france());
    assert!(address(&["1 rue"], "97133", "Gustavia", "BL").is_france());
    let err = address_error(&["1 rue"], "75011", "RE");
    assert!(err.to_string().contains("starts with 974"), "{err}");
}

#[test]
fn address_in_france_may_use_country_fr_with_an_overseas_postal_code() {
    assert!(address(&["1 rue de Paris"], "97400", "Saint-Denis", "FR").is_france());
}

#[test]
fn address_abroad_needs_a_postal_code_of_1_to_10_characters() {
    let a = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
    assert!(!a.is_france());
    assert_eq!(
        address(&["10 Downing Street"], "SW1A 2AA", "London", "GB").postal_code(),
        "SW1A 2AA"
    );
    assert!(matches!(
        address_error(&["x"], " ", "BE"),
        ContactError::AddressInvalid { .. }
    ));
    assert!(matches!(
        address_error(&["x"], "12345678901", "BE"),
        ContactError::AddressInvalid { .. }
    ));
}

#[test]
fn address_needs_a_city() {
    let err =
        PostalAddress::new(vec!["1 rue".into()], "75011", " ", CountryCode::FRANCE).unwrap_err();
    assert!(err.to_string().contains("city"), "{err}");
}

#[test]
fn address_deserialises_from_the_scenario_shape_with_france_by_default() {
    #[derive(Deserialize)]
    struct Patient {
        address: PostalAddress,
    }
    let p: Patient = toml::from_str(
        r#"address = { lines = ["12 rue des Lilas"], postal_code = "75011", city = "Paris" }"#,
    )
    .unwrap();
    assert_eq!(
        p.address,
        address(&["12 rue des Lilas"], "75011", "Paris", "FR")
    );
    let p: Patient = toml::from_str(
            r#"address = { lines = ["Rue de la Loi 16"], postal_code = "1000", city = "Bruxelles", country = "be" }"#,
        )
        .unwrap();
    assert_eq!(p.address.country().as_str(), "BE");
}

#[test]
fn address_deserialisation_fails_with_the_constructors_reason() {
    let err = serde_json::from_str::<PostalAddress>(
        r#"{"lines": ["1 rue"], "postal_code": "7501", "city": "Paris"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("postal code is invalid"), "{err}");
    let err = serde_json::from_str::<PostalAddress>(
        r#"{"lines": ["1 rue"], "postal_code": "75011", "city": "Paris", "country": "UK"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("country code is invalid"), "{err}");
    let err = serde_json::from_str::<PostalAddress>(
        r#"{"lines": ["1 rue"], "postcode": "75011", "city": "Paris"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("postcode"), "{err}");
}

#[test]
fn address_serialises_to_the_scenario_shape() {
    let a = address(&["12 rue des Lilas"], "75011", "Paris", "FR");
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris", "country": "FR"})
    );
    assert_eq!(serde_json::from_value::<PostalAddress>(json).unwrap(), a);
}

#[test]
fn address_display_is_one_line_and_debug_is_redacted() {
    let a = address(&["12 rue des Lilas", "Bât. B"], "75011", "Paris", "FR");
    assert_eq!(a.to_string(), "12 rue des Lilas, Bât. B, 75011 Paris");
    assert_eq!(
        format!("{a:?}"),
        "PostalAddress { lines: [2 redacted], postal_code: 75***, city: [redacted], country: CountryCode(FR) }"
    );
    let b = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
    assert_eq!(b.to_string(), "Rue de la Loi 16, 1000 Bruxelles, BE");
}

#[test]
fn window_block_of_a_simple_french_address() {
    let a = address(&["12, rue des Lilas"], "75011", "Paris", "FR");
    assert_eq!(
        a.window_block("Mme Jeanne Dupont"),
        ["Mme Jeanne Dupont", "12, rue des Lilas", "75011 PARIS"]
    );
}

#[test]
fn window_block_removes_punctuation_from_the_fourth_line_on_and_accents_from_the_city() {
    let a = address(
        &[
            "Appartement 12, 3e étage",
            "Bât. B, Résidence l’Orée",
            "12, rue de l'Église-Neuve",
        ],
        "42000",
        "Saint-Étienne",
        "FR",
    );
    assert_eq!(
        a.window_block("M. Jean-Pierre Martin"),
        [
            "M. Jean-Pierre Martin",
            "Appartement 12, 3e étage",
            "Bât. B, Résidence l’Orée",
            "12 rue de l Église Neuve",
            "42000 SAINT ETIENNE",
        ]
    );
}

#[test]
fn window_block_of_an_overseas_address_has_no_country_line() {
    let a = address(&["1 rue de la Source"], "97400", "Saint-Denis", "RE");
    assert_eq!(
        a.window_block("Mme Payet"),
        ["Mme Payet", "1 rue de la Source", "97400 SAINT DENIS"]
    );
}

#[test]
fn window_block_of_a_foreign_address_ends_with_the_country_in_french() {
    let a = address(&["Rue de la Loi 16"], "1000", "Bruxelles", "BE");
    assert_eq!(
        a.window_block("M. Jan Peeters"),
        [
            "M. Jan Peeters",
            "Rue de la Loi 16",
            "1000 BRUXELLES",
            "BELGIQUE"
        ]
    );
    let b = address(&["1 Main Street"], "12345", "Tokyo", "JP");
    assert_eq!(
        b.window_block("Mr Sato").last().map(String::as_str),
        Some("JP")
    );
}

#[test]
fn window_block_puts_the_postcode_after_the_city_where_the_country_does() {
    let a = address(&["10 Downing Street"], "sw1a 2aa", "London", "GB");
    assert_eq!(
        a.window_block("Mr Smith"),
        [
            "Mr Smith",
            "10 Downing Street",
            "LONDON SW1A 2AA",
            "ROYAUME-UNI"
        ]
    );
}

#[test]
fn window_block_merges_the_shortest_neighbouring_lines_when_more_than_six() {
    let a = address(
        &["Chez M. Durand", "Bât. A", "Esc. 2", "Rue de la Loi 16"],
        "1000",
        "Bruxelles",
        "BE",
    );
    assert_eq!(
        a.window_block("M. Jan Peeters"),
        [
            "M. Jan Peeters",
            "Chez M. Durand",
            "Bât. A, Esc. 2",
            "Rue de la Loi 16",
            "1000 BRUXELLES",
            "BELGIQUE",
        ]
    );
}

#[test]
fn window_block_keeps_four_address_lines_in_france() {
    let a = address(
        &[
            "Chez M. Durand",
            "Bât. A",
            "12 rue des Lilas",
            "Lieu-dit Le Bourg",
        ],
        "75011",
        "Paris",
        "FR",
    );
    let block = a.window_block("Mme Dupont");
    assert_eq!(block.len(), 6);
    assert_eq!(block[4], "Lieu dit Le Bourg");
}

#[test]
fn window_block_without_recipient_starts_with_the_address() {
    let a = address(&["12 rue des Lilas"], "75011", "Paris", "FR");
    assert_eq!(a.window_block("  "), ["12 rue des Lilas", "75011 PARIS"]);
}

#[test]
fn window_block_abbreviates_then_cuts_long_lines_to_38_characters() {
    let a = address(
        &["1 place de l'Église"],
        "51300",
        "Saint-Remy-en-Bouzemont-Saint-Genest-et-Isson",
        "FR",
    );
    let block = a.window_block(&format!("Mme {}", "Dupont-".repeat(10)));
    // Cut between words rather than in the middle of one.
    assert_eq!(block[2], "51300 ST REMY EN BOUZEMONT ST GENEST");
    assert!(block.iter().all(|l| l.chars().count() <= 38), "{block:?}");
    assert_eq!(block[0].chars().count(), 38);
}

fn valid_address() -> impl Strategy<Value = PostalAddress> {
    let line = "[ -~À-ÿ’«»]{1,38}";
    let lines = prop::collection::vec(line, 1..=4);
    let place = prop_oneof![
        (
            "FR",
            "(0[1-9]|[1-8][0-9]|9[0-5]|97[1-6]|98[04678])[0-9]{2,3}"
        ),
        ("GP", "971[0-9]{2}"),
        ("RE", "974[0-9]{2}"),
        ("BE|CH|GB|US|JP|MC|DE", "[A-Za-z0-9 -]{1,10}"),
    ];
    (lines, place, "\\PC{1,60}").prop_filter_map(
        "valid address",
        |(lines, (country, postal_code), city)| {
            let country = CountryCode::parse(&country).ok()?;
            PostalAddress::new(lines, &postal_code, &city, country).ok()
        },
    )
}

proptest! {
    #[test]
    fn window_block_has_at_most_six_non_empty_lines_of_at_most_38_characters(
        a in valid_address(),
        recipient in "\\PC{0,60}",
    ) {
        let block = a.window_block(&recipient);
        prop_assert!(block.len() <= ADDRESS_BLOCK_MAX_LINES, "{:?}", block);
        prop_assert!(block.len() >= 2, "{:?}", block);
        for line in &block {
            prop_assert!(!line.is_empty() && line.chars().count() <= ADDRESS_LINE_MAX_CHARS, "{:?}", block);
        }
    }

    #[test]
    fn address_survives_a_serde_round_trip(a in valid_address()) {
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<PostalAddress>(&json).unwrap(), a);
    }
}
