//! The one error type of this crate.

/// Why a UserSig was rejected.
///
/// The reason texts follow the recommended verifier of `docs/protocol.md` §4.4, which reuses the Go
/// library's strings where the cases overlap, so logs read the same as Tencent's own tools.
/// Each carries the Tencent error code a REST call signed with such a token gets
/// ([`timacct_proto::HasErrorCode`]: 70001, 70003, 70009, 70013, 70014).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token was the empty string (a client that forgot to fill it in).
    #[error("empty usersig")]
    EmptyUserSig,
    /// The token is neither the Tencent base64 variant nor standard base64.
    #[error("base64 decode error")]
    Base64,
    /// The decoded bytes are not one complete, intact zlib stream (cut short, corrupted,
    /// or with a bad checksum).
    #[error("zlib decompress error: truncated stream")]
    Zlib,
    /// The stream inflates past [`crate::MAX_INFLATED`]; refused so a zlib bomb costs nothing.
    #[error("zlib decompress error: document too large")]
    TooLarge,
    /// The inflated document is not UTF-8 JSON, or not a JSON object.
    #[error("json decode error")]
    Json,
    /// `TLS.ver` is absent or is not the string `"2.0"`; we refuse to guess at other formats.
    #[error("version not match")]
    Version,
    /// A required field (named, e.g. `TLS.sig`) is absent from the document.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field (named) has the wrong JSON type, e.g. a string or float where an integer belongs.
    #[error("bad type for {0}")]
    BadType(&'static str),
    /// The token was issued for another SDKAppID.
    #[error("sdk appid not match")]
    SdkAppIdMismatch,
    /// The token was issued for another UserID.
    #[error("identifier not match")]
    IdentifierMismatch,
    /// `now > TLS.time + TLS.expire`.
    #[error("expired")]
    Expired,
    /// The caller required a userbuf and the token has none, or the reverse.
    #[error("userbuf type not match")]
    UserbufTypeMismatch,
    /// The token's userbuf differs from the one the caller required.
    #[error("userbuf not match")]
    UserbufMismatch,
    /// The HMAC does not match: usually the secret key of another SDKAppID, or a forged token.
    #[error("sig not match")]
    SigMismatch,
}

impl VerifyError {
    /// The reason text, the same as `Display`; a named method so callers building an
    /// `ErrorInfo` don't depend on the `Display` impl staying this way.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// True for errors found while decoding the token itself (empty, base64, zlib, JSON,
    /// version, missing or mistyped fields) rather than in checking what it says. The server
    /// maps these to 70003 ("UserSig could not be parsed").
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::EmptyUserSig
                | Self::Base64
                | Self::Zlib
                | Self::TooLarge
                | Self::Json
                | Self::Version
                | Self::MissingField(_)
                | Self::BadType(_)
        )
    }
}

impl timacct_proto::HasErrorCode for VerifyError {
    fn error_code(&self) -> timacct_proto::ErrorCode {
        use timacct_proto::ErrorCode;
        match self {
            VerifyError::SdkAppIdMismatch => ErrorCode::SdkAppIdMismatch,
            VerifyError::IdentifierMismatch => ErrorCode::IdentifierMismatch,
            VerifyError::Expired => ErrorCode::UserSigExpired,
            VerifyError::SigMismatch
            | VerifyError::UserbufMismatch
            | VerifyError::UserbufTypeMismatch => ErrorCode::UserSigVerifyFailed,
            VerifyError::EmptyUserSig
            | VerifyError::Base64
            | VerifyError::Zlib
            | VerifyError::TooLarge
            | VerifyError::Json
            | VerifyError::Version
            | VerifyError::MissingField(_)
            | VerifyError::BadType(_) => ErrorCode::UserSigIllegal,
        }
    }

    /// Tencent's texts, and for a token that cannot be read (70003) the reason after it, so
    /// that the caller can tell a truncated token from a wrong version.
    fn error_info(&self) -> std::borrow::Cow<'static, str> {
        let code = self.error_code();
        if self.is_malformed() {
            format!("{} ({})", code.default_info(), self.reason()).into()
        } else {
            code.default_info().into()
        }
    }
}
