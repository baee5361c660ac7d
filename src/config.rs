//! The config file: TOML, one key per option of [`Settings`], applied over
//! the defaults and under the environment and flags (flag > environment >
//! file > default; the binary applies the upper two layers).
//!
//! Invariants:
//! - Every option is one line of [`OPTIONS`]: its dotted key and how its
//!   value sets `Settings`. Parsing, unknown-key errors and docs/reference.md's
//!   list of keys all follow that table.
//! - Every error names the file, the line and the key; none quotes a value
//!   (a misplaced secret must not reach a terminal or a log).
//! - Relative paths in the file are relative to the file's folder, so a
//!   cron job finds the same files whatever its working directory.
//! - The API key itself is never a key of the file: it comes from the file
//!   `api_key_file` names, so it is neither on a command line nor in a
//!   file that is shared or committed with the rest of the settings.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use toml::de::{DeTable, DeValue};

use crate::location::ArchiveLocation;
use crate::settings::ConfigError;
use crate::settings::{Quality, Settings, parse_base_url};

/// `<out>/vault-mirror.toml`: read when no `--config` is given.
pub const FILE_NAME: &str = "vault-mirror.toml";

/// The sections of the file, besides the top level.
const SECTIONS: &[&str] = &["mirror", "network"];

/// The array of tables naming connections (`[[connections]]`).
const CONNECTIONS: &str = "connections";

/// What a `[[connections]]` table may set besides its `id`: the options
/// of one archive, as `[mirror]` names them. The transfer limits (`jobs`,
/// `limit_rate`) are one for the whole process, so they stay in `[mirror]`.
const PER_CONNECTION: &[&str] = &[
    "lists",
    "quality",
    "sync",
    "prune",
    "max_delete",
    "export",
    "wait_pending",
];

