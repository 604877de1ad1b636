//! Request ids: a random per-process prefix and a sequence number, sent as `X-Request-Id` and
//! logged, so that one call can be found in the logs from what its client saw.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A request's id, `pppppppp-ssssssssssss` in hex: a random per-process prefix and a
/// sequence number. Kept as numbers and formatted into a stack buffer: a `format!` per
/// request was a measurable share of `account_check`'s cost.
#[derive(Clone, Copy)]
pub(crate) struct RequestId {
    prefix: u32,
    seq: u64,
}

impl RequestId {
    fn ascii(self) -> [u8; 21] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 21];
        for k in 0..8 {
            out[k] = HEX[((self.prefix >> (28 - 4 * k)) & 0xf) as usize];
        }
        for k in 0..12 {
            out[9 + k] = HEX[((self.seq >> (44 - 4 * k)) & 0xf) as usize];
        }
        out
    }

    pub(crate) fn header_value(self) -> HeaderValue {
        // Hex digits and '-' are always a valid header value.
        HeaderValue::from_bytes(&self.ascii()).unwrap_or(HeaderValue::from_static("-"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ascii = self.ascii();
        f.write_str(std::str::from_utf8(&ascii).unwrap_or("-"))
    }
}

pub(crate) fn request_id() -> RequestId {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    RequestId {
        prefix: *PREFIX.get_or_init(rand::random::<u32>),
        seq: REQUEST_SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff,
    }
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn ids_are_two_hex_fields() {
        for (prefix, seq) in [
            (0u32, 0u64),
            (0x1234_abcd, 0xfedc_ba98_7654),
            (u32::MAX, 0xffff_ffff_ffff),
        ] {
            let id = RequestId { prefix, seq };
            let expected = format!("{prefix:08x}-{seq:012x}");
            assert_eq!(id.to_string(), expected);
            assert_eq!(id.header_value(), expected.as_str());
        }
    }
}
