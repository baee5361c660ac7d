//! One validated [`Settings`] value, built before any network or disk IO
//! from the command line, the environment, the config file and defaults
//! (in that order of precedence). Commands take `&Settings`, never the raw
//! command-line structs.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::api::ApiConfig;
use crate::location::{ArchiveLocation, S3Url};

pub const DEFAULT_BASE_URL: &str = "https://api.ofauth.com";
pub const DEFAULT_JOBS: usize = 8;
/// Connections mirrored at once when a run mirrors several.
pub const DEFAULT_CONNECTIONS_AT_ONCE: usize = 2;
pub const DEFAULT_QUALITY: &[&str] = &["full", "thumb"];

/// How the run shows itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

/// The default of `--max-delete`: a prune that would delete more files
/// than this deletes none (the guard against a list emptied by mistake).
pub const DEFAULT_MAX_DELETE: usize = 50;

/// Which variant labels to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quality {
    /// Every label Vault+ has (`--quality all`).
    All,
    Labels(Vec<String>),
}

impl Quality {
    pub fn wants(&self, label: &str) -> bool {
        match self {
            Quality::All => true,
            Quality::Labels(labels) => labels.iter().any(|wanted| wanted == label),
        }
    }

    /// The asked labels that none of the `seen` labels matches, as a
    /// sentence naming the labels that were seen (`None` when every asked
    /// label was seen, with `all`, or when nothing was seen at all: an
    /// empty vault is not a typo).
    pub fn unmatched(&self, seen: &std::collections::BTreeSet<String>) -> Option<String> {
        let Quality::Labels(asked) = self else {
            return None;
        };
        let missing: Vec<String> = asked
            .iter()
            .filter(|label| !seen.contains(*label))
            .map(|label| format!("`{label}`"))
            .collect();
        if missing.is_empty() || seen.is_empty() {
            return None;
        }
        let (noun, verb) = if missing.len() == 1 {
            ("label", "carries")
        } else {
            ("labels", "carries any of")
        };
        let seen: Vec<String> = seen.iter().map(|label| format!("`{label}`")).collect();
        Some(format!(
            "--quality: no media {verb} the {noun} {}; the labels seen are {} (labels are case-sensitive; `--quality all` takes every one)",
            missing.join(", "),
            seen.join(", ")
        ))
    }

    /// Parses `full,thumb` or `all`.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let labels: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_owned)
            .collect();
        if labels.is_empty() {
            return Err(SettingsError::Invalid {
                name: "quality",
                reason: "give at least one variant label, e.g. `full,thumb`, or `all`".into(),
            });
        }
        if labels.iter().any(|label| label == "all" || label == "*") {
            return Ok(Quality::All);
        }
        Ok(Quality::Labels(labels))
    }
}

/// Options of the `mirror` pipeline.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// Lists to mirror; empty means every list of the connection.
    pub lists: Vec<String>,
    pub quality: Quality,
    pub jobs: usize,
    pub sync: bool,
    /// Poll for pending variants until they are stored, up to this long.
    pub wait_pending: Option<Duration>,
    /// Overall download bandwidth cap, bytes per second.
    pub limit_rate: Option<u64>,
    /// Print the plan and change nothing (no sync, no database writes, no
    /// files; with `prune`, list what would be deleted).
    pub dry_run: bool,
    /// Delete local copies of media gone from every mirrored list.
    pub prune: bool,
    /// The prune refuses to delete more files than this.
    pub max_delete: usize,
    /// Write the archive index (manifest, SHA256SUMS, gallery) at the end.
    pub export: bool,
    /// Refuse variants that would leave less than this many bytes free on
    /// the archive's disk (after everything planned before them).
    pub min_free: Option<u64>,
    /// Test suites: the free bytes to assume instead of asking the disk.
    pub assume_free: Option<u64>,
    /// With several connections: how many are mirrored at once.
    pub connections_at_once: usize,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        Self {
            lists: Vec::new(),
            quality: Quality::Labels(DEFAULT_QUALITY.iter().map(|l| (*l).to_owned()).collect()),
            jobs: DEFAULT_JOBS,
            sync: true,
            wait_pending: None,
            limit_rate: None,
            dry_run: false,
            prune: false,
            max_delete: DEFAULT_MAX_DELETE,
            export: false,
            min_free: None,
            assume_free: None,
            connections_at_once: DEFAULT_CONNECTIONS_AT_ONCE,
        }
    }
}

