//! What the client's tests need besides the shared fixtures of `timacct-test-support`: the
//! answers a stand-in for the server gives once a [`FaultProxy`] script is done (the proxy
//! made with [`FaultProxy::answering`]).
//!
//! [`FaultProxy`]: timacct_test_support::FaultProxy
//! [`FaultProxy::answering`]: timacct_test_support::FaultProxy::answering

use serde_json::{json, Value};
use timacct_test_support::Seen;

/// A success body for the API `request` called, with an item for each UserID it names.
pub fn success_body(request: &Seen) -> String {
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    let ids = |field: &str| -> Vec<String> {
        body[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["UserID"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut v = json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""});
    match request.path.rsplit('/').next().unwrap_or("") {
        "account_check" => {
            v["ResultItem"] = ids("CheckItem")
                .into_iter()
                .map(|id| json!({"UserID": id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "Imported"}))
                .collect();
        }
        "account_delete" => {
            v["ResultItem"] = ids("DeleteItem")
                .into_iter()
                .map(|id| json!({"ResultCode": 0, "ResultInfo": "", "UserID": id}))
                .collect();
        }
        "multiaccount_import" => v["FailAccounts"] = json!([]),
        "query_online_status" => {
            // Accounts named `gone…` do not exist; the others are online. The results come
            // back in reverse order (nothing documents that they keep the request's).
            let detail = body["IsNeedDetail"] == 1;
            let (mut found, mut errors) = (Vec::new(), Vec::new());
            for id in body["To_Account"].as_array().cloned().unwrap_or_default() {
                let id = id.as_str().unwrap_or("").to_owned();
                if id.starts_with("gone") {
                    errors.push(json!({"To_Account": id, "ErrorCode": 70107}));
                } else if detail {
                    found.push(json!({"To_Account": id, "Status": "Online",
                        "Detail": [{"Platform": "iPhone", "Status": "Online"}]}));
                } else {
                    found.push(json!({"To_Account": id, "Status": "Online"}));
                }
            }
            found.reverse();
            v["QueryResult"] = json!(found);
            v["ErrorList"] = json!(errors);
        }
        _ => {}
    }
    v.to_string()
}
