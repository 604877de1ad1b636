//! A fault-injecting HTTP proxy between a client (the library, or the `timacct` binary) and
//! the real server: the first requests get scripted faults, every later one is forwarded, and
//! every request is recorded as it arrived. What a client does about a fault is then checked
//! against what the real server ended up storing.
//!
//! It runs on a thread of its own with its own runtime, so that the same proxy serves an async
//! test (the client's) and a plain `#[test]` that runs the binary (the CLI's), and so that it
//! keeps answering whatever the test's own runtime is doing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: forward to the server and pass its answer back (or, for a proxy made with
    /// [`FaultProxy::answering`], give the answer of its stand-in). What every request gets
    /// once the script is done; in a script, it lets a request through between faults.
    Pass,
    /// HTTP 200 with this `ErrorCode` (70500, 60008, 60007, ...), as Tencent answers.
    Code(u32),
    /// This HTTP status with an HTML body, as a gateway in front of a server would (502).
    Status(u16),
    /// Close the connection after reading the request, without answering.
    Drop,
    /// Forward to the server (which acts on it), then close the connection instead of
    /// passing its answer back: the answer is lost on the way, the effect is not.
    ForwardThenDrop,
    /// HTTP 200 with this body, in place of the server (for answers the server does not give,
    /// such as the APIs it does not serve yet).
    Reply(&'static str),
}

/// One request as the proxy received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded).
    pub query: String,
    /// The body (lossy UTF-8).
    pub body: String,
}

impl Seen {
    /// The raw value of query parameter `name`, if the request had it.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

/// What stands behind the proxy.
#[derive(Clone)]
enum Behind {
    /// The real server at this base URL.
    Server { base: String, http: reqwest::Client },
    /// A test's own stand-in: the body of a 200 answer for each request.
    Answer(Arc<dyn Fn(&Seen) -> String + Send + Sync>),
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: the endpoint to give the client.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Fault>>>,
    _stop: oneshot::Sender<()>,
}

impl FaultProxy {
    /// A proxy in front of the real server at `upstream` (`http://host:port`): request `i`
    /// gets `faults[i]`, and once the script is done every request is forwarded.
    pub fn start(upstream: &str, faults: &[Fault]) -> FaultProxy {
        let behind = Behind::Server {
            base: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        };
        FaultProxy::spawn(behind, faults)
    }

    /// A proxy with no server behind it: after the script, each request is answered HTTP 200
    /// with the body `respond` makes for it. For a client's own tests, where what matters is
    /// what the client does with an answer rather than what a server would store.
    pub fn answering(
        faults: &[Fault],
        respond: impl Fn(&Seen) -> String + Send + Sync + 'static,
    ) -> FaultProxy {
        FaultProxy::spawn(Behind::Answer(Arc::new(respond)), faults)
    }

