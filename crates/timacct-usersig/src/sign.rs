//! The signed text and its HMAC: the only canonical part of a UserSig (`docs/protocol.md` §4.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Build the exact text that `TLS.sig` is the HMAC of.
///
/// Lines come in the order identifier, sdkappid, **time, expire**, then the userbuf line only
/// when a userbuf is present, each ending in a real `\n` — whatever order the JSON uses.
/// `userbuf_b64` must be the string exactly as carried in `TLS.userbuf`.
pub fn sign_content(
    identifier: &str,
    sdkappid: u64,
    time: i64,
    expire: i64,
    userbuf_b64: Option<&str>,
) -> String {
    let mut content = format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    if let Some(userbuf) = userbuf_b64 {
        content.push_str("TLS.userbuf:");
        content.push_str(userbuf);
        content.push('\n');
    }
    content
}

/// `TLS.sig` for a signed text: standard base64 (padded) of HMAC-SHA256 keyed with the
/// secret key string's UTF-8 bytes.
///
/// The key is used exactly as given — not hex-decoded, not trimmed — because that is what
/// every official library does; trimming configured keys is the caller's job.
pub fn hmac_b64(key: &str, content: &str) -> String {
    STANDARD.encode(hmac_sha256(key.as_bytes(), content.as_bytes()))
}

/// SHA-256's block size, the length HMAC pads its key to.
const BLOCK_LEN: usize = 64;

/// HMAC-SHA256 that cannot fail.
///
/// `Hmac::new_from_slice` returns a `Result` even though HMAC takes keys of any length. To
/// stay free of `unwrap`, the key is brought to block length here exactly as RFC 2104 does it
/// (hash it if longer than a block, then pad with zeros) and handed to the infallible
/// fixed-size constructor; the result is bit-identical (see the unit test).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        let hashed = Sha256::digest(key);
        block[..hashed.len()].copy_from_slice(&hashed);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new(GenericArray::from_slice(&block));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn block_padded_key_equals_hmac_crate_for_every_key_length() {
        for len in [0, 1, 31, 63, 64, 65, 128, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"TLS.identifier:x\n");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(
                hmac_sha256(&key, b"TLS.identifier:x\n"),
                expected,
                "key length {len}"
            );
        }
    }
}
