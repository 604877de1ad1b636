//! The account API's contract, pinned over real HTTP against the real server and a real
//! SQLite file: the decisions of `docs/protocol.md` (§10 and the sections it points to) row by
//! row, and the seed samples (§6.7) byte for byte.

use reqwest::header::{CONTENT_TYPE, HOST};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use timacct_test_support::*;
use timacct_usersig::{Framing, UserSigGenerator};

fn items(ids: &[&str]) -> Vec<Value> {
    ids.iter().map(|id| json!({ "UserID": id })).collect()
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const FAIL_NONE: &str = r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":[]}"#;
const ENVELOPE_OK: &str = r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}"#;

// ---------------------------------------------------------------------------------------
// Seed samples (`docs/protocol.md` §6.7): exact bytes, key order included.
// ---------------------------------------------------------------------------------------

const SEED_APP: u32 = 88_888_888;
const SEED_KEY: &str = "seed-sample-secret-key";

async fn seed_app() -> TestServer {
    let mut config = app_config(SEED_APP, SEED_KEY);
    config.admins = vec!["admin".to_owned()];
    let app = spawn_with(vec![config]).await;
    app.import(SEED_APP, &["UserID_1"]).await;
    app
}

fn seed_url(app: &TestServer, command: &str) -> String {
    // The sample's query string, with a real UserSig for `admin` in place of `xxx`.
    format!(
        "{}/v4/im_open_login_svc/{command}?sdkappid=88888888&identifier=admin&usersig={}&random=99999999&contenttype=json",
        app.base,
        enc(&sig(SEED_APP, SEED_KEY, "admin"))
    )
}

