//! The request parser: the raw bytes of a request body through `parse_body` for every API's
//! request type, and the same bytes as a query string through `ApiQuery`.
//!
//! Invariants (beyond "never panics"):
//! - a body parses only if it is UTF-8 JSON whose top level is an object;
//! - a body that is not JSON (bad syntax, invalid UTF-8 anywhere) or whose top level is not
//!   an object is 60003, and a well-formed JSON object with missing or mistyped fields is
//!   70402 — no other code ever comes out of the parser (`docs/protocol.md` §2.3);
//! - whatever parses serialises and parses back to the same value;
//! - `sdkappid()` fails only with 60012 and succeeds only on a plain decimal u32;
//!   `credentials()` fails only with 60025 and returns non-empty identifier and usersig;
//! - the `account_check` / `account_delete` fast path (`timacct_proto::fast`) reads exactly
//!   the IDs the general parser reads, whenever it takes a body at all;
//! - the first occurrence of a query parameter wins, and `ApiQuery::encode` round-trips
//!   whatever identifier and usersig were parsed.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use timacct_proto::{
    parse_body, write_check_response, AccountCheckRequest, AccountCheckResponse,
    AccountDeleteRequest, AccountImportRequest, ApiQuery, BatchKind, ErrorCode, KickRequest,
    MultiAccountImportRequest, QueryOnlineStatusRequest, UserIdBatch, MAX_BATCH,
    MAX_USER_ID_BYTES,
};

/// What the bytes are, judged independently of the parser under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not a JSON object by any reading: not UTF-8, not JSON syntax, or not `{...}` at the
    /// top level. Must be 60003.
    Rejected,
    /// A JSON object by serde_json's strictest reading (every string valid Unicode, every
    /// number in range, nesting within its recursion limit): it parses or is 70402.
    Strict,
    /// Syntactically a JSON object, but with something only a lenient reading passes (a lone
    /// surrogate escape, an out-of-range number, nesting past 128) that the parser may meet
    /// in a known field (60003) or skip in an ignored one (it parses).
    Lenient,
}

fn shape(data: &[u8]) -> Shape {
    let utf8 = std::str::from_utf8(data).is_ok();
    let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let brace = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !(utf8 && syntax && brace) {
        return Shape::Rejected;
    }
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(_)) => Shape::Strict,
        _ => Shape::Lenient,
    }
}

fn body<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8], shape: Shape) {
    match parse_body::<T>(data) {
        Ok(value) => {
            assert_ne!(
                shape,
                Shape::Rejected,
                "parsed something that is not a JSON object"
            );
            let bytes = serde_json::to_vec(&value).expect("a parsed request serialises");
            let again = parse_body::<T>(&bytes).expect("a serialised request parses");
            assert_eq!(
                again,
                value,
                "round trip through {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Err(e) => {
            assert!(!e.info.is_empty(), "an error must say why");
            match shape {
                Shape::Rejected => assert_eq!(e.code, ErrorCode::JsonParse, "{}", e.info),
                Shape::Strict => {
                    assert_eq!(e.code, ErrorCode::InvalidParameter, "{}", e.info)
                }
                Shape::Lenient => assert!(
                    matches!(e.code, ErrorCode::JsonParse | ErrorCode::InvalidParameter),
                    "{:?}: {}",
                    e.code,
                    e.info
                ),
            }
        }
    }
}

/// The fast path for plain `{"<key>":[{"UserID":"..."},...]}` bodies must never disagree
/// with the general parser: whatever it takes, `parse_body` reads the same IDs from, and
/// each is a valid UserID (1 to 32 bytes, no control characters).
fn fast_path(data: &[u8]) {
    for key in ["CheckItem", "DeleteItem"] {
        let Some(ids) = timacct_proto::fast::scan_user_id_items(data, key, MAX_BATCH) else {
            continue;
        };
        let ids: Vec<&str> = ids.into_iter().map(|id| id.as_str()).collect();
        let general: Vec<String> = if key == "CheckItem" {
            let req = parse_body::<AccountCheckRequest>(data).expect("the parser takes it too");
            req.check_item.into_iter().map(|i| i.user_id).collect()
        } else {
            let req = parse_body::<AccountDeleteRequest>(data).expect("the parser takes it too");
            req.delete_item.into_iter().map(|i| i.user_id).collect()
        };
        assert_eq!(ids, general, "{key}");
        assert!(!ids.is_empty() && ids.len() <= MAX_BATCH);
        for id in ids {
            assert!((1..=MAX_USER_ID_BYTES).contains(&id.len()), "{id:?}");
            assert!(
                !id.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}'),
                "{id:?}"
            );
        }
    }
}

