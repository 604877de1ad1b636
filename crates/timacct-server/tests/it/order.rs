//! The order of the checks (`docs/protocol.md` §3; DECISIONS, Transport and UserSig), pinned by
//! requests that are wrong in two ways at once: each must get the code of the earlier check,
//! and change nothing. The order inside the UserSig checks is pinned in
//! `api::usersig_checks_run_in_the_documented_order`.
//!
//! | step | check | code |
//! |---|---|---|
//! | 1 | method | 405, 60002 |
//! | 2, 3 | path, and an API that is served | 60009 |
//! | 5 | `sdkappid` | 60012 |
//! | 6 | the app | 70020 |
//! | 7 | `identifier`, `usersig`, `contenttype`, `random` | 60025 |
//! | 8 | the UserSig | 70003, 70014, 70013, 70001, 70009 |
//! | 9 | `--max-usersig-age` | 70003 |
//! | 10 | admin | 70403 |
//! | 11 | rate limit | 60007 |
//! | 12 | the body's size | 60003 |
//! | 13 | the plan allows deletion | 71000 |
//! | 14, 15 | the body parses, batch size | 60003, 70402 |
//! | 16 | each entry | per item |
//!
//! A request can only be over the rate limit while its bucket is empty, which no test can
//! arrange for a given call; those pairs are shown by counting over floods, as in
//! [`crate::rate_limits`].

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use timacct_proto::Api;
use timacct_server::ServerLimits;
use timacct_test_support::*;
use timacct_usersig::UserSigGenerator;

const RATE_LIMITED: u64 = 60007;

/// An account_check body naming one account.
fn check_body() -> Value {
    json!({ "CheckItem": [{ "UserID": "a" }] })
}

/// A query string with these parts, in this order, `None` leaving a part out.
fn q(
    sdkappid: Option<&str>,
    identifier: Option<&str>,
    usersig: Option<&str>,
    extra: &str,
) -> String {
    let mut parts = Vec::new();
    if let Some(v) = sdkappid {
        parts.push(format!("sdkappid={v}"));
    }
    if let Some(v) = identifier {
        parts.push(format!("identifier={}", enc(v)));
    }
    if let Some(v) = usersig {
        parts.push(format!("usersig={}", enc(v)));
    }
    if !extra.is_empty() {
        parts.push(extra.to_owned());
    }
    parts.join("&")
}

/// A POST to `path?query` that announces a body one byte over the limit and sends none, on a
/// connection of its own: a call whose body would be read is refused from the header alone
/// (60003), so the answer shows whether an earlier check stopped it first.
fn announcing_an_oversized_body(path: &str, query: &str) -> Vec<u8> {
    format!(
        "POST {path}?{query} HTTP/1.1\r\nHost: console.tim.qq.com\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        timacct_server::DEFAULT_BODY_LIMIT + 1
    )
    .into_bytes()
}