#[tokio::test]
async fn seed_sample_account_check_round_trips_exactly() {
    let app = seed_app().await;
    let request = r#"{"CheckItem":[{"UserID":"UserID_1"},{"UserID":"UserID_2"}]}"#;
    let response = r#"{"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ResultItem": [{"UserID": "UserID_1","ResultCode": 0,"ResultInfo": "","AccountStatus": "Imported"},{"UserID": "UserID_2","ResultCode": 0,"ResultInfo": "","AccountStatus": "NotImported"}]}"#;
    let reply = app
        .raw(
            Method::POST,
            &seed_url(&app, "account_check"),
            Some(request.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, compact(response));
}

#[tokio::test]
async fn seed_sample_account_delete_round_trips_exactly() {
    let app = seed_app().await;
    let request = r#"{"DeleteItem":[{"UserID":"UserID_1"},{"UserID":"UserID_2"}]}"#;
    let response = r#"{"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ResultItem": [{"ResultCode": 0,"ResultInfo": "","UserID": "UserID_1"},{"ResultCode": 70107,"ResultInfo": "Err_TLS_PT_Open_Login_Account_Not_Exist","UserID": "UserID_2"}]}"#;
    let reply = app
        .raw(
            Method::POST,
            &seed_url(&app, "account_delete"),
            Some(request.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, compact(response));
    app.assert_not_imported(SEED_APP, &["UserID_1", "UserID_2"])
        .await;
}

#[test]
fn compact_keeps_strings_intact() {
    assert_eq!(
        compact(r#"{"a": "b c", "d\"e": [1, 2]}"#),
        r#"{"a":"b c","d\"e":[1,2]}"#
    );
}

// ---------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_path_is_http_200_with_60009() {
    let app = spawn_app().await;
    let q = app.admin_query(APP);
    for path in [
        "/",
        "/v4",
        "/v4/im_open_login_svc/nope",
        "/v4/im_open_login_svc/account_check/extra",
        "/v4/im_open_login_svc/Account_Check",
        "/v4/openim/account_check",
        "/v3/im_open_login_svc/account_check",
        "/v4/foo/bar",
    ] {
        app.call_with_query(path, &q, &json!({ "CheckItem": items(&["a"]) }))
            .await
            .assert_fail(60009);
    }
}

#[tokio::test]
async fn kick_and_query_online_status_are_60009_for_now() {
    let app = spawn_app().await;
    app.call(KICK, &json!({ "UserID": "a" }))
        .await
        .assert_fail(60009);
    app.call(ONLINE, &json!({ "To_Account": ["a"] }))
        .await
        .assert_fail(60009);
}

#[tokio::test]
async fn get_with_a_body_is_treated_like_post() {
    let app = spawn_app().await;
    app.import(APP, &["alice"]).await;
    let url = app.url(CHECK, &app.admin_query(APP));
    let body = json!({ "CheckItem": items(&["alice", "bob"]) }).to_string();
    let via_get = app
        .raw(Method::GET, &url, Some(body.clone().into_bytes()))
        .await;
    via_get.assert_ok();
    let via_post = app.raw(Method::POST, &url, Some(body.into_bytes())).await;
    assert_eq!(via_get.text, via_post.text);
    assert_eq!(
        via_get.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"alice","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"},{"UserID":"bob","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"}]}"#
    );
    // A GET import writes, exactly as a POST would.
    let url = app.url(IMPORT, &app.admin_query(APP));
    app.raw(Method::GET, &url, Some(br#"{"UserID":"by_get"}"#.to_vec()))
        .await
        .assert_ok();
    app.assert_imported(APP, &["by_get"]).await;
}

#[tokio::test]
async fn other_methods_get_405_with_envelope_60002() {
    let app = spawn_app().await;
    let url = app.url(IMPORT, &app.admin_query(APP));
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let reply = app
            .raw(
                method.clone(),
                &url,
                Some(br#"{"UserID":"by_other_method"}"#.to_vec()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.code(), 60002, "{method}: {}", reply.text);
        assert_eq!(reply.json["ActionStatus"], "FAIL");
    }
    app.assert_not_imported(APP, &["by_other_method"]).await;
}

#[tokio::test]
async fn sdkappid_missing_or_not_u32_is_60012() {
    let app = spawn_app().await;
    let s = enc(&app.admin_sig(APP));
    let rest = format!("identifier={ADMIN}&usersig={s}&random=1&contenttype=json");
    for q in [
        rest.clone(),
        format!("sdkappid=&{rest}"),
        format!("sdkappid=abc&{rest}"),
        format!("sdkappid=-1&{rest}"),
        format!("sdkappid=4294967296&{rest}"),
        format!("sdkappid=1400000001.0&{rest}"),
        // Parameter names are case-sensitive: this is no `sdkappid`.
        format!("SdkAppId={APP}&{rest}"),
    ] {
        app.call_with_query(CHECK, &q, &json!({ "CheckItem": items(&["a"]) }))
            .await
            .assert_fail(60012);
    }
}

#[tokio::test]
async fn unknown_sdkappid_is_70020() {
    let app = spawn_app().await;
    for id in [0u32, 1_400_000_002, 4_294_967_295] {
        let q = query(id, ADMIN, &sig(id, KEY, ADMIN));
        app.call_with_query(CHECK, &q, &json!({ "CheckItem": items(&["a"]) }))
            .await
            .assert_fail(70020);
    }
}

#[tokio::test]
async fn identifier_or_usersig_missing_or_empty_is_60025() {
    let app = spawn_app().await;
    let s = enc(&app.admin_sig(APP));
    let tail = "random=1&contenttype=json";
    for q in [
        format!("sdkappid={APP}&usersig={s}&{tail}"),
        format!("sdkappid={APP}&identifier=&usersig={s}&{tail}"),
        format!("sdkappid={APP}&identifier={ADMIN}&{tail}"),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig=&{tail}"),
        format!("sdkappid={APP}&{tail}"),
    ] {
        app.call_with_query(IMPORT, &q, &json!({ "UserID": "nobody" }))
            .await
            .assert_fail(60025);
    }
    app.assert_not_imported(APP, &["nobody"]).await;
}

#[tokio::test]
async fn contenttype_may_be_absent_but_otherwise_must_be_json() {
    let app = spawn_app().await;
    let s = enc(&app.admin_sig(APP));
    let base = format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&random=7");
    let body = json!({ "CheckItem": items(&["a"]) });
    app.call_with_query(CHECK, &base, &body).await.assert_ok();
    app.call_with_query(CHECK, &format!("{base}&contenttype=json"), &body)
        .await
        .assert_ok();
    for bad in ["xml", "JSON", "", "json%20"] {
        app.call_with_query(CHECK, &format!("{base}&contenttype={bad}"), &body)
            .await
            .assert_fail(60025);
    }
}

#[tokio::test]
async fn random_may_be_absent_but_otherwise_must_be_a_u32() {
    let app = spawn_app().await;
    let s = enc(&app.admin_sig(APP));
    let base = format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&contenttype=json");
    let body = json!({ "CheckItem": items(&["a"]) });
    app.call_with_query(CHECK, &base, &body).await.assert_ok();
    for good in ["0", "99999999", "4294967295"] {
        app.call_with_query(CHECK, &format!("{base}&random={good}"), &body)
            .await
            .assert_ok();
    }
    for bad in [
        "abc",
        "4294967296",
        "-1",
        "",
        "1.5",
        "99999999999999999999999",
    ] {
        app.call_with_query(CHECK, &format!("{base}&random={bad}"), &body)
            .await
            .assert_fail(60025);
    }
}

#[tokio::test]
async fn body_that_is_not_a_json_object_is_60003() {
    let app = spawn_app().await;
    let bodies: [&[u8]; 10] = [
        b"",
        b"   ",
        b"not json",
        b"[]",
        b"\"str\"",
        b"1",
        b"null",
        b"true",
        b"{",
        b"{\"CheckItem\":[{\"UserID\":\"a\"}]} trailing",
    ];
    for path in [IMPORT, MULTI, CHECK, DELETE] {
        for body in bodies {
            let reply = app.post_bytes(APP, path, body.to_vec()).await;
            assert_eq!(
                reply.code(),
                60003,
                "{path} with body {:?}: {}",
                String::from_utf8_lossy(body),
                reply.text
            );
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn no_content_type_header_is_required() {
    let app = spawn_app().await;
    let url = app.url(IMPORT, &app.admin_query(APP));
    // No Content-Type at all (reqwest's `.body` sets none).
    let request = app.client.post(&url).body(r#"{"UserID":"bare"}"#);
    app.send(request).await.assert_ok();
    // A misleading one is ignored too.
    let request = app
        .client
        .post(&url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(r#"{"UserID":"form"}"#);
    app.send(request).await.assert_ok();
    let request = app
        .client
        .post(&url)
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"UserID":"plain"}"#);
    app.send(request).await.assert_ok();
    app.assert_imported(APP, &["bare", "form", "plain"]).await;
}

#[tokio::test]
async fn any_host_header_is_accepted() {
    let app = spawn_app().await;
    let url = app.url(CHECK, &app.admin_query(APP));
    for host in [
        "console.tim.qq.com",
        "adminapi.my-imcloud.com",
        "adminapisgp.im.qcloud.com",
        "adminapiger.my-imcloud.com",
        "example.invalid:8443",
    ] {
        let request = app
            .client
            .post(&url)
            .header(HOST, host)
            .body(json!({ "CheckItem": items(&["a"]) }).to_string());
        app.send(request).await.assert_ok();
    }
}

#[tokio::test]
async fn response_headers_and_envelope_order() {
    let app = spawn_app().await;
    let ok = app.call(IMPORT, &json!({ "UserID": "a" })).await;
    assert_eq!(ok.text, ENVELOPE_OK);
    let again = app.call(IMPORT, &json!({ "UserID": "b" })).await;
    let fail = app.call(IMPORT, &json!({})).await;
    fail.assert_fail(70402);
    assert!(
        fail.text
            .starts_with(r#"{"ActionStatus":"FAIL","ErrorCode":70402,"ErrorInfo":""#),
        "{}",
        fail.text
    );
    for reply in [&ok, &again, &fail] {
        assert_eq!(
            reply.headers[CONTENT_TYPE].to_str().unwrap(),
            "application/json; charset=utf-8"
        );
    }
    let ids: Vec<&str> = [&ok, &again, &fail]
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_ne!(ids[0], ids[2]);
}

// ---------------------------------------------------------------------------------------
// Admin UserSig checks, codes and order
// ---------------------------------------------------------------------------------------

/// Call account_check on the default app as `identifier` with this UserSig.
async fn check_with_sig(app: &TestServer, identifier: &str, usersig: &str) -> Reply {
    app.call_with_query(
        CHECK,
        &query(APP, identifier, usersig),
        &json!({ "CheckItem": items(&["a"]) }),
    )
    .await
}

fn document(
    ver: &str,
    identifier: &str,
    sdkappid: u64,
    time: i64,
    expire: i64,
    key: &str,
) -> String {
    let sig = tls_sig(key, identifier, sdkappid, time, expire);
    json!({
        "TLS.ver": ver,
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.expire": expire,
        "TLS.time": time,
        "TLS.sig": sig,
    })
    .to_string()
}

#[tokio::test]
async fn undecodable_usersig_is_70003() {
    let app = spawn_app().await;
    let valid = app.admin_sig(APP);
    let truncated = &valid[..valid.len() / 2];
    for bad in [
        "garbage",
        "xxx",
        "!!!!",
        truncated,
        &token_from_document("not json"),
        &token_from_document("[1,2]"),
        &tencent_b64(b"plain bytes, not zlib"),
    ] {
        let reply = check_with_sig(&app, ADMIN, bad).await;
        reply.assert_fail(70003);
    }
}

fn tencent_b64(bytes: &[u8]) -> String {
    timacct_usersig::tencent_b64_encode(bytes)
}

#[tokio::test]
async fn usersig_with_wrong_version_or_bad_fields_is_70003() {
    let app = spawn_app().await;
    let t = now();
    let sdk = u64::from(APP);
    // Correctly signed, but TLS.ver 3.0.
    let v3 = token_from_document(&document("3.0", ADMIN, sdk, t, 86_400, KEY));
    check_with_sig(&app, ADMIN, &v3).await.assert_fail(70003);
    // The same document with 2.0 is fine, which shows the HMAC is right.
    let v2 = token_from_document(&document("2.0", ADMIN, sdk, t, 86_400, KEY));
    check_with_sig(&app, ADMIN, &v2).await.assert_ok();

    let full: Value = serde_json::from_str(&document("2.0", ADMIN, sdk, t, 86_400, KEY)).unwrap();
    for field in [
        "TLS.ver",
        "TLS.identifier",
        "TLS.sdkappid",
        "TLS.expire",
        "TLS.time",
        "TLS.sig",
    ] {
        let mut doc = full.clone();
        doc.as_object_mut().unwrap().remove(field);
        let token = token_from_document(&doc.to_string());
        let reply = check_with_sig(&app, ADMIN, &token).await;
        assert_eq!(reply.code(), 70003, "without {field}: {}", reply.text);
    }
    for (field, value) in [
        ("TLS.time", json!(t.to_string())),
        ("TLS.expire", json!("86400")),
        ("TLS.sdkappid", json!(APP.to_string())),
        ("TLS.expire", json!(86400.5)),
        ("TLS.identifier", json!(1)),
        ("TLS.sig", json!(5)),
        ("TLS.ver", json!(2.0)),
    ] {
        let mut doc = full.clone();
        doc[field] = value.clone();
        let token = token_from_document(&doc.to_string());
        let reply = check_with_sig(&app, ADMIN, &token).await;
        assert_eq!(reply.code(), 70003, "{field} = {value}: {}", reply.text);
    }
}

#[tokio::test]
async fn usersig_for_another_sdkappid_is_70014() {
    let app = spawn_app().await;
    // Signed with the right key, but issued for another SDKAppID.
    let other = sig(1_400_000_999, KEY, ADMIN);
    check_with_sig(&app, ADMIN, &other).await.assert_fail(70014);
}

#[tokio::test]
async fn usersig_identifier_mismatch_is_70013() {
    let mut config = app_config(APP, KEY);
    config.admins = vec![ADMIN.to_owned(), "other".to_owned()];
    let app = spawn_with(vec![config]).await;
    let admin_sig = sig(APP, KEY, ADMIN);
    check_with_sig(&app, "other", &admin_sig)
        .await
        .assert_fail(70013);
    // A sig that verified (and may be cached) for its own identifier is still refused for
    // another one.
    check_with_sig(&app, ADMIN, &admin_sig).await.assert_ok();
    check_with_sig(&app, "other", &admin_sig)
        .await
        .assert_fail(70013);
}

#[tokio::test]
async fn expired_usersig_is_70001() {
    let app = spawn_app().await;
    let expired = UserSigGenerator::new(u64::from(APP), KEY).gen(ADMIN, 10, now() - 1000);
    check_with_sig(&app, ADMIN, &expired)
        .await
        .assert_fail(70001);
}

#[tokio::test]
async fn usersig_signed_with_a_wrong_key_is_70009_with_the_documented_text() {
    let app = spawn_app().await;
    let forged = sig(APP, "some other app's key", ADMIN);
    let reply = check_with_sig(&app, ADMIN, &forged).await;
    reply.assert_fail(70009);
    assert_eq!(reply.info(), INFO_70009);
    assert_eq!(
        reply.text,
        format!(r#"{{"ActionStatus":"FAIL","ErrorCode":70009,"ErrorInfo":"{INFO_70009}"}}"#)
    );
    // A tampered signature too.
    let t = now();
    let mut doc: Value =
        serde_json::from_str(&document("2.0", ADMIN, u64::from(APP), t, 86_400, KEY)).unwrap();
    doc["TLS.sig"] = json!(tls_sig(KEY, ADMIN, u64::from(APP), t, 86_401));
    let tampered = token_from_document(&doc.to_string());
    check_with_sig(&app, ADMIN, &tampered)
        .await
        .assert_fail(70009);
}

#[tokio::test]
async fn valid_usersig_of_a_non_admin_is_70403_every_time() {
    let app = spawn_app().await;
    let bob = sig(APP, KEY, "bob");
    let url = app.url(IMPORT, &query(APP, "bob", &bob));
    for _ in 0..3 {
        // The sig is valid (and may be cached after the first call); bob is still no admin.
        let reply = app
            .raw(Method::POST, &url, Some(br#"{"UserID":"bobs"}"#.to_vec()))
            .await;
        reply.assert_fail(70403);
    }
    // Admin names are case-sensitive, like every parameter value.
    let upper = sig(APP, KEY, "Administrator");
    check_with_sig(&app, "Administrator", &upper)
        .await
        .assert_fail(70403);
    app.assert_not_imported(APP, &["bobs"]).await;
}

#[tokio::test]
async fn the_same_valid_usersig_works_repeatedly() {
    let app = spawn_app().await;
    let s = app.admin_sig(APP);
    for _ in 0..5 {
        check_with_sig(&app, ADMIN, &s).await.assert_ok();
    }
}

#[tokio::test]
async fn cached_usersig_still_expires() {
    let app = spawn_app().await;
    let t = now();
    let short = UserSigGenerator::new(u64::from(APP), KEY).gen(ADMIN, 2, t);
    check_with_sig(&app, ADMIN, &short).await.assert_ok();
    // Valid through t + 2; expired once now > t + 2.
    while now() <= t + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    check_with_sig(&app, ADMIN, &short).await.assert_fail(70001);
}

#[tokio::test]
async fn both_base64_alphabets_and_both_zlib_framings_are_accepted() {
    let app = spawn_app().await;
    let t = now();
    let gen = UserSigGenerator::new(u64::from(APP), KEY);
    // Find a token whose Tencent spelling actually uses the substituted characters.
    let tencent = (0..200)
        .map(|i| gen.gen(ADMIN, 86_400 + i, t))
        .find(|s| s.contains('*') || s.contains('-'))
        .expect("a token using * or -");
    let standard: String = tencent
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            other => other,
        })
        .collect();
    assert_ne!(standard, tencent);
    check_with_sig(&app, ADMIN, &tencent).await.assert_ok();
    check_with_sig(&app, ADMIN, &standard).await.assert_ok();

    let deflated = UserSigGenerator::new(u64::from(APP), KEY)
        .with_framing(Framing::Deflate)
        .gen(ADMIN, 86_400, t);
    check_with_sig(&app, ADMIN, &deflated).await.assert_ok();
}

#[tokio::test]
async fn usersig_inflating_past_64_kib_is_70003() {
    let app = spawn_app().await;
    let gen = UserSigGenerator::new(u64::from(APP), KEY).with_framing(Framing::Deflate);
    let t = now();
    // A userbuf of 40 000 bytes inflates to about 53 KB: under the cap, and accepted.
    let under = gen.gen_with_userbuf(ADMIN, 86_400, t, &[0u8; 40_000]);
    check_with_sig(&app, ADMIN, &under).await.assert_ok();
    // 70 000 bytes inflate to about 93 KB: refused before anything else is looked at.
    let over = gen.gen_with_userbuf(ADMIN, 86_400, t, &[0u8; 70_000]);
    assert!(over.len() < 8 * 1024, "compressed token stays small");
    check_with_sig(&app, ADMIN, &over).await.assert_fail(70003);
}

#[tokio::test]
async fn usersig_json_key_order_and_spacing_do_not_matter() {
    let app = spawn_app().await;
    let t = now();
    let s = tls_sig(KEY, ADMIN, u64::from(APP), t, 86_400);
    let doc = format!(
        "{{\n  \"TLS.sig\" : \"{s}\",\n  \"TLS.time\" : {t},\n  \"TLS.expire\" : 86400,\n  \"TLS.sdkappid\" : {APP},\n  \"TLS.identifier\" : \"{ADMIN}\",\n  \"TLS.ver\" : \"2.0\"\n}}"
    );
    check_with_sig(&app, ADMIN, &token_from_document(&doc))
        .await
        .assert_ok();
}

#[tokio::test]
async fn usersig_checks_run_in_the_documented_order() {
    let app = spawn_app().await;
    let t = now();
    let old = t - 1000;
    let other_app = u64::from(APP) + 1;
    let sdk = u64::from(APP);
    let tok = |ver: &str, id: &str, sdkappid: u64, time: i64, expire: i64, key: &str| {
        token_from_document(&document(ver, id, sdkappid, time, expire, key))
    };
    // Bad version beats every later check.
    let t1 = tok("3.0", "x", other_app, old, 10, "wrong");
    check_with_sig(&app, ADMIN, &t1).await.assert_fail(70003);
    // SDKAppID mismatch beats identifier mismatch, expiry and HMAC.
    let t2 = tok("2.0", "x", other_app, old, 10, "wrong");
    check_with_sig(&app, ADMIN, &t2).await.assert_fail(70014);
    // SDKAppID mismatch beats expiry (the brief's case: right key, other app, expired).
    let t3 = tok("2.0", ADMIN, other_app, old, 10, KEY);
    check_with_sig(&app, ADMIN, &t3).await.assert_fail(70014);
    // Identifier mismatch beats expiry and HMAC.
    let t4 = tok("2.0", "x", sdk, old, 10, "wrong");
    check_with_sig(&app, ADMIN, &t4).await.assert_fail(70013);
    // Expiry beats HMAC.
    let t5 = tok("2.0", ADMIN, sdk, old, 10, "wrong");
    check_with_sig(&app, ADMIN, &t5).await.assert_fail(70001);
    // HMAC beats the admin check.
    let t6 = tok("2.0", "bob", sdk, t, 86_400, "wrong");
    check_with_sig(&app, "bob", &t6).await.assert_fail(70009);
    // And a correct sig for a non-admin is 70403.
    let t7 = tok("2.0", "bob", sdk, t, 86_400, KEY);
    check_with_sig(&app, "bob", &t7).await.assert_fail(70403);
}

// ---------------------------------------------------------------------------------------
// account_import bodies and UserID rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn account_import_accepts_userid_and_legacy_identifier() {
    let app = spawn_app().await;
    let r = app
        .call(
            IMPORT,
            &json!({ "UserID": "new_style", "Nick": "n", "FaceUrl": "http://www.qq.com" }),
        )
        .await;
    assert_eq!(r.text, ENVELOPE_OK);
    let r = app
        .call(
            IMPORT,
            &json!({ "Identifier": "old_style", "Nick": "test", "FaceUrl": "http://www.qq.com" }),
        )
        .await;
    assert_eq!(r.text, ENVELOPE_OK);
    let r = app
        .call(
            IMPORT,
            &json!({ "Identifier": "loser", "UserID": "winner" }),
        )
        .await;
    assert_eq!(r.text, ENVELOPE_OK);
    assert_eq!(
        app.statuses(APP, &["new_style", "old_style", "winner", "loser"])
            .await,
        ["Imported", "Imported", "Imported", "NotImported"]
    );
    let stored = app.account(APP, "old_style").await.unwrap();
    assert_eq!(stored.nick, "test");
    assert_eq!(stored.face_url, "http://www.qq.com");
}

#[tokio::test]
async fn account_import_missing_or_mistyped_fields_are_70402() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({ "Nick": "n" }),
        json!({ "UserID": null }),
        json!({ "UserID": 5 }),
        json!({ "UserID": ["a"] }),
        json!({ "UserID": { "x": "a" } }),
        json!({ "Identifier": 5 }),
        json!({ "UserID": "typed", "Nick": 5 }),
        json!({ "UserID": "typed", "FaceUrl": true }),
    ] {
        let reply = app.call(IMPORT, &body).await;
        assert_eq!(reply.code(), 70402, "{body}: {}", reply.text);
    }
    app.assert_not_imported(APP, &["typed", "a"]).await;
    assert_eq!(app.account_count(APP).await, 0);
}

#[tokio::test]
async fn account_import_ignores_unknown_fields() {
    let app = spawn_app().await;
    app.call(
        IMPORT,
        &json!({ "UserID": "extra", "Gender": "x", "Tag": { "a": [1, 2] } }),
    )
    .await
    .assert_ok();
    app.assert_imported(APP, &["extra"]).await;
}

#[tokio::test]
async fn profile_fields_are_limited_to_500_bytes() {
    let app = spawn_app().await;
    // 166 × "用" + "ab" = 500 bytes; 167 × "用" = 501 bytes (bytes, not characters, count).
    let nick_500 = format!("{}ab", "用".repeat(166));
    let nick_501 = "用".repeat(167);
    assert_eq!((nick_500.len(), nick_501.len()), (500, 501));
    let url_500 = format!("http://{}", "u".repeat(493));
    let url_501 = format!("http://{}", "u".repeat(494));
    assert_eq!((url_500.len(), url_501.len()), (500, 501));

    let r = app
        .call(IMPORT, &json!({ "UserID": "long_nick", "Nick": nick_501 }))
        .await;
    r.assert_fail(40601);
    let r = app
        .call(
            IMPORT,
            &json!({ "UserID": "long_face", "FaceUrl": url_501 }),
        )
        .await;
    r.assert_fail(40601);
    app.assert_not_imported(APP, &["long_nick", "long_face"])
        .await;

    app.call(
        IMPORT,
        &json!({ "UserID": "max", "Nick": nick_500, "FaceUrl": url_500 }),
    )
    .await
    .assert_ok();
    let stored = app.account(APP, "max").await.unwrap();
    assert_eq!(stored.nick, nick_500);
    assert_eq!(stored.face_url, url_500);

    // Over the limit on an existing account: refused, the stored profile untouched.
    app.call(IMPORT, &json!({ "UserID": "max", "Nick": nick_501 }))
        .await
        .assert_fail(40601);
    assert_eq!(app.account(APP, "max").await.unwrap().nick, nick_500);
}

#[tokio::test]
async fn reimport_of_an_existing_account_succeeds_and_overwrites_given_fields_only() {
    let app = spawn_app().await;
    app.call(
        IMPORT,
        &json!({ "UserID": "u", "Nick": "first", "FaceUrl": "http://a" }),
    )
    .await
    .assert_ok();
    let created = app.account(APP, "u").await.unwrap();
    let r = app.call(IMPORT, &json!({ "UserID": "u" })).await;
    assert_eq!(r.text, ENVELOPE_OK);
    let same = app.account(APP, "u").await.unwrap();
    assert_eq!(
        (same.nick.as_str(), same.face_url.as_str()),
        ("first", "http://a")
    );
    app.call(IMPORT, &json!({ "UserID": "u", "Nick": "second" }))
        .await
        .assert_ok();
    let changed = app.account(APP, "u").await.unwrap();
    assert_eq!(changed.nick, "second");
    assert_eq!(changed.face_url, "http://a");
    assert_eq!(changed.created_at, created.created_at);
    app.call(IMPORT, &json!({ "UserID": "u", "FaceUrl": "http://b" }))
        .await
        .assert_ok();
    let changed = app.account(APP, "u").await.unwrap();
    assert_eq!(changed.nick, "second");
    assert_eq!(changed.face_url, "http://b");
    assert_eq!(app.account_count(APP).await, 1);
}

#[tokio::test]
async fn userid_rules_for_single_import() {
    let app = spawn_app().await;
    let b32 = "a".repeat(32);
    let b33 = "a".repeat(33);
    let han_33 = "用".repeat(11);
    let han_32 = format!("{}ab", "用".repeat(10));
    assert_eq!((han_33.len(), han_32.len()), (33, 32));
    for bad in [
        "",
        b33.as_str(),
        han_33.as_str(),
        "\u{1}",
        "a\u{0}b",
        "tab\tid",
        "line\nid",
        "\u{1f}",
        "del\u{7f}",
    ] {
        let reply = app.call(IMPORT, &json!({ "UserID": bad })).await;
        assert_eq!(reply.code(), 70402, "{bad:?}: {}", reply.text);
    }
    for good in [
        b32.as_str(),
        han_32.as_str(),
        "Alice",
        "with space",
        "emoji😀",
        "a/b?c=d&e",
        // Only U+0000–U+001F and U+007F are excluded; U+0080 is not.
        "\u{80}",
    ] {
        app.call(IMPORT, &json!({ "UserID": good }))
            .await
            .assert_ok();
    }
    assert_eq!(app.account_count(APP).await, 7);
    // Case-sensitive.
    assert_eq!(
        app.statuses(APP, &["Alice", "alice", "ALICE"]).await,
        ["Imported", "NotImported", "NotImported"]
    );
    app.assert_imported(APP, &[&b32, &han_32, "with space", "emoji😀", "a/b?c=d&e"])
        .await;
}

// ---------------------------------------------------------------------------------------
// multiaccount_import
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn multiaccount_import_old_accounts_shape() {
    let app = spawn_app().await;
    let r = app
        .call(MULTI, &json!({ "Accounts": ["test1", "test2"] }))
        .await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &["test1", "test2"]).await;
}

#[tokio::test]
async fn multiaccount_import_new_account_list_shape_sets_profiles() {
    let app = spawn_app().await;
    app.call(
        IMPORT,
        &json!({ "UserID": "UserID_001", "Nick": "old", "FaceUrl": "http://old" }),
    )
    .await
    .assert_ok();
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [
                { "UserID": "UserID_001", "Nick": "new nick" },
                { "UserID": "UserID_002", "Nick": "two", "FaceUrl": "http://two" },
                { "UserID": "UserID_003" },
            ]}),
        )
        .await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &["UserID_001", "UserID_002", "UserID_003"])
        .await;
    // An existing account gets the given Nick; FaceUrl not given stays.
    let one = app.account(APP, "UserID_001").await.unwrap();
    assert_eq!(
        (one.nick.as_str(), one.face_url.as_str()),
        ("new nick", "http://old")
    );
    let two = app.account(APP, "UserID_002").await.unwrap();
    assert_eq!(
        (two.nick.as_str(), two.face_url.as_str()),
        ("two", "http://two")
    );
    let three = app.account(APP, "UserID_003").await.unwrap();
    assert_eq!((three.nick.as_str(), three.face_url.as_str()), ("", ""));
}

#[tokio::test]
async fn multiaccount_import_duplicates_last_entry_wins() {
    let app = spawn_app().await;
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [
                { "UserID": "dup", "Nick": "first" },
                { "UserID": "other" },
                { "UserID": "dup", "Nick": "last" },
            ]}),
        )
        .await;
    assert_eq!(r.text, FAIL_NONE);
    assert_eq!(app.account(APP, "dup").await.unwrap().nick, "last");
    assert_eq!(app.account_count(APP).await, 2);
    // Duplicates count toward the limit of 100.
    let many = vec!["same"; 101];
    app.call(MULTI, &json!({ "Accounts": many }))
        .await
        .assert_fail(70402);
    app.assert_not_imported(APP, &["same"]).await;
    let hundred = vec!["same"; 100];
    let r = app.call(MULTI, &json!({ "Accounts": hundred })).await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &["same"]).await;
}

