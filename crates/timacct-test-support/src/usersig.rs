//! UserSigs and query strings as a caller builds them, and hand-made tokens for the tests
//! that need a UserSig no generator would make.

use timacct_usersig::{hmac_b64, sign_content, tencent_b64_encode, UserSigGenerator};

/// The current unix time.
pub fn now() -> i64 {
    timacct_proto::unix_now()
}

/// A fresh UserSig valid for a day.
pub fn sig(sdkappid: u32, key: &str, identifier: &str) -> String {
    UserSigGenerator::new(u64::from(sdkappid), key).gen(identifier, 86_400, now())
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn enc(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The full query string of a call, as documented.
pub fn query(sdkappid: u32, identifier: &str, usersig: &str) -> String {
    format!(
        "sdkappid={sdkappid}&identifier={}&usersig={}&random=99999999&contenttype=json",
        enc(identifier),
        enc(usersig)
    )
}

/// A zlib stream of one stored block: a token around exact bytes, written by hand so that no
/// compressor's choices get between the test and the bytes it means.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 0xFFFF);
    let len = data.len() as u16;
    let mut out = vec![0x78, 0x01, 0x01];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A token wrapping exactly this JSON document.
pub fn token_from_document(document: &str) -> String {
    tencent_b64_encode(&zlib_stored(document.as_bytes()))
}

/// The correct `TLS.sig` for these fields.
pub fn tls_sig(key: &str, identifier: &str, sdkappid: u64, time: i64, expire: i64) -> String {
    hmac_b64(key, &sign_content(identifier, sdkappid, time, expire, None))
}
