//! The APIs of the account family, their paths and documented rate limits, and the query
//! string every call carries.

use crate::error::{ApiError, ErrorCode};
use std::borrow::Cow;

/// One REST API of the account family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// `im_open_login_svc/account_import`: import one account.
    AccountImport,
    /// `im_open_login_svc/multiaccount_import`: import up to 100 accounts.
    MultiAccountImport,
    /// `im_open_login_svc/account_check`: ask whether up to 100 accounts are imported.
    AccountCheck,
    /// `im_open_login_svc/account_delete`: delete up to 100 accounts.
    AccountDelete,
    /// `im_open_login_svc/kick`: invalidate one account's login state.
    Kick,
    /// `openim/query_online_status`: online state of up to 500 accounts.
    QueryOnlineStatus,
}

impl Api {
    /// How many APIs there are: the size of every per-API table ([`PerApi`]).
    pub const COUNT: usize = 6;

    /// Every API, in a fixed order (used to index per-API tables).
    pub const ALL: [Api; Api::COUNT] = [
        Api::AccountImport,
        Api::MultiAccountImport,
        Api::AccountCheck,
        Api::AccountDelete,
        Api::Kick,
        Api::QueryOnlineStatus,
    ];

    /// The `servicename` part of the path.
    pub const fn service(self) -> &'static str {
        match self {
            Api::QueryOnlineStatus => "openim",
            _ => "im_open_login_svc",
        }
    }

    /// The `command` part of the path, which is also the API's name in config files.
    pub const fn command(self) -> &'static str {
        match self {
            Api::AccountImport => "account_import",
            Api::MultiAccountImport => "multiaccount_import",
            Api::AccountCheck => "account_check",
            Api::AccountDelete => "account_delete",
            Api::Kick => "kick",
            Api::QueryOnlineStatus => "query_online_status",
        }
    }

    /// The URL path, e.g. `/v4/im_open_login_svc/account_check`.
    pub const fn path(self) -> &'static str {
        match self {
            Api::AccountImport => "/v4/im_open_login_svc/account_import",
            Api::MultiAccountImport => "/v4/im_open_login_svc/multiaccount_import",
            Api::AccountCheck => "/v4/im_open_login_svc/account_check",
            Api::AccountDelete => "/v4/im_open_login_svc/account_delete",
            Api::Kick => "/v4/im_open_login_svc/kick",
            Api::QueryOnlineStatus => "/v4/openim/query_online_status",
        }
    }

    /// The API for a URL path, if it is one of the family.
    pub fn from_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.path() == path)
    }

    /// The API for a command name (as used in config files), if any.
    pub fn from_command(command: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.command() == command)
    }

    /// Tencent's documented default limit in calls per second, per app.
    pub const fn documented_rate_limit(self) -> u32 {
        match self {
            Api::AccountImport | Api::Kick | Api::QueryOnlineStatus => 200,
            Api::MultiAccountImport | Api::AccountDelete | Api::AccountCheck => 100,
        }
    }

    /// Index into [`Api::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One value per API: the table that rate limits, metrics and client pacing all keep, so
/// that adding an API to [`Api`] is the only edit a new API needs there.
#[derive(Debug, Clone, PartialEq)]
pub struct PerApi<T>([T; Api::COUNT]);

impl<T> PerApi<T> {
    /// A table with `f(api)` for every API.
    pub fn from_fn(mut f: impl FnMut(Api) -> T) -> Self {
        PerApi(Api::ALL.map(&mut f))
    }

    /// Each API with its value, in [`Api::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Api, &T)> {
        Api::ALL.into_iter().zip(self.0.iter())
    }

    /// A table of `f` applied to each value.
    pub fn map<U>(&self, mut f: impl FnMut(Api, &T) -> U) -> PerApi<U> {
        PerApi::from_fn(|api| f(api, &self[api]))
    }
}

impl<T: Default> Default for PerApi<T> {
    fn default() -> Self {
        PerApi::from_fn(|_| T::default())
    }
}

impl<T> std::ops::Index<Api> for PerApi<T> {
    type Output = T;
    fn index(&self, api: Api) -> &T {
        &self.0[api.index()]
    }
}