/// DECISIONS: duplicates in one batch, the last entry wins. When the last entry of a UserID
/// is refused (a Nick over 500 bytes), the UserID is refused: listed in `FailAccounts` once,
/// where it first appears, and nothing of it is stored, neither a new account nor an earlier
/// entry's profile. When only an earlier entry is refused, the last one is imported.
#[tokio::test]
async fn multiaccount_import_duplicates_of_mixed_validity_follow_the_last_entry() {
    let app = spawn_app().await;
    let long = "n".repeat(501);
    app.call(
        IMPORT,
        &json!({ "UserID": "existing", "Nick": "before", "FaceUrl": "http://before" }),
    )
    .await
    .assert_ok();
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [
                { "UserID": "new_dup", "Nick": "a" },
                { "UserID": "existing", "Nick": "a", "FaceUrl": "http://a" },
                { "UserID": "fixed", "Nick": long },
                { "UserID": "plain" },
                { "UserID": "new_dup", "Nick": long },
                { "UserID": "fixed", "Nick": "b" },
                { "UserID": "existing", "FaceUrl": long },
            ]}),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["new_dup","existing"]}"#
    );
    assert_eq!(
        app.statuses(APP, &["new_dup", "existing", "fixed", "plain"])
            .await,
        ["NotImported", "Imported", "Imported", "Imported"]
    );
    let existing = app.account(APP, "existing").await.unwrap();
    assert_eq!(
        (existing.nick.as_str(), existing.face_url.as_str()),
        ("before", "http://before")
    );
    assert_eq!(app.account(APP, "fixed").await.unwrap().nick, "b");
    assert_eq!(app.account_count(APP).await, 3);
}