#[tokio::test]
async fn the_method_comes_before_the_path_and_the_query() {
    let app = spawn_app().await;
    for (path, query) in [
        ("/v4/foo/bar", String::new()),
        (KICK, String::new()),
        (IMPORT, String::new()),
        (IMPORT, q(Some("abc"), None, None, "")),
    ] {
        let url = app.url(path, &query);
        let reply = app
            .raw(Method::PUT, &url, Some(br#"{"UserID":"put"}"#.to_vec()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{path}?{query}"
        );
        assert_eq!(reply.code(), 60002, "{path}?{query}: {}", reply.text);
    }
    app.assert_not_imported(APP, &["put"]).await;
}

#[tokio::test]
async fn the_path_comes_before_the_query() {
    let app = spawn_app().await;
    let sig = app.admin_sig(APP);
    let bad_queries = [
        // No sdkappid; sdkappid not a u32; no such app; no identifier; a garbage UserSig.
        String::new(),
        q(Some("abc"), Some(ADMIN), Some(&sig), ""),
        q(Some("1400000002"), Some(ADMIN), Some(&sig), ""),
        q(Some("1400000001"), None, Some(&sig), ""),
        q(Some("1400000001"), Some(ADMIN), Some("garbage"), ""),
    ];
    // An unknown path, and the paths of APIs not served yet (steps 2 and 3).
    for path in ["/v4/im_open_login_svc/nope", "/v4/foo/bar", KICK, ONLINE] {
        for query in &bad_queries {
            app.call_with_query(path, query, &check_body())
                .await
                .assert_fail(60009);
        }
    }
}

#[tokio::test]
async fn a_malformed_sdkappid_comes_before_the_other_parameters() {
    let app = spawn_app().await;
    for query in [
        q(None, None, None, "random=abc&contenttype=xml"),
        q(Some("abc"), None, Some("garbage"), ""),
        q(Some("4294967296"), Some(ADMIN), None, "contenttype=xml"),
    ] {
        app.call_with_query(IMPORT, &query, &json!({ "UserID": "x" }))
            .await
            .assert_fail(60012);
    }
    app.assert_not_imported(APP, &["x"]).await;
}

/// DECISIONS: 70020 before 60025.
#[tokio::test]
async fn an_unknown_app_comes_before_the_other_parameters() {
    let app = spawn_app().await;
    let sig = sig(1_400_000_002, KEY, ADMIN);
    for query in [
        q(Some("1400000002"), None, None, ""),
        q(Some("1400000002"), None, Some(&sig), ""),
        q(Some("1400000002"), Some(ADMIN), None, ""),
        q(
            Some("1400000002"),
            Some(ADMIN),
            Some(&sig),
            "contenttype=xml",
        ),
        q(Some("1400000002"), Some(ADMIN), Some(&sig), "random=abc"),
    ] {
        app.call_with_query(CHECK, &query, &check_body())
            .await
            .assert_fail(70020);
    }
}

/// DECISIONS: 60025 before the UserSig.
#[tokio::test]
async fn the_url_parameters_come_before_the_usersig() {
    let app = spawn_app().await;
    let t = now();
    let expired = UserSigGenerator::new(u64::from(APP), KEY).gen(ADMIN, 10, t - 1000);
    let forged = sig(APP, "another key", ADMIN);
    let other_app = sig(1_400_000_002, KEY, ADMIN);
    for query in [
        // No identifier, with a UserSig that would be 70003, 70001 or 70009.
        q(Some("1400000001"), None, Some("garbage"), ""),
        q(Some("1400000001"), None, Some(&expired), ""),
        q(Some("1400000001"), Some(""), Some(&forged), ""),
        // A bad contenttype or random, with a UserSig that would be 70003, 70014 or 70013.
        q(
            Some("1400000001"),
            Some(ADMIN),
            Some("garbage"),
            "contenttype=xml",
        ),
        q(
            Some("1400000001"),
            Some(ADMIN),
            Some(&other_app),
            "contenttype=JSON",
        ),
        q(
            Some("1400000001"),
            Some("bob"),
            Some(&expired),
            "random=abc",
        ),
        q(
            Some("1400000001"),
            Some(ADMIN),
            Some(&forged),
            "random=4294967296",
        ),
    ] {
        app.call_with_query(IMPORT, &query, &json!({ "UserID": "x" }))
            .await
            .assert_fail(60025);
    }
    app.assert_not_imported(APP, &["x"]).await;
}

#[tokio::test]
async fn the_usersig_comes_before_the_admin_check() {
    let app = spawn_app().await;
    let t = now();
    let gen = UserSigGenerator::new(u64::from(APP), KEY);
    // "bob" is not an admin: each of these is wrong about the sig as well.
    for (usersig, code) in [
        ("garbage".to_owned(), 70003),
        (sig(1_400_000_002, KEY, "bob"), 70014),
        (sig(APP, KEY, "alice"), 70013),
        (gen.gen("bob", 10, t - 1000), 70001),
        (sig(APP, "another key", "bob"), 70009),
    ] {
        app.call_with_query(
            IMPORT,
            &query(APP, "bob", &usersig),
            &json!({ "UserID": "x" }),
        )
        .await
        .assert_fail(code);
    }
    app.assert_not_imported(APP, &["x"]).await;
}

#[tokio::test]
async fn the_usersig_age_comes_before_the_admin_check() {
    let server = spawn_limited(ServerLimits {
        max_usersig_age: Some(3600),
        ..ServerLimits::default()
    })
    .await;
    let long = UserSigGenerator::new(u64::from(APP), KEY).gen("bob", 86_400, now());
    server
        .call_with_query(CHECK, &query(APP, "bob", &long), &check_body())
        .await
        .assert_fail(70003);
}

/// DECISIONS: 70403 before a bad body. A non-admin's call is refused before its body is read,
/// whatever the body.
#[tokio::test]
async fn the_admin_check_comes_before_the_body() {
    let app = spawn_app().await;
    let bob = query(APP, "bob", &sig(APP, KEY, "bob"));
    app.raw_tcp(&announcing_an_oversized_body(IMPORT, &bob))
        .await
        .assert_fail(70403);
    for (path, body) in [
        (IMPORT, b"".to_vec()),
        (IMPORT, b"not json".to_vec()),
        (IMPORT, br#"{"Nick":"no UserID"}"#.to_vec()),
        (MULTI, br#"{"Accounts":[]}"#.to_vec()),
        (CHECK, b"[1]".to_vec()),
        (DELETE, br#"{"DeleteItem":[{"UserID":1}]}"#.to_vec()),
    ] {
        let reply = app
            .raw(Method::POST, &app.url(path, &bob), Some(body))
            .await;
        reply.assert_fail(70403);
    }
    app.assert_not_imported(APP, &["x"]).await;
}

/// Only calls that pass authentication use up the rate limit: after a hundred refused ones
/// (a forged UserSig, a non-admin), an admin still finds the bucket full.
#[tokio::test]
async fn refused_authentication_uses_none_of_the_rate_limit() {
    let app = spawn_with(vec![limited_config(APP, KEY, &[(Api::AccountCheck, 1)])]).await;
    let forged = query(APP, ADMIN, &sig(APP, "another key", ADMIN));
    let bob = query(APP, "bob", &sig(APP, KEY, "bob"));
    for _ in 0..50 {
        app.call_with_query(CHECK, &forged, &check_body())
            .await
            .assert_fail(70009);
        app.call_with_query(CHECK, &bob, &check_body())
            .await
            .assert_fail(70403);
    }
    app.call(CHECK, &check_body()).await.assert_ok();
}

/// While an admin's calls are refused with 60007, a non-admin's and a forged UserSig's still
/// get their own codes: authentication comes before the rate limit. Counted over a flood of
/// admin calls at 1/s, so that the bucket is empty for most of the time the other calls run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_comes_before_the_rate_limit() {
    let app = spawn_with(vec![limited_config(APP, KEY, &[(Api::AccountCheck, 1)])]).await;
    let admin = app.url(CHECK, &app.admin_query(APP));
    let bob = app.url(CHECK, &query(APP, "bob", &sig(APP, KEY, "bob")));
    let forged = app.url(CHECK, &query(APP, ADMIN, &sig(APP, "another key", ADMIN)));
    let body = |_| check_body().to_string().into_bytes();
    let (admins, bobs, forgeries) = tokio::join!(
        flood(&app.client, &admin, 200, 2, body),
        flood(&app.client, &bob, 100, 1, body),
        flood(&app.client, &forged, 100, 1, body),
    );
    let report = format!(
        "admin {:?} in {:?}; bob {:?}; forged {:?}",
        admins.codes(),
        admins.span(),
        bobs.codes(),
        forgeries.codes()
    );
    assert!(admins.count(RATE_LIMITED) > 0, "{report}");
    assert_eq!(
        admins.count(0) + admins.count(RATE_LIMITED),
        200,
        "{report}"
    );
    assert!(
        admins.count(0) <= bucket_ceiling(1, 1, admins.span()),
        "{report}"
    );
    assert_eq!(bobs.count(70403), 100, "{report}");
    assert_eq!(forgeries.count(70009), 100, "{report}");
}

/// DECISIONS: 60007 before a bad body, a body too large included (the body is read only once
/// the call is allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_comes_before_the_body() {
    let app = spawn_with(vec![limited_config(APP, KEY, &[(Api::AccountImport, 1)])]).await;
    let url = app.url(IMPORT, &app.admin_query(APP));
    for (body, allowed) in [
        (b"not json".to_vec(), 60003),
        (br#"{"UserID":5}"#.to_vec(), 70402),
        (br#"{"UserID":"x","Nick":5}"#.to_vec(), 70402),
    ] {
        let f = flood(&app.client, &url, 30, 2, move |_| body.clone()).await;
        let report = format!("{:?} in {:?}", f.codes(), f.span());
        assert_eq!(f.count(allowed) + f.count(RATE_LIMITED), 30, "{report}");
        assert!(f.count(RATE_LIMITED) > 0, "{report}");
        assert!(
            f.count(allowed) <= bucket_ceiling(1, 1, f.span()),
            "{report}"
        );
    }
    // A body announced larger than the limit.
    let request = announcing_an_oversized_body(IMPORT, &app.admin_query(APP));
    let mut shots = Vec::new();
    for index in 0..10 {
        let sent = std::time::Instant::now();
        let reply = app.raw_tcp(&request).await;
        let answered = std::time::Instant::now();
        shots.push(Shot {
            index,
            sent,
            answered,
            code: reply.code(),
            info: reply.info().to_owned(),
        });
    }
    let f = Flood { shots };
    let report = format!("{:?} in {:?}", f.codes(), f.span());
    assert_eq!(f.count(60003) + f.count(RATE_LIMITED), 10, "{report}");
    assert!(f.count(RATE_LIMITED) > 0, "{report}");
    assert!(f.count(60003) <= bucket_ceiling(1, 1, f.span()), "{report}");
    app.assert_not_imported(APP, &["x"]).await;
}

/// 60007 before 71000: a `pro` app without deletion is still rate-limited on account_delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_comes_before_the_plan() {
    let mut config = pro_config(APP, KEY, false);
    config.rate_limits =
        timacct_server::RateLimitPolicy::Custom([(Api::AccountDelete, 1)].into_iter().collect());
    let app = spawn_with(vec![config]).await;
    app.import(APP, &["keep"]).await;
    let url = app.url(DELETE, &app.admin_query(APP));
    let f = flood(&app.client, &url, 30, 2, |_| {
        json!({ "DeleteItem": [{ "UserID": "keep" }] })
            .to_string()
            .into_bytes()
    })
    .await;
    let report = format!("{:?} in {:?}", f.codes(), f.span());
    assert_eq!(f.count(71000) + f.count(RATE_LIMITED), 30, "{report}");
    assert!(f.count(RATE_LIMITED) > 0, "{report}");
    assert!(f.count(71000) >= 1, "{report}");
    assert!(f.count(71000) <= bucket_ceiling(1, 1, f.span()), "{report}");
    app.assert_imported(APP, &["keep"]).await;
}

/// The plan comes before the body's content: a `pro` app without deletion answers 71000
/// whatever the body says. Only a body too large to read is refused before (60003, step 12).
#[tokio::test]
async fn the_plan_comes_before_the_body_content() {
    let app = spawn_with(vec![pro_config(APP, KEY, false)]).await;
    app.import(APP, &["keep"]).await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "UserID": format!("u{i}") }))
        .collect();
    for body in [
        b"".to_vec(),
        b"not json".to_vec(),
        b"{}".to_vec(),
        br#"{"DeleteItem":[]}"#.to_vec(),
        json!({ "DeleteItem": many }).to_string().into_bytes(),
        br#"{"DeleteItem":[{"UserID":1}]}"#.to_vec(),
    ] {
        app.post_bytes(APP, DELETE, body).await.assert_fail(71000);
    }
    app.raw_tcp(&announcing_an_oversized_body(DELETE, &app.admin_query(APP)))
        .await
        .assert_fail(60003);
    app.assert_imported(APP, &["keep"]).await;
}

