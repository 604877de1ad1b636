//! Making tokens, byte-identical to the Go master library (`docs/protocol.md` §4.2, §4.3).

use std::fmt;
use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use flate2::write::ZlibEncoder;
use flate2::Compression;

use crate::codec::tencent_b64_encode;
use crate::sign::{hmac_b64, sign_content};

/// How the token's zlib stream is framed. Both inflate to the same JSON and verify everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Stored (uncompressed) blocks, exactly as Go master writes them: `78 01`, non-final
    /// stored blocks holding the document, an empty final stored block `01 00 00 ff ff`, then
    /// the Adler-32. Byte-exact with the Go vectors, and needs no deflate encoder.
    #[default]
    Stored,
    /// Real deflate at flate2's default level: shorter tokens, but the bytes differ from
    /// stock zlib's, so they match no official library byte for byte.
    Deflate,
}

/// Makes UserSigs and PrivateMapKeys for one SDKAppID and secret key.
///
/// The clock is a parameter (`now`) of every method, so tokens are reproducible in tests.
#[derive(Clone)]
pub struct UserSigGenerator {
    /// The application every token is issued for.
    sdkappid: u64,
    /// The secret key, already trimmed; never printed.
    key: String,
    /// How tokens are compressed.
    framing: Framing,
}

impl fmt::Debug for UserSigGenerator {
    /// Redacts the key so a generator can sit inside logged config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSigGenerator")
            .field("sdkappid", &self.sdkappid)
            .field("key", &"<redacted>")
            .field("framing", &self.framing)
            .finish()
    }
}

impl UserSigGenerator {
    /// A generator with Go-master framing ([`Framing::Stored`]).
    ///
    /// The key is trimmed of surrounding whitespace: a copy-pasted key with a stray newline
    /// would otherwise change every HMAC and the service would answer 70009 (`docs/protocol.md` §4.3).
    pub fn new(sdkappid: u64, key: &str) -> Self {
        Self {
            sdkappid,
            key: key.trim().to_owned(),
            framing: Framing::Stored,
        }
    }

    /// The same generator with another framing, e.g. [`Framing::Deflate`] for shorter tokens.
    pub fn with_framing(self, framing: Framing) -> Self {
        Self { framing, ..self }
    }

    /// A plain UserSig for `identifier`, issued at `now` (unix seconds), valid for `expire`
    /// seconds (Tencent recommends at least a day; the maximum is 50 years).
    pub fn gen(&self, identifier: &str, expire: i64, now: i64) -> String {
        self.token(identifier, expire, now, None)
    }

    /// A UserSig carrying an arbitrary binary userbuf, which is signed along with the rest.
    pub fn gen_with_userbuf(
        &self,
        identifier: &str,
        expire: i64,
        now: i64,
        userbuf: &[u8],
    ) -> String {
        self.token(identifier, expire, now, Some(userbuf))
    }

    /// A TRTC PrivateMapKey for a numeric room id: the userbuf (cVer 0) grants
    /// `privilege_map` in `room_id` until `now + expire` (an absolute time inside the userbuf;
    /// `TLS.expire` stays the duration).
    pub fn gen_private_map_key(
        &self,
        identifier: &str,
        expire: i64,
        now: i64,
        room_id: u32,
        privilege_map: u32,
    ) -> String {
        let userbuf = private_map_userbuf(
            identifier,
            low_32_bits(self.sdkappid),
            room_id,
            None,
            exp_time_abs(now, expire),
            privilege_map,
        );
        self.gen_with_userbuf(identifier, expire, now, &userbuf)
    }

    /// A TRTC PrivateMapKey for a string room id (cVer 1; the numeric room id is 0).
    pub fn gen_private_map_key_with_string_room_id(
        &self,
        identifier: &str,
        expire: i64,
        now: i64,
        room_str: &str,
        privilege_map: u32,
    ) -> String {
        let userbuf = private_map_userbuf(
            identifier,
            low_32_bits(self.sdkappid),
            0,
            Some(room_str),
            exp_time_abs(now, expire),
            privilege_map,
        );
        self.gen_with_userbuf(identifier, expire, now, &userbuf)
    }

    /// Sign, lay out the JSON, compress, encode.
    ///
    /// Every field is always written. Go master's `omitempty` drops zero values (expire 0,
    /// an empty userbuf) while still signing them, which makes tokens no strict verifier
    /// accepts (`docs/protocol.md` §4.4); we keep such tokens verifiable instead.
    fn token(&self, identifier: &str, expire: i64, now: i64, userbuf: Option<&[u8]>) -> String {
        let userbuf_b64 = userbuf.map(|bytes| STANDARD.encode(bytes));
        let content = sign_content(
            identifier,
            self.sdkappid,
            now,
            expire,
            userbuf_b64.as_deref(),
        );
        let sig = hmac_b64(&self.key, &content);
        let document = go_json_document(
            identifier,
            self.sdkappid,
            expire,
            now,
            userbuf_b64.as_deref(),
            &sig,
        );
        let compressed = match self.framing {
            Framing::Stored => zlib_stored(document.as_bytes()),
            // Writing into a Vec cannot fail, but the API returns io::Result; should it ever
            // fail, a stored-block token is just as valid.
            Framing::Deflate => zlib_deflate(document.as_bytes())
                .unwrap_or_else(|_| zlib_stored(document.as_bytes())),
        };
        tencent_b64_encode(&compressed)
    }
}