/// Network behaviour: timeouts and retry budgets.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Attempts per API call.
    pub api_attempts: usize,
    /// Attempts per variant (send + stream + verify is one attempt).
    pub transfer_attempts: usize,
    /// First retry delay (doubles, with jitter, up to `max_retry_delay`).
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Whole-request timeout for API calls.
    pub api_timeout: Duration,
    /// A transfer that receives no byte for this long is abandoned and retried.
    pub stall_timeout: Duration,
    /// A URL is re-signed when less than this remains before `expiresAt`
    /// (on top of the time the transfer is expected to take).
    pub expiry_margin: Duration,
    /// API token bucket: calls per minute, and burst.
    pub api_rate_per_minute: u32,
    pub api_burst: u32,
    /// First pause between polls for pending variants (doubles, up to a minute).
    pub poll_interval: Duration,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            api_attempts: 5,
            transfer_attempts: 5,
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            api_timeout: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(30),
            expiry_margin: Duration::from_secs(20),
            api_rate_per_minute: 60,
            api_burst: 90,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// Everything a command needs to know, merged once from flags, the
/// environment, the config file and defaults (in that order of weight)
/// and validated before any network or disk IO; commands take
/// `&Settings`, never the raw command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the archive is (`--out`): a folder on a local disk, or a
    /// bucket and prefix on S3-compatible object storage.
    pub archive: ArchiveLocation,
    /// The archive's local folder: its lock (and on object storage the
    /// uploads in flight). On a disk the archive's own folder; on object
    /// storage a folder of its own under the state directory (see
    /// [`bucket_state_folder`]). Set by [`Settings::locate`].
    pub local: PathBuf,
    /// State database.
    pub db: PathBuf,
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    pub connection_id: Option<String>,
    pub output: Output,
    /// Where a copy of the log goes (appended), besides stderr.
    pub log_file: Option<PathBuf>,
    pub mirror: MirrorSettings,
    pub network: NetworkSettings,
    /// What an unattended run leaves for those watching it.
    pub watch: WatchSettings,
}

/// What an unattended run leaves for those watching it (docs/scheduling.md
/// and docs/reference.md): metrics, pings, events.
#[derive(Debug, Clone, Default)]
pub struct WatchSettings {
    /// The Prometheus textfile written at the end of every run.
    pub metrics_file: Option<PathBuf>,
    /// healthchecks.io-style ping URL, or a template (a secret: the URL
    /// alone lets anyone ping the check).
    pub ping_url: Option<SecretString>,
    /// End pings go to `URL/<exit code>` instead of `URL` or `URL/fail`.
    pub ping_exit_code: bool,
    /// NDJSON events: a file (appended), or `-` for stdout.
    pub events: Option<PathBuf>,
}

impl WatchSettings {
    /// Whether events go to stdout (`--events -`).
    pub fn events_on_stdout(&self) -> bool {
        self.events.as_deref() == Some(std::path::Path::new("-"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "no API key: put it in a file readable only by you and pass `--api-key-file` (or set OFAUTH_API_KEY_FILE, or `api_key_file` in the config file), or set OFAUTH_API_KEY; `--api-key` works too, but a key on the command line shows in `ps`"
    )]
    MissingApiKey,
    #[error("no connection id: pass `--connection` or set OFAUTH_CONNECTION_ID")]
    MissingConnection,
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why the config file could not be used (its path and line named).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}, line {line}: {reason}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("config file {}, line {line}, `{key}`: {reason}", path.display())]
    Key {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
}

impl Settings {
    /// Settings for an archive at `out` with every other value at its default.
    pub fn new(out: PathBuf) -> Self {
        let db = default_db(&out);
        Self {
            archive: ArchiveLocation::Disk(out.clone()),
            local: out,
            db,
            base_url: Url::parse(DEFAULT_BASE_URL).expect("the default base URL parses"),
            api_key: None,
            connection_id: None,
            output: Output::default(),
            log_file: None,
            mirror: MirrorSettings::default(),
            network: NetworkSettings::default(),
            watch: WatchSettings::default(),
        }
    }

    /// What the API client needs; fails when the key or connection is missing.
    pub fn api_config(&self) -> Result<ApiConfig, SettingsError> {
        let connection_id = self
            .connection_id
            .clone()
            .ok_or(SettingsError::MissingConnection)?;
        self.client_config(connection_id)
    }

    /// What the account's API client needs (`GET /v2/account/connections`
    /// takes the key alone); fails when the key is missing.
    pub fn account_api_config(&self) -> Result<ApiConfig, SettingsError> {
        self.client_config(String::new())
    }

