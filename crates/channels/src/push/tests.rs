use super::*;

fn b64(text: &str) -> Vec<u8> {
    decode_base64url(text).unwrap()
}

/// RFC 8291 Appendix A, byte for byte.
#[test]
fn encryption_reproduces_the_rfc_8291_example() {
    let keys = SubscriptionKeys::parse(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "BTBZMqHH6r4Tts7J_aSIgg",
    )
    .unwrap();
    let as_private: [u8; 32] = b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")
        .try_into()
        .unwrap();
    let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
    let body = encrypt_with(
        b"When I grow up, I want to be a watermelon",
        &keys,
        &as_private,
        &salt,
    )
    .unwrap();
    assert_eq!(
        B64.encode(&body),
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml\
             mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT\
             pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    );
    // The example's ephemeral public key is the one derived from its private key.
    assert_eq!(
        B64.encode(&body[21..86]),
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
    );
}

#[test]
fn payloads_too_long_for_one_push_message_are_refused_for_good() {
    let keys = SubscriptionKeys::parse(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "BTBZMqHH6r4Tts7J_aSIgg",
    )
    .unwrap();
    let longest = encrypt(&[b'a'; MAX_PAYLOAD], &keys).unwrap();
    assert_eq!(longest.len(), MAX_BODY);
    assert!(matches!(
        encrypt(&[b'a'; MAX_PAYLOAD + 1], &keys),
        Err(ChannelError::Permanent(_))
    ));
}

#[test]
fn subscription_keys_must_be_a_curve_point_and_a_16_byte_secret() {
    let point =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    assert!(SubscriptionKeys::parse(point, "BTBZMqHH6r4Tts7J_aSIgg").is_ok());
    assert!(SubscriptionKeys::parse(point, "BTBZMqHH6r4Tts7J_aSIgg==").is_ok());
    assert_eq!(
        SubscriptionKeys::parse(point, "BTBZMqHH").unwrap_err().0,
        "auth"
    );
    // The right length, but the last byte of y changed: no longer on the curve.
    let off_curve =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw8";
    assert_eq!(
        SubscriptionKeys::parse(off_curve, "BTBZMqHH6r4Tts7J_aSIgg")
            .unwrap_err()
            .0,
        "p256dh"
    );
    assert_eq!(
        SubscriptionKeys::parse("not base64!", "BTBZMqHH6r4Tts7J_aSIgg")
            .unwrap_err()
            .0,
        "p256dh"
    );
}

#[test]
fn vapid_keys_round_trip_through_their_base64url_form() {
    let key = VapidKey::generate();
    let again = VapidKey::from_base64url(&key.private_base64url()).unwrap();
    assert_eq!(again.public_base64url(), key.public_base64url());
    assert_eq!(b64(key.public_base64url()).len(), 65);
    assert!(VapidKey::from_base64url("c2hvcnQ").is_err());
}

#[test]
fn subjects_must_be_mailto_or_https() {
    let config = |subject: &str| Config::new(VapidKey::generate(), subject);
    assert!(WebPush::new(config("mailto:technique@cabinet.example")).is_ok());
    assert!(WebPush::new(config("https://cabinet.example/contact")).is_ok());
    assert_eq!(
        WebPush::new(config("technique@cabinet.example"))
            .err()
            .unwrap()
            .field,
        "subject"
    );
}

#[test]
fn failures_are_classified_by_status() {
    let now: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
    let mut headers = HeaderMap::new();
    let at = |code: u16, headers: &HeaderMap| {
        failure(StatusCode::from_u16(code).unwrap(), headers, "", now)
    };
    assert!(matches!(at(410, &headers), ChannelError::Gone(_)));
    assert!(matches!(at(404, &headers), ChannelError::Gone(_)));
    assert!(matches!(at(413, &headers), ChannelError::Permanent(_)));
    assert!(matches!(at(400, &headers), ChannelError::Permanent(_)));
    assert!(at(401, &headers).is_retryable());
    assert!(at(403, &headers).is_retryable());
    assert!(at(503, &headers).is_retryable());
    headers.insert(reqwest::header::RETRY_AFTER, "30".parse().unwrap());
    assert_eq!(
        at(429, &headers),
        ChannelError::Transient {
            reason: "the push service answered HTTP 429".into(),
            retry_after: Some(SignedDuration::from_secs(30)),
        }
    );
}

#[test]
fn only_public_https_endpoints_are_posted_to_unless_the_operator_allows_loopback() {
    let strict = NetPolicy::default();
    let tests = NetPolicy::loopback_for_tests();
    let mozilla = "https://updates.push.services.mozilla.com/wpush/v2/x";
    assert!(endpoint_url(mozilla, &strict).is_ok());
    assert!(endpoint_url("http://127.0.0.1:4000/push/x", &strict).is_err());
    assert!(endpoint_url("https://127.1:4000/push/x", &strict).is_err());
    assert!(endpoint_url("http://127.0.0.1:4000/push/x", &tests).is_ok());
    assert!(endpoint_url("http://push.example/x", &strict).is_err());
    assert!(endpoint_url("app", &strict).is_err());
}
