//! Where calls go: Tencent's regional hosts (`docs/protocol.md` §2.1) or any base URL.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;
use timacct_proto::Api;

use crate::error::Error;

/// A Tencent Cloud Chat data centre. An app lives in exactly one; calling another region's
/// host fails (60026), so the region must match where the app was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// Chinese mainland.
    China,
    /// Singapore.
    Singapore,
    /// Seoul.
    Seoul,
    /// Tokyo (no backup host is documented).
    Tokyo,
    /// Frankfurt.
    Frankfurt,
    /// Mumbai (India); documented until 2024, dropped from newer pages.
    Mumbai,
    /// Silicon Valley (USA).
    SiliconValley,
    /// Jakarta.
    Jakarta,
}

impl Region {
    /// Every region, in the order of the documentation's table.
    pub const ALL: [Region; 8] = [
        Region::China,
        Region::Singapore,
        Region::Seoul,
        Region::Tokyo,
        Region::Frankfurt,
        Region::Mumbai,
        Region::SiliconValley,
        Region::Jakarta,
    ];

    /// The name used on the command line and in `TIMACCT_ENDPOINT`, e.g. `silicon-valley`.
    pub const fn name(self) -> &'static str {
        match self {
            Region::China => "china",
            Region::Singapore => "singapore",
            Region::Seoul => "seoul",
            Region::Tokyo => "tokyo",
            Region::Frankfurt => "frankfurt",
            Region::Mumbai => "mumbai",
            Region::SiliconValley => "silicon-valley",
            Region::Jakarta => "jakarta",
        }
    }

    /// The documented REST host.
    pub const fn host(self) -> &'static str {
        match self {
            Region::China => "console.tim.qq.com",
            Region::Singapore => "adminapisgp.im.qcloud.com",
            Region::Seoul => "adminapikr.im.qcloud.com",
            Region::Tokyo => "adminapijpn.im.qcloud.com",
            Region::Frankfurt => "adminapiger.im.qcloud.com",
            Region::Mumbai => "adminapiind.im.qcloud.com",
            Region::SiliconValley => "adminapiusa.im.qcloud.com",
            Region::Jakarta => "adminapiidn.im.qcloud.com",
        }
    }

    /// The documented backup host, used when the main host cannot be reached. Tokyo has none
    /// documented, and guessing one would send admin credentials to an unknown host.
    pub const fn backup_host(self) -> Option<&'static str> {
        match self {
            Region::China => Some("adminapi.my-imcloud.com"),
            Region::Singapore => Some("adminapisgp.my-imcloud.com"),
            Region::Seoul => Some("adminapikr.my-imcloud.com"),
            Region::Tokyo => None,
            Region::Frankfurt => Some("adminapiger.my-imcloud.com"),
            Region::Mumbai => Some("adminapiind.my-imcloud.com"),
            Region::SiliconValley => Some("adminapiusa.my-imcloud.com"),
            Region::Jakarta => Some("adminapiidn.my-imcloud.com"),
        }
    }

    /// The region for a name, ignoring case; `india` is accepted for Mumbai and `_` for `-`.
    pub fn from_name(name: &str) -> Option<Region> {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        if name == "india" {
            return Some(Region::Mumbai);
        }
        Region::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Region, Error> {
        Region::from_name(s).ok_or_else(|| Error::Endpoint {
            given: s.to_owned(),
            reason: format!("not a region; known regions: {}", region_names()),
        })
    }
}

fn region_names() -> String {
    Region::ALL.map(Region::name).join(", ")
}

/// Where calls go: a main base URL and, optionally, a backup tried when the main one cannot
/// be reached (a connection error, never an answer the service gave).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URLs without a trailing `/`, main first: the API path is appended to them.
    bases: Vec<String>,
}

impl Endpoint {
    /// A Tencent region over HTTPS, with its documented backup host.
    pub fn region(region: Region) -> Endpoint {
        let mut bases = vec![format!("https://{}", region.host())];
        if let Some(backup) = region.backup_host() {
            bases.push(format!("https://{backup}"));
        }
        Endpoint { bases }
    }

    /// One base URL, `http` or `https`, optionally with a path prefix (e.g. behind a proxy):
    /// `http://127.0.0.1:8080` calls `http://127.0.0.1:8080/v4/...`.
    pub fn url(base: &str) -> Result<Endpoint, Error> {
        Ok(Endpoint {
            bases: vec![parse_base(base)?],
        })
    }

    /// The same endpoint with `backup` as the host to fail over to.
    pub fn with_backup(mut self, backup: &str) -> Result<Endpoint, Error> {
        self.bases.truncate(1);
        self.bases.push(parse_base(backup)?);
        Ok(self)
    }

    /// A region name (see [`Region::from_name`]) or a base URL, as given on a command line.
    pub fn parse(text: &str) -> Result<Endpoint, Error> {
        if let Some(region) = Region::from_name(text) {
            return Ok(Endpoint::region(region));
        }
        if !text.contains("://") {
            return Err(Error::Endpoint {
                given: text.to_owned(),
                reason: format!(
                    "neither a region ({}) nor a URL such as http://127.0.0.1:8080",
                    region_names()
                ),
            });
        }
        Endpoint::url(text)
    }