    fn client_config(&self, connection_id: String) -> Result<ApiConfig, SettingsError> {
        Ok(ApiConfig {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone().ok_or(SettingsError::MissingApiKey)?,
            connection_id,
            attempts: self.network.api_attempts,
            base_delay: self.network.retry_delay,
            max_delay: self.network.max_retry_delay,
            timeout: self.network.api_timeout,
            rate_per_minute: self.network.api_rate_per_minute,
            burst: self.network.api_burst,
        })
    }

    /// These settings for connection `id` of an archive of many
    /// connections: its own complete archive at [`connection_out`], with
    /// its database and lock inside; on object storage, the prefix
    /// `<prefix>/<safe id>/` with its own local state folder.
    pub fn for_connection(&self, id: &str) -> Result<Settings, SettingsError> {
        let Some(url) = self.archive.bucket() else {
            return Ok(self.for_connection_at(id, connection_out(&self.local, id)));
        };
        let connection_id = Some(id.to_owned());
        let bucket =
            url.join(&crate::names::safe_name(id))
                .map_err(|reason| SettingsError::Invalid {
                    name: "connection id",
                    reason,
                })?;
        let local = bucket_state_folder(&bucket)?.join("work");
        Ok(Settings {
            db: local.with_file_name("state.sqlite"),
            local,
            archive: ArchiveLocation::Bucket(bucket),
            connection_id,
            ..self.clone()
        })
    }
}

impl Settings {
    /// These settings for connection `id` whose archive is the folder
    /// `out` (on a local disk), its database inside.
    pub fn for_connection_at(&self, id: &str, out: PathBuf) -> Settings {
        Settings {
            db: default_db(&out),
            archive: ArchiveLocation::Disk(out.clone()),
            local: out,
            connection_id: Some(id.to_owned()),
            ..self.clone()
        }
    }
}

/// Where connection `id`'s archive lives under `out` when one run mirrors
/// many connections: `<out>/<safe id>`, the id passed through the same
/// injective safe-name rules as media ids ([`crate::names::safe_name`]).
/// The one place that says so.
pub fn connection_out(out: &std::path::Path, id: &str) -> PathBuf {
    out.join(crate::names::safe_name(id))
}

impl Settings {
    /// Sets [`Settings::local`] for where [`Settings::archive`] is.
    /// Returns whether the archive is on object storage.
    pub fn locate(&mut self) -> Result<bool, SettingsError> {
        match &self.archive {
            ArchiveLocation::Disk(path) => {
                self.local = path.clone();
                Ok(false)
            }
            ArchiveLocation::Bucket(url) => {
                self.local = bucket_state_folder(url)?.join("work");
                Ok(true)
            }
        }
    }
}

/// The local folder of an archive on object storage: its state database,
/// lock and uploads in flight, under `$XDG_STATE_HOME/vault-mirror/`
/// (default `~/.local/state/vault-mirror/`), one folder per archive URL.
pub fn bucket_state_folder(url: &S3Url) -> Result<PathBuf, SettingsError> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
        })
        .ok_or_else(|| SettingsError::Invalid {
            name: "state directory",
            reason: "neither XDG_STATE_HOME nor HOME is set: give `--db`".into(),
        })?;
    Ok(base.join("vault-mirror").join(url.state_key()))
}

/// `<out>/.vault-mirror/state.sqlite`.
pub fn default_db(out: &std::path::Path) -> PathBuf {
    out.join(".vault-mirror").join("state.sqlite")
}

/// Parses a bandwidth such as `20M`, `512K`, `1.5M/s` or `100000` into
/// bytes per second (K, M, G are binary multiples, as in rclone).
#[expect(
    clippy::cast_sign_loss,
    reason = "checked to lie between 1K and 4G first"
)]
pub fn parse_rate(text: &str) -> Result<u64, SettingsError> {
    let invalid = || SettingsError::Invalid {
        name: "rate",
        reason: format!(
            "{text:?}: use a number of bytes per second, e.g. `20M`, `512K` or `100000`"
        ),
    };
    let rate = bytes_amount(text.trim().trim_end_matches("/s")).ok_or_else(invalid)?;
    if !rate.is_finite() || rate < 1024.0 || rate > u32::MAX as f64 {
        return Err(SettingsError::Invalid {
            name: "rate",
            reason: format!("{text:?}: give between 1K and 4G per second"),
        });
    }
    Ok(rate as u64)
}

/// Parses a duration: `90s`, `10m`, `1h 30m`, or a bare number of seconds
/// (`45`), the way the config file takes them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(trimmed).map_err(|_| {
        format!(
            "{text:?} is not a duration: write e.g. `90s`, `10m`, `1h 30m`, or a number of seconds"
        )
    })
}