    fn spawn(behind: Behind, faults: &[Fault]) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let base = format!("http://{}", listener.local_addr().expect("proxy address"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(faults.iter().copied().collect::<VecDeque<_>>()));
        let (stop, stopped) = oneshot::channel::<()>();
        let (s, f) = (seen.clone(), script.clone());
        std::thread::Builder::new()
            .name("fault-proxy".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("proxy listener");
                    let accepting = async {
                        while let Ok((stream, _)) = listener.accept().await {
                            let (seen, script, behind) = (s.clone(), f.clone(), behind.clone());
                            tokio::spawn(async move {
                                proxy_one(stream, &seen, &script, &behind).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = accepting => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("the proxy's thread");
        FaultProxy {
            base,
            seen,
            script,
            _stop: stop,
        }
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("proxy records").clone()
    }

    /// How many scripted faults no request has met yet.
    pub fn remaining(&self) -> usize {
        self.script.lock().expect("proxy script").len()
    }
}

/// A local base URL (`http://127.0.0.1:PORT`) nothing listens on: connecting is refused at
/// once. Synchronous, so that a plain `#[test]` and an async one alike can call it.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    format!("http://{addr}")
}

/// Read one request (head and `Content-Length` body), record it, and act on it. One request
/// per connection: every answer says `Connection: close`.
async fn proxy_one(
    mut stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<Fault>>,
    behind: &Behind,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
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
    let body = &buf[header_end..header_end + length];
    let request = Seen {
        path: path.to_owned(),
        query: query.to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    seen.lock().expect("proxy records").push(request.clone());
    let fault = script
        .lock()
        .expect("proxy script")
        .pop_front()
        .unwrap_or(Fault::Pass);
    let (status, text) = match fault {
        Fault::Drop => return,
        Fault::Code(code) => (
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": format!("injected {code}")})
                .to_string(),
        ),
        Fault::Status(status) => (status, "<html>bad gateway</html>".to_owned()),
        Fault::Reply(body) => (200, body.to_owned()),
        Fault::Pass | Fault::ForwardThenDrop => {
            let answer = match behind {
                Behind::Server { base, http } => {
                    let answer = http
                        .post(format!("{base}{target}"))
                        .body(body.to_vec())
                        .send()
                        .await
                        .expect("the server behind the proxy answers");
                    let status = answer.status().as_u16();
                    (status, answer.text().await.expect("the server's answer"))
                }
                Behind::Answer(respond) => (200, respond(&request)),
            };
            if fault == Fault::ForwardThenDrop {
                return;
            }
            answer
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{query, sig, TestServer, ADMIN, APP, IMPORT, KEY};

    /// POST `body` to `path` through the proxy, signed for the default app; the status and
    /// body, or `None` if the connection closed without an answer.
    async fn post(proxy: &FaultProxy, path: &str, body: &str) -> Option<(u16, String)> {
        let url = format!(
            "{}{path}?{}",
            proxy.base,
            query(APP, ADMIN, &sig(APP, KEY, ADMIN))
        );
        let answer = reqwest::Client::new()
            .post(url)
            .body(body.to_owned())
            .send()
            .await
            .ok()?;
        let status = answer.status().as_u16();
        Some((status, answer.text().await.ok()?))
    }

    #[tokio::test]
    async fn each_request_meets_the_next_fault_then_reaches_the_real_server() {
        let server = TestServer::builder().start().await;
        let proxy = FaultProxy::start(
            &server.base,
            &[
                Fault::Code(60008),
                Fault::Status(502),
                Fault::Drop,
                Fault::ForwardThenDrop,
                Fault::Reply(r#"{"canned":true}"#),
            ],
        );
        let import = |id: &str| format!(r#"{{"UserID":"{id}"}}"#);
        let (status, text) = post(&proxy, IMPORT, &import("a")).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            text,
            r#"{"ActionStatus":"FAIL","ErrorCode":60008,"ErrorInfo":"injected 60008"}"#
        );
        let (status, text) = post(&proxy, IMPORT, &import("b")).await.unwrap();
        assert_eq!((status, text.as_str()), (502, "<html>bad gateway</html>"));
        assert_eq!(post(&proxy, IMPORT, &import("c")).await, None);
        // The answer is lost, the import is not.
        assert_eq!(post(&proxy, IMPORT, &import("d")).await, None);
        let (_, text) = post(&proxy, IMPORT, &import("e")).await.unwrap();
        assert_eq!(text, r#"{"canned":true}"#);
        assert_eq!(proxy.remaining(), 0);
        let (status, text) = post(&proxy, IMPORT, &import("f")).await.unwrap();
        assert_eq!(status, 200);
        assert!(
            text.starts_with(r#"{"ActionStatus":"OK","ErrorCode":0"#),
            "{text}"
        );

        assert!(server.account(APP, "d").await.is_some());
        assert!(server.account(APP, "f").await.is_some());
        for faulted in ["a", "b", "c", "e"] {
            assert!(server.account(APP, faulted).await.is_none(), "{faulted}");
        }
        let seen = proxy.seen();
        assert_eq!(seen.len(), 6);
        for (request, id) in seen.iter().zip(["a", "b", "c", "d", "e", "f"]) {
            assert_eq!(request.path, IMPORT);
            assert_eq!(request.body, import(id));
            assert_eq!(request.param("sdkappid"), Some(APP.to_string()));
            assert_eq!(request.param("random").as_deref(), Some("99999999"));
            assert_eq!(request.param("nothing"), None);
        }
    }

    /// As the CLI's tests use it: from a plain `#[test]` with no runtime of its own, in front
    /// of a server that runs elsewhere (here, on a runtime the test keeps for it).
    #[test]
    fn a_plain_test_without_a_runtime_can_use_it() {
        use std::io::{Read as _, Write as _};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(TestServer::builder().start());
        let proxy = FaultProxy::start(&server.base, &[Fault::Code(70500)]);
        let exchange = || {
            let target = format!("{IMPORT}?{}", query(APP, ADMIN, &sig(APP, KEY, ADMIN)));
            let body = r#"{"UserID":"plain"}"#;
            let mut stream =
                std::net::TcpStream::connect(proxy.base.trim_start_matches("http://")).unwrap();
            write!(
                stream,
                "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        };
        assert!(exchange().contains(r#""ErrorCode":70500"#));
        assert!(exchange().contains(r#""ErrorCode":0"#));
        assert!(runtime.block_on(server.account(APP, "plain")).is_some());
        assert_eq!(proxy.seen().len(), 2);
    }

    #[test]
    fn nothing_listens_on_a_closed_port() {
        let base = closed_port();
        let addr = base.strip_prefix("http://").expect("a base URL");
        assert!(addr.starts_with("127.0.0.1:"), "{base}");
        let refused = std::net::TcpStream::connect(addr).expect_err("nothing listens there");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_proxy_without_a_server_answers_with_its_stand_in() {
        let proxy = FaultProxy::answering(&[Fault::Code(70500), Fault::Pass], |seen| {
            format!(r#"{{"echo":{:?}}}"#, seen.body)
        });
        let (_, text) = post(&proxy, IMPORT, "one").await.unwrap();
        assert!(text.contains("70500"), "{text}");
        for body in ["two", "three"] {
            let (status, text) = post(&proxy, IMPORT, body).await.unwrap();
            assert_eq!((status, text), (200, format!(r#"{{"echo":"{body}"}}"#)));
        }
        assert_eq!(proxy.seen().len(), 3);
    }
}
