//! Hostile input against the real server over real TCP: broken and deeply nested JSON, huge
//! bodies and lying `Content-Length`s, invalid UTF-8 in the body and the query, absurd query
//! strings, wrong methods, input that is not HTTP at all, every single-bit flip of a valid
//! UserSig, zlib bombs, and slow or stalled headers.
//!
//! Each class asserts the exact code `docs/protocol.md` gives it, that the answer is the JSON
//! envelope (HTTP 200, or 405 for a wrong method; never a 5xx, a dropped connection or a bare
//! error page), and that stored data is exactly as it was. Every test starts from the same
//! accounts (`KNOWN` imported with a Nick, `ABSENT` not) and, wherever a hostile request
//! would change them if it were accepted, uses a mutating API (a delete of `KNOWN`, an
//! import of `ABSENT`) as the vehicle. Requests an HTTP client refuses to build go over a raw
//! TCP socket.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use timacct_server::DEFAULT_BODY_LIMIT;
use timacct_test_support::*;
use timacct_usersig::{Framing, UserSigGenerator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const KNOWN: [&str; 5] = ["known-0", "known-1", "known-2", "known-3", "known-4"];
const ABSENT: [&str; 3] = ["absent-0", "absent-1", "absent-2"];
const NICK: &str = "Known Nick";

/// Bounds every wait on the server, so that a hang fails the test instead of stalling it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server holding `KNOWN` (each with `NICK`), and not `ABSENT`.
async fn seeded() -> TestServer {
    let app = spawn_app().await;
    let list: Vec<Value> = KNOWN
        .iter()
        .map(|id| json!({ "UserID": id, "Nick": NICK }))
        .collect();
    app.call(MULTI, &json!({ "AccountList": list }))
        .await
        .assert_ok();
    assert_unchanged(&app).await;
    app
}

/// Stored data is exactly as `seeded` left it.
async fn assert_unchanged(app: &TestServer) {
    app.assert_imported(APP, &KNOWN).await;
    app.assert_not_imported(APP, &ABSENT).await;
    assert_eq!(app.account_count(APP).await, KNOWN.len() as u64);
    for id in KNOWN {
        let account = app.account(APP, id).await.expect("known account");
        assert_eq!(account.nick, NICK, "{id}");
        assert_eq!(account.face_url, "", "{id}");
    }
}

fn delete_known() -> Vec<u8> {
    let items: Vec<Value> = KNOWN.iter().map(|id| json!({ "UserID": id })).collect();
    json!({ "DeleteItem": items }).to_string().into_bytes()
}

fn import_absent() -> Vec<u8> {
    json!({ "Accounts": ABSENT }).to_string().into_bytes()
}

/// For each served API, a valid body that would change stored data (or, for
/// `account_check`, read it) if it were accepted.
fn vehicles() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            IMPORT,
            json!({ "UserID": "absent-0", "Nick": "x" })
                .to_string()
                .into_bytes(),
        ),
        (MULTI, import_absent()),
        (
            CHECK,
            json!({ "CheckItem": [{ "UserID": "known-0" }] })
                .to_string()
                .into_bytes(),
        ),
        (DELETE, delete_known()),
    ]
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 200 {
        let start: String = text.chars().take(200).collect();
        format!("{start}... ({} bytes)", bytes.len())
    } else {
        text.into_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Raw TCP
// ---------------------------------------------------------------------------------------

/// An HTTP/1.1 request head for `target` with `extra` header lines, `Connection: close`.
fn head(method: &str, target: &str, extra: &[String]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: console.tim.qq.com\r\n");
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// A POST with exactly these body bytes and a correct `Content-Length`.
fn post(target: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head("POST", target, &[format!("Content-Length: {}", body.len())]);
    out.extend_from_slice(body);
    out
}

/// Read one HTTP response from `stream`: the head, then `Content-Length` bytes of body (or
/// everything up to EOF without one; nothing for a HEAD request). Errors after the whole
/// response has arrived (a reset because the server did not read all we sent) are ignored.
async fn read_response(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    head_request: bool,
) -> Reply {
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut body_start = None;
    loop {
        if let Some(start) = body_start {
            let (status, headers) = parse_head(&answer[..start]);
            let wanted = if head_request {
                Some(0)
            } else {
                headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
            };
            if let Some(len) = wanted {
                if answer.len() >= start + len {
                    let body = &answer[start..start + len];
                    let (text, json) = check_envelope(status, &headers, body);
                    return Reply {
                        status,
                        headers,
                        text,
                        json,
                    };
                }
            }
        }
        let n = match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => panic!("no complete answer in time; got {:?}", lossy(&answer)),
            Ok(Err(e)) => panic!(
                "connection failed before the answer ({e}); got {:?}",
                lossy(&answer)
            ),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            let start = body_start.unwrap_or_else(|| {
                panic!("connection closed without an answer: {:?}", lossy(&answer))
            });
            let (status, headers) = parse_head(&answer[..start]);
            let (text, json) = check_envelope(status, &headers, &answer[start..]);
            return Reply {
                status,
                headers,
                text,
                json,
            };
        }
        answer.extend_from_slice(&buf[..n]);
        if body_start.is_none() {
            body_start = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4);
        }
    }
}

/// Send `request` on a fresh connection and read the answer. The request is written by a
/// separate task, so that a server answering before it has read everything (an oversized
/// body) is seen answering rather than blocking our write.
async fn exchange(app: &TestServer, request: Vec<u8>) -> Reply {
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let head_request = request.starts_with(b"HEAD ");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may answer and close before reading it all: that is allowed.
        let _ = write.write_all(&request).await;
        write
    });
    let reply = read_response(&mut read, head_request).await;
    writer.abort();
    reply
}

