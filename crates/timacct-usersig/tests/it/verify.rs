//! Verification failures and tolerances: wrong keys and fields, expiry boundaries, every kind
//! of damaged token, lenient JSON, and the reasons each error reports.

use super::*;

#[test]
fn wrong_key_is_sig_mismatch() {
    let other_key = "0000850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    assert_eq!(
        verify(
            &demo_token(),
            DEMO_SDKAPPID,
            other_key,
            "xiaojun",
            NOW,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::SigMismatch)
    );
}

#[test]
fn other_sdkappid_is_sdkappid_mismatch() {
    assert_eq!(
        verify(
            &demo_token(),
            1_400_000_001,
            DEMO_KEY,
            "xiaojun",
            NOW,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::SdkAppIdMismatch)
    );
}

#[test]
fn other_identifier_is_identifier_mismatch() {
    assert_eq!(
        verify(
            &demo_token(),
            DEMO_SDKAPPID,
            DEMO_KEY,
            "xiaojun2",
            NOW,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::IdentifierMismatch)
    );
}

#[test]
fn boundary_second_is_valid_and_the_next_is_expired() {
    let token = demo_token();
    let at = |now| verify_xiaojun(&token, now, ExpectUserbuf::Any);
    assert!(at(NOW + EXPIRE).is_ok());
    assert_eq!(at(NOW + EXPIRE + 1), Err(VerifyError::Expired));
    // No "not before" check, like both official verifiers.
    assert!(at(NOW - 1_000_000).is_ok());
}

#[test]
fn a_changed_character_never_yields_a_different_valid_token_nor_panics() {
    let (_, _, vectors) = spec();
    let tokens: Vec<String> = vectors
        .iter()
        .map(|v| v.usersig.clone())
        .chain([demo_token()])
        .collect();
    for token in tokens {
        let original = decode(&token).unwrap();
        let mut rejected = 0;
        for (i, c) in token.char_indices() {
            let replacement = if c == 'A' { 'B' } else { 'A' };
            let mut flipped = token.clone();
            flipped.replace_range(i..i + c.len_utf8(), &replacement.to_string());
            let result = verify(
                &flipped,
                original.sdkappid,
                DEMO_KEY,
                &original.identifier,
                original.time,
                ExpectUserbuf::Any,
            );
            match result {
                // Every byte of a token's zlib stream is covered by its structure or by the
                // Adler-32 of the document (`docs/protocol.md` §4.4 step 2): a change that
                // does not leave the document as it was is refused before any field is read
                // (70003), never as a mismatch of a field or of the HMAC.
                Err(e) => {
                    assert!(e.is_malformed(), "{flipped}: {e:?}");
                    rejected += 1;
                }
                // Deflate ignores the padding bits after a stored-block header and after the
                // last code, so a change confined to them can leave the document untouched
                // (about 150 of the 235k one-character variants of the spec tokens). These
                // A/B flips happen to hit none, but the property worth holding is this one.
                Ok(decoded) => {
                    assert_eq!(decoded, original, "{flipped} verified with changed content");
                    assert_eq!(inflate_token(&flipped), inflate_token(&token));
                }
            }
        }
        assert!(
            rejected * 10 > token.len() * 9,
            "{token}: only {rejected} rejected"
        );
    }
}

/// The middle of a token in the Go layout (one stored block) spells its document: another
/// base64 digit there changes the document's bytes, and the stream's Adler-32 then no longer
/// matches (`docs/protocol.md` §4.4 step 2), before any field is read.
#[test]
fn changing_a_character_of_the_document_is_rejected() {
    let token = demo_token();
    let middle = token.len() / 2;
    let c = token.as_bytes()[middle] as char;
    let mut flipped = token.clone();
    flipped.replace_range(middle..=middle, if c == 'A' { "B" } else { "A" });
    assert_eq!(check(&flipped), Err(VerifyError::Zlib));
}

#[test]
fn truncated_token_is_zlib_error() {
    let token = demo_token();
    // Cut at a multiple of four characters so the base64 itself stays valid.
    let half = &token[..token.len() / 2 / 4 * 4];
    assert_eq!(check(half), Err(VerifyError::Zlib));
    // Losing only the Adler-32 trailer is also a truncated stream.
    let mut compressed = STANDARD
        .decode(token.replace('*', "+").replace('-', "/").replace('_', "="))
        .unwrap();
    compressed.truncate(compressed.len() - 4);
    assert_eq!(
        check(&tencent_b64_encode(&compressed)),
        Err(VerifyError::Zlib)
    );
    // And a wrong Adler-32 is a corrupt stream.
    let last = compressed.len() - 1;
    compressed[last] ^= 0xff;
    assert_eq!(
        check(&tencent_b64_encode(&compressed)),
        Err(VerifyError::Zlib)
    );
}

