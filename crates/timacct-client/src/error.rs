//! The one error type of this crate.

use timacct_proto::{Api, ErrorCode};

/// Why a call failed.
///
/// Every variant about a call names the API and carries the `random` of the last attempt
/// (the number Tencent support and the timacct server's logs use to find a request) and how
/// many attempts were made. None of them carries the key or a UserSig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No HTTP answer: the host could not be reached, the connection broke, or the call
    /// timed out. The reason is the error's `source()`.
    #[error("{}: no answer from {host} (random {random}, attempt {attempts})", .api.command())]
    Transport {
        /// The API called.
        api: Api,
        /// `host:port` of the last host tried.
        host: String,
        /// The `random` of the last attempt.
        random: u32,
        /// Attempts made, retries included.
        attempts: u32,
        /// What went wrong, with the URL (and so the UserSig) stripped.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP status other than 200 without an error envelope (e.g. a proxy's 502 page).
    #[error("{}: HTTP status {status} from {host} (random {random}, attempt {attempts})", .api.command())]
    Http {
        /// The API called.
        api: Api,
        /// `host:port` of the host that answered.
        host: String,
        /// The HTTP status.
        status: u16,
        /// The `random` of the last attempt.
        random: u32,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// The service answered with a non-zero `ErrorCode`.
    #[error("{} failed with ErrorCode {code}: {info} (random {random}, attempt {attempts})", .api.command())]
    Api {
        /// The API called.
        api: Api,
        /// `ErrorCode` as sent, also for codes the table does not know.
        code: u32,
        /// The table entry for `code`, if timacct knows it.
        error_code: Option<ErrorCode>,
        /// `ErrorInfo` as sent.
        info: String,
        /// The `random` of the last attempt.
        random: u32,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// The answer was HTTP 200 but not the JSON this API answers with.
    #[error("{}: the answer is not the expected JSON (random {random}, attempt {attempts})", .api.command())]
    Decode {
        /// The API called.
        api: Api,
        /// The `random` of the last attempt.
        random: u32,
        /// Attempts made, retries included.
        attempts: u32,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be written as JSON (not possible for the `timacct-proto`
    /// types; kept so that no caller's type can make the client panic).
    #[error("{}: the request cannot be encoded as JSON", .api.command())]
    Encode {
        /// The API called.
        api: Api,
        /// Why not.
        #[source]
        source: serde_json::Error,
    },
    /// The endpoint given is neither a region nor a usable base URL.
    #[error("invalid endpoint {given:?}: {reason}")]
    Endpoint {
        /// The text given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no TLS backend).
    #[error("cannot set up the HTTP client")]
    Setup(#[source] reqwest::Error),
}

/// HTTP statuses worth another attempt: the gateway or the service is overloaded or
/// restarting, which is what the docs mean by "network-level faults (e.g. 502)".
const RETRYABLE_HTTP: [u16; 5] = [429, 500, 502, 503, 504];

impl Error {
    /// Whether another attempt may succeed: transport errors, overload HTTP statuses, and the
    /// API codes that the error table of `timacct-proto` marks retryable. Everything else
    /// (a bad key, a bad request, a missing account) fails the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Http { status, .. } => RETRYABLE_HTTP.contains(status),
            Error::Api { code, .. } => {
                ErrorCode::from_code(*code).is_some_and(|c| c.is_retryable())
            }
            Error::Decode { .. }
            | Error::Encode { .. }
            | Error::Endpoint { .. }
            | Error::Setup(_) => false,
        }
    }

    /// Whether the service refused the call for its rate (60007 and its siblings): the
    /// client then slows down every call of that API, not only the one refused.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.code(), Some(60007 | 60011 | 60018 | 60019))
    }

    /// The API's `ErrorCode`, for [`Error::Api`].
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The `ErrorInfo`, for [`Error::Api`].
    pub fn info(&self) -> Option<&str> {
        match self {
            Error::Api { info, .. } => Some(info),
            _ => None,
        }
    }

    /// The `random` of the last attempt, to trace the request.
    pub fn random(&self) -> Option<u32> {
        match self {
            Error::Transport { random, .. }
            | Error::Http { random, .. }
            | Error::Api { random, .. }
            | Error::Decode { random, .. } => Some(*random),
            Error::Encode { .. } | Error::Endpoint { .. } | Error::Setup(_) => None,
        }
    }

    /// How many attempts were made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Transport { attempts, .. }
            | Error::Http { attempts, .. }
            | Error::Api { attempts, .. }
            | Error::Decode { attempts, .. } => *attempts,
            Error::Encode { .. } | Error::Endpoint { .. } | Error::Setup(_) => 0,
        }
    }

    /// The API the failed call was for.
    pub fn api(&self) -> Option<Api> {
        match self {
            Error::Transport { api, .. }
            | Error::Http { api, .. }
            | Error::Api { api, .. }
            | Error::Decode { api, .. }
            | Error::Encode { api, .. } => Some(*api),
            Error::Endpoint { .. } | Error::Setup(_) => None,
        }
    }

    /// Record the attempt count once the retry loop knows it.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Error::Transport { attempts, .. }
            | Error::Http { attempts, .. }
            | Error::Api { attempts, .. }
            | Error::Decode { attempts, .. } => *attempts = n,
            Error::Encode { .. } | Error::Endpoint { .. } | Error::Setup(_) => {}
        }
        self
    }
}
