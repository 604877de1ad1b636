//! The apps a server hosts, from the TOML config file or the generated default app.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use timacct_proto::Api;

/// A configuration problem, reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    // The OS error is part of the message and deliberately not a `source()`: a chain
    // printer (anyhow's `{:#}`) would print it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is not valid TOML of the expected form.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with TOML's own location.
        message: String,
    },
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hosted apps.
    pub apps: Vec<AppConfig>,
}

/// A secret key. Never printed by `Debug` or `Display`, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretKey::new)
    }
}

impl SecretKey {
    /// Wrap a key, trimming the whitespace a copy and paste leaves behind (a stray space
    /// would silently change every HMAC).
    pub fn new(key: impl Into<String>) -> Self {
        SecretKey(key.into().trim().to_owned())
    }

    /// The key itself, for signing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// An app's plan, which decides deletion and re-import rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Deletion allowed; a deleted UserID may be imported again at once.
    #[default]
    Trial,
    /// Deletion only when enabled; a deleted UserID is blocked for 90 days.
    Pro,
}

/// Per-API rate limits of an app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateLimitPolicy {
    /// Tencent's documented limits.
    #[default]
    Tencent,
    /// No limits.
    Off,
    /// Explicit calls per second for the APIs named; the others keep Tencent's limits.
    Custom(BTreeMap<Api, u32>),
}

impl RateLimitPolicy {
    /// The calls per second allowed for `api`, or `None` for unlimited.
    pub fn limit(&self, api: Api) -> Option<u32> {
        match self {
            RateLimitPolicy::Tencent => Some(api.documented_rate_limit()),
            RateLimitPolicy::Off => None,
            RateLimitPolicy::Custom(map) => Some(
                map.get(&api)
                    .copied()
                    .unwrap_or(api.documented_rate_limit()),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for RateLimitPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Table(BTreeMap<String, u32>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "tencent" => Ok(RateLimitPolicy::Tencent),
            Raw::Word(w) if w == "off" => Ok(RateLimitPolicy::Off),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "rate_limits must be \"tencent\", \"off\" or a table of calls per second, not {w:?}"
            ))),
            Raw::Table(t) => {
                let mut map = BTreeMap::new();
                for (name, n) in t {
                    let api = Api::from_command(&name).ok_or_else(|| {
                        serde::de::Error::custom(format!("rate_limits: unknown API {name:?}"))
                    })?;
                    map.insert(api, n);
                }
                Ok(RateLimitPolicy::Custom(map))
            }
        }
    }
}

fn default_admins() -> Vec<String> {
    vec!["administrator".to_owned()]
}

/// One app, as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app's SDKAppID.
    pub sdkappid: u32,
    /// The app's secret key (the HMAC key of its UserSigs).
    pub key: SecretKey,
    /// The identifiers allowed to call the REST API.
    #[serde(default = "default_admins")]
    pub admins: Vec<String>,
    /// The app's plan.
    #[serde(default)]
    pub plan: Plan,
    /// For `pro`: whether `account_delete` is enabled.
    #[serde(default)]
    pub account_deletion: bool,
    /// Per-API rate limits.
    #[serde(default)]
    pub rate_limits: RateLimitPolicy,
    /// The most accounts the app may hold.
    #[serde(default)]
    pub max_accounts: Option<u64>,
}

impl AppConfig {
    /// An app with every setting at its default.
    pub fn new(sdkappid: u32, key: SecretKey) -> Self {
        AppConfig {
            sdkappid,
            key,
            admins: default_admins(),
            plan: Plan::Trial,
            account_deletion: false,
            rate_limits: RateLimitPolicy::Tencent,
            max_accounts: None,
        }
    }
}

impl Config {
    /// Parse a config file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        };
        if config.apps.is_empty() {
            return Err(invalid("no [[apps]] defined".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for app in &config.apps {
            if !seen.insert(app.sdkappid) {
                return Err(invalid(format!(
                    "sdkappid {} is defined twice",
                    app.sdkappid
                )));
            }
            if app.key.expose().is_empty() {
                return Err(invalid(format!("app {}: key is empty", app.sdkappid)));
            }
            if app.admins.is_empty() || app.admins.iter().any(|a| a.is_empty()) {
                return Err(invalid(format!(
                    "app {}: admins must be non-empty names",
                    app.sdkappid
                )));
            }
        }
        Ok(config)
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.display().to_string(),
            error,
        })?;
        Config::parse(&text, &path.display().to_string())
    }
}

/// The SDKAppID of the app `timacct serve` creates when it has no config file.
pub const DEFAULT_SDKAPPID: u32 = 1_400_000_000;

/// The default app: SDKAppID [`DEFAULT_SDKAPPID`], with a random key generated on first
/// start and kept in `data_dir/default-app.key` (mode 0600) so that UserSigs stay valid
/// across restarts.
pub fn default_app(data_dir: &Path) -> Result<AppConfig, ConfigError> {
    let path = data_dir.join("default-app.key");
    let io = |error| ConfigError::Io {
        path: path.display().to_string(),
        error,
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => k,
        Ok(_) | Err(_) => {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let key: String = (0..32)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            write_private(&path, &key).map_err(io)?;
            key
        }
    };
    Ok(AppConfig::new(DEFAULT_SDKAPPID, SecretKey::new(key)))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn full_form_parses() {
        let c = Config::parse(
            r#"
            [[apps]]
            sdkappid = 1400000001
            key = " abc "
            admins = ["administrator", "ops"]
            plan = "pro"
            account_deletion = true
            rate_limits = { account_check = 5 }
            max_accounts = 100

            [[apps]]
            sdkappid = 1400000002
            key = "k"
            rate_limits = "off"
            "#,
            "t",
        )
        .unwrap();
        let a = &c.apps[0];
        assert_eq!(a.key, SecretKey::new("abc"));
        assert_eq!(a.plan, Plan::Pro);
        assert!(a.account_deletion);
        assert_eq!(a.rate_limits.limit(Api::AccountCheck), Some(5));
        assert_eq!(a.rate_limits.limit(Api::AccountImport), Some(200));
        assert_eq!(a.max_accounts, Some(100));
        let b = &c.apps[1];
        assert_eq!(b.admins, vec!["administrator"]);
        assert_eq!(b.plan, Plan::Trial);
        assert_eq!(b.rate_limits.limit(Api::AccountCheck), None);
        assert!(format!("{:?}", b.key).contains("redacted"));
    }

    #[test]
    fn mistakes_are_reported() {
        let bad = [
            "[[apps]]\nsdkappid = 1\nkey = \"k\"\nplan = \"gold\"",
            "[[apps]]\nsdkappid = 1\nkey = \"k\"\nrate_limits = \"fast\"",
            "[[apps]]\nsdkappid = 1\nkey = \"k\"\nrate_limits = { checks = 1 }",
            "[[apps]]\nsdkappid = 1\nkey = \"k\"\nmistyped = 1",
            "[[apps]]\nsdkappid = 1\nkey = \"k\"\n[[apps]]\nsdkappid = 1\nkey = \"j\"",
            "[[apps]]\nsdkappid = 1\nkey = \" \"",
            "apps = []",
        ];
        for text in bad {
            assert!(Config::parse(text, "t").is_err(), "{text}");
        }
    }
}