impl<T> std::ops::IndexMut<Api> for PerApi<T> {
    fn index_mut(&mut self, api: Api) -> &mut T {
        &mut self.0[api.index()]
    }
}

/// Why a query string was refused, before any app lookup or signature check.
pub type QueryError = ApiError;

/// The common query string: `sdkappid`, `identifier`, `usersig`, `random`, `contenttype`.
///
/// Parsing keeps the raw values so that the server can check them in the order the contract
/// fixes (sdkappid first, then the app lookup, then the rest).
///
/// Values borrow from the query string unless they had to be percent-decoded: parsing a
/// typical call allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiQuery<'a> {
    /// `sdkappid`, as sent.
    pub sdkappid: Option<Cow<'a, str>>,
    /// `identifier`, as sent: the admin making the call.
    pub identifier: Option<Cow<'a, str>>,
    /// `usersig`, as sent: the admin's UserSig.
    pub usersig: Option<Cow<'a, str>>,
    /// `random`, as sent: a 32-bit number identifying the request.
    pub random: Option<Cow<'a, str>>,
    /// `contenttype`, as sent: always `json` when present.
    pub contenttype: Option<Cow<'a, str>>,
}

impl<'a> ApiQuery<'a> {
    /// Split a raw query string (without `?`). Names are case-sensitive; the first occurrence
    /// of a name wins; unknown names are ignored.
    pub fn parse(query: &'a str) -> ApiQuery<'a> {
        let mut q = ApiQuery::default();
        for (name, value, plain) in form_pairs(query) {
            let slot = match &*name {
                "sdkappid" => &mut q.sdkappid,
                "identifier" => &mut q.identifier,
                "usersig" => &mut q.usersig,
                "random" => &mut q.random,
                "contenttype" => &mut q.contenttype,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(if plain {
                    Cow::Borrowed(value)
                } else {
                    percent_decode(value)
                });
            }
        }
        q
    }

    /// Build the query string for a call (used by clients).
    pub fn encode(sdkappid: u32, identifier: &str, usersig: &str, random: u32) -> String {
        format!(
            "sdkappid={sdkappid}&identifier={}&usersig={}&random={random}&contenttype=json",
            percent_encode(identifier),
            percent_encode(usersig)
        )
    }

    /// The SDKAppID: missing or not an integer in u32 range → 60012.
    pub fn sdkappid(&self) -> Result<u32, ApiError> {
        let raw = self.sdkappid.as_deref().unwrap_or("");
        if raw.is_empty() {
            return Err(ApiError::new(ErrorCode::SdkAppIdMissing));
        }
        parse_u32(raw).ok_or_else(|| {
            ApiError::with_info(
                ErrorCode::SdkAppIdMissing,
                "sdkappid in the URL must be an integer from 0 to 4294967295",
            )
        })
    }

    /// The admin identifier and UserSig, after the `contenttype` and `random` checks; every
    /// failure here is 60025.
    pub fn credentials(&self) -> Result<(&str, &str), ApiError> {
        let identifier = self.identifier.as_deref().unwrap_or("");
        if identifier.is_empty() {
            return Err(ApiError::with_info(
                ErrorCode::UrlParams,
                "identifier is missing from the URL; set it to an App admin account",
            ));
        }
        let usersig = self.usersig.as_deref().unwrap_or("");
        if usersig.is_empty() {
            return Err(ApiError::with_info(
                ErrorCode::UrlParams,
                "usersig is missing from the URL; set it to the admin's UserSig",
            ));
        }
        if let Some(ct) = self.contenttype.as_deref() {
            if ct != "json" {
                return Err(ApiError::with_info(
                    ErrorCode::UrlParams,
                    "contenttype in the URL must be json",
                ));
            }
        }
        if let Some(random) = self.random.as_deref() {
            if parse_u32(random).is_none() {
                return Err(ApiError::with_info(
                    ErrorCode::UrlParams,
                    "random in the URL must be an integer from 0 to 4294967295",
                ));
            }
        }
        Ok((identifier, usersig))
    }
}

/// A decimal u32 made of ASCII digits only (no sign, no spaces).
fn parse_u32(raw: &str) -> Option<u32> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// `application/x-www-form-urlencoded` pairs, decoded leniently: a broken `%` escape is kept
/// as it is and invalid UTF-8 is replaced, so no query string can make parsing fail.
/// Decoded names with their still-encoded values (only the values kept get decoded) and
/// whether a value needs decoding at all, found in one pass over the query string: a
/// UserSig is a few hundred bytes, and scanning it once instead of three times (split,
/// then a search for `%`, then for `+`) halved the cost of parsing a call's query.
fn form_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, &str, bool)> {
    let bytes = query.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() {
            let mut eq = None;
            let mut plain = true;
            let mut end = start;
            while let Some(&b) = bytes.get(end) {
                match b {
                    b'&' => break,
                    b'=' if eq.is_none() => eq = Some(end),
                    b'%' | b'+' if eq.is_some() => plain = false,
                    _ => {}
                }
                end += 1;
            }
            let pair_start = start;
            start = end + 1;
            if pair_start == end {
                continue;
            }
            // `&` and `=` are ASCII, so every cut below is on a character boundary.
            let (name, value) = match eq {
                Some(e) => (
                    query.get(pair_start..e).unwrap_or(""),
                    query.get(e + 1..end).unwrap_or(""),
                ),
                None => (query.get(pair_start..end).unwrap_or(""), ""),
            };
            return Some((percent_decode(name), value, plain));
        }
        None
    })
}

