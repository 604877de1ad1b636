//! What stands in for the network in the client's tests: a fault-injecting HTTP fixture
//! (answering by itself, or a faulty proxy in front of the real server) that records every
//! request it gets, and a port nothing listens on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// A success body for the API called.
    Ok,
    /// HTTP 200 with this ErrorCode.
    Code(u32),
    /// Close the connection after reading the request, without answering.
    Drop,
    /// This HTTP status with a plain-text body.
    Status(u16),
    /// Pass the request to the upstream server and its answer back.
    Forward,
    /// Pass the request to the upstream server (which acts on it), then close the
    /// connection instead of passing the answer back: the answer is lost on the way.
    ForwardThenDrop,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub query: String,
    pub body: String,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

/// A tiny HTTP/1.1 server that answers each request with the next scripted action, and
/// records what it received.
pub struct Fixture {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Action>>>,
}

/// Where a fixture sends the requests it forwards: the real server's base URL.
#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

impl Fixture {
    /// A fixture that answers by itself: canned success bodies once the script is done.
    pub async fn start(script: &[Action]) -> Fixture {
        Fixture::spawn(script, None).await
    }

    /// A faulty proxy in front of the real server at `upstream`: each request gets the next
    /// scripted fault, and once the script is done every request is forwarded.
    pub async fn proxy(upstream: &str, script: &[Action]) -> Fixture {
        let upstream = Upstream {
            base: upstream.to_owned(),
            http: reqwest::Client::new(),
        };
        Fixture::spawn(script, Some(upstream)).await
    }

    async fn spawn(script: &[Action], upstream: Option<Upstream>) -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (h, s) = (hits.clone(), script.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, s, u) = (h.clone(), s.clone(), upstream.clone());
                tokio::spawn(async move { serve_one(stream, h, s, u).await });
            }
        });
        Fixture {
            base: format!("http://{addr}"),
            hits,
            script,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

async fn serve_one(
    mut stream: TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Action>>>,
    upstream: Option<Upstream>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let body = String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned();
    let hit = Hit {
        path: path.to_owned(),
        query: query.to_owned(),
        body,
    };
    hits.lock().unwrap().push(hit.clone());
    let otherwise = if upstream.is_some() {
        Action::Forward
    } else {
        Action::Ok
    };
    let action = script.lock().unwrap().pop_front().unwrap_or(otherwise);
    let (status, text) = match action {
        Action::Drop => return,
        Action::Forward | Action::ForwardThenDrop => {
            let upstream = upstream.expect("forwarding needs an upstream");
            let answer = upstream
                .http
                .post(format!("{}{target}", upstream.base))
                .body(hit.body.clone())
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            if matches!(action, Action::ForwardThenDrop) {
                return;
            }
            (status, text)
        }
        Action::Status(s) => (s, "<html>bad gateway</html>".to_owned()),
        Action::Code(code) => (
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": format!("injected {code}")})
                .to_string(),
        ),
        Action::Ok => (200, success_body(&hit)),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn success_body(hit: &Hit) -> String {
    let body: Value = serde_json::from_str(&hit.body).unwrap_or(Value::Null);
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
    match hit.path.rsplit('/').next().unwrap_or("") {
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

/// A local port nothing listens on: connecting is refused at once.
pub async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