    /// The base URLs, main first then the backup if any.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// The full URL of `api` on base number `index`, with `query` (already encoded).
    pub(crate) fn api_url(&self, index: usize, api: Api, query: &str) -> String {
        let base = self.bases.get(index).map_or("", String::as_str);
        format!("{base}{}?{query}", api.path())
    }

    /// `host:port` of base number `index`, for error messages (never the query string,
    /// which carries the UserSig).
    pub(crate) fn host_of(&self, index: usize) -> String {
        self.bases
            .get(index)
            .and_then(|b| Url::parse(b).ok())
            .map(|u| match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => u.to_string(),
            })
            .unwrap_or_default()
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s)
    }
}

impl From<Region> for Endpoint {
    fn from(region: Region) -> Endpoint {
        Endpoint::region(region)
    }
}

/// A base URL, checked: http(s), a host, no query or fragment (the client writes the query).
fn parse_base(text: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::Endpoint {
        given: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text.trim()).map_err(|e| bad(&format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "give the base URL only: the client adds the path and the query string",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not supported"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_region_has_its_documented_hosts() {
        let table: Vec<(&str, &str, Option<&str>)> = Region::ALL
            .iter()
            .map(|r| (r.name(), r.host(), r.backup_host()))
            .collect();
        assert_eq!(
            table,
            vec![
                (
                    "china",
                    "console.tim.qq.com",
                    Some("adminapi.my-imcloud.com")
                ),
                (
                    "singapore",
                    "adminapisgp.im.qcloud.com",
                    Some("adminapisgp.my-imcloud.com")
                ),
                (
                    "seoul",
                    "adminapikr.im.qcloud.com",
                    Some("adminapikr.my-imcloud.com")
                ),
                ("tokyo", "adminapijpn.im.qcloud.com", None),
                (
                    "frankfurt",
                    "adminapiger.im.qcloud.com",
                    Some("adminapiger.my-imcloud.com")
                ),
                (
                    "mumbai",
                    "adminapiind.im.qcloud.com",
                    Some("adminapiind.my-imcloud.com")
                ),
                (
                    "silicon-valley",
                    "adminapiusa.im.qcloud.com",
                    Some("adminapiusa.my-imcloud.com")
                ),
                (
                    "jakarta",
                    "adminapiidn.im.qcloud.com",
                    Some("adminapiidn.my-imcloud.com")
                ),
            ]
        );
    }

    #[test]
    fn every_region_endpoint_is_https_to_its_host_then_its_backup() {
        for region in Region::ALL {
            let mut expected = vec![format!("https://{}", region.host())];
            expected.extend(region.backup_host().map(|b| format!("https://{b}")));
            assert_eq!(Endpoint::region(region).bases(), expected, "{region}");
            assert_eq!(
                Endpoint::parse(region.name()).unwrap(),
                Endpoint::region(region)
            );
            assert_eq!(
                Endpoint::parse(&region.name().to_ascii_uppercase()).unwrap(),
                Endpoint::region(region)
            );
        }
        assert_eq!(Region::ALL.len(), 8);
    }

    #[test]
    fn region_names_parse_to_https_endpoints_with_backup() {
        let e = Endpoint::parse("Silicon_Valley").unwrap();
        assert_eq!(
            e.bases(),
            [
                "https://adminapiusa.im.qcloud.com",
                "https://adminapiusa.my-imcloud.com"
            ]
        );
        assert_eq!(
            Endpoint::parse("tokyo").unwrap().bases(),
            ["https://adminapijpn.im.qcloud.com"]
        );
        assert_eq!(Region::from_name("india"), Some(Region::Mumbai));
        for r in Region::ALL {
            assert_eq!(r.name().parse::<Region>().unwrap(), r);
        }
    }

    #[test]
    fn urls_are_bases_and_the_api_path_is_appended() {
        let e = Endpoint::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            e.api_url(0, Api::AccountCheck, "a=1"),
            "http://127.0.0.1:8080/v4/im_open_login_svc/account_check?a=1"
        );
        assert_eq!(e.host_of(0), "127.0.0.1:8080");
        let e = Endpoint::parse("https://proxy.example/tim").unwrap();
        assert_eq!(
            e.api_url(0, Api::QueryOnlineStatus, "x"),
            "https://proxy.example/tim/v4/openim/query_online_status?x"
        );
        let e = Endpoint::parse("http://a:1")
            .unwrap()
            .with_backup("http://b:2")
            .unwrap();
        assert_eq!(e.bases(), ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn bad_endpoints_say_why() {
        for (text, needle) in [
            ("mars", "neither a region"),
            ("ftp://x", "http or https"),
            ("http://x/?sdkappid=1", "base URL only"),
            ("http://u:p@x", "credentials"),
        ] {
            let e = Endpoint::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
