//! drillbook's own configuration (not a runbook's): who the operator is,
//! where the shared drill archive lives, whom to notify. Read from
//! `config.toml` in the platform config directory (`DRILLBOOK_CONFIG` names
//! another file), with environment variables over the file; every value
//! remembers where it came from, for `drillbook config`.
//!
//! Webhook URLs are secrets (whoever has one can post to the channel): a
//! target names the environment variable that holds its URL (`url_env`), so
//! the file can be shared; a URL written in the file is accepted but never
//! printed whole.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env(&'static str),
    Default(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(name) => write!(f, "${name}"),
            Source::Default(why) => write!(f, "default: {why}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// The shared archive: an S3 prefix every operator's drillbook ships to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub bucket: String,
    /// Ends with `/`, or is empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Archive {
    /// `s3://BUCKET/PREFIX/`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub fn parse(url: &str) -> Result<Archive, ConfigError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| ConfigError::Value { key: "archive", message: format!("`{url}` must start with s3://") })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ConfigError::Value { key: "archive", message: format!("`{url}` names no bucket") });
        }
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(Archive { bucket: bucket.to_string(), prefix, endpoint: None, profile: None, region: None })
    }
}

/// How a notification is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    /// A Slack-compatible incoming webhook: `{"text": "..."}`.
    Slack,
    /// A generic JSON webhook: the event as a JSON object.
    Webhook,
}

/// One notification target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub kind: NotifyKind,
    /// The URL, read from `url_env` (or the file); `None` when that variable is unset.
    pub url: Option<String>,
    /// Where the URL comes from, for messages (never the URL itself).
    pub url_from: String,
    /// Notify when a confirmation waits longer than this.
    pub waiting_minutes: u64,
}

impl NotifyTarget {
    /// The URL with its path hidden (`https://hooks.slack.com/…`), for messages.
    pub fn shown(&self) -> String {
        match &self.url {
            Some(url) => masked_url(url),
            None => format!("(unset: {})", self.url_from),
        }
    }
}

/// `https://host/…`: enough to say where, nothing a reader could post with.
pub fn masked_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file read (or that would be read), and whether it exists.
    pub file: PathBuf,
    pub file_exists: bool,
    pub operator: Sourced<String>,
    pub archive: Option<Sourced<Archive>>,
    pub notify: Vec<NotifyTarget>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("`{key}`: {message}")]
    Value { key: &'static str, message: String },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    operator: Option<String>,
    /// `s3://BUCKET/PREFIX/`.
    archive: Option<String>,
    archive_endpoint: Option<String>,
    archive_profile: Option<String>,
    archive_region: Option<String>,
    #[serde(default)]
    notify: Vec<RawNotify>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    kind: NotifyKind,
    /// The environment variable holding the URL (preferred: the URL is a secret).
    url_env: Option<String>,
    url: Option<String>,
    waiting_minutes: Option<u64>,
}

/// Default minutes a confirmation may wait before it is notified.
pub const DEFAULT_WAITING_MINUTES: u64 = 15;

