//! The outer wrapping of a token: Tencent's base64 variant around a zlib stream.

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use flate2::{Decompress, FlushDecompress, Status};

use crate::VerifyError;

/// The most bytes a token may inflate to (64 KiB).
///
/// Real documents are a few hundred bytes; the cap keeps a zlib bomb from allocating more
/// than this, since the token comes from an untrusted client.
pub const MAX_INFLATED: usize = 64 * 1024;

/// Standard alphabet, padding optional on decode.
///
/// Some clients strip the `=`/`_` padding, and the official decoders still accept the token,
/// so we do too. Non-zero trailing bits stay rejected: no encoder produces them, and
/// rejecting them means one token string has one meaning.
pub(crate) const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encode bytes in Tencent's base64 variant: standard base64 with padding, then `+`→`*`,
/// `/`→`-`, `=`→`_` (`docs/protocol.md` §4.2).
///
/// This is *not* RFC 4648 base64url; using base64url here yields tokens Tencent rejects.
pub fn tencent_b64_encode(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// Decode a token's outer base64, accepting what the official decoders accept.
///
/// Both the Tencent variant (`*` `-` `_`) and standard base64 (`+` `/` `=`) are accepted,
/// because the official decoders merely reverse the substitution and tokens from the
/// `tls_sig_api` crate use the standard alphabet. Padding may be missing. A space is read
/// as `+`: a standard-base64 token put unescaped into a URL query string (the REST API takes
/// `usersig=` there) arrives with its `+` turned into spaces.
pub fn tencent_b64_decode(token: &str) -> Result<Vec<u8>, VerifyError> {
    let standard: String = token
        .chars()
        .map(|c| match c {
            '*' | ' ' => '+',
            '-' => '/',
            '_' => '=',
            other => other,
        })
        .collect();
    STD_LENIENT
        .decode(standard)
        .map_err(|_| VerifyError::Base64)
}

/// Undo the base64 and zlib layers of a token and return the JSON document's bytes.
///
/// Exposed so tests and diagnostics can look at the exact document a client sent. Inflation
/// stops with [`VerifyError::TooLarge`] once the output would pass [`MAX_INFLATED`]; a stream
/// that is cut short, corrupt, fails its Adler-32 check, or is followed by extra bytes gives
/// [`VerifyError::Zlib`] (stricter than Go, which ignores trailing bytes).
pub fn inflate_token(usersig: &str) -> Result<Vec<u8>, VerifyError> {
    if usersig.is_empty() {
        return Err(VerifyError::EmptyUserSig);
    }
    let compressed = tencent_b64_decode(usersig)?;
    inflate_capped(&compressed, MAX_INFLATED)
}

/// Inflate a zlib (RFC 1950) stream into at most `cap` bytes.
///
/// Driven through flate2's streaming `Decompress` with a small fixed output buffer, so memory
/// stays at `cap` plus the decoder's window however large the stream claims to be.
fn inflate_capped(input: &[u8], cap: usize) -> Result<Vec<u8>, VerifyError> {
    let mut inflater = Decompress::new(true);
    let mut chunk = [0u8; 8 * 1024];
    let mut out = Vec::new();
    loop {
        let in_before = inflater.total_in();
        let out_before = inflater.total_out();
        let rest = usize::try_from(in_before)
            .ok()
            .and_then(|consumed| input.get(consumed..))
            .unwrap_or_default();
        let status = inflater
            .decompress(rest, &mut chunk, FlushDecompress::None)
            .map_err(|_| VerifyError::Zlib)?;
        let produced = usize::try_from(inflater.total_out() - out_before)
            .map_err(|_| VerifyError::TooLarge)?;
        let fresh = chunk.get(..produced).ok_or(VerifyError::Zlib)?;
        if out.len() + fresh.len() > cap {
            return Err(VerifyError::TooLarge);
        }
        out.extend_from_slice(fresh);
        match status {
            // Bytes after the Adler-32 are refused: no generator writes them, and accepting
            // them would let one token be re-spelled (e.g. via its padding) and still verify.
            Status::StreamEnd if inflater.total_in() == input.len() as u64 => return Ok(out),
            Status::StreamEnd => return Err(VerifyError::Zlib),
            // With output space free, no progress means the input ran out before the
            // stream's end (or its checksum): the token was truncated.
            Status::Ok | Status::BufError => {
                if produced == 0 && inflater.total_in() == in_before {
                    return Err(VerifyError::Zlib);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn tencent_alphabet_round_trips_every_byte_value() {
        let bytes: Vec<u8> = (0..=255).collect();
        let encoded = tencent_b64_encode(&bytes);
        assert!(!encoded.contains(['+', '/', '=']));
        assert_eq!(tencent_b64_decode(&encoded).unwrap(), bytes);
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // "YWJjZA__" is "abcd"; "YWJjZB__" differs only in discarded bits.
        assert_eq!(tencent_b64_decode("YWJjZA__").unwrap(), b"abcd");
        assert_eq!(tencent_b64_decode("YWJjZB__"), Err(VerifyError::Base64));
    }

    #[test]
    fn inflate_stops_exactly_at_the_cap() {
        use std::io::Write as _;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&[b'x'; 1000]).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(inflate_capped(&z, 1000).unwrap().len(), 1000);
        assert_eq!(inflate_capped(&z, 999), Err(VerifyError::TooLarge));
    }
}
