//! The generator: both framings, key trimming, escaped identifiers, zero fields.

use super::*;

#[test]
fn deflate_framing_verifies_and_inflates_to_the_same_json_as_stored() {
    let stored = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let deflate = stored.clone().with_framing(Framing::Deflate);
    let userbuf = private_map_userbuf("xiaojun", 1_400_000_000, 10000, None, 1_715_552_000, 255);
    let pairs = [
        (
            stored.gen("xiaojun", EXPIRE, NOW),
            deflate.gen("xiaojun", EXPIRE, NOW),
        ),
        (
            stored.gen_with_userbuf("xiaojun", EXPIRE, NOW, &userbuf),
            deflate.gen_with_userbuf("xiaojun", EXPIRE, NOW, &userbuf),
        ),
    ];
    for (stored_token, deflate_token) in pairs {
        assert_ne!(stored_token, deflate_token);
        assert_eq!(
            inflate_token(&stored_token).unwrap(),
            inflate_token(&deflate_token).unwrap()
        );
        assert!(check(&deflate_token).is_ok());
        assert!(check(&stored_token).is_ok());
    }
}

#[test]
fn generator_trims_the_configured_key() {
    let padded = UserSigGenerator::new(DEMO_SDKAPPID, &format!("  {DEMO_KEY}\n"));
    assert_eq!(padded.gen("xiaojun", EXPIRE, NOW), demo_token());
}

#[test]
fn verifier_does_not_trim_the_key() {
    let key_with_newline = format!("{DEMO_KEY}\n");
    assert_eq!(
        verify(
            &demo_token(),
            DEMO_SDKAPPID,
            &key_with_newline,
            "xiaojun",
            NOW,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::SigMismatch)
    );
    assert!(!decode(&demo_token())
        .unwrap()
        .hmac_matches(&key_with_newline));
    assert!(decode(&demo_token()).unwrap().hmac_matches(DEMO_KEY));
}

#[test]
fn generator_escapes_identifiers_like_go_and_still_verifies() {
    let generator = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let identifier = "a<b>&\"c\\/é";
    let token = generator.gen(identifier, EXPIRE, NOW);
    let document = String::from_utf8(inflate_token(&token).unwrap()).unwrap();
    assert!(
        document.contains(r#""TLS.identifier":"a\u003cb\u003e\u0026\"c\\/é""#),
        "{document}"
    );
    let decoded = verify(
        &token,
        DEMO_SDKAPPID,
        DEMO_KEY,
        identifier,
        NOW,
        ExpectUserbuf::Any,
    )
    .unwrap();
    assert_eq!(decoded.identifier, identifier);
}

#[test]
fn generator_keeps_zero_fields_and_empty_userbuf_verifiable() {
    // Go master's omitempty would drop these; ours must still verify.
    let generator = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let token = generator.gen_with_userbuf("xiaojun", 0, 0, b"");
    let decoded = verify_xiaojun(&token, 0, ExpectUserbuf::Exactly(b"")).unwrap();
    assert_eq!((decoded.time, decoded.expire), (0, 0));
    assert_eq!(decoded.userbuf_b64.as_deref(), Some(""));
}