#[tokio::test]
async fn multiaccount_import_shape_errors_are_70402() {
    let app = spawn_app().await;
    for body in [
        json!({ "Accounts": ["x1"], "AccountList": [{ "UserID": "x2" }] }),
        json!({}),
        json!({ "Accounts": [] }),
        json!({ "AccountList": [] }),
        json!({ "Accounts": null }),
        json!({ "Accounts": "x1" }),
        json!({ "Accounts": [1] }),
        json!({ "Accounts": ["x1", 2] }),
        json!({ "Accounts": [{ "UserID": "x1" }] }),
        json!({ "AccountList": ["x1"] }),
        json!({ "AccountList": [{ "Nick": "no id" }] }),
        json!({ "AccountList": [{ "UserID": 1 }] }),
        json!({ "AccountList": [{ "UserID": "x1", "Nick": 1 }] }),
        json!({ "AccountList": { "UserID": "x1" } }),
    ] {
        let reply = app.call(MULTI, &body).await;
        assert_eq!(reply.code(), 70402, "{body}: {}", reply.text);
    }
    app.assert_not_imported(APP, &["x1", "x2"]).await;
    assert_eq!(app.account_count(APP).await, 0);
}

/// DECISIONS: an empty batch rejects the whole request, 70402, with an ErrorInfo that names
/// the field and the count (none: "empty").
#[tokio::test]
async fn multiaccount_import_empty_batch_names_the_field_and_the_count() {
    let app = spawn_app().await;
    for field in ["Accounts", "AccountList"] {
        let reply = app.call(MULTI, &json!({ field: [] })).await;
        reply.assert_fail(70402);
        assert!(
            reply.info().starts_with(&format!("{field} ")) && reply.info().contains("empty"),
            "{field}: {}",
            reply.info()
        );
    }
    assert_eq!(app.account_count(APP).await, 0);
}