/// The body: a syntax error anywhere is 60003 even where a field is also wrong before it;
/// the batch size is checked before any entry, so a batch of 101 with invalid UserIDs is
/// refused whole (70402), not entry by entry.
#[tokio::test]
async fn syntax_before_fields_and_batch_size_before_entries() {
    let app = spawn_app().await;
    for (path, body) in [
        (IMPORT, r#"{"UserID":5,}"#),
        (MULTI, r#"{"Accounts":[1],"x":}"#),
        (CHECK, r#"{"CheckItem":[{"UserID":1}]} trailing"#),
    ] {
        app.post_bytes(APP, path, body.as_bytes().to_vec())
            .await
            .assert_fail(60003);
    }
    let invalid: Vec<String> = (0..101)
        .map(|i| {
            if i % 2 == 0 {
                String::new()
            } else {
                format!("ok{i}")
            }
        })
        .collect();
    let entries: Vec<Value> = invalid.iter().map(|id| json!({ "UserID": id })).collect();
    app.call(MULTI, &json!({ "Accounts": invalid }))
        .await
        .assert_fail(70402);
    app.call(CHECK, &json!({ "CheckItem": entries }))
        .await
        .assert_fail(70402);
    app.call(DELETE, &json!({ "DeleteItem": entries }))
        .await
        .assert_fail(70402);
    assert_eq!(app.account_count(APP).await, 0);
}