impl Config {
    /// The configuration of this process: the file, then the environment.
    pub fn load() -> Result<Config, ConfigError> {
        Self::load_with(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// With `env` as the environment (tests).
    pub fn load_with(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match env("DRILLBOOK_CONFIG") {
            Some(path) => PathBuf::from(path),
            None => default_path(),
        };
        let (raw, file_exists) = match std::fs::read_to_string(&file) {
            Ok(text) => (parse(&file, &text)?, true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && env("DRILLBOOK_CONFIG").is_none() => {
                (RawConfig::default(), false)
            }
            Err(source) => return Err(ConfigError::Read { path: file, source }),
        };
        let from_file = || Source::File(file.clone());
        let operator = match (env("DRILLBOOK_OPERATOR"), raw.operator.clone()) {
            (Some(name), _) => Sourced { value: name, source: Source::Env("DRILLBOOK_OPERATOR") },
            (None, Some(name)) if !name.trim().is_empty() => Sourced { value: name, source: from_file() },
            _ => Sourced { value: whoami::username(), source: Source::Default("the login name") },
        };
        let archive = match (env("DRILLBOOK_ARCHIVE"), &raw.archive) {
            (Some(url), _) => Some((url, Source::Env("DRILLBOOK_ARCHIVE"))),
            (None, Some(url)) => Some((url.clone(), from_file())),
            (None, None) => None,
        };
        let archive = match archive {
            Some((url, source)) => {
                let mut archive = Archive::parse(&url)?;
                archive.endpoint = env("DRILLBOOK_ARCHIVE_ENDPOINT").or(raw.archive_endpoint.clone());
                archive.profile = raw.archive_profile.clone();
                archive.region = raw.archive_region.clone();
                Some(Sourced { value: archive, source })
            }
            None => None,
        };
        let notify = raw
            .notify
            .iter()
            .map(|target| {
                let (url, url_from) = match (&target.url_env, &target.url) {
                    (Some(name), _) => (env(name), format!("${name}")),
                    (None, Some(url)) => (Some(url.clone()), file.display().to_string()),
                    (None, None) => {
                        return Err(ConfigError::Value {
                            key: "notify",
                            message: "a target needs `url_env` (the variable holding its URL) or `url`".into(),
                        });
                    }
                };
                Ok(NotifyTarget {
                    kind: target.kind,
                    url,
                    url_from,
                    waiting_minutes: target.waiting_minutes.unwrap_or(DEFAULT_WAITING_MINUTES),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config { file, file_exists, operator, archive, notify })
    }

    /// What `drillbook config` prints: every value and where it came from.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "config file: {}{}",
            self.file.display(),
            if self.file_exists { "" } else { " (none: defaults and environment only)" }
        )];
        lines.push(format!("operator = {}    ({})", self.operator.value, self.operator.source));
        match &self.archive {
            Some(archive) => {
                lines.push(format!("archive = {}    ({})", archive.value.url(), archive.source));
                let optional =
                    |name: &str, value: &Option<String>| value.as_ref().map(|v| format!("archive_{name} = {v}"));
                lines.extend(optional("endpoint", &archive.value.endpoint));
                lines.extend(optional("profile", &archive.value.profile));
                lines.extend(optional("region", &archive.value.region));
            }
            None => lines.push("archive: none (drills stay in this machine's DRILLBOOK_HOME)".into()),
        }
        if self.notify.is_empty() {
            lines.push("notify: none".into());
        }
        for target in &self.notify {
            lines.push(format!(
                "notify {:?} → {} (URL from {}), waiting confirmations after {} min",
                target.kind,
                target.shown(),
                target.url_from,
                target.waiting_minutes
            ));
        }
        lines
    }
}

/// The archive drills are shipped to, if one is configured (a configuration
/// that cannot be read was reported when the command started).
pub fn archive() -> Option<Archive> {
    Config::load().ok().and_then(|config| config.archive).map(|archive| archive.value)
}

fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let place = error
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        ConfigError::Parse { path: path.to_path_buf(), message: format!("{place}{}", error.message().trim()) }
    })
}

/// `~/.config/drillbook/config.toml` on Linux (the platform's config directory).
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "drillbook")
        .map(|dirs| dirs.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("drillbook-config.toml"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(file: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, file).unwrap();
        let mut env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.insert("DRILLBOOK_CONFIG".into(), path.display().to_string());
        Config::load_with(&|name| env.get(name).cloned())
    }

    #[test]
    fn the_environment_wins_over_the_file_and_each_value_says_where_it_came_from() {
        let file = r#"
operator = "dana"
archive = "s3://acme-drills/drillbook"
archive_endpoint = "http://127.0.0.1:9000"
[[notify]]
kind = "slack"
url_env = "SLACK_WEBHOOK"
waiting_minutes = 5
"#;
        let config = load(
            file,
            &[
                ("DRILLBOOK_ARCHIVE", "s3://other/fleet/"),
                ("SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/secret"),
            ],
        )
        .unwrap();
        assert_eq!(config.operator.value, "dana");
        assert!(matches!(config.operator.source, Source::File(_)));
        let archive = config.archive.as_ref().unwrap();
        assert_eq!(archive.value.url(), "s3://other/fleet/");
        assert_eq!(archive.source, Source::Env("DRILLBOOK_ARCHIVE"));
        assert_eq!(archive.value.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let described = config.describe().join("\n");
        assert!(described.contains("archive = s3://other/fleet/    ($DRILLBOOK_ARCHIVE)"), "{described}");
        assert!(described.contains("https://hooks.slack.com/…"), "{described}");
        assert!(!described.contains("secret"), "the webhook URL is never printed whole: {described}");
        assert_eq!(config.notify[0].waiting_minutes, 5);
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let error = load("operator = \"x\"\narchiv = \"s3://b/\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("line 2: unknown field `archiv`"), "{error}");
        let error = load("archive = \"https://b/\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("must start with s3://"), "{error}");
        let error = load("[[notify]]\nkind = \"slack\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("needs `url_env`"), "{error}");
    }

    #[test]
    fn archive_urls_normalise_their_prefix() {
        assert_eq!(Archive::parse("s3://b").unwrap().prefix, "");
        assert_eq!(Archive::parse("s3://b/x/y").unwrap().prefix, "x/y/");
        assert_eq!(Archive::parse("s3://b/x/").unwrap().url(), "s3://b/x/");
        assert!(Archive::parse("s3:///x").is_err());
    }
}