#[tokio::test]
async fn multiaccount_import_over_100_is_rejected_whole() {
    let app = spawn_app().await;
    let ids = numbered("m", 101);
    let reply = app.call(MULTI, &json!({ "Accounts": ids })).await;
    reply.assert_fail(70402);
    assert!(reply.info().contains("Accounts"), "{}", reply.info());
    assert!(reply.info().contains("101"), "{}", reply.info());

    let list: Vec<Value> = ids.iter().map(|id| json!({ "UserID": id })).collect();
    let reply = app.call(MULTI, &json!({ "AccountList": list })).await;
    reply.assert_fail(70402);
    assert!(reply.info().contains("AccountList"), "{}", reply.info());
    assert!(reply.info().contains("101"), "{}", reply.info());

    app.assert_not_imported(APP, &as_strs(&ids)).await;
    assert_eq!(app.account_count(APP).await, 0);

    // Exactly 100 is fine.
    let hundred = &ids[..100];
    let r = app.call(MULTI, &json!({ "Accounts": hundred })).await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &as_strs(hundred)).await;
    let list: Vec<Value> = numbered("n", 100)
        .iter()
        .map(|id| json!({ "UserID": id, "Nick": id }))
        .collect();
    let r = app.call(MULTI, &json!({ "AccountList": list })).await;
    assert_eq!(r.text, FAIL_NONE);
    assert_eq!(app.account_count(APP).await, 200);
}

