//! The one place where an [`ApiError`] becomes bytes on the wire: Tencent's JSON envelope,
//! its headers, and the fixed answers of the transport (connections over the cap, requests
//! hyper could not parse).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use timacct_proto::{ApiError, Envelope, ErrorCode};

use crate::request_id::{request_id, RequestId};

/// The content type of every envelope.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A response carrying an envelope (or a success body): the JSON content type and the
/// request id on every one.
pub(crate) fn envelope_response(status: StatusCode, body: Vec<u8>, id: RequestId) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert("x-request-id", id.header_value());
    response
}

/// The answer on a connection over `--max-connections`: 60018, then the connection closes.
pub(crate) fn connections_full() -> Response {
    let e = ApiError::with_info(
        ErrorCode::TooManyRequests,
        "the server has too many open connections; nothing was changed, retry shortly",
    );
    let mut response = envelope_response(StatusCode::OK, envelope_bytes(&e), request_id());
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The envelope of a failure, as bytes.
pub(crate) fn envelope_bytes(e: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&Envelope::fail(e)).unwrap_or_else(|_| {
        br#"{"ActionStatus":"FAIL","ErrorCode":70500,"ErrorInfo":"internal server error; retry"}"#
            .to_vec()
    })
}

/// A success body as JSON; a failure to serialize (which the wire types cannot cause) is 70500.
pub(crate) fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(|e| ApiError::with_info(ErrorCode::Internal, e.to_string()))
}

/// The raw HTTP/1.1 answer, envelope included, for a request hyper could not parse: the
/// connection's writer sends it in place of hyper's bare 4xx, then the connection closes.
pub(crate) fn unparsable_request_reply(what: &str) -> Vec<u8> {
    let body = envelope_bytes(&ApiError::with_info(
        ErrorCode::HttpParse,
        format!("HTTP parse error: {what}"),
    ));
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {CONTENT_TYPE}\r\ncontent-length: {}\r\nx-request-id: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        request_id()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    reply
}