/// Parses a size such as `5G`, `500M`, `512K` or a number of bytes (K, M,
/// G are binary multiples, as for rates).
#[expect(
    clippy::cast_sign_loss,
    reason = "never negative, checked against u64::MAX first"
)]
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("{text:?} is not a size: write e.g. `5G`, `500M`, `512K`, or a number of bytes");
    let size = bytes_amount(text).ok_or_else(invalid)?;
    if size > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(size as u64)
}

/// `512K`, `1.5M`, `5GiB`, `100000`: a number of bytes with an optional
/// binary multiple (K, M, G, T) and `B`; `None` for anything else or a
/// negative amount.
fn bytes_amount(text: &str) -> Option<f64> {
    let trimmed = text.trim().trim_end_matches(['B', 'b']);
    let (number, unit) = match trimmed
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic())
    {
        Some((index, _)) => trimmed.split_at(index),
        None => (trimmed, ""),
    };
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" | "ki" => 1024.0,
        "m" | "mi" => 1024.0 * 1024.0,
        "g" | "gi" => 1024.0 * 1024.0 * 1024.0,
        "t" | "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let amount = number.trim().parse::<f64>().ok()? * multiplier;
    (amount.is_finite() && amount >= 0.0).then_some(amount)
}

/// Parses an API base URL; only http and https are accepted.
pub fn parse_base_url(text: &str) -> Result<Url, SettingsError> {
    let invalid = |reason: String| SettingsError::Invalid {
        name: "base URL",
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|error| invalid(format!("{text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(format!("{text:?}: use an http:// or https:// URL")));
    }
    if url.query().is_some() {
        return Err(invalid(format!("{text:?}: a base URL has no query string")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_say_what_they_take() {
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        let error = parse_duration("soon").unwrap_err();
        assert!(
            error.contains("`90s`") && error.contains("number of seconds"),
            "{error}"
        );
        assert_eq!(parse_size("5G"), Ok(5 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("0"), Ok(0));
        let error = parse_size("lots").unwrap_err();
        assert!(
            error.contains("`5G`") && !error.contains("per second"),
            "{error}"
        );
        assert!(parse_size("-1G").is_err());
    }

    #[test]
    fn quality_parsing() {
        assert_eq!(
            Quality::parse("full, thumb").unwrap(),
            Quality::Labels(vec!["full".into(), "thumb".into()])
        );
        assert_eq!(Quality::parse("all").unwrap(), Quality::All);
        assert!(Quality::parse(" , ").is_err());
        assert!(Quality::All.wants("square-preview"));
        let seen: std::collections::BTreeSet<String> =
            ["full".to_owned(), "thumb".to_owned()].into();
        let typo = Quality::parse("fulll,thumb")
            .unwrap()
            .unmatched(&seen)
            .unwrap();
        assert!(
            typo.contains("label `fulll`") && typo.contains("`full`, `thumb`"),
            "{typo}"
        );
        assert!(Quality::parse("FULL").unwrap().unmatched(&seen).is_some());
        assert_eq!(Quality::parse("full,thumb").unwrap().unmatched(&seen), None);
        assert_eq!(Quality::All.unmatched(&seen), None);
        assert_eq!(
            Quality::parse("fulll")
                .unwrap()
                .unmatched(&Default::default()),
            None
        );
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("20M").unwrap(), 20 * 1024 * 1024);
        assert_eq!(parse_rate("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_rate("1.5MiB/s").unwrap(), 1_572_864);
        assert_eq!(parse_rate("100000").unwrap(), 100_000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("-5M").is_err());
        assert!(parse_rate("9T").is_err());
    }

    #[test]
    fn each_connection_is_an_archive_of_its_own_beneath_out() {
        let mut base = Settings::new(PathBuf::from("/srv/agency"));
        base.connection_id = Some("conn_base".into());
        base.mirror.jobs = 3;
        for id in ["conn_01", "../escape", "Conn/B", "", "."] {
            let settings = base.for_connection(id).unwrap();
            let folder = settings.local.strip_prefix("/srv/agency").unwrap();
            assert_eq!(folder.components().count(), 1, "{id:?}: {folder:?}");
            assert!(
                matches!(
                    folder.components().next(),
                    Some(std::path::Component::Normal(_))
                ),
                "{id:?}"
            );
            assert_eq!(settings.db, default_db(&settings.local));
            assert_eq!(settings.connection_id.as_deref(), Some(id));
            assert_eq!(settings.mirror.jobs, 3);
        }
        assert_ne!(
            base.for_connection("Conn").unwrap().local,
            base.for_connection("conn").unwrap().local
        );
    }

    #[test]
    fn base_urls() {
        assert!(parse_base_url("https://api.ofauth.com").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080/").is_ok());
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("not a url").is_err());
    }
}