#[tokio::test]
async fn multiaccount_import_lists_invalid_userids_and_imports_the_rest() {
    let app = spawn_app().await;
    let b33 = "b".repeat(33);
    let han_33 = "用".repeat(11);
    let r = app
        .call(
            MULTI,
            &json!({ "Accounts": ["ok1", "", b33, "ok2", "\u{1}", han_33, "x\u{7f}", "ok3"] }),
        )
        .await;
    let failed = json!(["", b33, "\u{1}", han_33, "x\u{7f}"]);
    assert_eq!(
        r.text,
        format!(r#"{{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":{failed}}}"#)
    );
    app.assert_imported(APP, &["ok1", "ok2", "ok3"]).await;
    assert_eq!(app.account_count(APP).await, 3);
}

#[tokio::test]
async fn multiaccount_import_lists_profiles_over_500_bytes() {
    let app = spawn_app().await;
    let long = "n".repeat(501);
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [
                { "UserID": "fine1", "Nick": "n".repeat(500) },
                { "UserID": "long_nick", "Nick": long },
                { "UserID": "long_face", "FaceUrl": long },
                { "UserID": "" },
                { "UserID": "fine2", "FaceUrl": "f".repeat(500) },
            ]}),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["long_nick","long_face",""]}"#
    );
    assert_eq!(
        app.statuses(APP, &["fine1", "long_nick", "long_face", "fine2"])
            .await,
        ["Imported", "NotImported", "NotImported", "Imported"]
    );
}

#[tokio::test]
async fn multiaccount_import_ignores_unknown_fields() {
    let app = spawn_app().await;
    let r = app
        .call(
            MULTI,
            &json!({
                "Accounts": ["e1"],
                "Extra": { "deep": [1, 2, 3] },
            }),
        )
        .await;
    assert_eq!(r.text, FAIL_NONE);
    let r = app
        .call(
            MULTI,
            &json!({
                "AccountList": [{ "UserID": "e2", "Gender": "Female", "Nick": "n" }],
                "Version": 2,
            }),
        )
        .await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &["e1", "e2"]).await;
}

// ---------------------------------------------------------------------------------------
// account_check / account_delete
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn account_check_answers_each_entry_in_order_with_duplicates() {
    let app = spawn_app().await;
    app.import(APP, &["a", "c"]).await;
    let r = app
        .call(
            CHECK,
            &json!({ "CheckItem": items(&["c", "b", "a", "c", "b"]) }),
        )
        .await;
    let item = |id: &str, status: &str| {
        format!(r#"{{"UserID":"{id}","ResultCode":0,"ResultInfo":"","AccountStatus":"{status}"}}"#)
    };
    assert_eq!(
        r.text,
        format!(
            r#"{{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{},{},{},{},{}]}}"#,
            item("c", "Imported"),
            item("b", "NotImported"),
            item("a", "Imported"),
            item("c", "Imported"),
            item("b", "NotImported"),
        )
    );
}

#[tokio::test]
async fn account_check_invalid_userid_fails_only_that_item() {
    let app = spawn_app().await;
    app.import(APP, &["a"]).await;
    let b33 = "z".repeat(33);
    let r = app
        .call(
            CHECK,
            &json!({ "CheckItem": items(&["a", "", &b33, "\u{7f}", "b"]) }),
        )
        .await;
    r.assert_ok();
    let result = r.json["ResultItem"].as_array().unwrap();
    assert_eq!(result.len(), 5);
    let expect_ok = |i: usize, id: &str, status: &str| {
        assert_eq!(
            result[i],
            json!({ "UserID": id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status })
        );
    };
    expect_ok(0, "a", "Imported");
    expect_ok(4, "b", "NotImported");
    for (i, id) in [(1, ""), (2, b33.as_str()), (3, "\u{7f}")] {
        assert_eq!(result[i]["UserID"], json!(id), "{}", r.text);
        assert_eq!(result[i]["ResultCode"], json!(70402), "{}", r.text);
        assert!(!result[i]["ResultInfo"].as_str().unwrap().is_empty());
        // Same key order as the seed sample's items.
        let start = format!(
            r#"{{"UserID":{},"ResultCode":70402,"ResultInfo":""#,
            json!(id)
        );
        assert!(r.text.contains(&start), "{start} in {}", r.text);
    }
}

#[tokio::test]
async fn account_delete_duplicates_first_deletes_repeat_is_70107() {
    let app = spawn_app().await;
    app.import(APP, &["x", "y"]).await;
    let r = app
        .call(
            DELETE,
            &json!({ "DeleteItem": items(&["x", "x", "nope", "y", "x"]) }),
        )
        .await;
    let gone = |id: &str| format!(r#"{{"ResultCode":0,"ResultInfo":"","UserID":"{id}"}}"#);
    let missing =
        |id: &str| format!(r#"{{"ResultCode":70107,"ResultInfo":"{INFO_70107}","UserID":"{id}"}}"#);
    assert_eq!(
        r.text,
        format!(
            r#"{{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{},{},{},{},{}]}}"#,
            gone("x"),
            missing("x"),
            missing("nope"),
            gone("y"),
            missing("x"),
        )
    );
    app.assert_not_imported(APP, &["x", "y"]).await;
    // Deleting again: every item 70107.
    let r = app
        .call(DELETE, &json!({ "DeleteItem": items(&["x"]) }))
        .await;
    assert_eq!(
        r.text,
        format!(
            r#"{{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{}]}}"#,
            missing("x")
        )
    );
}

#[tokio::test]
async fn account_delete_invalid_userid_fails_only_that_item() {
    let app = spawn_app().await;
    app.import(APP, &["a", "b"]).await;
    let b33 = "z".repeat(33);
    let r = app
        .call(
            DELETE,
            &json!({ "DeleteItem": items(&["a", "", &b33, "\u{1}", "b"]) }),
        )
        .await;
    r.assert_ok();
    let result = r.json["ResultItem"].as_array().unwrap();
    assert_eq!(result.len(), 5);
    assert_eq!(
        result[0],
        json!({ "ResultCode": 0, "ResultInfo": "", "UserID": "a" })
    );
    assert_eq!(
        result[4],
        json!({ "ResultCode": 0, "ResultInfo": "", "UserID": "b" })
    );
    for (i, id) in [(1, ""), (2, b33.as_str()), (3, "\u{1}")] {
        assert_eq!(result[i]["ResultCode"], json!(70402), "{}", r.text);
        assert_eq!(result[i]["UserID"], json!(id));
        assert!(!result[i]["ResultInfo"].as_str().unwrap().is_empty());
    }
    assert!(
        r.text.contains(r#"{"ResultCode":70402,"ResultInfo":""#),
        "{}",
        r.text
    );
    app.assert_not_imported(APP, &["a", "b"]).await;
}

#[tokio::test]
async fn check_and_delete_batches_over_100_are_rejected_whole() {
    let app = spawn_app().await;
    let ids = numbered("d", 101);
    app.call(MULTI, &json!({ "Accounts": &ids[..100] }))
        .await
        .assert_ok();
    app.import(APP, &[&ids[100]]).await;

    let all: Vec<Value> = ids.iter().map(|id| json!({ "UserID": id })).collect();
    let r = app.call(CHECK, &json!({ "CheckItem": all })).await;
    r.assert_fail(70402);
    assert!(
        r.info().contains("CheckItem") && r.info().contains("101"),
        "{}",
        r.info()
    );

    let r = app.call(DELETE, &json!({ "DeleteItem": all })).await;
    r.assert_fail(70402);
    assert!(
        r.info().contains("DeleteItem") && r.info().contains("101"),
        "{}",
        r.info()
    );
    assert_eq!(app.account_count(APP).await, 101);
    app.assert_imported(APP, &as_strs(&ids)).await;

    // Exactly 100 works for both.
    let r = app.call(CHECK, &json!({ "CheckItem": &all[..100] })).await;
    r.assert_ok();
    assert_eq!(r.json["ResultItem"].as_array().unwrap().len(), 100);
    let r = app
        .call(DELETE, &json!({ "DeleteItem": &all[..100] }))
        .await;
    r.assert_ok();
    assert_eq!(r.json["ResultItem"].as_array().unwrap().len(), 100);
    assert_eq!(app.account_count(APP).await, 1);
}

#[tokio::test]
async fn check_and_delete_shape_errors_are_70402() {
    let app = spawn_app().await;
    app.import(APP, &["keep"]).await;
    for (path, field) in [(CHECK, "CheckItem"), (DELETE, "DeleteItem")] {
        let bodies = [
            json!({}),
            json!({ field: [] }),
            json!({ field: null }),
            json!({ field: "keep" }),
            json!({ field: { "UserID": "keep" } }),
            json!({ field: [{}] }),
            json!({ field: [{ "UserId": "keep" }] }),
            json!({ field: [{ "UserID": "keep" }, {}] }),
            json!({ field: [{ "UserID": 1 }] }),
            json!({ field: [{ "UserID": null }] }),
            json!({ field: ["keep"] }),
            json!({ field: [1] }),
        ];
        for body in bodies {
            let reply = app.call(path, &body).await;
            assert_eq!(reply.code(), 70402, "{path} {body}: {}", reply.text);
        }
        let r = app.call(path, &json!({ field: [] })).await;
        assert!(
            r.info().starts_with(&format!("{field} ")) && r.info().contains("empty"),
            "{}",
            r.info()
        );
    }
    app.assert_imported(APP, &["keep"]).await;
}

#[tokio::test]
async fn batch_entries_that_are_arrays_not_objects_are_70402() {
    // serde accepts a struct written as a JSON array; the contract does not: an entry of the
    // wrong JSON type is 70402 and nothing changes.
    let app = spawn_app().await;
    app.import(APP, &["keep"]).await;
    app.call(CHECK, &json!({ "CheckItem": [["keep"]] }))
        .await
        .assert_fail(70402);
    app.call(DELETE, &json!({ "DeleteItem": [["keep"]] }))
        .await
        .assert_fail(70402);
    app.call(MULTI, &json!({ "AccountList": [["arr", "nick"]] }))
        .await
        .assert_fail(70402);
    app.assert_imported(APP, &["keep"]).await;
    app.assert_not_imported(APP, &["arr"]).await;
}

#[tokio::test]
async fn check_and_delete_ignore_unknown_fields() {
    let app = spawn_app().await;
    app.import(APP, &["a"]).await;
    let r = app
        .call(
            CHECK,
            &json!({ "CheckItem": [{ "UserID": "a", "Extra": 1 }], "More": [true] }),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"a","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"}]}"#
    );
    let r = app
        .call(
            DELETE,
            &json!({ "DeleteItem": [{ "UserID": "a", "Extra": 1 }], "More": {} }),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"ResultCode":0,"ResultInfo":"","UserID":"a"}]}"#
    );
}

