//! Field rules the import APIs share: UserIDs and profile lengths, and the 70402 helper.

use std::borrow::Cow;

use timacct_proto::{invalid_user_id_info, ApiError, ErrorCode, MAX_PROFILE_FIELD_BYTES};
use timacct_store::UserId;

/// A handler's answer: the success body, or the error for the envelope.
pub(super) type Reply = Result<Vec<u8>, ApiError>;

/// 70402 with a text that says what is wrong.
pub(super) fn invalid(info: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::with_info(ErrorCode::InvalidParameter, info)
}

/// A UserID, or the per-item text of why not.
pub(super) fn parse_user_id(raw: &str) -> Result<UserId, String> {
    UserId::parse(raw).map_err(|e| invalid_user_id_info(raw, e))
}

/// The profile field (Nick or FaceUrl) over 500 bytes, if any.
pub(super) fn profile_too_long(
    nick: &Option<String>,
    face_url: &Option<String>,
) -> Option<&'static str> {
    if nick
        .as_ref()
        .is_some_and(|n| n.len() > MAX_PROFILE_FIELD_BYTES)
    {
        Some("Nick")
    } else if face_url
        .as_ref()
        .is_some_and(|f| f.len() > MAX_PROFILE_FIELD_BYTES)
    {
        Some("FaceUrl")
    } else {
        None
    }
}
