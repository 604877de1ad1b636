//! Conformance against the UserSig vectors in `tests/data/usersig-vectors.json` (produced by
//! running the official libraries; see `docs/protocol.md` §4.5), plus the verifier's handling
//! of hostile and odd tokens. One binary; the modules share the vectors and the helpers below:
//!
//! - [`vectors`]: every spec vector, field by field;
//! - [`generator`]: what the generator makes;
//! - [`verify`]: verification failures and tolerances.
// Tests fail by panicking, with the reason in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod generator;
mod vectors;
mod verify;

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde_json::Value;
use timacct_usersig::{
    decode, hmac_b64, inflate_token, private_map_userbuf, sign_content, tencent_b64_encode, verify,
    ExpectUserbuf, Framing, UserSigGenerator, VerifyError, MAX_INFLATED,
};

const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/usersig-vectors.json"
);

/// The demo key and SDKAppID every official repository uses (`docs/protocol.md` §4.5).
const DEMO_KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const DEMO_SDKAPPID: u64 = 1_400_000_000;
const NOW: i64 = 1_700_000_000;
const EXPIRE: i64 = 15_552_000;

/// One conformance vector, read field by field from the vectors file.
struct Vector {
    label: String,
    profile: String,
    identifier: String,
    time: i64,
    expire: i64,
    userbuf_b64: Option<String>,
    sign_content: String,
    hmac_b64: String,
    json: String,
    usersig: String,
    usersig_byte_exact: bool,
    verify_now_ok: Vec<i64>,
    verify_now_expired: i64,
}

impl Vector {
    fn userbuf(&self) -> Option<Vec<u8>> {
        self.userbuf_b64
            .as_deref()
            .map(|b64| STANDARD.decode(b64).expect("vector userbuf is base64"))
    }
}

/// The vectors file's key and SDKAppID plus its vectors. Panics (never skips) if the file is gone.
fn spec() -> (String, u64, Vec<Vector>) {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("the UserSig vectors must be present at {VECTORS_PATH}: {e}"));
    let root: Value = serde_json::from_str(&text).expect("vectors file is JSON");
    let key = root["key"].as_str().expect("key").to_owned();
    let sdkappid = root["sdkappid"].as_u64().expect("sdkappid");
    let vectors = root["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let text = |field: &str| {
                v[field]
                    .as_str()
                    .unwrap_or_else(|| panic!("vector {i}: {field}"))
                    .to_owned()
            };
            let int = |field: &str| {
                v[field]
                    .as_i64()
                    .unwrap_or_else(|| panic!("vector {i}: {field}"))
            };
            Vector {
                label: format!("vector {i} ({}, {})", text("profile"), text("source")),
                profile: text("profile"),
                identifier: text("identifier"),
                time: int("time"),
                expire: int("expire"),
                userbuf_b64: v["userbuf_b64"].as_str().map(str::to_owned),
                sign_content: text("sign_content"),
                hmac_b64: text("hmac_b64"),
                json: text("json"),
                usersig: text("usersig"),
                usersig_byte_exact: v["usersig_byte_exact"].as_bool().expect("byte_exact flag"),
                verify_now_ok: v["verify_now_ok"]
                    .as_array()
                    .expect("verify_now_ok")
                    .iter()
                    .map(|t| t.as_i64().expect("verify_now_ok entry"))
                    .collect(),
                verify_now_expired: int("verify_now_expired"),
            }
        })
        .collect();
    (key, sdkappid, vectors)
}

/// zlib (flate2 default level) + Tencent base64: how a test builds a token around any bytes.
fn pack(document: &[u8]) -> String {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(document).unwrap();
    tencent_b64_encode(&encoder.finish().unwrap())
}

fn demo_token() -> String {
    UserSigGenerator::new(DEMO_SDKAPPID, DEMO_KEY).gen("xiaojun", EXPIRE, NOW)
}

/// [`verify`] as `xiaojun`, with the demo key and SDKAppID, at `now`.
fn verify_xiaojun(
    token: &str,
    now: i64,
    expect: ExpectUserbuf<'_>,
) -> Result<timacct_usersig::DecodedUserSig, VerifyError> {
    verify(token, DEMO_SDKAPPID, DEMO_KEY, "xiaojun", now, expect)
}

/// [`verify_xiaojun`] at [`NOW`], with or without a userbuf.
fn check(token: &str) -> Result<timacct_usersig::DecodedUserSig, VerifyError> {
    verify_xiaojun(token, NOW, ExpectUserbuf::Any)
}

/// The `TLS.sig` of `xiaojun`'s usual fields (the demo key and SDKAppID, [`NOW`], [`EXPIRE`])
/// with this userbuf: for documents a test writes by hand.
fn xiaojun_sig(userbuf_b64: Option<&str>) -> String {
    hmac_b64(
        DEMO_KEY,
        &sign_content("xiaojun", DEMO_SDKAPPID, NOW, EXPIRE, userbuf_b64),
    )
}

/// A hand-written document: `members` (each ending in a comma) then a `TLS.sig` that is valid
/// for `xiaojun`'s usual fields, whether or not `members` spells them out correctly.
fn signed_document_with(members: &str) -> String {
    let sig = xiaojun_sig(None);
    format!("{{{members}\"TLS.sig\":\"{sig}\"}}")
}