// ---------------------------------------------------------------------------------------
// Account lifecycle: plans, deletion, re-import, max_accounts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pro_app_without_account_deletion_refuses_delete_with_71000() {
    let app = spawn_with(vec![pro_config(APP, KEY, false)]).await;
    app.import(APP, &["p1", "p2"]).await;
    let r = app
        .call(
            DELETE,
            &json!({ "DeleteItem": items(&["p1", "p2", "nope"]) }),
        )
        .await;
    r.assert_fail(71000);
    app.assert_imported(APP, &["p1", "p2"]).await;
    assert_eq!(app.account_count(APP).await, 2);
}

#[tokio::test]
async fn pro_app_with_account_deletion_blocks_reimport_with_70399() {
    let app = spawn_with(vec![pro_config(APP, KEY, true)]).await;
    app.call(IMPORT, &json!({ "UserID": "p1", "Nick": "nick" }))
        .await
        .assert_ok();
    app.import(APP, &["p2", "p3"]).await;
    let r = app
        .call(DELETE, &json!({ "DeleteItem": items(&["p1", "p2"]) }))
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"ResultCode":0,"ResultInfo":"","UserID":"p1"},{"ResultCode":0,"ResultInfo":"","UserID":"p2"}]}"#
    );
    app.assert_not_imported(APP, &["p1", "p2"]).await;
    assert!(app.account(APP, "p1").await.is_none());

    app.call(IMPORT, &json!({ "UserID": "p1" }))
        .await
        .assert_fail(70399);
    app.call(IMPORT, &json!({ "Identifier": "p2" }))
        .await
        .assert_fail(70399);
    let r = app
        .call(MULTI, &json!({ "Accounts": ["p1", "fresh", "p2", "p3"] }))
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["p1","p2"]}"#
    );
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [{ "UserID": "p2" }, { "UserID": "fresh2" }] }),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["p2"]}"#
    );
    assert_eq!(
        app.statuses(APP, &["p1", "p2", "p3", "fresh", "fresh2"])
            .await,
        [
            "NotImported",
            "NotImported",
            "Imported",
            "Imported",
            "Imported"
        ]
    );
}

#[tokio::test]
async fn trial_app_deletes_and_may_reimport_at_once() {
    let app = spawn_app().await; // trial is the default plan
    assert_eq!(app.config(APP).plan, timacct_server::Plan::Trial);
    app.call(
        IMPORT,
        &json!({ "UserID": "t1", "Nick": "nick", "FaceUrl": "http://face" }),
    )
    .await
    .assert_ok();
    app.call(DELETE, &json!({ "DeleteItem": items(&["t1"]) }))
        .await
        .assert_ok();
    app.assert_not_imported(APP, &["t1"]).await;
    assert!(app.account(APP, "t1").await.is_none());
    // Re-import at once; the old profile is gone with the account.
    app.call(IMPORT, &json!({ "UserID": "t1" }))
        .await
        .assert_ok();
    let back = app.account(APP, "t1").await.unwrap();
    assert_eq!((back.nick.as_str(), back.face_url.as_str()), ("", ""));
    // And by batch.
    app.call(DELETE, &json!({ "DeleteItem": items(&["t1"]) }))
        .await
        .assert_ok();
    let r = app.call(MULTI, &json!({ "Accounts": ["t1"] })).await;
    assert_eq!(r.text, FAIL_NONE);
    app.assert_imported(APP, &["t1"]).await;
}

#[tokio::test]
async fn max_accounts_refuses_the_extra_ones_with_70398() {
    let mut config = app_config(APP, KEY);
    config.max_accounts = Some(3);
    let app = spawn_with(vec![config]).await;
    app.import(APP, &["m1", "m2", "m3"]).await;
    app.call(IMPORT, &json!({ "UserID": "m4" }))
        .await
        .assert_fail(70398);
    // Updating an existing account is not "past" the limit.
    app.call(IMPORT, &json!({ "UserID": "m2", "Nick": "still fine" }))
        .await
        .assert_ok();
    let r = app
        .call(MULTI, &json!({ "Accounts": ["m1", "m5", "m6"] }))
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["m5","m6"]}"#
    );
    assert_eq!(app.account_count(APP).await, 3);
    // Deleting frees room.
    app.call(DELETE, &json!({ "DeleteItem": items(&["m1"]) }))
        .await
        .assert_ok();
    let r = app
        .call(
            MULTI,
            &json!({ "AccountList": [{ "UserID": "m7" }, { "UserID": "m8" }] }),
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["m8"]}"#
    );
    assert_eq!(
        app.statuses(APP, &["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"])
            .await,
        [
            "NotImported",
            "Imported",
            "Imported",
            "NotImported",
            "NotImported",
            "NotImported",
            "Imported",
            "NotImported"
        ]
    );
}

#[tokio::test]
async fn max_accounts_batch_on_an_empty_app() {
    let mut config = app_config(APP, KEY);
    config.max_accounts = Some(3);
    let app = spawn_with(vec![config]).await;
    let r = app
        .call(MULTI, &json!({ "Accounts": ["a", "b", "c", "d", "e"] }))
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["d","e"]}"#
    );
    app.call(IMPORT, &json!({ "UserID": "f" }))
        .await
        .assert_fail(70398);
}