type Apply = fn(&mut Settings, &Value<'_>) -> Result<(), String>;

/// One option of the file.
pub struct ConfigOption {
    /// `name` at the top level, `section.name` in a `[section]`.
    pub key: &'static str,
    apply: Apply,
}

const fn option(key: &'static str, apply: Apply) -> ConfigOption {
    ConfigOption { key, apply }
}

/// Every option, in the order they are applied (`out` before `db`, so a
/// database path may follow the archive). A new option is one line here.
pub const OPTIONS: &[ConfigOption] = &[
    option("out", |s, v| {
        // An archive on object storage is a URL, not a path beside the file.
        match v.string()? {
            text if text.starts_with("s3://") => {
                s.archive = ArchiveLocation::parse_arg(&text)?;
                Ok(())
            }
            _ => v.path().map(|path| s.archive = ArchiveLocation::Disk(path)),
        }
    }),
    option("db", |s, v| v.path().map(|path| s.db = path)),
    option("base_url", |s, v| {
        let text = v.string()?;
        parse_base_url(&text)
            .map(|url| s.base_url = url)
            .map_err(|error| error.to_string())
    }),
    option("connection", |s, v| {
        v.string().map(|id| s.connection_id = Some(id))
    }),
    option("api_key_file", |s, v| {
        read_key_file(&v.path()?).map(|key| s.api_key = Some(key))
    }),
    option("log_file", |s, v| {
        v.path().map(|path| s.log_file = Some(path))
    }),
    option("metrics_file", |s, v| {
        v.path().map(|path| s.watch.metrics_file = Some(path))
    }),
    option("ping_url", |s, v| {
        let url = v.string()?;
        crate::report::ping::check_url(&url)?;
        s.watch.ping_url = Some(SecretString::from(url));
        Ok(())
    }),
    option("ping_exit_code", |s, v| {
        v.boolean().map(|codes| s.watch.ping_exit_code = codes)
    }),
    option("events", |s, v| {
        let path = match v.string()?.as_str() {
            "-" => PathBuf::from("-"),
            _ => v.path()?,
        };
        s.watch.events = Some(path);
        Ok(())
    }),
    option("json", |s, v| v.boolean().map(|json| s.output.json = json)),
    option("quiet", |s, v| {
        v.boolean().map(|quiet| s.output.quiet = quiet)
    }),
    option("verbose", |s, v| {
        v.integer_as(0..=3).map(|level| s.output.verbose = level)
    }),
    option("mirror.lists", |s, v| {
        v.strings().map(|lists| s.mirror.lists = lists)
    }),
    option("mirror.quality", |s, v| {
        let labels = v.strings()?.join(",");
        Quality::parse(&labels)
            .map(|quality| s.mirror.quality = quality)
            .map_err(|error| error.to_string())
    }),
    option("mirror.jobs", |s, v| {
        v.integer_as(1..=256).map(|jobs| s.mirror.jobs = jobs)
    }),
    option("mirror.sync", |s, v| {
        v.boolean().map(|sync| s.mirror.sync = sync)
    }),
    option("mirror.dry_run", |s, v| {
        v.boolean().map(|dry_run| s.mirror.dry_run = dry_run)
    }),
    option("mirror.prune", |s, v| {
        v.boolean().map(|prune| s.mirror.prune = prune)
    }),
    option("mirror.max_delete", |s, v| {
        v.integer(0..=i64::MAX)
            .map(|n| s.mirror.max_delete = usize::try_from(n).unwrap_or(usize::MAX))
    }),
    option("mirror.export", |s, v| {
        v.boolean().map(|export| s.mirror.export = export)
    }),
    option("mirror.wait_pending", |s, v| {
        v.duration()
            .map(|d| s.mirror.wait_pending = Some(d).filter(|d| !d.is_zero()))
    }),
    option("mirror.limit_rate", |s, v| {
        v.rate().map(|rate| s.mirror.limit_rate = rate)
    }),
    option("mirror.connections_at_once", |s, v| {
        v.integer_as(1..=256)
            .map(|n| s.mirror.connections_at_once = n)
    }),
    option("network.api_attempts", |s, v| {
        v.integer_as(1..=100).map(|n| s.network.api_attempts = n)
    }),
    option("network.transfer_attempts", |s, v| {
        v.integer_as(1..=100)
            .map(|n| s.network.transfer_attempts = n)
    }),
    option("network.retry_delay", |s, v| {
        v.duration().map(|d| s.network.retry_delay = d)
    }),
    option("network.max_retry_delay", |s, v| {
        v.duration().map(|d| s.network.max_retry_delay = d)
    }),
    option("network.api_timeout", |s, v| {
        v.positive_duration().map(|d| s.network.api_timeout = d)
    }),
    option("network.stall_timeout", |s, v| {
        v.positive_duration().map(|d| s.network.stall_timeout = d)
    }),
    option("network.expiry_margin", |s, v| {
        v.duration().map(|d| s.network.expiry_margin = d)
    }),
    option("network.api_rate_per_minute", |s, v| {
        v.integer_as(1..=100_000)
            .map(|n| s.network.api_rate_per_minute = n)
    }),
    option("network.api_burst", |s, v| {
        v.integer_as(1..=100_000).map(|n| s.network.api_burst = n)
    }),
    option("network.poll_interval", |s, v| {
        v.positive_duration().map(|d| s.network.poll_interval = d)
    }),
];

/// Where the file came from, which decides what it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--config` or `VAULT_MIRROR_CONFIG`.
    Given,
    /// `<out>/vault-mirror.toml`: it cannot move the archive it lives in.
    InArchive,
}

/// A parsed, not yet applied, config file.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    folder: PathBuf,
    entries: Vec<Setting>,
    /// The `[[connections]]` tables, in the file's order.
    connections: Vec<ConnectionTable>,
}

/// One `[[connections]]` table: a connection to mirror, and what its
/// archive does differently (keys of `[mirror]`, see [`PER_CONNECTION`]).
#[derive(Debug)]
struct ConnectionTable {
    id: String,
    /// Stored under their `mirror.` keys.
    entries: Vec<Setting>,
}

#[derive(Debug)]
struct Setting {
    key: String,
    line: usize,
    value: Raw,
}