#[test]
fn empty_token_is_empty_usersig() {
    assert_eq!(check(""), Err(VerifyError::EmptyUserSig));
}

#[test]
fn garbage_is_base64_error() {
    assert_eq!(check("!!!!"), Err(VerifyError::Base64));
    assert_eq!(check("eJyr\u{e9}"), Err(VerifyError::Base64));
    // One leftover character can never be base64.
    assert_eq!(check("eJyrV"), Err(VerifyError::Base64));
}

#[test]
fn base64_of_non_zlib_bytes_is_zlib_error() {
    assert_eq!(
        check(&tencent_b64_encode(b"{\"TLS.ver\":\"2.0\"}")),
        Err(VerifyError::Zlib)
    );
}

#[test]
fn bytes_after_the_zlib_stream_are_zlib_error() {
    let token = demo_token();
    let mut compressed = STANDARD
        .decode(token.replace('*', "+").replace('-', "/").replace('_', "="))
        .unwrap();
    assert!(check(&tencent_b64_encode(&compressed)).is_ok());
    compressed.push(0);
    assert_eq!(
        check(&tencent_b64_encode(&compressed)),
        Err(VerifyError::Zlib)
    );
    // Re-spelling the padding of a vector as data is the same thing.
    let padded = &spec().2[11].usersig;
    assert!(padded.ends_with('_'));
    let respelled = format!("{}A", &padded[..padded.len() - 1]);
    assert_eq!(check(&respelled), Err(VerifyError::Zlib));
}

#[test]
fn non_json_documents_are_json_errors() {
    assert_eq!(check(&pack(b"not json at all")), Err(VerifyError::Json));
    assert_eq!(
        check(&pack(b"[\"TLS.ver\",\"2.0\"]")),
        Err(VerifyError::Json)
    );
    assert_eq!(check(&pack(b"\"2.0\"")), Err(VerifyError::Json));
    assert_eq!(
        check(&pack(b"{\"TLS.ver\":\"2.0\"")),
        Err(VerifyError::Json)
    );
    assert_eq!(
        check(&pack(b"{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"\xff\"}")),
        Err(VerifyError::Json)
    );
    assert_eq!(check(&pack(b"")), Err(VerifyError::Json));
}

#[test]
fn missing_or_wrong_version_is_version_error() {
    let fields = "\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":15552000,\"TLS.time\":1700000000,";
    for version in [
        "",
        "\"TLS.ver\":\"3.0\",",
        "\"TLS.ver\":2.0,",
        "\"TLS.ver\":\"2\",",
    ] {
        let document = signed_document_with(&format!("{version}{fields}"));
        assert_eq!(
            check(&pack(document.as_bytes())),
            Err(VerifyError::Version),
            "{document}"
        );
    }
    // The version is checked before any other field.
    assert_eq!(check(&pack(b"{}")), Err(VerifyError::Version));
}

#[test]
fn missing_fields_are_named() {
    let all = [
        ("TLS.identifier", "\"xiaojun\""),
        ("TLS.sdkappid", "1400000000"),
        ("TLS.time", "1700000000"),
        ("TLS.expire", "15552000"),
    ];
    for (left_out, _) in all {
        let members: String = all
            .iter()
            .filter(|(name, _)| *name != left_out)
            .map(|(name, value)| format!("\"{name}\":{value},"))
            .collect();
        let document = signed_document_with(&format!("\"TLS.ver\":\"2.0\",{members}"));
        assert_eq!(
            check(&pack(document.as_bytes())),
            Err(VerifyError::MissingField(left_out))
        );
    }
    let no_sig = "{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":15552000,\"TLS.time\":1700000000}";
    let result = check(&pack(no_sig.as_bytes()));
    assert_eq!(result, Err(VerifyError::MissingField("TLS.sig")));
    assert_eq!(result.unwrap_err().reason(), "missing field TLS.sig");
}