// ---------------------------------------------------------------------------------------
// App isolation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn apps_are_isolated() {
    const B: u32 = 1_400_000_002;
    const KEY_B: &str = "the-key-of-app-b";
    let app = spawn_with(vec![app_config(APP, KEY), app_config(B, KEY_B)]).await;
    app.import(APP, &["shared", "only_a"]).await;
    app.assert_not_imported(B, &["shared", "only_a"]).await;
    app.import(B, &["shared"]).await;
    app.call_app(B, DELETE, &json!({ "DeleteItem": items(&["shared"]) }))
        .await
        .assert_ok();
    app.assert_imported(APP, &["shared", "only_a"]).await;
    app.assert_not_imported(B, &["shared"]).await;

    // A's sig (A's key, A's SDKAppID) presented to B: the sig names A.
    let a_sig = sig(APP, KEY, ADMIN);
    let r = app
        .call_with_query(
            CHECK,
            &query(B, ADMIN, &a_sig),
            &json!({ "CheckItem": items(&["shared"]) }),
        )
        .await;
    r.assert_fail(70014);
    // A sig naming B but signed with A's key.
    let forged = sig(B, KEY, ADMIN);
    let r = app
        .call_with_query(
            CHECK,
            &query(B, ADMIN, &forged),
            &json!({ "CheckItem": items(&["shared"]) }),
        )
        .await;
    r.assert_fail(70009);
    assert_eq!(r.info(), INFO_70009);
    // After A's sig verified (and may be cached) on A, it still does not open B.
    check_with_sig(&app, ADMIN, &a_sig).await.assert_ok();
    app.call_with_query(
        IMPORT,
        &query(B, ADMIN, &a_sig),
        &json!({ "UserID": "via_a" }),
    )
    .await
    .assert_fail(70014);
    app.assert_not_imported(B, &["via_a"]).await;
}

// ---------------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn data_survives_a_restart() {
    let mut app = spawn_with(vec![pro_config(APP, KEY, true)]).await;
    app.call(IMPORT, &json!({ "UserID": "kept", "Nick": "k" }))
        .await
        .assert_ok();
    app.call(MULTI, &json!({ "Accounts": ["kept2", "gone"] }))
        .await
        .assert_ok();
    app.call(DELETE, &json!({ "DeleteItem": items(&["gone"]) }))
        .await
        .assert_ok();
    let before = app.base.clone();
    app.restart().await;
    assert_ne!(app.base, before, "a new server on a new port");
    assert_eq!(
        app.statuses(APP, &["kept", "kept2", "gone"]).await,
        ["Imported", "Imported", "NotImported"]
    );
    assert_eq!(app.account(APP, "kept").await.unwrap().nick, "k");
    // The pro app's re-import block survives too.
    app.call(IMPORT, &json!({ "UserID": "gone" }))
        .await
        .assert_fail(70399);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Hostile input never gets a 5xx, a dropped connection or a non-envelope body
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_body_gets_an_envelope() {
    let app = spawn_app().await;
    let mut body = br#"{"CheckItem":[{"UserID":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    body.extend_from_slice(br#""}]}"#);
    let r = app.post_bytes(APP, CHECK, body).await;
    r.assert_fail(60003);
    // The server is still fine.
    app.call(CHECK, &json!({ "CheckItem": items(&["a"]) }))
        .await
        .assert_ok();
}

#[tokio::test]
async fn invalid_utf8_body_is_60003() {
    let app = spawn_app().await;
    for body in [
        b"{\"CheckItem\":[{\"UserID\":\"\xff\xfe\"}]}".to_vec(),
        b"\xff\xfe{}".to_vec(),
        b"{\"CheckItem\xc3\":[]}".to_vec(),
    ] {
        app.post_bytes(APP, CHECK, body).await.assert_fail(60003);
    }
    app.post_bytes(APP, IMPORT, b"{\"UserID\":\"a\xc3\"}".to_vec())
        .await
        .assert_fail(60003);
    assert_eq!(app.account_count(APP).await, 0);
}

#[tokio::test]
async fn deeply_nested_json_gets_an_envelope() {
    let app = spawn_app().await;
    let depth = 10_000;
    let arrays = format!("{{\"CheckItem\":{}", "[".repeat(depth));
    let closed = format!(
        "{{\"CheckItem\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let objects = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let objects_in_item = format!(
        "{{\"CheckItem\":[{{\"UserID\":\"a\",\"x\":{}1{}}}]}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    // `docs/protocol.md` §2.3: a syntax error is 60003 (arrays never closed; objects whose
    // innermost `"a":` has no value); well-formed JSON whose field holds the wrong type (an
    // array of arrays for CheckItem) is 70402.
    for (body, code) in [(arrays, 60003), (closed, 70402), (objects, 60003)] {
        let r = app.post_bytes(APP, CHECK, body.into_bytes()).await;
        assert_eq!(r.code(), code, "nested body: {}", r.text);
    }
    // Deep nesting inside an unknown field of an entry: valid JSON, and unknown fields are
    // ignored, at the top level and inside entries: served.
    let r = app
        .post_bytes(APP, CHECK, objects_in_item.into_bytes())
        .await;
    r.assert_ok();
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"UserID":"a","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"}]}"#
    );
    app.call(CHECK, &json!({ "CheckItem": items(&["a"]) }))
        .await
        .assert_ok();
}

#[tokio::test]
async fn absurd_query_string_gets_an_envelope() {
    let app = spawn_app().await;
    let body = json!({ "CheckItem": items(&["a"]) }).to_string();
    // 60 KB of junk: what an HTTP client will still send.
    let junk = "x".repeat(60 * 1024);
    let url = app.url(CHECK, &format!("{}&junk={junk}", app.admin_query(APP)));
    let r = app
        .raw(Method::POST, &url, Some(body.clone().into_bytes()))
        .await;
    r.assert_ok();
    let url = app.url(CHECK, &format!("sdkappid={junk}"));
    app.raw(Method::POST, &url, Some(b"{}".to_vec()))
        .await
        .assert_fail(60012);
    // 100 KB, past the 64 KiB most clients (and the `http` crate) allow: written by hand.
    let junk = "x".repeat(100 * 1024);
    let target = format!("{CHECK}?{}&junk={junk}", app.admin_query(APP));
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: console.tim.qq.com\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // `docs/protocol.md` §2.4: a URL too large for the HTTP layer gets the envelope with
    // 60002, HTTP 200.
    let r = app.raw_tcp(request.as_bytes()).await;
    r.assert_fail(60002);
}

#[tokio::test]
async fn malformed_percent_escapes_in_the_query_get_an_envelope() {
    let app = spawn_app().await;
    // `docs/protocol.md` §2.1: a broken escape is kept as it is and invalid UTF-8 replaced;
    // then the checks of §3 decide, in their order.
    for (q, code) in [
        // `%zz` and `%` are not a u32.
        ("sdkappid=%zz", 60012),
        ("sdkappid=%", 60012),
        // No `sdkappid` at all.
        ("&&&=&=", 60012),
        // The app exists, `identifier` (U+FFFD U+FFFD) and `usersig` (`%`) are present and
        // not empty, `random` is a u32: the UserSig `%` is not base64.
        (
            "sdkappid=1400000001&identifier=%ff%fe&usersig=%&random=1",
            70003,
        ),
    ] {
        app.call_with_query(CHECK, q, &json!({ "CheckItem": items(&["a"]) }))
            .await
            .assert_fail(code);
    }
}