/// The PrivateMapKey userbuf (`docs/protocol.md` §4.3), all integers big-endian.
///
/// Layout: cVer (u8: 0, or 1 with a string room id), wAccountLen (u16, bytes) + account,
/// dwSdkAppid, dwAuthID (`room_id`), dwExpTime (absolute unix time), dwPrivilegeMap,
/// dwAccountType (0) as u32s, then, for cVer 1 only, wRoomStrLen (u16) + room string.
///
/// `room_id` is written as given; official libraries pass 0 with a string room id. As in Go,
/// `Some("")` counts as no string room id, and lengths are truncated to 16 bits (identifiers
/// are at most 32 bytes, so this never matters in practice).
pub fn private_map_userbuf(
    identifier: &str,
    sdkappid: u32,
    room_id: u32,
    room_str: Option<&str>,
    exp_time_abs: u32,
    privilege_map: u32,
) -> Vec<u8> {
    let room_str = room_str.filter(|room| !room.is_empty());
    let mut buf =
        Vec::with_capacity(1 + 2 + identifier.len() + 20 + room_str.map_or(0, |r| 2 + r.len()));
    buf.push(u8::from(room_str.is_some()));
    buf.extend_from_slice(&low_16_bits(identifier.len()).to_be_bytes());
    buf.extend_from_slice(identifier.as_bytes());
    for word in [sdkappid, room_id, exp_time_abs, privilege_map, 0] {
        buf.extend_from_slice(&word.to_be_bytes());
    }
    if let Some(room) = room_str {
        buf.extend_from_slice(&low_16_bits(room.len()).to_be_bytes());
        buf.extend_from_slice(room.as_bytes());
    }
    buf
}

/// dwExpTime: `now + expire`, wrapped to 32 bits as Go's `uint32` conversion does.
fn exp_time_abs(now: i64, expire: i64) -> u32 {
    // Truncation is the wire format: the field is 32 bits wide.
    (now.wrapping_add(expire) & 0xFFFF_FFFF) as u32
}

/// The low 32 bits, as Go's `uint32(sdkappid)`; real SDKAppIDs fit.
fn low_32_bits(value: u64) -> u32 {
    (value & 0xFFFF_FFFF) as u32
}

/// The low 16 bits of a length, as Go's byte shuffling writes it.
fn low_16_bits(len: usize) -> u16 {
    (len & 0xFFFF) as u16
}

/// The JSON document as Go master's `json.NewEncoder(w).Encode` writes it: compact, keys in
/// struct order (ver, identifier, sdkappid, expire, time, [userbuf], sig), a trailing `\n`.
fn go_json_document(
    identifier: &str,
    sdkappid: u64,
    expire: i64,
    time: i64,
    userbuf_b64: Option<&str>,
    sig_b64: &str,
) -> String {
    let mut doc = String::with_capacity(160 + identifier.len() + userbuf_b64.map_or(0, str::len));
    doc.push_str("{\"TLS.ver\":\"2.0\",\"TLS.identifier\":");
    push_go_json_string(&mut doc, identifier);
    doc.push_str(&format!(
        ",\"TLS.sdkappid\":{sdkappid},\"TLS.expire\":{expire},\"TLS.time\":{time}"
    ));
    // Standard base64 needs no JSON escaping, and Go leaves `/` and `+` alone.
    if let Some(userbuf) = userbuf_b64 {
        doc.push_str(&format!(",\"TLS.userbuf\":\"{userbuf}\""));
    }
    doc.push_str(&format!(",\"TLS.sig\":\"{sig_b64}\"}}\n"));
    doc
}

/// Append `text` as a JSON string escaped the way Go's encoding/json does by default.
///
/// That is: `"` and `\` backslashed; `\b` `\f` `\n` `\r` `\t` short (Go ≥ 1.22); other
/// control characters as `\u00xx`; and, because `Encoder` escapes HTML by default, `<` `>` `&`
/// as `\u003c` `\u003e` `\u0026` plus U+2028/U+2029 as `\u2028`/`\u2029`. All else is raw
/// UTF-8. Matching this keeps the Stored framing byte-exact with Go for any identifier.
fn push_go_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

/// The largest stored block deflate allows (its LEN field is 16 bits).
const MAX_STORED_BLOCK: usize = 0xFFFF;

/// A zlib stream of stored blocks, laid out as Go's `compress/flate` at `NoCompression` does.
///
/// Header `78 01`; the data in non-final stored blocks of at most 65535 bytes
/// (`00 LEN NLEN data`, LEN little-endian); an empty final block `01 00 00 ff ff`; the
/// Adler-32 of the data, big-endian.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2 + 5 * (data.len() / MAX_STORED_BLOCK + 2) + 4);
    out.extend_from_slice(&[0x78, 0x01]);
    for block in data.chunks(MAX_STORED_BLOCK) {
        let len = low_16_bits(block.len());
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// Adler-32 (RFC 1950 §8.2), the zlib trailer checksum.
fn adler32(data: &[u8]) -> u32 {
    const MOD_ADLER: u32 = 65_521;
    // 5552 is the most bytes that can be summed before the u32 `b` could overflow.
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD_ADLER;
        b %= MOD_ADLER;
    }
    (b << 16) | a
}

/// A compressed zlib stream at flate2's default level.
fn zlib_deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len()), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::Read as _;

    #[test]
    fn adler32_matches_known_values() {
        // RFC 1950 / Wikipedia example.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn stored_framing_inflates_across_multiple_blocks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let z = zlib_stored(&data);
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn go_escaping_of_html_and_control_characters() {
        let mut s = String::new();
        push_go_json_string(&mut s, "a<b>&\"\\\n\u{1}\u{8}\u{2028}é/");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\b\u2028é/""#);
    }
}