impl ConfigFile {
    /// Reads and parses `path`, checking that every key is known.
    pub fn load(path: &Path, origin: Origin) -> Result<ConfigFile, ConfigError> {
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
            _ => PathBuf::from("."),
        };
        ConfigFile::parse(path, folder, &text, origin)
    }

    /// Parses `text` as the file at `path`; relative paths in it are taken
    /// from `folder`.
    pub fn parse(
        path: &Path,
        folder: PathBuf,
        text: &str,
        origin: Origin,
    ) -> Result<ConfigFile, ConfigError> {
        let table = DeTable::parse(text).map_err(|error| ConfigError::Syntax {
            path: path.to_owned(),
            line: line_of(text, error.span().map_or(0, |span| span.start)),
            // The message only: toml's own rendering quotes the line, which
            // could hold a secret pasted in the wrong place.
            reason: error.message().trim().to_owned(),
        })?;
        let mut file = ConfigFile {
            path: path.to_owned(),
            folder,
            entries: Vec::new(),
            connections: Vec::new(),
        };
        for (name, value) in table.get_ref() {
            let line = line_of(text, name.span().start);
            match value.get_ref() {
                DeValue::Array(tables) if name.get_ref() == CONNECTIONS => {
                    for table in tables {
                        file.add_connection(text, line, table)?;
                    }
                }
                DeValue::Table(section) if SECTIONS.contains(&name.get_ref().as_ref()) => {
                    for (inner, value) in section {
                        let key = format!("{}.{}", name.get_ref(), inner.get_ref());
                        let line = line_of(text, inner.span().start);
                        file.add(key, line, value.get_ref())?;
                    }
                }
                DeValue::Table(_) => {
                    let sections = SECTIONS
                        .iter()
                        .map(|section| format!("[{section}]"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(ConfigError::Key {
                        path: path.to_owned(),
                        line,
                        key: name.get_ref().to_string(),
                        reason: format!("unknown section; the sections are {sections}"),
                    });
                }
                value => file.add(name.get_ref().to_string(), line, value)?,
            }
        }
        if origin == Origin::InArchive
            && let Some(entry) = file.entry("out")
        {
            return Err(file.error(
                entry,
                "the archive's own config file cannot move the archive; give `--out`, or use `--config` with a file outside it".into(),
            ));
        }
        Ok(file)
    }

    /// One `[[connections]]` table (`line`: where the array began).
    fn add_connection(
        &mut self,
        text: &str,
        line: usize,
        table: &toml::Spanned<DeValue<'_>>,
    ) -> Result<(), ConfigError> {
        let line = line_of(text, table.span().start).max(line);
        let refuse = |key: &str, line: usize, reason: String| ConfigError::Key {
            path: self.path.clone(),
            line,
            key: key.to_owned(),
            reason,
        };
        let DeValue::Table(table) = table.get_ref() else {
            let reason = "write each connection as a `[[connections]]` table with an `id`".into();
            return Err(refuse(CONNECTIONS, line, reason));
        };
        let mut connection = ConnectionTable {
            id: String::new(),
            entries: Vec::new(),
        };
        for (name, value) in table {
            let key = name.get_ref().to_string();
            let line = line_of(text, name.span().start);
            let raw = Raw::from_toml(value.get_ref());
            if key == "id" {
                let value = Value {
                    value: &raw,
                    folder: &self.folder,
                };
                connection.id = value
                    .string()
                    .map_err(|reason| refuse("connections.id", line, reason))?;
            } else if PER_CONNECTION.contains(&key.as_str()) {
                connection.entries.push(Setting {
                    key: format!("mirror.{key}"),
                    line,
                    value: raw,
                });
            } else {
                let reason = format!(
                    "unknown key in a `[[connections]]` table; it takes `id` and {}",
                    PER_CONNECTION.join(", ")
                );
                return Err(refuse(&format!("connections.{key}"), line, reason));
            }
        }
        if connection.id.is_empty() {
            let reason = "every `[[connections]]` table needs an `id`".into();
            return Err(refuse(CONNECTIONS, line, reason));
        }
        if self
            .connections
            .iter()
            .any(|known| known.id == connection.id)
        {
            let reason = "this connection is named twice".into();
            return Err(refuse("connections.id", line, reason));
        }
        self.connections.push(connection);
        Ok(())
    }

    fn add(&mut self, key: String, line: usize, value: &DeValue<'_>) -> Result<(), ConfigError> {
        let entry = Setting {
            key,
            line,
            value: Raw::from_toml(value),
        };
        if !OPTIONS.iter().any(|option| option.key == entry.key) {
            let reason = unknown_key_reason(&entry.key);
            return Err(self.error(&entry, reason));
        }
        self.entries.push(entry);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file sets `key` (e.g. `db`).
    pub fn sets(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    fn entry(&self, key: &str) -> Option<&Setting> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    /// The connections the file's `[[connections]]` tables name, in order.
    pub fn connections(&self) -> Vec<String> {
        self.connections
            .iter()
            .map(|connection| connection.id.clone())
            .collect()
    }

    /// Sets every option the file holds.
    pub fn apply(&self, settings: &mut Settings) -> Result<(), ConfigError> {
        self.apply_entries(&self.entries, settings)
    }

    /// Sets what connection `id`'s `[[connections]]` table holds (over
    /// what [`ConfigFile::apply`] set); nothing when it has no table.
    pub fn apply_connection(&self, id: &str, settings: &mut Settings) -> Result<(), ConfigError> {
        match self
            .connections
            .iter()
            .find(|connection| connection.id == id)
        {
            Some(connection) => self.apply_entries(&connection.entries, settings),
            None => Ok(()),
        }
    }

    fn apply_entries(
        &self,
        entries: &[Setting],
        settings: &mut Settings,
    ) -> Result<(), ConfigError> {
        for option in OPTIONS {
            let Some(entry) = entries.iter().find(|entry| entry.key == option.key) else {
                continue;
            };
            let value = Value {
                value: &entry.value,
                folder: &self.folder,
            };
            (option.apply)(settings, &value).map_err(|reason| self.error(entry, reason))?;
        }
        Ok(())
    }

    fn error(&self, entry: &Setting, reason: String) -> ConfigError {
        ConfigError::Key {
            path: self.path.clone(),
            line: entry.line,
            key: entry.key.clone(),
            reason,
        }
    }
}

fn unknown_key_reason(key: &str) -> String {
    if matches!(key, "api_key" | "apiKey" | "key") {
        return "unknown key: the file never holds the API key itself; put the key in a file of its own (mode 0600) and name it with `api_key_file`".into();
    }
    let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
    if let Some(home) = OPTIONS
        .iter()
        .find(|option| option.key.rsplit('.').next() == Some(name) && option.key != key)
    {
        return match home.key.split_once('.') {
            Some((section, _)) => {
                format!("unknown key here: `{name}` belongs in the `[{section}]` section")
            }
            None => format!(
                "unknown key here: `{name}` belongs at the top of the file, before any section"
            ),
        };
    }
    let known: Vec<&str> = OPTIONS
        .iter()
        .filter_map(|option| match option.key.rsplit_once('.') {
            Some((option_section, name)) => (option_section == section).then_some(name),
            None => section.is_empty().then_some(option.key),
        })
        .collect();
    format!("unknown key; known keys here: {}", known.join(", "))
}

/// A value of the file, read as the type its option wants.
pub struct Value<'a> {
    value: &'a Raw,
    folder: &'a Path,
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self.value {
            Raw::String(_) => "a string",
            Raw::Integer { .. } => "an integer",
            Raw::Float => "a number with a fraction",
            Raw::Boolean(_) => "a boolean",
            Raw::Datetime => "a date",
            Raw::Array(_) => "an array",
            Raw::Table => "a table",
        }
    }

    fn wrong(&self, wanted: &str) -> String {
        format!("expected {wanted}, found {}", self.kind())
    }

    /// A non-empty string, trimmed.
    pub fn string(&self) -> Result<String, String> {
        match self.value {
            Raw::String(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
            Raw::String(_) => Err("expected a value, found an empty string".into()),
            _ => Err(self.wrong("a string")),
        }
    }

    /// A path; relative ones are taken from the file's folder, and a
    /// leading `~/` is the home folder.
    pub fn path(&self) -> Result<PathBuf, String> {
        let text = self.string()?;
        if let Some(rest) = text.strip_prefix("~/") {
            let home = std::env::var_os("HOME")
                .ok_or("`~` is used, but HOME is not set; write the full path")?;
            return Ok(PathBuf::from(home).join(rest));
        }
        Ok(self.folder.join(text))
    }

    pub fn boolean(&self) -> Result<bool, String> {
        match self.value {
            Raw::Boolean(value) => Ok(*value),
            _ => Err(self.wrong("true or false")),
        }
    }

    pub fn integer(&self, range: RangeInclusive<i64>) -> Result<i64, String> {
        let Raw::Integer { digits, radix } = self.value else {
            return Err(self.wrong("an integer"));
        };
        let number = i64::from_str_radix(digits, *radix)
            .map_err(|_| "the number is too large".to_owned())?;
        if !range.contains(&number) {
            return Err(format!(
                "{number} is out of range ({}–{})",
                range.start(),
                range.end()
            ));
        }
        Ok(number)
    }

    /// [`Self::integer`] as the type the setting holds (the range keeps
    /// it representable).
    pub fn integer_as<T: TryFrom<i64>>(&self, range: RangeInclusive<i64>) -> Result<T, String> {
        let number = self.integer(range)?;
        T::try_from(number).map_err(|_| format!("{number} is out of range"))
    }

    /// `"90s"`, `"10m"`, `"1h 30m"`, `"500ms"`, or an integer of seconds.
    pub fn duration(&self) -> Result<Duration, String> {
        match self.value {
            Raw::Integer { .. } => Ok(Duration::from_secs(self.integer_as(0..=i64::MAX)?)),
            Raw::String(_) => crate::settings::parse_duration(&self.string()?),
            _ => Err(self.wrong("a duration such as \"90s\" or \"10m\"")),
        }
    }

    /// Bytes per second: `"20M"`, `"512K"`, an integer of bytes, or
    /// `"off"` for no cap.
    pub fn rate(&self) -> Result<Option<u64>, String> {
        let text = match self.value {
            Raw::Integer { .. } => self.integer(1..=i64::MAX)?.to_string(),
            Raw::String(_) => self.string()?,
            _ => return Err(self.wrong("a rate such as \"20M\", or \"off\"")),
        };
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        crate::settings::parse_rate(&text)
            .map(Some)
            .map_err(|error| error.to_string())
    }

    pub fn positive_duration(&self) -> Result<Duration, String> {
        match self.duration()? {
            Duration::ZERO => Err("must be longer than zero".into()),
            duration => Ok(duration),
        }
    }

    /// An array of strings (or integers, since list ids are numbers), or
    /// one comma-separated string.
    pub fn strings(&self) -> Result<Vec<String>, String> {
        let items: Vec<String> = match self.value {
            Raw::String(text) => text.split(',').map(|item| item.trim().to_owned()).collect(),
            Raw::Array(array) => array
                .iter()
                .map(|item| match item {
                    Raw::String(text) => Ok(text.trim().to_owned()),
                    Raw::Integer { digits, radix: 10 } => Ok(digits.clone()),
                    _ => Err("expected an array of strings".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.wrong("an array of strings")),
        };
        Ok(items.into_iter().filter(|item| !item.is_empty()).collect())
    }
}

/// Reads an API key from its own file: the first and only line, trimmed.
pub fn read_key_file(path: &Path) -> Result<SecretString, String> {
    let text = fs_err::read_to_string(path).map_err(|error| error.to_string())?;
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let key = lines
        .next()
        .ok_or_else(|| format!("the key file {} is empty", path.display()))?;
    if lines.next().is_some() {
        return Err(format!(
            "the key file {} holds more than one line; it must hold the key alone",
            path.display()
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

/// A value of the file, owned (the parser's values borrow the text).
#[derive(Debug, Clone)]
enum Raw {
    String(String),
    Integer { digits: String, radix: u32 },
    Float,
    Boolean(bool),
    Datetime,
    Array(Vec<Raw>),
    Table,
}

impl Raw {
    fn from_toml(value: &DeValue<'_>) -> Raw {
        match value {
            DeValue::String(text) => Raw::String(text.to_string()),
            DeValue::Integer(integer) => Raw::Integer {
                digits: integer.as_str().to_owned(),
                radix: integer.radix(),
            },
            DeValue::Float(_) => Raw::Float,
            DeValue::Boolean(value) => Raw::Boolean(*value),
            DeValue::Datetime(_) => Raw::Datetime,
            DeValue::Array(array) => Raw::Array(
                array
                    .iter()
                    .map(|item| Raw::from_toml(item.get_ref()))
                    .collect(),
            ),
            DeValue::Table(_) => Raw::Table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(
            Path::new("/etc/vault-mirror.toml"),
            PathBuf::from("/etc"),
            text,
            Origin::Given,
        )
    }

    fn applied(text: &str) -> Result<Settings, ConfigError> {
        let mut settings = Settings::new(PathBuf::from("vault-archive"));
        parse(text)?.apply(&mut settings)?;
        Ok(settings)
    }

    #[test]
    fn every_kind_of_value_is_applied() {
        let settings = applied(
            r#"
out = "archive"            # relative to the file's folder
base_url = "http://127.0.0.1:9/"
connection = "conn_x"
verbose = 2

[mirror]
lists = [28489180, "28489181"]
quality = ["full"]
jobs = 3
sync = false

[network]
retry_delay = "250ms"
stall_timeout = 45
"#,
        )
        .unwrap();
        assert_eq!(
            settings.archive,
            ArchiveLocation::Disk(PathBuf::from("/etc/archive"))
        );
        assert_eq!(settings.base_url.as_str(), "http://127.0.0.1:9/");
        assert_eq!(settings.connection_id.as_deref(), Some("conn_x"));
        assert_eq!(settings.output.verbose, 2);
        assert_eq!(settings.mirror.lists, ["28489180", "28489181"]);
        assert_eq!(
            settings.mirror.quality,
            Quality::Labels(vec!["full".into()])
        );
        assert_eq!(settings.mirror.jobs, 3);
        assert!(!settings.mirror.sync);
        assert_eq!(settings.network.retry_delay, Duration::from_millis(250));
        assert_eq!(settings.network.stall_timeout, Duration::from_secs(45));
        // Dotted keys are the same as sections.
        assert_eq!(applied("mirror.jobs = 5").unwrap().mirror.jobs, 5);
    }

    #[test]
    fn an_archive_on_object_storage_is_taken_as_written() {
        let settings = applied("out = \"s3://bucket/vault/alice\"\n").unwrap();
        assert_eq!(settings.archive.to_string(), "s3://bucket/vault/alice");
        assert!(settings.archive.bucket().is_some());
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let error = applied("# comment\n[mirror]\njobs = 0\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("line 3") && text.contains("`mirror.jobs`"),
            "{text}"
        );
        assert!(text.contains("out of range"), "{text}");

        let text = applied("\n\njbos = 4").unwrap_err().to_string();
        assert!(text.contains("line 3") && text.contains("`jbos`"), "{text}");
        assert!(text.contains("known keys here"), "{text}");

        let text = applied("jobs = 4").unwrap_err().to_string();
        assert!(text.contains("belongs in the `[mirror]` section"), "{text}");

        let text = applied("[mirorr]\njobs = 4").unwrap_err().to_string();
        assert!(
            text.contains("line 1") && text.contains("unknown section"),
            "{text}"
        );

        let text = applied("[network]\nstall_timeout = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("line 2") && text.contains("`network.stall_timeout`"),
            "{text}"
        );

        let text = applied("[mirror]\nsync = \"no\"").unwrap_err().to_string();
        assert!(
            text.contains("expected true or false, found a string"),
            "{text}"
        );

        let text = applied("base_url = \"ftp://x\"").unwrap_err().to_string();
        assert!(
            text.contains("`base_url`") && text.contains("http"),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line_but_never_quote_it() {
        let text = applied("out = \"a\"\napi_key = sk_live_secret\n")
            .unwrap_err()
            .to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("sk_live_secret"), "{text}");
        let text = applied("api_key = \"sk_live_secret\"")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("api_key_file") && !text.contains("sk_live_secret"),
            "{text}"
        );
    }

    #[test]
    fn the_key_comes_from_its_own_file() {
        use secrecy::ExposeSecret;
        let folder = tempfile::tempdir().unwrap();
        fs_err::write(folder.path().join("key"), "  sk_test_1  \n").unwrap();
        let mut settings = Settings::new(PathBuf::from("x"));
        ConfigFile::parse(
            &folder.path().join("c.toml"),
            folder.path().to_owned(),
            "api_key_file = \"key\"",
            Origin::Given,
        )
        .unwrap()
        .apply(&mut settings)
        .unwrap();
        assert_eq!(settings.api_key.unwrap().expose_secret(), "sk_test_1");

        fs_err::write(folder.path().join("two"), "a\nb\n").unwrap();
        assert!(read_key_file(&folder.path().join("two")).is_err());
        fs_err::write(folder.path().join("empty"), "\n").unwrap();
        assert!(read_key_file(&folder.path().join("empty")).is_err());
        let missing = read_key_file(&folder.path().join("missing")).unwrap_err();
        assert!(missing.contains("missing"), "{missing}");
    }

    #[test]
    fn the_archive_file_cannot_move_the_archive() {
        let error = ConfigFile::parse(
            Path::new("a/vault-mirror.toml"),
            PathBuf::from("a"),
            "out = \"b\"",
            Origin::InArchive,
        )
        .unwrap_err();
        assert!(error.to_string().contains("`out`"), "{error}");
    }

    #[test]
    fn what_watches_a_run_is_configured_too() {
        use secrecy::ExposeSecret;
        let settings = applied(
            "metrics_file = \"/m/vault_mirror.prom\"\nping_url = \"https://hc-ping.com/abc\"\n\
             ping_exit_code = true\nevents = \"-\"\n",
        )
        .unwrap();
        let watch = &settings.watch;
        assert_eq!(
            watch.metrics_file.as_deref(),
            Some(Path::new("/m/vault_mirror.prom"))
        );
        assert_eq!(
            watch.ping_url.as_ref().unwrap().expose_secret(),
            "https://hc-ping.com/abc"
        );
        assert!(watch.ping_exit_code && watch.events_on_stdout());
        let events = applied("events = \"events.ndjson\"").unwrap().watch.events;
        assert_eq!(events.unwrap(), Path::new("/etc/events.ndjson"));
        // A bad URL is named by its key, never quoted.
        let text = applied("ping_url = \"hc-ping.com/secret-check\"")
            .unwrap_err()
            .to_string();
        assert!(text.contains("`ping_url`"), "{text}");
        assert!(!text.contains("secret-check"), "{text}");
    }

    #[test]
    fn connection_tables_name_connections_and_their_own_options() {
        let text = "[mirror]\nquality = \"full\"\njobs = 4\n\n\
                    [[connections]]\nid = \"conn_a\"\nlists = [1, 2]\nquality = \"thumb\"\n\n\
                    [[connections]]\nid = \"conn_b\"\n";
        let file = parse(text).unwrap();
        assert_eq!(file.connections(), ["conn_a", "conn_b"]);
        let mut settings = Settings::new(PathBuf::from("out"));
        file.apply(&mut settings).unwrap();
        let mut a = settings.clone();
        file.apply_connection("conn_a", &mut a).unwrap();
        assert_eq!(a.mirror.lists, ["1", "2"]);
        assert_eq!(a.mirror.quality, Quality::Labels(vec!["thumb".into()]));
        assert_eq!(a.mirror.jobs, 4);
        let mut b = settings.clone();
        file.apply_connection("conn_b", &mut b).unwrap();
        assert_eq!(b.mirror.quality, Quality::Labels(vec!["full".into()]));
        assert!(b.mirror.lists.is_empty());

        for (text, line, key, says) in [
            (
                "[[connections]]\nlists = [1]\n",
                1,
                "connections",
                "needs an `id`",
            ),
            (
                "[[connections]]\nid = \"a\"\njobs = 3\n",
                3,
                "connections.jobs",
                "unknown key",
            ),
            (
                "[[connections]]\nid = \"a\"\n[[connections]]\nid = \"a\"\n",
                3,
                "connections.id",
                "twice",
            ),
            (
                "[[connections]]\nid = \"a\"\nquality = 5\n",
                3,
                "mirror.quality",
                "expected",
            ),
        ] {
            let error = parse(text).and_then(|file| {
                let mut settings = Settings::new(PathBuf::from("out"));
                file.apply_connection("a", &mut settings).map(|()| file)
            });
            let Err(ConfigError::Key {
                line: at,
                key: named,
                reason,
                ..
            }) = error
            else {
                panic!("{text:?} was accepted");
            };
            assert_eq!((at, named.as_str()), (line, key), "{text:?}: {reason}");
            assert!(reason.contains(says), "{text:?}: {reason}");
        }
    }

    #[test]
    fn every_option_is_known_once() {
        let mut keys: Vec<&str> = OPTIONS.iter().map(|option| option.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), OPTIONS.len());
        for key in keys {
            if let Some((section, _)) = key.split_once('.') {
                assert!(SECTIONS.contains(&section), "{key}");
            }
        }
    }

    #[test]
    fn the_guides_example_holds_every_key_and_parses() {
        let reference = include_str!("../docs/reference.md");
        let start = reference
            .find("```toml\n")
            .expect("docs/reference.md has a TOML example")
            + 8;
        let example = &reference[start..];
        let example = &example[..example.find("```").unwrap()];
        // Commented-out keys count as documented; uncomment them to parse all.
        let uncommented: String = example
            .lines()
            .map(|line| {
                line.strip_prefix("# ")
                    .filter(|rest| rest.contains(" = "))
                    .unwrap_or(line)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let file = parse(&uncommented).unwrap_or_else(|error| panic!("{error}"));
        for option in OPTIONS {
            assert!(
                file.sets(option.key),
                "the example in docs/reference.md lacks `{}`",
                option.key
            );
        }
    }
}
