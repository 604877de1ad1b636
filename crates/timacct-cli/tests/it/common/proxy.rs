//! A faulty proxy between the binary and the real server: each request gets the next
//! scripted fault; once the script is done, requests are forwarded to the server. It records
//! every request it sees, so a test can check what was sent (and retried) as well as what
//! came back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the proxy does with one request, in place of forwarding it.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// HTTP 200 with this ErrorCode.
    Code(u32),
    /// Close the connection without answering.
    Drop,
    /// This HTTP status with an HTML body, as a gateway would.
    Status(u16),
    /// Forward to the server (which acts on it), then drop its answer.
    ForwardThenDrop,
    /// HTTP 200 with this body, in place of the server (for APIs it does not offer yet).
    Reply(&'static str),
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub body: String,
}

impl Seen {
    /// A query parameter as sent (still percent-encoded), `""` when absent.
    pub fn param(&self, name: &str) -> String {
        self.query
            .split('&')
            .find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| v.to_owned())
            })
            .unwrap_or_default()
    }
}

/// The proxy, listening on a loopback port of its own, on a runtime of its own (so that a
/// test that is not async can use it).
pub struct Proxy {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy in front of the server at `upstream`, its first requests getting `faults`
    /// in order.
    pub fn start(upstream: &str, faults: &[Fault]) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(faults.iter().copied().collect::<VecDeque<_>>()));
        let http = reqwest::Client::new();
        let upstream = upstream.to_owned();
        let s = seen.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, script, http, upstream) =
                    (s.clone(), script.clone(), http.clone(), upstream.clone());
                tokio::spawn(async move {
                    proxy_one(stream, &seen, &script, &http, &upstream).await;
                });
            }
        });
        Proxy {
            base,
            seen,
            _runtime: runtime,
        }
    }

    /// Every request so far, in the order they came.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn proxy_one(
    mut stream: tokio::net::TcpStream,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<Fault>>,
    http: &reqwest::Client,
    upstream: &str,
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
    seen.lock().unwrap().push(Seen {
        path: path.to_owned(),
        query: query.to_owned(),
        body: String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned(),
    });
    let fault = script.lock().unwrap().pop_front();
    let (status, text) = match fault {
        Some(Fault::Drop) => return,
        Some(Fault::Code(code)) => (
            200,
            format!(
                r#"{{"ActionStatus":"FAIL","ErrorCode":{code},"ErrorInfo":"injected {code}"}}"#
            ),
        ),
        Some(Fault::Status(status)) => (status, "<html>bad gateway</html>".to_owned()),
        Some(Fault::Reply(body)) => (200, body.to_owned()),
        None | Some(Fault::ForwardThenDrop) => {
            let answer = http
                .post(format!("{upstream}{target}"))
                .body(buf[header_end..header_end + length].to_vec())
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            if fault.is_some() {
                return;
            }
            (status, text)
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
