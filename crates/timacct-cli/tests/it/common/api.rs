//! Talking to a running server over HTTP, as the API's documented callers do: an admin
//! UserSig from `timacct sig gen`, the URL of a call, the call itself, and whether accounts
//! are imported.

use std::process::Command;

use serde_json::{json, Value};

use super::BIN;

/// The admin the tests call as (every app has it).
pub use timacct_test_support::ADMIN;

/// A UserSig of `identifier` in app `sdkappid`, made from `key` by `timacct sig gen`.
pub fn sig(sdkappid: u32, key: &str, identifier: &str) -> String {
    sig_with(sdkappid, key, identifier, &[])
}

/// [`sig`], with more `sig gen` arguments (e.g. `["--expire", "600"]`).
pub fn sig_with(sdkappid: u32, key: &str, identifier: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args([
            "sig",
            "gen",
            "--sdkappid",
            &sdkappid.to_string(),
            "--key",
            key,
        ])
        .args(["--identifier", identifier])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The URL of `api` (an `im_open_login_svc` API) on `base`, called as [`ADMIN`] of `app` with
/// `usersig`; `random` is what the server's logs know the call by.
pub fn url(base: &str, app: u32, usersig: &str, api: &str, random: u32) -> String {
    format!(
        "{base}/v4/im_open_login_svc/{api}?sdkappid={app}&identifier={ADMIN}&usersig={usersig}&random={random}&contenttype=json"
    )
}

/// Post `body` to `url`: the JSON envelope (an answer is always HTTP 200), or the error when
/// no complete answer came back (the server died under the request).
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Result<Value> {
    let response = client.post(url).body(body.to_string()).send().await?;
    assert_eq!(response.status(), 200);
    response.json().await
}

/// One call of `api`, which must be answered (its `random` is 7).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    app: u32,
    usersig: &str,
    api: &str,
    body: Value,
) -> Value {
    post(client, &url(base, app, usersig, api, 7), &body)
        .await
        .unwrap()
}

/// Whether each of `ids` is imported in `app`, asked with `account_check`, 100 per call.
pub async fn imported(base: &str, app: u32, usersig: &str, ids: &[String]) -> Vec<bool> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for chunk in ids.chunks(100) {
        let items: Vec<Value> = chunk.iter().map(|id| json!({ "UserID": id })).collect();
        let v = call(
            &client,
            base,
            app,
            usersig,
            "account_check",
            json!({ "CheckItem": items }),
        )
        .await;
        assert_eq!(v["ErrorCode"], 0, "{v}");
        for (item, id) in v["ResultItem"].as_array().unwrap().iter().zip(chunk) {
            assert_eq!(item["UserID"], json!(id));
            out.push(item["AccountStatus"] == "Imported");
        }
    }
    out
}
