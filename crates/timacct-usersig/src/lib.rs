//! TLSSigAPIv2 UserSigs: generate them and check them, byte-compatible with Tencent's official
//! libraries (see `docs/protocol.md` §4, "UserSig").
//!
//! A UserSig is `tencent_base64(zlib(json))`, where the JSON carries the identity fields and
//! `TLS.sig`, an HMAC-SHA256 over a fixed text built from those fields. Only that text is
//! canonical: the official libraries disagree on JSON key order, spacing, escaping and
//! compression, so the verifier here parses whatever they produce and recomputes the HMAC,
//! and the generator reproduces the Go master library byte for byte.
//!
//! Everything is pure: callers pass the current time in, which keeps the server's clock
//! injectable in tests and keeps this crate free of I/O.

#![deny(missing_docs)]

mod codec;
mod decode;
mod error;
mod generate;
mod sign;

pub use codec::{inflate_token, tencent_b64_decode, tencent_b64_encode, MAX_INFLATED};
pub use decode::{decode, verify, DecodedUserSig, ExpectUserbuf};
pub use error::VerifyError;
pub use generate::{private_map_userbuf, Framing, UserSigGenerator};
pub use sign::{hmac_b64, sign_content};