/// The one `account_check` path: whatever `UserIdBatch` parses, the written response is
/// JSON that reads back, through the serde types, as one result per entry in request order.
fn check_writer(data: &[u8]) {
    let Ok(batch) = UserIdBatch::parse(data, BatchKind::Check) else {
        return;
    };
    let found: Vec<bool> = (0..batch.valid().len()).map(|k| k % 3 == 0).collect();
    let written = write_check_response(&batch, &found);
    let read: AccountCheckResponse =
        serde_json::from_slice(&written).expect("the written response is valid JSON");
    let items = batch.items();
    assert_eq!(read.result_item.len(), items.len());
    for (got, item) in read.result_item.iter().zip(&items) {
        match item {
            Ok(id) => assert_eq!((got.user_id.as_str(), got.result_code), (id.as_str(), 0)),
            Err((raw, _)) => assert_eq!((got.user_id.as_str(), got.result_code), (*raw, 70402)),
        }
    }
}

fn query(raw: &str) {
    let q = ApiQuery::parse(raw);
    match q.sdkappid() {
        Ok(id) => {
            let text = q
                .sdkappid
                .as_deref()
                .expect("a parsed sdkappid was present");
            assert!(text.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
            assert_eq!(text.parse::<u64>().ok(), Some(u64::from(id)));
        }
        Err(e) => assert_eq!(e.code, ErrorCode::SdkAppIdMissing),
    }
    match q.credentials() {
        Ok((identifier, usersig)) => {
            assert!(!identifier.is_empty() && !usersig.is_empty());
            // Whatever was accepted survives being written by a client and read back.
            let random = q
                .random
                .as_deref()
                .and_then(|r| r.parse::<u32>().ok())
                .unwrap_or(0);
            let encoded = ApiQuery::encode(7, identifier, usersig, random);
            let back = ApiQuery::parse(&encoded);
            assert_eq!(back.identifier.as_deref(), Some(identifier));
            assert_eq!(back.usersig.as_deref(), Some(usersig));
            assert_eq!(back.sdkappid().ok(), Some(7));
            assert!(back.credentials().is_ok());
        }
        Err(e) => assert_eq!(e.code, ErrorCode::UrlParams),
    }
    // The first occurrence wins: appending more never changes a value already present.
    let doubled_query = format!("{raw}&{raw}&sdkappid=1&identifier=x&usersig=y");
    let doubled = ApiQuery::parse(&doubled_query);
    for (first, later) in [
        (&q.sdkappid, &doubled.sdkappid),
        (&q.identifier, &doubled.identifier),
        (&q.usersig, &doubled.usersig),
        (&q.random, &doubled.random),
        (&q.contenttype, &doubled.contenttype),
    ] {
        if first.is_some() {
            assert_eq!(first, later);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let shape = shape(data);
    body::<AccountImportRequest>(data, shape);
    body::<MultiAccountImportRequest>(data, shape);
    body::<AccountCheckRequest>(data, shape);
    body::<AccountDeleteRequest>(data, shape);
    body::<KickRequest>(data, shape);
    body::<QueryOnlineStatusRequest>(data, shape);
    fast_path(data);
    check_writer(data);
    // A query string reaches the server as text (hyper refuses a request line that is not);
    // invalid UTF-8 arrives percent-encoded, which the lossy form also covers.
    query(&String::from_utf8_lossy(data));
});