// ---------------------------------------------------------------------------------------
// Broken and nested JSON
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_truncation_of_a_valid_body_is_60003_and_changes_nothing() {
    let app = seeded().await;
    for (path, body) in vehicles() {
        // Every proper prefix of a JSON object is broken JSON (the empty one is an empty body).
        for len in 0..body.len() {
            let reply = app.post_bytes(APP, path, body[..len].to_vec()).await;
            assert_eq!(
                reply.code(),
                60003,
                "{path} with {:?}: {}",
                lossy(&body[..len]),
                reply.text
            );
        }
    }
    assert_unchanged(&app).await;
}

#[tokio::test]
async fn broken_json_is_60003_and_changes_nothing() {
    let app = seeded().await;
    for (path, valid) in vehicles() {
        let valid = String::from_utf8(valid).unwrap();
        let inner = &valid[1..valid.len() - 1];
        let bodies: Vec<String> = vec![
            format!("{valid}x"),
            format!("{valid}}}"),
            format!("{valid},{valid}"),
            format!("{valid}{valid}"),
            format!("{{{inner},}}"),
            format!("{{,{inner}}}"),
            valid.replace('"', "'"),
            valid.replace(':', "="),
            valid.replace("\":", "\" "),
            format!("/* comment */{valid}"),
            format!("{{// comment\n{inner}}}"),
            format!("\u{feff}{valid}"),
            format!("{{{inner},\"n\":NaN}}"),
            format!("{{{inner},\"n\":Infinity}}"),
            format!("{{{inner},\"n\":01}}"),
            format!("{{{inner},\"n\":1.}}"),
            format!("{{{inner},\"n\":-}}"),
            format!("{{{inner},\"s\":\"\\x41\"}}"),
            format!("{{{inner},\"s\":\"\\u12\"}}"),
            format!("{{{inner},\"s\":\"tab\tinside\"}}"),
            format!("{{{inner},\"s\":\"nul\u{0}inside\"}}"),
            format!("{{{inner},\"s\":\"unterminated}}"),
            format!("{{{inner},key:1}}"),
            format!("{{{inner},1:1}}"),
            format!("{{{inner},\"a\"}}"),
            format!("{{{inner},\"a\":}}"),
            format!("{{{inner},\"a\":[1,]}}"),
            format!("{{{inner},\"a\":[1 2]}}"),
            format!("{{{inner},\"a\":tru}}"),
            format!("{{{inner},\"a\":nul}}"),
            format!("[{valid}]"),
            format!("\"{}\"", valid.replace('"', "\\\"")),
            "null".to_owned(),
            "0".to_owned(),
            "}".to_owned(),
            "\u{0}".to_owned(),
        ];
        for body in bodies {
            let reply = app.post_bytes(APP, path, body.clone().into_bytes()).await;
            assert_eq!(reply.code(), 60003, "{path} with {body:?}: {}", reply.text);
        }
    }
    assert_unchanged(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_is_answered_and_changes_nothing() {
    let app = seeded().await;
    let depth = 100_000;
    let open = "[".repeat(depth);
    let close = "]".repeat(depth);
    let objects_open = "{\"a\":".repeat(depth);
    let objects_close = "}".repeat(depth);
    let cases: Vec<(&str, String, u64)> = vec![
        // Not an object at all.
        (DELETE, open.clone(), 60003),
        (DELETE, format!("{open}{close}"), 60003),
        // Cut short: not JSON.
        (DELETE, format!("{{\"DeleteItem\":{open}"), 60003),
        (
            DELETE,
            format!("{{\"DeleteItem\":[{{\"UserID\":\"known-0\",\"x\":{objects_open}"),
            60003,
        ),
        (
            MULTI,
            format!("{{\"Accounts\":[\"absent-0\"],\"x\":{open}"),
            60003,
        ),
        // Well-formed, but the field holds arrays where objects or strings belong: 70402.
        (DELETE, format!("{{\"DeleteItem\":{open}{close}}}"), 70402),
        (MULTI, format!("{{\"Accounts\":{open}{close}}}"), 70402),
        (IMPORT, format!("{{\"UserID\":{open}{close}}}"), 70402),
        // Well-formed, deep only in an unknown field, and the required field missing: 70402.
        (DELETE, format!("{objects_open}1{objects_close}"), 70402),
        (IMPORT, format!("{objects_open}1{objects_close}"), 70402),
        // Deep only in an unknown field, which is ignored: the request is served.
        (
            CHECK,
            format!("{{\"CheckItem\":[{{\"UserID\":\"known-0\"}}],\"x\":{open}{close}}}"),
            0,
        ),
    ];
    for (path, body, code) in cases {
        let reply = app.post_bytes(APP, path, body.clone().into_bytes()).await;
        assert_eq!(
            reply.code(),
            code,
            "{path} with {}: {}",
            lossy(body.as_bytes()),
            reply.text
        );
        if code == 0 {
            assert_eq!(reply.json["ResultItem"][0]["AccountStatus"], "Imported");
        }
    }
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// Huge bodies
// ---------------------------------------------------------------------------------------

/// A valid `account_delete` of `KNOWN`, padded with an unknown field to exactly `len` bytes.
fn padded_delete(len: usize) -> Vec<u8> {
    let prefix = &delete_known()[..];
    let prefix = &prefix[..prefix.len() - 1];
    let fixed = prefix.len() + ",\"pad\":\"\"}".len();
    assert!(len >= fixed);
    let mut body = prefix.to_vec();
    body.extend_from_slice(b",\"pad\":\"");
    body.extend(std::iter::repeat_n(b'p', len - fixed));
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn bodies_over_the_limit_are_60003_and_change_nothing() {
    let app = seeded().await;
    let limit = DEFAULT_BODY_LIMIT;
    // One byte over: refused whole, even though the start is a valid delete.
    for len in [limit + 1, limit + 4096, 3 * limit] {
        let reply = app.post_bytes(APP, DELETE, padded_delete(len)).await;
        reply.assert_fail(60003);
        assert!(reply.info().contains("larger than"), "{}", reply.text);
    }
    assert_unchanged(&app).await;
    // The same without Content-Length (chunked), so only the byte count can stop it.
    let target = format!("{DELETE}?{}", app.admin_query(APP));
    let body = padded_delete(limit + 1);
    let mut request = head("POST", &target, &["Transfer-Encoding: chunked".to_owned()]);
    for chunk in body.chunks(16 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    exchange(&app, request).await.assert_fail(60003);
    assert_unchanged(&app).await;
    // Exactly at the limit is still served: the delete goes through (shown with a check).
    let at_limit = {
        let items: Vec<Value> = KNOWN.iter().map(|id| json!({ "UserID": id })).collect();
        let start = json!({ "CheckItem": items }).to_string();
        let mut body = start.as_bytes()[..start.len() - 1].to_vec();
        body.extend_from_slice(b",\"pad\":\"");
        let fill = limit - body.len() - 2;
        body.extend(std::iter::repeat_n(b'p', fill));
        body.extend_from_slice(b"\"}");
        body
    };
    assert_eq!(at_limit.len(), limit);
    let reply = app.post_bytes(APP, CHECK, at_limit).await;
    reply.assert_ok();
    assert_eq!(
        reply.json["ResultItem"].as_array().unwrap().len(),
        KNOWN.len()
    );
    assert_unchanged(&app).await;
}

#[tokio::test]
async fn a_huge_content_length_that_never_arrives_is_answered_at_once() {
    let app = seeded().await;
    let target = format!("{DELETE}?{}", app.admin_query(APP));
    let body = delete_known();
    // Representable lengths over the limit: refused from the header alone (60003), so the
    // server does not wait for bytes that will never come.
    for claimed in [
        (DEFAULT_BODY_LIMIT as u64) + 1,
        10_000_000_000,
        u64::MAX / 2,
    ] {
        let mut request = head("POST", &target, &[format!("Content-Length: {claimed}")]);
        request.extend_from_slice(&body);
        let reply = exchange(&app, request).await;
        assert_eq!(
            reply.code(),
            60003,
            "Content-Length: {claimed}: {}",
            reply.text
        );
    }
    // Lengths past what HTTP/1 framing can represent (hyper's own limit), not a number, or
    // contradictory: not parseable HTTP (60002).
    for header in [
        format!("Content-Length: {}", u64::MAX),
        "Content-Length: 99999999999999999999999".to_owned(),
        "Content-Length: -1".to_owned(),
        "Content-Length: 1e9".to_owned(),
        "Content-Length: 10\r\nContent-Length: 20".to_owned(),
    ] {
        let mut request = head("POST", &target, std::slice::from_ref(&header));
        request.extend_from_slice(&body);
        let reply = exchange(&app, request).await;
        assert_eq!(reply.code(), 60002, "{header}: {}", reply.text);
    }
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// Invalid UTF-8
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_utf8_anywhere_in_the_body_is_60003_and_changes_nothing() {
    let app = seeded().await;
    let bad: [&[u8]; 9] = [
        b"\xff",
        b"\xfe\xff",
        b"\xc3",             // truncated 2-byte sequence
        b"\xc0\xaf",         // overlong '/'
        b"\xe0\x80\xaf",     // overlong
        b"\xed\xa0\x80",     // UTF-16 surrogate encoded in UTF-8
        b"\xf0\x9f\x98",     // truncated 4-byte sequence
        b"\xf4\x90\x80\x80", // past U+10FFFF
        b"\x80",             // lone continuation byte
    ];
    for (path, valid) in vehicles() {
        for seq in bad {
            // In an unknown field (which the parser skips), in a value it reads, in a key,
            // and before the opening brace.
            let mut unknown = valid[..valid.len() - 1].to_vec();
            unknown.extend_from_slice(b",\"x\":\"");
            unknown.extend_from_slice(seq);
            unknown.extend_from_slice(b"\"}");
            let mut in_key = b"{\"".to_vec();
            in_key.extend_from_slice(seq);
            in_key.extend_from_slice(b"\":1,");
            in_key.extend_from_slice(&valid[1..]);
            let mut in_value = valid.clone();
            let quote = in_value
                .windows(3)
                .position(|w| w == b"\":\"" || w == b"[\"a")
                .map(|p| p + 3)
                .or_else(|| in_value.windows(2).position(|w| w == b"[\"").map(|p| p + 2))
                .expect("a string value");
            in_value.splice(quote..quote, seq.iter().copied());
            let mut before = seq.to_vec();
            before.extend_from_slice(&valid);
            for body in [unknown, in_key, in_value, before] {
                let reply = app.post_bytes(APP, path, body.clone()).await;
                assert_eq!(
                    reply.code(),
                    60003,
                    "{path} with {:?}: {}",
                    lossy(&body),
                    reply.text
                );
            }
        }
        // UTF-16 is not JSON's encoding either.
        let mut utf16 = vec![0xff, 0xfe];
        for unit in String::from_utf8(valid.clone()).unwrap().encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        app.post_bytes(APP, path, utf16).await.assert_fail(60003);
    }
    assert_unchanged(&app).await;
}

#[tokio::test]
async fn invalid_utf8_in_the_query_gets_the_parameter_code_and_changes_nothing() {
    let app = seeded().await;
    let usersig = enc(&app.admin_sig(APP));
    let body = delete_known();
    // Percent-encoded invalid UTF-8: decoded leniently (U+FFFD), then checked like any value.
    let cases: Vec<(String, u64)> = vec![
        (
            format!("sdkappid=%ff&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid=%c0%b1400000001&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={APP}&identifier=%ff%fe&usersig={usersig}"),
            70013,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}%ed%a0%80&usersig={usersig}"),
            70013,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig=%ff{usersig}"),
            70003,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig={usersig}%80"),
            70003,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig={usersig}&random=%ff"),
            60025,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig={usersig}&contenttype=js%ffon"),
            60025,
        ),
        // An invalid name is just an unknown parameter.
        (format!("sdkappid={APP}&identifier={ADMIN}&%ff=1"), 60025),
    ];
    for (query, code) in &cases {
        app.call_with_query(DELETE, query, &serde_json::from_slice(&body).unwrap())
            .await
            .assert_fail(*code);
    }
    // Raw bytes over 0x7F in the request line: UTF-8 is taken as it is (a mismatched
    // identifier here), anything else is not a valid URI (60002, from the listener).
    for (raw, code) in [
        (&b"\xff"[..], 60002),
        (b"\x80", 60002),
        (b"\xc3", 60002),
        (b"\xc3\xa9", 70013),
    ] {
        let mut target = format!("{DELETE}?sdkappid={APP}&identifier=").into_bytes();
        target.extend_from_slice(raw);
        target.extend_from_slice(format!("&usersig={usersig}").as_bytes());
        let mut request = b"POST ".to_vec();
        request.extend_from_slice(&target);
        request.extend_from_slice(
            format!(
                " HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(&body);
        let reply = exchange(&app, request).await;
        assert_eq!(reply.code(), code, "{:?}: {}", lossy(raw), reply.text);
    }
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// Absurd query strings
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn absurd_query_strings_get_their_exact_code_and_change_nothing() {
    let app = seeded().await;
    let usersig = enc(&app.admin_sig(APP));
    let base = format!("sdkappid={APP}&identifier={ADMIN}&usersig={usersig}");
    let good = format!("{base}&random=1&contenttype=json");
    let other_sig = enc(&sig(APP, KEY, "someone-else"));
    let junk = "j".repeat(50 * 1024);
    let zeros = "0".repeat(50 * 1024);
    let many = "random=1&".repeat(5_000);
    let cases: Vec<(String, u64)> = vec![
        // Empty and separator-only queries: no sdkappid.
        (String::new(), 60012),
        ("&&&&".to_owned(), 60012),
        ("=&=&==&".to_owned(), 60012),
        ("?".to_owned(), 60012),
        ("sdkappid".to_owned(), 60012),
        // Very long values.
        (
            format!("sdkappid={junk}&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={zeros}{APP}&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={APP}&identifier={junk}&usersig={usersig}"),
            70013,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig={junk}"),
            70003,
        ),
        (format!("{base}&random={zeros}1"), 60025),
        // Repeated keys: the first occurrence wins.
        (format!("sdkappid=1&{good}"), 70020),
        (format!("identifier=x&{good}"), 70013),
        (format!("usersig=garbage&{good}"), 70003),
        (format!("random=x&{good}"), 60025),
        (format!("contenttype=xml&{good}"), 60025),
        (format!("usersig={other_sig}&{good}"), 70013),
        (
            format!("{many}sdkappid={APP}&identifier={ADMIN}&usersig=x"),
            70003,
        ),
        // Percent garbage: broken escapes are kept as they are.
        (
            format!("sdkappid=%{APP}&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={APP}%&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid=%%31400000001&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid=%2{APP}&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid=+{APP}&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={APP}%00&identifier={ADMIN}&usersig={usersig}"),
            60012,
        ),
        (
            format!("sdkappid={APP}&identifier=%&usersig={usersig}"),
            70013,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}%00&usersig={usersig}"),
            70013,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig=%zz%"),
            70003,
        ),
        (
            format!("sdkappid={APP}&identifier={ADMIN}&usersig=%{usersig}"),
            70003,
        ),
        (format!("{base}&random=%31%"), 60025),
        (format!("{base}&contenttype=%6Aso"), 60025),
    ];
    let body: Value = serde_json::from_slice(&delete_known()).unwrap();
    for (query, code) in &cases {
        let reply = app.call_with_query(DELETE, query, &body).await;
        assert_eq!(
            reply.code(),
            *code,
            "{}: {}",
            lossy(query.as_bytes()),
            reply.text
        );
    }
    assert_unchanged(&app).await;
    // Well-formed escapes of the right bytes decode to the right values: served.
    let check = json!({ "CheckItem": [{ "UserID": "known-0" }] });
    for query in [
        format!("%73dkappid=%31%34%30%30%30%30%30%30%30%31&identifier={ADMIN}&usersig={usersig}"),
        format!("{good}&junk={junk}"),
        format!("{good}&{many}"),
        format!("{good}&sdkappid=1&identifier=x&usersig=y&random=z&contenttype=w"),
        format!("&&{good}&&"),
    ] {
        let reply = app.call_with_query(CHECK, &query, &check).await;
        reply.assert_ok();
        assert_eq!(reply.json["ResultItem"][0]["AccountStatus"], "Imported");
    }
    // Past the 64 KiB a URI may hold (written by hand: clients refuse): 60002.
    let long = "x".repeat(70 * 1024);
    for target in [
        format!("{DELETE}?{good}&junk={long}"),
        format!("{DELETE}?sdkappid={long}"),
        format!("/v4/{long}"),
    ] {
        exchange(&app, post(&target, &delete_known()))
            .await
            .assert_fail(60002);
    }
    // A header block past hyper's limits: 60002 too.
    let mut request = head(
        "POST",
        &format!("{DELETE}?{good}"),
        &[format!("X-Junk: {}", "h".repeat(1024 * 1024))],
    );
    request.extend_from_slice(&delete_known());
    exchange(&app, request).await.assert_fail(60002);
    let many_headers: Vec<String> = (0..500).map(|i| format!("X-H{i}: v")).collect();
    exchange(&app, {
        let mut r = head("POST", &format!("{DELETE}?{good}"), &many_headers);
        r.extend_from_slice(&delete_known());
        r
    })
    .await
    .assert_fail(60002);
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// Wrong methods, and bytes that are not HTTP
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_methods_are_405_with_60002_and_change_nothing() {
    let app = seeded().await;
    let url = app.url(DELETE, &app.admin_query(APP));
    for method in [
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::from_bytes(b"FOO").unwrap(),
        Method::from_bytes(b"post").unwrap(),
        Method::from_bytes(b"PROPFIND").unwrap(),
    ] {
        let reply = app.raw(method.clone(), &url, Some(delete_known())).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.code(), 60002, "{method}: {}", reply.text);
    }
    // HEAD: the same answer, whose body HTTP forbids sending; the head alone says so.
    let target = format!("{DELETE}?{}", app.admin_query(APP));
    let stream_reply = head_only(&app, &target).await;
    assert_eq!(stream_reply.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        stream_reply
            .1
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    // CONNECT, with a path where an authority belongs, is one more wrong method.
    let mut connect = head(
        "CONNECT",
        &target,
        &[format!("Content-Length: {}", delete_known().len())],
    );
    connect.extend_from_slice(&delete_known());
    let reply = exchange(&app, connect).await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), 60002, "{}", reply.text);
    assert_unchanged(&app).await;
}

/// Send a HEAD request and return the status and headers of the answer.
async fn head_only(app: &TestServer, target: &str) -> (StatusCode, HeaderMap) {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(&head("HEAD", target, &[]))
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    assert_eq!(
        answer.len(),
        end + 4,
        "HEAD has no body: {:?}",
        lossy(&answer)
    );
    let (status, headers) = parse_head(&answer[..end]);
    (status, headers)
}

#[tokio::test]
async fn bytes_that_are_not_http_get_60002_and_change_nothing() {
    let app = seeded().await;
    let target = format!("{DELETE}?{}", app.admin_query(APP));
    let body = delete_known();
    let mut cases: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello
        b"GARBAGE\r\n\r\n".to_vec(),
        b"POST\r\n\r\n".to_vec(),
        format!("POST {target}\r\n\r\n").into_bytes(),
        format!("POST {target} HTTP/9.9\r\nContent-Length: 0\r\n\r\n").into_bytes(),
        format!("POST {target} HTTP/1.1\r\nBad Header\r\n\r\n").into_bytes(),
        format!("POST {target} HTTP/1.1\r\nX-A: \x01\r\n\r\n").into_bytes(),
        format!("POST  {target}  HTTP/1.1\r\n\r\n").into_bytes(),
        (0..=255u8).cycle().take(4096).collect(),
    ];
    for request in cases.iter_mut() {
        request.extend_from_slice(&body);
        let reply = exchange(&app, request.clone()).await;
        assert_eq!(reply.code(), 60002, "{:?}: {}", lossy(request), reply.text);
    }
    // An HTTP/2 client (prior knowledge, cleartext) could not read an HTTP/1 answer: the
    // connection is closed without one, and nothing is run.
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&post(&target, &body));
    stream.write_all(&preface).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the connection is closed");
    assert!(
        read.is_err() || answer.is_empty(),
        "HTTP/2 preface: {:?}",
        lossy(&answer)
    );
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// UserSigs: every bit flipped, and zlib bombs
// ---------------------------------------------------------------------------------------

fn percent_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Base64 as `docs/protocol.md` §4.4 reads it, written out here rather than taken from the
/// code under test. `tencent`: a token's outer layer (step 1: either alphabet, `*` `-` `_`
/// or `+` `/` `=`, a space read as `+`); otherwise `TLS.sig` (step 5: standard base64).
/// Padding is optional, but where it is written it completes the last group of four; the
/// bits of the last digit that fall outside the bytes must be zero (step 1: one token has
/// one spelling, so a re-spelt token cannot pass for the same one). `None`: not base64.
fn b64_decode(text: &[u8], tencent: bool) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'*' | b' ' if tencent => 62,
            b'-' if tencent => 63,
            _ => return None,
        } as u32)
    };
    let is_pad = |c: u8| c == b'=' || (tencent && c == b'_');
    let data_len = text.iter().rposition(|c| !is_pad(*c)).map_or(0, |p| p + 1);
    let (data, padding) = text.split_at(data_len);
    if padding.len() > 2
        || (!padding.is_empty() && !text.len().is_multiple_of(4))
        || data.len() % 4 == 1
    {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in data {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

#[test]
fn the_reference_base64_reader_follows_the_rules() {
    assert_eq!(b64_decode(b"YWJjZA==", false).unwrap(), b"abcd");
    assert_eq!(b64_decode(b"YWJjZA", false).unwrap(), b"abcd");
    assert_eq!(b64_decode(b"YWJjZA__", true).unwrap(), b"abcd");
    assert_eq!(b64_decode(b"+/*-", true), b64_decode(b"+/+/", false));
    assert_eq!(b64_decode(b" /", true), b64_decode(b"+/", false));
    // Only the token's outer layer knows Tencent's alphabet and the space.
    assert_eq!(b64_decode(b"YWJjZA__", false), None);
    assert_eq!(b64_decode(b"*-", false), None);
    // Discarded bits set, padding that does not complete a group, a lone digit.
    assert_eq!(b64_decode(b"YWJjZB==", false), None);
    assert_eq!(b64_decode(b"YWJjZA=", false), None);
    assert_eq!(b64_decode(b"YWJjZ", false), None);
    assert_eq!(b64_decode(b"YW=jZA==", false), None);
}

/// Where a byte of a token's zlib stream lies, and why a change there is refused
/// (`docs/protocol.md` §4.2, §4.4 step 2: "one complete zlib stream, checksum intact,
/// nothing after it"). Whatever changes in a framed token (bits an inflater skips aside),
/// the Adler-32 over the document or the stream's own structure gives it away, so every
/// region is 70003: no change of a
/// token's bytes ever reaches the fields of its document (for that, see
/// [`every_single_bit_flip_inside_the_document_gets_the_code_of_its_field`]).
fn zlib_region(framing: Framing, zlib: &[u8], at: usize) -> &'static str {
    let len = zlib.len();
    match framing {
        // `78 01`, a stored block (`00`, LEN, NLEN) holding the document, an empty final
        // block (`01 00 00 ff ff`), the Adler-32.
        Framing::Stored => match at {
            0..=1 => "zlib header (its FCHECK no longer divides by 31)",
            2..=6 => "stored block header (LEN and NLEN no longer agree)",
            _ if at < len - 9 => "document (its Adler-32 no longer matches)",
            _ if at < len - 4 => "final empty block (the stream no longer ends there)",
            _ => "Adler-32 (no longer the document's)",
        },
        Framing::Deflate => match at {
            0..=1 => "zlib header (its FCHECK no longer divides by 31)",
            _ if at < len - 4 => "deflate data (a broken stream, or another document)",
            _ => "Adler-32 (no longer the document's)",
        },
    }
}

/// Every one of the 8 × length single-bit flips of a valid admin token's text, stored and
/// compressed. The expected code comes from where the flip lands once the text is decoded
/// by the reference reader above: not base64 any more (a byte outside both alphabets,
/// misplaced padding, discarded bits set) is 70003; the same bytes spelt another way (`*`
/// and `+`, `-` and `/` are one digit) are the same token and pass; any other change is in a
/// region of the zlib stream ([`zlib_region`]), every one of them 70003 — except bits that
/// RFC 1951 has an inflater skip (the padding after a block header, or after the last code),
/// which leave one complete stream of the same document with its checksum intact.
#[tokio::test]
async fn every_single_bit_flip_of_a_usersig_is_refused_with_its_code() {
    let app = seeded().await;
    let t = now();
    let mut accepted = 0;
    let mut refused = std::collections::BTreeMap::<&str, usize>::new();
    for framing in [Framing::Stored, Framing::Deflate] {
        let valid = UserSigGenerator::new(u64::from(APP), KEY)
            .with_framing(framing)
            .gen(ADMIN, 86_400, t);
        let zlib = b64_decode(valid.as_bytes(), true).expect("a valid token is base64");
        let document = inflate_exactly(&zlib).expect("a valid token inflates");
        if framing == Framing::Stored {
            // The layout `zlib_region` reads: one stored block of the document.
            let n = document.len() as u16;
            assert_eq!(zlib[..3], [0x78, 0x01, 0x00]);
            assert_eq!(
                zlib[3..7],
                [n.to_le_bytes(), (!n).to_le_bytes()].concat()[..]
            );
            assert_eq!(zlib[7..7 + document.len()], document[..]);
            assert_eq!(zlib.len(), 7 + document.len() + 5 + 4);
        }
        for position in 0..valid.len() {
            for bit in 0..8 {
                let mut flipped = valid.clone().into_bytes();
                flipped[position] ^= 1 << bit;
                let (expected, why) = match b64_decode(&flipped, true) {
                    None => (70003, "not base64 any more"),
                    Some(bytes) if bytes == zlib => (0, "the same bytes, spelt another way"),
                    Some(bytes) if bytes.len() != zlib.len() => {
                        (70003, "a stream cut short or with bytes after it")
                    }
                    Some(bytes) => {
                        let at = (0..zlib.len())
                            .find(|&i| bytes[i] != zlib[i])
                            .expect("a changed byte");
                        if inflate_exactly(&bytes).as_deref() == Some(&document[..]) {
                            (
                                0,
                                "bits the inflater skips (RFC 1951: a block header's padding)",
                            )
                        } else {
                            (70003, zlib_region(framing, &zlib, at))
                        }
                    }
                };
                let query = format!(
                    "sdkappid={APP}&identifier={ADMIN}&usersig={}&random=1&contenttype=json",
                    percent_bytes(&flipped)
                );
                let reply = app
                    .call_with_query(MULTI, &query, &json!({ "Accounts": ["flip-victim"] }))
                    .await;
                assert_eq!(
                    reply.code(),
                    expected,
                    "{framing:?} byte {position} bit {bit} ({}): {why}: {}",
                    String::from_utf8_lossy(&flipped),
                    reply.text
                );
                if expected == 0 {
                    accepted += 1;
                } else {
                    *refused.entry(why).or_default() += 1;
                }
            }
        }
    }
    // Every region was hit.
    for region in [
        "not base64 any more",
        "zlib header (its FCHECK no longer divides by 31)",
        "stored block header (LEN and NLEN no longer agree)",
        "document (its Adler-32 no longer matches)",
        "final empty block (the stream no longer ends there)",
        "deflate data (a broken stream, or another document)",
        "Adler-32 (no longer the document's)",
    ] {
        assert!(refused.contains_key(region), "{region}: {refused:?}");
    }
    // Only accepted spellings may have imported the victim; nothing else changed.
    let victim = app.statuses(APP, &["flip-victim"]).await;
    assert_eq!(
        victim[0] == "Imported",
        accepted > 0,
        "{refused:?}, {accepted} accepted"
    );
    if accepted > 0 {
        app.call(
            DELETE,
            &json!({ "DeleteItem": [{ "UserID": "flip-victim" }] }),
        )
        .await
        .assert_ok();
    }
    assert_unchanged(&app).await;
}

/// The document a zlib stream holds, if it is exactly one complete stream with its checksum
/// intact (flate2, a reference inflater, not the code under test).
fn inflate_exactly(zlib: &[u8]) -> Option<Vec<u8>> {
    let mut inflater = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(64 * 1024);
    match inflater.decompress_vec(zlib, &mut out, flate2::FlushDecompress::Finish) {
        Ok(flate2::Status::StreamEnd) if inflater.total_in() == zlib.len() as u64 => Some(out),
        _ => None,
    }
}

/// What `docs/protocol.md` §4.4 answers for an admin document of the test app after one of
/// its bytes changed, found by reading the document (serde_json) and seeing which field the
/// change landed in, at `now`:
///
/// - not a JSON object any more (a broken token, invalid UTF-8): 70003, step 3;
/// - a field's name changed, so the field is missing: 70003, step 5;
/// - `TLS.ver` no longer `"2.0"`: 70003, step 4;
/// - a field no longer of its type (an integer that is not one, a `TLS.sig` that is not
///   standard base64): 70003, step 5;
/// - `TLS.sdkappid` another number: 70014, step 6;
/// - `TLS.identifier` another string: 70013, step 7;
/// - `TLS.time` or `TLS.expire` another number: expired (`now > time + expire`) 70001,
///   step 8, else the HMAC no longer matches, 70009, step 9;
/// - `TLS.sig` other bytes: 70009, step 9.
fn code_of_changed_document(original: &[u8], changed: &[u8], now: i64) -> (u64, String) {
    let Ok(Value::Object(was)) = serde_json::from_slice::<Value>(original) else {
        panic!("the original document is a JSON object");
    };
    let Ok(Value::Object(is)) = serde_json::from_slice::<Value>(changed) else {
        return (70003, "not a JSON object".into());
    };
    if let Some(missing) = was.keys().find(|k| !is.contains_key(*k)) {
        return (70003, format!("{missing} missing"));
    }
    let Some((field, value)) = is.iter().find(|(k, v)| was.get(*k) != Some(*v)) else {
        return (0, "the same fields".into());
    };
    let expired = || {
        let time = is["TLS.time"].as_i64().expect("an integer");
        let expire = is["TLS.expire"].as_i64().expect("an integer");
        i128::from(now) > i128::from(time) + i128::from(expire)
    };
    let code = match field.as_str() {
        "TLS.ver" => 70003,
        "TLS.identifier" if value.is_string() => 70013,
        "TLS.sdkappid" if value.is_u64() => 70014,
        "TLS.time" | "TLS.expire" if value.is_i64() => {
            if expired() {
                70001
            } else {
                70009
            }
        }
        "TLS.sig"
            if value
                .as_str()
                .is_some_and(|s| b64_decode(s.as_bytes(), false).is_some()) =>
        {
            70009
        }
        _ => 70003,
    };
    (code, format!("{field} = {value}"))
}

/// Every single-bit flip of every byte of an admin document, each put in a token of its own
/// with a correct zlib frame and checksum (made by hand, `zlib_stored`), so that the change
/// reaches the fields: each gets the code of the field it lands in
/// ([`code_of_changed_document`]), and every class occurs.
#[tokio::test]
async fn every_single_bit_flip_inside_the_document_gets_the_code_of_its_field() {
    let app = seeded().await;
    let t = now();
    let sig = tls_sig(KEY, ADMIN, u64::from(APP), t, 86_400);
    // The current Go library's layout (`docs/protocol.md` §4.3), final newline included.
    let document = format!(
        "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"{ADMIN}\",\"TLS.sdkappid\":{APP},\"TLS.expire\":86400,\"TLS.time\":{t},\"TLS.sig\":\"{sig}\"}}\n"
    )
    .into_bytes();
    let token = |doc: &[u8]| timacct_usersig::tencent_b64_encode(&zlib_stored(doc));
    let check = json!({ "CheckItem": [{ "UserID": "known-0" }] });
    let call = |usersig: String| {
        let query = format!(
            "sdkappid={APP}&identifier={ADMIN}&usersig={}&random=1&contenttype=json",
            enc(&usersig)
        );
        let (app, body) = (&app, json!({ "Accounts": ["flip-victim"] }));
        async move { app.call_with_query(MULTI, &query, &body).await }
    };
    // The unflipped document is a valid admin token.
    let query = format!(
        "sdkappid={APP}&identifier={ADMIN}&usersig={}&random=1&contenttype=json",
        enc(&token(&document))
    );
    app.call_with_query(CHECK, &query, &check).await.assert_ok();
    let mut seen = std::collections::BTreeMap::<u64, usize>::new();
    for position in 0..document.len() {
        for bit in 0..8 {
            let mut flipped = document.clone();
            flipped[position] ^= 1 << bit;
            let before = now();
            let reply = call(token(&flipped)).await;
            let after = now();
            let (at_before, why) = code_of_changed_document(&document, &flipped, before);
            let (at_after, _) = code_of_changed_document(&document, &flipped, after);
            assert!(
                reply.code() == at_before || reply.code() == at_after,
                "byte {position} ({:?}) bit {bit}: {why}, expected {at_before}: {}",
                char::from(document[position]),
                reply.text
            );
            *seen.entry(reply.code()).or_default() += 1;
        }
    }
    for code in [70003, 70014, 70013, 70001, 70009] {
        assert!(seen.contains_key(&code), "no flip got {code}: {seen:?}");
    }
    assert!(!seen.contains_key(&0), "{seen:?}");
    app.assert_not_imported(APP, &["flip-victim"]).await;
    assert_unchanged(&app).await;
}

/// A Tencent-base64 token around these zlib bytes.
fn token(zlib: &[u8]) -> String {
    timacct_usersig::tencent_b64_encode(zlib)
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A correctly signed admin document, padded with spaces to exactly `len` bytes.
fn signed_document(len: usize) -> String {
    let t = now();
    let doc = json!({
        "TLS.ver": "2.0",
        "TLS.identifier": ADMIN,
        "TLS.sdkappid": APP,
        "TLS.time": t,
        "TLS.expire": 86_400,
        "TLS.sig": tls_sig(KEY, ADMIN, u64::from(APP), t, 86_400),
    })
    .to_string();
    assert!(doc.len() <= len);
    format!("{}{}", doc, " ".repeat(len - doc.len()))
}

#[tokio::test]
async fn zlib_bombs_in_the_usersig_are_70003_and_change_nothing() {
    let app = seeded().await;
    // DECISIONS: a token that inflates past 64 KiB is 70003.
    let cap = 64 * 1024;
    let delete: Value = serde_json::from_slice(&delete_known()).unwrap();
    let send = |usersig: String| {
        let query = format!(
            "sdkappid={APP}&identifier={ADMIN}&usersig={}&random=1&contenttype=json",
            enc(&usersig)
        );
        let app = &app;
        let delete = delete.clone();
        async move { app.call_with_query(DELETE, &query, &delete).await }
    };
    // Highly compressible junk far past the cap, small enough to travel in a URL.
    for (bytes, what) in [
        (vec![0u8; 16 * 1024 * 1024], "16 MiB of zeros"),
        (vec![b' '; 16 * 1024 * 1024], "16 MiB of spaces"),
        (
            signed_document(cap + 1).into_bytes(),
            "a valid document one byte past the cap",
        ),
    ] {
        let usersig = token(&deflate(&bytes));
        assert!(usersig.len() < 40 * 1024, "{what}: {} bytes", usersig.len());
        let reply = send(usersig).await;
        reply.assert_fail(70003);
        assert!(reply.info().contains("too large"), "{what}: {}", reply.text);
    }
    // A document padded with JSON whitespace up to the cap exactly is still a valid token.
    let at_cap = token(&deflate(signed_document(cap).as_bytes()));
    let check = json!({ "CheckItem": [{ "UserID": "known-0" }] });
    let query = format!(
        "sdkappid={APP}&identifier={ADMIN}&usersig={}&random=1&contenttype=json",
        enc(&at_cap)
    );
    app.call_with_query(CHECK, &query, &check).await.assert_ok();
    // Streams that lie about themselves: a stored block claiming 65535 bytes that are not
    // there, a truncated bomb, a bomb with a wrong checksum, and a bomb followed by junk.
    let bomb = deflate(&vec![0u8; 16 * 1024 * 1024]);
    let mut bad_checksum = bomb.clone();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0xff;
    let mut trailing = bomb.clone();
    trailing.extend_from_slice(b"junk");
    for zlib in [
        vec![0x78, 0x01, 0x01, 0xff, 0xff, 0x00, 0x00, b'{'],
        bomb[..bomb.len() / 2].to_vec(),
        bad_checksum,
        trailing,
        // A preset dictionary, which no generator uses.
        vec![0x78, 0xbb, 0, 0, 0, 1, 0x03, 0x00],
    ] {
        send(token(&zlib)).await.assert_fail(70003);
    }
    // A body sent with Content-Encoding is not decoded: the compressed bytes are not JSON.
    let url = app.url(DELETE, &app.admin_query(APP));
    let gz = {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&delete_known()).unwrap();
        enc.finish().unwrap()
    };
    app.send(
        app.client
            .post(&url)
            .header("content-encoding", "gzip")
            .body(gz),
    )
    .await
    .assert_fail(60003);
    assert_unchanged(&app).await;
}

// ---------------------------------------------------------------------------------------
// Slow and stalled headers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slowly_written_request_is_served_exactly_like_a_fast_one() {
    let app = seeded().await;
    let check =
        json!({ "CheckItem": [{ "UserID": "known-0" }, { "UserID": "absent-0" }] }).to_string();
    let target = format!("{CHECK}?{}", app.admin_query(APP));
    let request = post(&target, check.as_bytes());
    // Bounded: a few hundred writes with a short pause between them.
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    for piece in request.chunks(4) {
        stream.write_all(piece).await.expect("write");
        stream.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reply = read_response(&mut stream, false).await;
    reply.assert_ok();
    let fast = app.post_bytes(APP, CHECK, check.into_bytes()).await;
    assert_eq!(reply.text, fast.text);
    assert_unchanged(&app).await;
}

#[tokio::test]
async fn stalled_headers_do_not_stop_other_clients() {
    let app = seeded().await;
    let target = format!("{DELETE}?{}", app.admin_query(APP));
    let request = post(&target, &delete_known());
    // Many connections each stop half-way through the head, or right after it.
    let mut stalled = Vec::new();
    for i in 0..64 {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let cut = if i % 2 == 0 {
            20
        } else {
            request.len() - delete_known().len()
        };
        stream.write_all(&request[..cut]).await.expect("write");
        stalled.push(stream);
    }
    // Everyone else is served meanwhile.
    for _ in 0..20 {
        let reply = app
            .call(CHECK, &json!({ "CheckItem": [{ "UserID": "known-1" }] }))
            .await;
        reply.assert_ok();
        assert_eq!(reply.json["ResultItem"][0]["AccountStatus"], "Imported");
    }
    assert_unchanged(&app).await;
    // Stalled connections that give up change nothing.
    drop(stalled);
    assert_unchanged(&app).await;
}