fn percent_decode(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    // The usual case (Tencent's base64 variant needs no escaping): no copy, no work.
    // (`contains` on bytes is a word-at-a-time search.)
    if !bytes.contains(&b'%') && !bytes.contains(&b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters and the `*` of Tencent's
/// base64 variant.
fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_is_lenient_and_first_wins() {
        let q =
            ApiQuery::parse("sdkappid=1&sdkappid=2&identifier=a%20b&usersig=x+y&bad=%zz&random=%");
        assert_eq!(q.sdkappid.as_deref(), Some("1"));
        assert_eq!(q.identifier.as_deref(), Some("a b"));
        assert_eq!(q.usersig.as_deref(), Some("x y"));
        assert_eq!(q.random.as_deref(), Some("%"));
    }

    #[test]
    fn odd_pairs_split_as_forms_do() {
        let q = ApiQuery::parse(
            "&&=v&identifier&usersig=a=b%3D+c&sdk%61ppid=9&random=&contenttype=json&usersig=no",
        );
        assert_eq!(q.identifier.as_deref(), Some(""));
        assert_eq!(q.usersig.as_deref(), Some("a=b= c"));
        assert_eq!(q.sdkappid.as_deref(), Some("9"));
        assert_eq!(q.random.as_deref(), Some(""));
        assert_eq!(q.contenttype.as_deref(), Some("json"));
        // Plain values are borrowed, decoded ones owned.
        let q = ApiQuery::parse("identifier=admin&usersig=x%2Ay");
        assert!(matches!(q.identifier, Some(Cow::Borrowed("admin"))));
        assert!(matches!(q.usersig.as_ref(), Some(Cow::Owned(s)) if s == "x*y"));
    }

    #[test]
    fn sdkappid_range() {
        let code = |s: &str| ApiQuery::parse(s).sdkappid().map_err(|e| e.code.code());
        assert_eq!(code("sdkappid=4294967295"), Ok(4294967295));
        assert_eq!(code("sdkappid=4294967296"), Err(60012));
        assert_eq!(code("sdkappid=-1"), Err(60012));
        assert_eq!(code("sdkappid="), Err(60012));
        assert_eq!(code(""), Err(60012));
    }

    #[test]
    fn encode_round_trips() {
        let s = ApiQuery::encode(7, "admin x", "a*b-c_d+/=", 42);
        let q = ApiQuery::parse(&s);
        assert_eq!(q.identifier.as_deref(), Some("admin x"));
        assert_eq!(q.usersig.as_deref(), Some("a*b-c_d+/="));
        assert_eq!(q.random.as_deref(), Some("42"));
        assert_eq!(q.contenttype.as_deref(), Some("json"));
    }
}