#[test]
fn mistyped_fields_are_bad_type() {
    let ok = |name: &str| match name {
        "TLS.identifier" => "\"xiaojun\"",
        "TLS.sdkappid" => "1400000000",
        "TLS.time" => "1700000000",
        "TLS.expire" => "15552000",
        _ => unreachable!(),
    };
    let cases: [(&'static str, &str); 12] = [
        ("TLS.sdkappid", "\"1400000000\""),
        ("TLS.sdkappid", "1400000000.0"),
        ("TLS.sdkappid", "-1"),
        ("TLS.sdkappid", "18446744073709551616"),
        ("TLS.time", "1700000000.5"),
        ("TLS.time", "1.7e9"),
        ("TLS.time", "9223372036854775808"),
        ("TLS.expire", "true"),
        ("TLS.expire", "null"),
        ("TLS.expire", "\"15552000\""),
        ("TLS.identifier", "12345"),
        ("TLS.identifier", "[\"xiaojun\"]"),
    ];
    for (field, bad) in cases {
        let members: String = ["TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire"]
            .iter()
            .map(|name| {
                format!(
                    "\"{name}\":{},",
                    if *name == field { bad } else { ok(name) }
                )
            })
            .collect();
        let document = signed_document_with(&format!("\"TLS.ver\":\"2.0\",{members}"));
        let result = check(&pack(document.as_bytes()));
        assert_eq!(result, Err(VerifyError::BadType(field)), "{document}");
        assert!(result.unwrap_err().is_malformed());
    }
    let prefix = "\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":15552000,\"TLS.time\":1700000000";
    for (document, field) in [
        (format!("{{{prefix},\"TLS.sig\":12}}"), "TLS.sig"),
        (
            format!("{{{prefix},\"TLS.sig\":\"not base64!\"}}"),
            "TLS.sig",
        ),
        (
            signed_document_with(&format!("{prefix},\"TLS.userbuf\":7,")),
            "TLS.userbuf",
        ),
        (
            signed_document_with(&format!("{prefix},\"TLS.userbuf\":null,")),
            "TLS.userbuf",
        ),
    ] {
        assert_eq!(
            check(&pack(document.as_bytes())),
            Err(VerifyError::BadType(field)),
            "{document}"
        );
    }
}

#[test]
fn huge_time_and_expire_do_not_overflow() {
    let content = sign_content("xiaojun", DEMO_SDKAPPID, i64::MAX, i64::MAX, None);
    let document = format!(
        "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":{max},\"TLS.time\":{max},\"TLS.sig\":\"{sig}\"}}",
        max = i64::MAX,
        sig = hmac_b64(DEMO_KEY, &content)
    );
    let token = pack(document.as_bytes());
    let decoded = verify_xiaojun(&token, i64::MAX, ExpectUserbuf::Any).unwrap();
    assert_eq!(decoded.expires_at(), 2 * i128::from(i64::MAX));
    assert!(!decoded.is_expired(i64::MAX));

    let content = sign_content("xiaojun", DEMO_SDKAPPID, i64::MIN, i64::MIN, None);
    let document = format!(
        "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":{min},\"TLS.time\":{min},\"TLS.sig\":\"{sig}\"}}",
        min = i64::MIN,
        sig = hmac_b64(DEMO_KEY, &content)
    );
    assert_eq!(
        verify(
            &pack(document.as_bytes()),
            DEMO_SDKAPPID,
            DEMO_KEY,
            "xiaojun",
            i64::MIN,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::Expired)
    );
}

#[test]
fn zlib_bomb_is_too_large() {
    let bomb = pack(&vec![0u8; 10 * 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024, "the bomb is small on the wire");
    let result = check(&bomb);
    assert_eq!(result, Err(VerifyError::TooLarge));
    assert_eq!(
        result.unwrap_err().reason(),
        "zlib decompress error: document too large"
    );
    // Exactly at the cap is still inflated (then rejected as JSON), one past it is not.
    assert_eq!(
        check(&pack(&vec![b' '; MAX_INFLATED])),
        Err(VerifyError::Json)
    );
    assert_eq!(
        check(&pack(&vec![b' '; MAX_INFLATED + 1])),
        Err(VerifyError::TooLarge)
    );
}

#[test]
fn standard_alphabet_missing_padding_and_spaces_are_accepted() {
    let (key, sdkappid, vectors) = spec();
    let mut exercised_every_substitution = false;
    for v in &vectors {
        let tencent = &v.usersig;
        exercised_every_substitution |=
            tencent.contains('*') && tencent.contains('-') && tencent.ends_with('_');
        let standard = tencent
            .replace('*', "+")
            .replace('-', "/")
            .replace('_', "=");
        let unpadded = standard.trim_end_matches('=').to_owned();
        // A standard token put unescaped in a URL query loses its '+' to spaces.
        let spaced = standard.replace('+', " ");
        let tencent_unpadded = tencent.trim_end_matches('_').to_owned();
        for token in [&standard, &unpadded, &spaced, &tencent_unpadded] {
            let result = verify(
                token,
                sdkappid,
                &key,
                &v.identifier,
                v.time,
                ExpectUserbuf::Any,
            );
            assert!(result.is_ok(), "{}: {token}: {result:?}", v.label);
        }
    }
    assert!(exercised_every_substitution);
}

#[test]
fn userbuf_expectations() {
    let generator = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let with_buf = generator.gen_with_userbuf("xiaojun", EXPIRE, NOW, b"abc");
    let without = demo_token();
    let at = |token: &str, expect| verify(token, DEMO_SDKAPPID, DEMO_KEY, "xiaojun", NOW, expect);
    assert_eq!(
        at(&with_buf, ExpectUserbuf::None),
        Err(VerifyError::UserbufTypeMismatch)
    );
    assert_eq!(
        at(&with_buf, ExpectUserbuf::Exactly(b"abd")),
        Err(VerifyError::UserbufMismatch)
    );
    assert_eq!(
        at(&with_buf, ExpectUserbuf::Exactly(b"abc"))
            .unwrap()
            .userbuf(),
        Some(b"abc".to_vec())
    );
    assert!(at(&with_buf, ExpectUserbuf::Any).is_ok());
    assert_eq!(
        at(&without, ExpectUserbuf::Exactly(b"abc")),
        Err(VerifyError::UserbufTypeMismatch)
    );
    assert!(at(&without, ExpectUserbuf::None).is_ok());
}

#[test]
fn userbuf_mismatch_is_reported_before_a_bad_sig() {
    let generator = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let token = generator.gen_with_userbuf("xiaojun", EXPIRE, NOW, b"abc");
    assert_eq!(
        verify(
            &token,
            DEMO_SDKAPPID,
            "wrong key",
            "xiaojun",
            NOW,
            ExpectUserbuf::Exactly(b"xyz")
        ),
        Err(VerifyError::UserbufMismatch)
    );
}

#[test]
fn any_key_order_spacing_and_trailing_newline_are_accepted() {
    let userbuf = "YWJj";
    let sig = xiaojun_sig(Some(userbuf));
    let document = format!(
        "{{ \"TLS.sig\" : \"{sig}\",\n  \"TLS.userbuf\": \"{userbuf}\", \"TLS.time\": 1700000000,\n\t\"TLS.expire\":15552000 , \"TLS.sdkappid\": 1400000000, \"TLS.identifier\": \"xiaojun\", \"TLS.ver\": \"2.0\" }}\n"
    );
    let token = pack(document.as_bytes());
    let decoded = verify_xiaojun(&token, NOW, ExpectUserbuf::Exactly(b"abc")).unwrap();
    assert_eq!(decoded.userbuf_b64.as_deref(), Some(userbuf));
}

#[test]
fn escaped_identifier_is_unescaped_before_comparing() {
    let document = signed_document_with(
        "\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"\\u0078iaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":15552000,\"TLS.time\":1700000000,",
    );
    assert!(document.contains(r"\u0078iaojun"));
    let decoded = check(&pack(document.as_bytes())).unwrap();
    assert_eq!(decoded.identifier, "xiaojun");
}

#[test]
fn escaped_slashes_in_sig_and_userbuf_are_unescaped_before_signing() {
    // As PHP's json_encode writes them (`docs/protocol.md` §4.2).
    let userbuf = "AAAHeGlhb2p1blNyTgAAACcQZkE/AAAAAP8AAAAA";
    let sig = xiaojun_sig(Some(userbuf));
    let document = format!(
        "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.expire\":15552000,\"TLS.time\":1700000000,\"TLS.userbuf\":\"{}\",\"TLS.sig\":\"{}\"}}",
        userbuf.replace('/', "\\/"),
        sig.replace('/', "\\/"),
    );
    assert!(check(&pack(document.as_bytes())).is_ok());
}

#[test]
fn reasons_and_malformed_classification() {
    let expected = [
        (VerifyError::EmptyUserSig, "empty usersig", true),
        (VerifyError::Base64, "base64 decode error", true),
        (
            VerifyError::Zlib,
            "zlib decompress error: truncated stream",
            true,
        ),
        (
            VerifyError::TooLarge,
            "zlib decompress error: document too large",
            true,
        ),
        (VerifyError::Json, "json decode error", true),
        (VerifyError::Version, "version not match", true),
        (
            VerifyError::MissingField("TLS.time"),
            "missing field TLS.time",
            true,
        ),
        (
            VerifyError::BadType("TLS.time"),
            "bad type for TLS.time",
            true,
        ),
        (VerifyError::SdkAppIdMismatch, "sdk appid not match", false),
        (
            VerifyError::IdentifierMismatch,
            "identifier not match",
            false,
        ),
        (VerifyError::Expired, "expired", false),
        (
            VerifyError::UserbufTypeMismatch,
            "userbuf type not match",
            false,
        ),
        (VerifyError::UserbufMismatch, "userbuf not match", false),
        (VerifyError::SigMismatch, "sig not match", false),
    ];
    for (error, reason, malformed) in expected {
        assert_eq!(error.reason(), reason);
        assert_eq!(error.to_string(), reason);
        assert_eq!(error.is_malformed(), malformed, "{reason}");
    }
}

#[test]
fn generator_debug_does_not_print_the_key() {
    let generator = UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY);
    let printed = format!("{generator:?}");
    assert!(!printed.contains(DEMO_KEY), "{printed}");
    assert!(printed.contains("1400000000"));
}
