//! What every answer of the server must be, checked before a test looks at it, whether it
//! came over an HTTP client or was read off a raw socket.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Remove the whitespace outside JSON strings: documented samples are pretty-printed, the
/// server's answers are compact.
pub fn compact(json_text: &str) -> String {
    let mut out = String::with_capacity(json_text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json_text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// One HTTP exchange, already checked to be a well-formed envelope.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// `ErrorCode` (`u64::MAX` if missing, which [`check_envelope`] never lets through).
    pub fn code(&self) -> u64 {
        self.json["ErrorCode"].as_u64().unwrap_or(u64::MAX)
    }

    /// `ErrorInfo`.
    pub fn info(&self) -> &str {
        self.json["ErrorInfo"].as_str().unwrap_or("")
    }

    /// Assert an HTTP 200 failure with this code; the envelope only.
    pub fn assert_fail(&self, code: u64) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        self
    }

    /// Assert an HTTP 200 success.
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.code(), 0, "{}", self.text);
        self
    }
}

/// Check what every response must be: `application/json; charset=utf-8`, an `X-Request-Id`,
/// a JSON object starting `ActionStatus`, `ErrorCode`, `ErrorInfo` in that order, consistent
/// with each other; a failure carries the envelope only; never a 5xx.
pub fn check_envelope(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> (String, Value) {
    assert!(
        status == StatusCode::OK || status == StatusCode::METHOD_NOT_ALLOWED,
        "unexpected HTTP status {status}: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8"),
        "Content-Type of {}",
        String::from_utf8_lossy(body)
    );
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(!request_id.is_empty(), "X-Request-Id missing");
    let text = String::from_utf8(body.to_vec()).expect("response body is UTF-8");
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {text:?}"));
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("response body is not a JSON object: {text}"));
    let action = object
        .get("ActionStatus")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("ActionStatus missing or not a string: {text}"));
    let code = object
        .get("ErrorCode")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("ErrorCode missing or not an integer: {text}"));
    let info = object
        .get("ErrorInfo")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("ErrorInfo missing or not a string: {text}"));
    if code == 0 {
        assert_eq!(action, "OK", "{text}");
        assert_eq!(info, "", "{text}");
    } else {
        assert_eq!(action, "FAIL", "{text}");
        assert!(!info.is_empty(), "a failure must say why: {text}");
        assert_eq!(
            object.len(),
            3,
            "a failure carries the envelope only: {text}"
        );
    }
    let prefix = format!(
        "{{\"ActionStatus\":{},\"ErrorCode\":{code},\"ErrorInfo\":{}",
        json!(action),
        json!(info)
    );
    assert!(
        text.starts_with(&prefix),
        "envelope key order must be ActionStatus, ErrorCode, ErrorInfo: {text}"
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        assert_eq!(code, 60002, "{text}");
    }
    (text, json)
}

/// Status and headers of a raw HTTP/1.1 response head (without the blank line that ends it),
/// for answers read off a socket: requests no HTTP client would send get answers no HTTP
/// client should be trusted to read.
pub fn parse_head(head: &[u8]) -> (StatusCode, HeaderMap) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
                HeaderValue::from_str(value.trim()).expect("header value"),
            );
        }
    }
    (status, headers)
}

/// One whole raw HTTP answer (head, blank line, and a body running to the end of `answer`),
/// checked to be the envelope.
pub fn parse_answer(answer: &[u8]) -> Reply {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(answer)));
    let (status, headers) = parse_head(&answer[..split]);
    let (text, json) = check_envelope(status, &headers, &answer[split + 4..]);
    Reply {
        status,
        headers,
        text,
        json,
    }
}
