//! The spec vectors (`tests/data/usersig-vectors.json`): each one's signed text, HMAC,
//! inflated JSON, fields, window and userbuf, and the Go vectors byte for byte.

use super::*;

#[test]
fn spec_file_has_the_sixteen_vectors_for_the_demo_key() {
    let (key, sdkappid, vectors) = spec();
    assert_eq!(key, DEMO_KEY);
    assert_eq!(sdkappid, DEMO_SDKAPPID);
    assert_eq!(vectors.len(), 16);
}

#[test]
fn every_vector_sign_content_and_hmac_match() {
    let (key, sdkappid, vectors) = spec();
    for v in &vectors {
        let content = sign_content(
            &v.identifier,
            sdkappid,
            v.time,
            v.expire,
            v.userbuf_b64.as_deref(),
        );
        assert_eq!(content, v.sign_content, "{}", v.label);
        assert_eq!(hmac_b64(&key, &v.sign_content), v.hmac_b64, "{}", v.label);
    }
}

#[test]
fn every_vector_inflates_to_its_exact_json() {
    let (_, _, vectors) = spec();
    for v in &vectors {
        let document = inflate_token(&v.usersig).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(String::from_utf8(document).unwrap(), v.json, "{}", v.label);
    }
}

#[test]
fn every_vector_decodes_to_its_fields() {
    let (_, sdkappid, vectors) = spec();
    for v in &vectors {
        let decoded = decode(&v.usersig).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(decoded.identifier, v.identifier, "{}", v.label);
        assert_eq!(decoded.sdkappid, sdkappid, "{}", v.label);
        assert_eq!(decoded.time, v.time, "{}", v.label);
        assert_eq!(decoded.expire, v.expire, "{}", v.label);
        assert_eq!(decoded.userbuf_b64, v.userbuf_b64, "{}", v.label);
        assert_eq!(decoded.userbuf(), v.userbuf(), "{}", v.label);
        assert_eq!(
            decoded.sig,
            STANDARD.decode(&v.hmac_b64).unwrap(),
            "{}",
            v.label
        );
        assert_eq!(decoded.sig.len(), 32, "{}", v.label);
        assert_eq!(
            decoded.expires_at(),
            i128::from(v.verify_now_expired - 1),
            "{}",
            v.label
        );
    }
}

#[test]
fn every_vector_verifies_in_its_window_and_expires_after_it() {
    let (key, sdkappid, vectors) = spec();
    for v in &vectors {
        for &now in &v.verify_now_ok {
            let result = verify(
                &v.usersig,
                sdkappid,
                &key,
                &v.identifier,
                now,
                ExpectUserbuf::Any,
            );
            assert!(result.is_ok(), "{} at {now}: {result:?}", v.label);
        }
        assert_eq!(
            verify(
                &v.usersig,
                sdkappid,
                &key,
                &v.identifier,
                v.verify_now_expired,
                ExpectUserbuf::Any
            ),
            Err(VerifyError::Expired),
            "{}",
            v.label
        );
    }
}

#[test]
fn every_vector_honours_userbuf_expectations() {
    let (key, sdkappid, vectors) = spec();
    for v in &vectors {
        let at = |expect| verify(&v.usersig, sdkappid, &key, &v.identifier, v.time, expect);
        match v.userbuf() {
            Some(userbuf) => {
                assert!(at(ExpectUserbuf::Exactly(&userbuf)).is_ok(), "{}", v.label);
                assert_eq!(
                    at(ExpectUserbuf::None),
                    Err(VerifyError::UserbufTypeMismatch),
                    "{}",
                    v.label
                );
                assert_eq!(
                    at(ExpectUserbuf::Exactly(b"other")),
                    Err(VerifyError::UserbufMismatch),
                    "{}",
                    v.label
                );
            }
            None => {
                assert!(at(ExpectUserbuf::None).is_ok(), "{}", v.label);
                assert_eq!(
                    at(ExpectUserbuf::Exactly(b"abc")),
                    Err(VerifyError::UserbufTypeMismatch),
                    "{}",
                    v.label
                );
            }
        }
    }
}

#[test]
fn go_vectors_are_reproduced_byte_for_byte_with_stored_framing() {
    let (key, sdkappid, vectors) = spec();
    let generator = UserSigGenerator::new(sdkappid, &key);
    let go: Vec<&Vector> = vectors
        .iter()
        .filter(|v| v.profile == "go" && v.usersig_byte_exact)
        .collect();
    assert_eq!(
        go.len(),
        4,
        "the spec has four byte-exact Go-master vectors"
    );
    for v in go {
        let token = match v.userbuf() {
            Some(userbuf) => generator.gen_with_userbuf(&v.identifier, v.expire, v.time, &userbuf),
            None => generator.gen(&v.identifier, v.expire, v.time),
        };
        assert_eq!(token, v.usersig, "{}", v.label);
    }
}

#[test]
fn private_map_userbufs_match_the_spec_layout() {
    let (_, sdkappid, vectors) = spec();
    let sdkappid = u32::try_from(sdkappid).unwrap();
    let exp = u32::try_from(NOW + EXPIRE).unwrap();
    let numeric = private_map_userbuf("xiaojun", sdkappid, 10000, None, exp, 255);
    let string_room = private_map_userbuf("xiaojun", sdkappid, 0, Some("1000000040"), exp, 255);
    assert_eq!(
        STANDARD.encode(&numeric),
        "AAAHeGlhb2p1blNyTgAAACcQZkE/AAAAAP8AAAAA"
    );
    assert_eq!(
        STANDARD.encode(&string_room),
        "AQAHeGlhb2p1blNyTgAAAAAAZkE/AAAAAP8AAAAAAAoxMDAwMDAwMDQw"
    );
    // Both userbufs occur in the vectors file (php, node and go profiles).
    for expected in [&numeric, &string_room] {
        let carrying = vectors
            .iter()
            .filter(|v| v.userbuf().as_ref() == Some(expected))
            .count();
        assert_eq!(carrying, 3);
    }
}

#[test]
fn private_map_keys_match_the_go_vectors_byte_for_byte() {
    let (key, sdkappid, vectors) = spec();
    let generator = UserSigGenerator::new(sdkappid, &key);
    let go_token = |userbuf_b64: &str| {
        vectors
            .iter()
            .find(|v| v.profile == "go" && v.userbuf_b64.as_deref() == Some(userbuf_b64))
            .map(|v| v.usersig.clone())
            .expect("go vector")
    };
    assert_eq!(
        generator.gen_private_map_key("xiaojun", EXPIRE, NOW, 10000, 255),
        go_token("AAAHeGlhb2p1blNyTgAAACcQZkE/AAAAAP8AAAAA")
    );
    assert_eq!(
        generator.gen_private_map_key_with_string_room_id(
            "xiaojun",
            EXPIRE,
            NOW,
            "1000000040",
            255
        ),
        go_token("AQAHeGlhb2p1blNyTgAAAAAAZkE/AAAAAP8AAAAAAAoxMDAwMDAwMDQw")
    );
}
