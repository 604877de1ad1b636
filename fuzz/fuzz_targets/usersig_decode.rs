//! The UserSig decoder and verifier: `decode`, `verify` and `inflate_token` on tokens built
//! from the fuzzer's bytes at each layer.
//!
//! The first byte picks the layer the rest of the input is fed to, so that mutations reach
//! the inner layers without first having to forge a valid zlib stream:
//! - 0: the token string itself (base64 of either alphabet, then zlib, then JSON);
//! - 1: the JSON document, wrapped here in zlib (stored blocks) and Tencent base64;
//! - 2: the zlib stream, wrapped here in Tencent base64;
//! - 3: fields for the generator (time, expire, identifier), whose token must verify.
//!
//! Invariants (beyond "never panics" and "never allocates past the 64 KiB cap"):
//! - every decode failure is a malformed-token error (the server's 70003);
//! - whatever decodes re-encodes canonically and decodes to the same fields;
//! - `verify` agrees with `decode`: for the fields a token carries, it fails only on the
//!   documented check (sdkappid, identifier, expiry, HMAC) and succeeds iff the HMAC matches;
//! - a generated token verifies, and is expired exactly one second after `time + expire`.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use timacct_usersig::{
    decode, inflate_token, tencent_b64_encode, verify, ExpectUserbuf, UserSigGenerator,
    VerifyError, MAX_INFLATED,
};

/// The key of the conformance vectors (`crates/timacct-usersig/tests/data/usersig-vectors.json`,
/// described in `docs/protocol.md`), so that the seed corpus holds tokens that verify.
const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

/// A zlib stream of stored blocks (Go master's framing), built by hand: cheap enough to run
/// on every input, where a deflate encoder's set-up would dominate the run time.
fn zlib_stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = bytes.chunks(0xFFFF).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Decode a token and check every invariant that holds for whatever it says.
fn check_token(token: &str) {
    if let Ok(document) = inflate_token(token) {
        assert!(document.len() <= MAX_INFLATED);
    }
    let decoded = match decode(token) {
        Ok(decoded) => decoded,
        Err(e) => {
            assert!(
                e.is_malformed(),
                "decode failed with a non-parse error: {e:?}"
            );
            // verify runs decode first and reports the same error.
            assert_eq!(
                verify(token, 1, KEY, "x", 0, ExpectUserbuf::Any).err(),
                Some(e)
            );
            return;
        }
    };

    // Canonical re-encoding round-trips the fields.
    let mut fields = serde_json::Map::new();
    fields.insert("TLS.ver".into(), "2.0".into());
    fields.insert("TLS.identifier".into(), decoded.identifier.clone().into());
    fields.insert("TLS.sdkappid".into(), decoded.sdkappid.into());
    fields.insert("TLS.time".into(), decoded.time.into());
    fields.insert("TLS.expire".into(), decoded.expire.into());
    if let Some(userbuf) = &decoded.userbuf_b64 {
        fields.insert("TLS.userbuf".into(), userbuf.clone().into());
    }
    fields.insert("TLS.sig".into(), STANDARD.encode(&decoded.sig).into());
    let document = serde_json::to_vec(&fields).expect("a map serialises");
    if document.len() <= MAX_INFLATED {
        let again = tencent_b64_encode(&zlib_stored(&document));
        assert_eq!(
            decode(&again).as_ref(),
            Ok(&decoded),
            "canonical re-encoding"
        );
    }

    // verify agrees with the fields: each check in its documented order.
    let now = decoded.time;
    let result = verify(
        token,
        decoded.sdkappid,
        KEY,
        &decoded.identifier,
        now,
        ExpectUserbuf::Any,
    );
    if decoded.is_expired(now) {
        assert_eq!(result, Err(VerifyError::Expired));
    } else if decoded.hmac_matches(KEY) {
        assert_eq!(result.as_ref(), Ok(&decoded));
    } else {
        assert_eq!(result, Err(VerifyError::SigMismatch));
    }
    let other_app = decoded.sdkappid.wrapping_add(1);
    assert_eq!(
        verify(
            token,
            other_app,
            KEY,
            &decoded.identifier,
            now,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::SdkAppIdMismatch)
    );
    let other_user = format!("{}x", decoded.identifier);
    assert_eq!(
        verify(
            token,
            decoded.sdkappid,
            KEY,
            &other_user,
            now,
            ExpectUserbuf::Any
        ),
        Err(VerifyError::IdentifierMismatch)
    );
    // The userbuf expectations never panic, whatever the userbuf holds.
    let _ = decoded.userbuf();
    let _ = verify(
        token,
        decoded.sdkappid,
        KEY,
        &decoded.identifier,
        now,
        ExpectUserbuf::None,
    );
    let _ = verify(
        token,
        decoded.sdkappid,
        KEY,
        &decoded.identifier,
        now,
        ExpectUserbuf::Exactly(b"abc"),
    );
}

fn i64_at(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    for (slot, b) in buf.iter_mut().zip(bytes) {
        *slot = *b;
    }
    i64::from_le_bytes(buf)
}

/// Tokens from the generator always verify, and expire exactly after `time + expire`.
fn check_generated(rest: &[u8]) {
    let time = i64_at(rest.get(..8).unwrap_or_default());
    let expire = i64_at(rest.get(8..16).unwrap_or_default());
    let sdkappid = u64::from(rest.get(16).copied().unwrap_or(0)) + 1_400_000_000;
    let identifier: String = String::from_utf8_lossy(rest.get(17..).unwrap_or_default())
        .chars()
        .take(256)
        .collect();
    let token = UserSigGenerator::new(sdkappid, KEY).gen(&identifier, expire, time);
    check_token(&token);
    let result = verify(
        &token,
        sdkappid,
        KEY,
        &identifier,
        time,
        ExpectUserbuf::None,
    );
    if expire < 0 {
        assert_eq!(result, Err(VerifyError::Expired));
    } else {
        let decoded = result.expect("a generated token verifies");
        assert_eq!(decoded.identifier, identifier);
        assert_eq!((decoded.time, decoded.expire), (time, expire));
        if let Some(after) = time.checked_add(expire).and_then(|t| t.checked_add(1)) {
            assert_eq!(
                verify(
                    &token,
                    sdkappid,
                    KEY,
                    &identifier,
                    after,
                    ExpectUserbuf::Any
                ),
                Err(VerifyError::Expired)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check_token(&String::from_utf8_lossy(rest)),
        1 => check_token(&tencent_b64_encode(&zlib_stored(rest))),
        2 => check_token(&tencent_b64_encode(rest)),
        _ => check_generated(rest),
    }
});
