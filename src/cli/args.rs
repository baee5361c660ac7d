//! The command-line contract (docs/one-connection.md, "The command line"): commands, flags and the
//! environment variables that stand in for them. Only clap lives here;
//! [`super::settings`] turns these into `Settings`.
//!
//! Options a config file may also set have no clap default (they are
//! `Option`s or plain switches), so the settings layer can tell "not given"
//! from "given as the default" and let the file fill the gap.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use vault_mirror::location::ArchiveLocation;

#[derive(Debug, Parser)]
#[command(
    name = "vault-mirror",
    version,
    max_term_width = 100,
    about = "Keep a local, verified, resumable mirror of the media OFAuth Vault+ caches",
    long_about = "Keep a local, verified, resumable mirror of the media OFAuth Vault+ caches for an \
OnlyFans connection.\n\nEvery file is checked (exact size, content type, magic bytes) and recorded \
with its sha256 in a SQLite database; a run killed at any moment resumes where it stopped.",
    after_help = "Settings come from flags, then the environment, then the config file \
(--config, VAULT_MIRROR_CONFIG, or <out>/vault-mirror.toml), then defaults.\n\n\
Exit codes: 0 all selected variants mirrored and verified; 1 fatal error (or the archive is \
in use by another run); 2 usage or configuration error; 3 finished, but some variants failed \
or are still pending, or `verify` found damage, or --prune refused to delete more than --max-delete files; 4 the API refused the key or the connection \
needs re-linking; 130/143 interrupted. With several connections: 1 if any failed, else 4 if any \
was refused, else 3 if any is partial, else 0."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Archive root: a folder, or s3://bucket/prefix on S3-compatible object storage (AWS_*
    /// environment) [default: ./vault-archive; ./vault-demo for `demo`]
    #[arg(long, env = "VAULT_MIRROR_OUT", global = true, value_name = "DIR",
          value_parser = ArchiveLocation::parse_arg)]
    pub out: Option<ArchiveLocation>,
    /// State database [default: <out>/.vault-mirror/state.sqlite; for s3://,
    /// ~/.local/state/vault-mirror/<archive>/state.sqlite]
    #[arg(long, env = "VAULT_MIRROR_DB", global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// TOML config file [default: <out>/vault-mirror.toml, if present]
    #[arg(long, env = "VAULT_MIRROR_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// OFAuth API key (prefer OFAUTH_API_KEY or --api-key-file: a flag shows in `ps`)
    #[arg(
        long,
        env = "OFAUTH_API_KEY",
        global = true,
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// A file holding the API key, alone on one line
    #[arg(long, env = "OFAUTH_API_KEY_FILE", global = true, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Connection id (conn_…); repeat it to mirror several, each into <out>/<id>/
    #[arg(long, env = "OFAUTH_CONNECTION_ID", global = true, value_name = "ID")]
    pub connection: Vec<String>,
    /// Mirror every active connection of the account (GET /v2/account/connections), each into
    /// <out>/<id>/; --connection and OFAUTH_CONNECTION_ID are then ignored
    #[arg(long, global = true)]
    pub all_connections: bool,
    /// Mirror only shard K of N of the connections (K = 1..N): N machines, each with its own K,
    /// cover every connection once; the choice is a stable hash of the connection id
    #[arg(long, global = true, value_name = "K/N", value_parser = vault_mirror::shard::Shard::parse)]
    pub shard: Option<vault_mirror::shard::Shard>,
    /// Connections mirrored at once; --jobs and --limit-rate stay limits for the whole process
    /// [default: 2]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections_at_once: Option<u16>,
    /// API base URL [default: https://api.ofauth.com]
    #[arg(long, env = "OFAUTH_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print one JSON object on stdout at the end; no progress display
    #[arg(long, global = true)]
    pub json: bool,
    /// Errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logging (repeatable: -vv); progress bars give way to log lines
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Append a log of the run to FILE (info level, or more with -v)
    #[arg(
        long,
        env = "VAULT_MIRROR_LOG_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub log_file: Option<PathBuf>,
    /// Prometheus gauges for node_exporter's textfile collector, written at the end of every `mirror`
    #[arg(
        long,
        env = "VAULT_MIRROR_METRICS_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub metrics_file: Option<PathBuf>,
    /// Ping URL/start as a `mirror` starts, then URL (exit 0) or URL/fail (healthchecks.io style)
    #[arg(
        long,
        env = "VAULT_MIRROR_PING_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub ping_url: Option<String>,
    /// End pings go to URL/<exit code> instead of URL or URL/fail
    #[arg(long, global = true)]
    pub ping_exit_code: bool,
    /// A `mirror`'s events as it goes, one JSON object a line, appended to FILE (`-`: stdout)
    #[arg(long, env = "VAULT_MIRROR_EVENTS", global = true, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror the connection's vault lists: sync, read members, download, verify, record
    Mirror(MirrorArgs),
    /// What the local mirror holds, per list; the last runs (reads only the database)
    Status,
    /// Check the database, then re-hash files against it; report missing and damaged ones
    /// (on an agency's archive, every connection's)
    Verify(VerifyArgs),
    /// The connection's vault lists, with what the mirror holds of each
    Lists,
    /// The runs recorded in the archive, newest first; with RUN: what that run changed
    History(HistoryArgs),
    /// Write the offline archive index: manifest.jsonl, SHA256SUMS, index.html (no network;
    /// on an agency's archive, every connection's)
    Export,
    /// Run the mirror against a built-in sample vault of real images and clips, on loopback
    Demo(DemoArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell
    Completions(CompletionsArgs),
    /// Serve a sample vault on loopback until stopped, to try the other commands on
    FakeServer(FakeServerArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct MirrorArgs {
    /// A list to mirror (repeatable) [default: every list of the connection]
    #[arg(long = "list", value_name = "ID")]
    pub lists: Vec<String>,
    /// Variant labels to mirror, comma-separated, or `all` [default: full,thumb]
    #[arg(long, value_name = "LABELS")]
    pub quality: Option<String>,
    /// Concurrent transfers [default: 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Skip the PUT sync; mirror the membership Vault+ has cached
    #[arg(long, overrides_with = "sync")]
    pub no_sync: bool,
    /// Sync each list first (the default; overrides `sync = false` in a config file)
    #[arg(long, overrides_with = "no_sync")]
    pub sync: bool,
    /// Print the plan (what would be downloaded, skipped, re-signed, pruned) and change nothing;
    /// with --prune, list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Delete local copies of media gone from every mirrored list (each file is listed)
    #[arg(long)]
    pub prune: bool,
    /// With --prune: delete nothing at all if more than N files would go [default: 50]
    #[arg(long, value_name = "N")]
    pub max_delete: Option<usize>,
    /// Refuse downloads that would leave less than this free on the archive's disk (e.g. 5G)
    #[arg(long, value_name = "SIZE", value_parser = vault_mirror::settings::parse_size)]
    pub min_free: Option<u64>,
    /// At the end, write manifest.jsonl, SHA256SUMS and index.html (as `export` does)
    #[arg(long)]
    pub export: bool,
    /// Poll until pending variants are stored, up to this long (e.g. 10m)
    #[arg(long, value_name = "DURATION", value_parser = vault_mirror::settings::parse_duration)]
    pub wait_pending: Option<std::time::Duration>,
    /// Overall bandwidth cap in bytes per second (e.g. 20M, 512K)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Attempts per variant; send + stream + verify is one attempt [default: 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub retries: Option<u16>,
    /// Abandon and retry a transfer that receives nothing for this long [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub stall_timeout: Option<std::time::Duration>,
    /// API calls per minute (token bucket refill) [default: 60]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub api_rate: Option<u32>,
    /// API calls allowed in a burst [default: 90]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub api_burst: Option<u32>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fetch missing and damaged files again (needs the API settings)
    #[arg(long)]
    pub repair: bool,
    /// Check sizes only, not sha256 (finds deleted and truncated files, not bit rot)
    #[arg(long, conflicts_with_all = ["budget", "max_bytes"])]
    pub fast: bool,
    /// Rolling check: re-hash the files checked longest ago (never checked first) for at most
    /// this long (e.g. 30m); repeated runs cover the whole archive
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub budget: Option<std::time::Duration>,
    /// Rolling check: re-hash at most this many bytes (e.g. 200G), the files checked longest
    /// ago first (at least one file)
    #[arg(long, value_name = "SIZE", value_parser = parse_positive_size)]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A run id (see `history`): list what that run added, changed, removed and failed
    #[arg(value_name = "RUN")]
    pub run_id: Option<i64>,
    /// How many runs to list, newest first
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Media in the sample vault (of each connection)
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub media: u32,
    /// Connections in the sample account: more than one shows the layout of an agency
    /// (<out>/<connection id>/ each, and <out>/index.html listing them)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub connections: u16,
    #[command(flatten)]
    pub mirror: MirrorArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FakeServerArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Media in the sample vault
    #[arg(long, default_value_t = 1000)]
    pub media: usize,
    /// Lists in the sample vault
    #[arg(long, default_value_t = 6)]
    pub lists: usize,
    /// Connections in the account, each with a sample vault of --media media
    /// (GET /v2/account/connections lists them)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub connections: u16,
    /// Add two connections that need re-linking: one listed as expired, one
    /// listed as active that answers 401 SESSION_EXPIRED
    #[arg(long)]
    pub troubled_connections: bool,
    /// Lifetime of signed URLs (e.g. 10m, 5s)
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub url_ttl: std::time::Duration,
    /// Bandwidth cap per transfer in bytes per second (e.g. 20M, 512K)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub bandwidth: Option<u64>,
    /// Fraction of media bodies cut short (0.0-1.0)
    #[arg(long, default_value_t = 0.0)]
    pub cut_bodies: f64,
    /// Fraction of media connections reset before the body
    #[arg(long, default_value_t = 0.0)]
    pub resets: f64,
    /// Fraction of API and media requests answered 503
    #[arg(long, default_value_t = 0.0)]
    pub server_errors: f64,
    /// Fraction of variants first served with a wrong size
    #[arg(long, default_value_t = 0.0)]
    pub wrong_size: f64,
    /// Fraction of variants first served with a wrong Content-Type
    #[arg(long, default_value_t = 0.0)]
    pub wrong_type: f64,
    /// After every N API calls, answer the next one 429 (with Retry-After: 1)
    #[arg(long)]
    pub rate_limit_every: Option<u64>,
    /// Ignore Range requests
    #[arg(long)]
    pub no_range: bool,
    /// Run the server's clock this far ahead of this machine's (e.g. 10m),
    /// or behind with a minus (-10m): its Date headers and URL expiry follow it
    #[arg(long, value_name = "DURATION", default_value = "0s", allow_hyphen_values = true, value_parser = parse_clock_skew)]
    pub clock_skew: i64,
    /// Serve the benchmark's data set instead of the sample: write its
    /// files under DIR (kept if already there) and sign URLs for
    /// --media-base
    #[arg(long, value_name = "DIR", requires = "media_base")]
    pub bench_data: Option<std::path::PathBuf>,
    /// File sizes of the benchmark's data set
    #[arg(long, value_enum, default_value = "full")]
    pub bench_scale: vault_mirror::fake::BenchScale,
    /// Point signed URLs at this static file server
    /// (`<URL>/<id>/<label>.<ext>?expires=..&sig=..`)
    #[arg(long, value_name = "URL")]
    pub media_base: Option<url::Url>,
    /// Write every stored variant's signed URL and relative path
    /// (tab-separated, one a line) to FILE, for other downloaders
    #[arg(long, value_name = "FILE")]
    pub url_list: Option<std::path::PathBuf>,
}

fn parse_rate(text: &str) -> Result<u64, String> {
    vault_mirror::settings::parse_rate(text).map_err(|error| error.to_string())
}

/// A duration with an optional leading minus, in milliseconds.
fn parse_clock_skew(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (sign, magnitude) = match (text.strip_prefix('-'), text.strip_prefix('+')) {
        (Some(rest), _) => (-1, rest),
        (None, Some(rest)) => (1, rest),
        (None, None) => (1, text),
    };
    let duration = vault_mirror::settings::parse_duration(magnitude)?;
    i64::try_from(duration.as_millis())
        .map(|millis| sign * millis)
        .map_err(|_| "the skew is too large".to_owned())
}

fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match vault_mirror::settings::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("give a duration above zero, e.g. `30s`".to_owned()),
        Err(error) => Err(error),
    }
}

fn parse_positive_size(text: &str) -> Result<u64, String> {
    match vault_mirror::settings::parse_size(text) {
        Ok(0) => Err("give a size above zero, e.g. `200G`".to_owned()),
        other => other,
    }
}

#[cfg(test)]
/// Parses one shell command line as clap would, the way a scheduler file
/// or the guide shows it: `exec` and environment assignments before the
/// binary, the binary by any path, and the command ends at a comment, a
/// pipe, a redirection, `&`, `&&`, `||` or `;`. The deploy files' tests
/// and the guide's (`manual.rs`) share it.
pub(crate) fn parse_command_line(command_line: &str) -> Result<Cli, String> {
    let words = shell_words::split(command_line).map_err(|error| error.to_string())?;
    let ends = |word: &String| {
        ["|", "||", "&", "&&", ";"].contains(&word.as_str())
            || word.starts_with('>')
            || word.starts_with('<')
            || word.starts_with("2>")
    };
    let mut words: Vec<String> = words
        .into_iter()
        .skip_while(|word| word == "exec" || word.contains('=') && !word.starts_with('-'))
        .take_while(|word| !ends(word))
        .collect();
    match words.first() {
        Some(binary) if binary == "vault-mirror" || binary.ends_with("/vault-mirror") => {}
        _ => return Err("not a vault-mirror command line".to_owned()),
    }
    words[0] = "vault-mirror".to_owned();
    Cli::try_parse_from(&words).map_err(|error| error.render().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_fake_server_is_in_the_help_and_reads_rates_as_limit_rate_does() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("fake-server"), "{help}");
        for (text, expected) in [("20K", 20 << 10), ("20M", 20 << 20), ("100000", 100_000)] {
            let args = Cli::try_parse_from(["vault-mirror", "fake-server", "--bandwidth", text]);
            let Command::FakeServer(args) = args.unwrap().command else {
                panic!("expected fake-server");
            };
            assert_eq!(args.bandwidth, Some(expected), "{text}");
            let mirror = Cli::try_parse_from(["vault-mirror", "mirror", "--limit-rate", text]);
            let Command::Mirror(mirror) = mirror.unwrap().command else {
                panic!("expected mirror");
            };
            assert_eq!(mirror.limit_rate, Some(expected), "{text}");
        }
        let refused = Cli::try_parse_from(["vault-mirror", "fake-server", "--bandwidth", "fast"]);
        assert!(refused.is_err());
    }

    #[test]
    fn clock_skews_take_a_sign() {
        assert_eq!(parse_clock_skew("10m"), Ok(600_000));
        assert_eq!(parse_clock_skew("-10m"), Ok(-600_000));
        assert_eq!(parse_clock_skew("+10m"), Ok(600_000));
        assert_eq!(parse_clock_skew("-90"), Ok(-90_000));
        assert_eq!(parse_clock_skew("-1h 30s"), Ok(-3_630_000));
        assert_eq!(parse_clock_skew("0s"), Ok(0));
        assert!(parse_clock_skew("--10m").is_err());
        assert!(parse_clock_skew("ten").is_err());
        let args = Cli::try_parse_from(["vault-mirror", "fake-server", "--clock-skew", "-10m"]);
        let Command::FakeServer(args) = args.unwrap().command else {
            panic!("expected fake-server");
        };
        assert_eq!(args.clock_skew, -600_000);
    }

    /// The scheduler files under `deploy/`: each runs a command line that
    /// clap accepts, with the fields that matter (shards, no overlap,
    /// retries, failure alerts); docs/scheduling.md shows each one as it is.
    mod deploy {
        use super::*;
        use vault_mirror::shard::Shard;

        const SERVICE: &str = include_str!("../../deploy/systemd/vault-mirror@.service");
        const TIMER: &str = include_str!("../../deploy/systemd/vault-mirror@.timer");
        const ON_FAILURE: &str = include_str!("../../deploy/systemd/vault-mirror-failure@.service");
        const ONE_SERVICE: &str = include_str!("../../deploy/systemd/vault-mirror.service");
        const ONE_TIMER: &str = include_str!("../../deploy/systemd/vault-mirror.timer");
        const CRONJOB: &str = include_str!("../../deploy/kubernetes/cronjob.yaml");
        const NOMAD: &str = include_str!("../../deploy/nomad/vault-mirror.nomad.hcl");
        const VERIFY_SERVICE: &str =
            include_str!("../../deploy/systemd/vault-mirror-verify.service");
        const VERIFY_TIMER: &str = include_str!("../../deploy/systemd/vault-mirror-verify.timer");
        const VERIFY_CRONJOB: &str = include_str!("../../deploy/kubernetes/verify-cronjob.yaml");

        /// A unit file's `Key=value` lines, by section: `(section, key, value)`.
        fn unit(text: &str) -> Vec<(String, String, String)> {
            let mut section = String::new();
            let mut entries = Vec::new();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    section = name.to_owned();
                    continue;
                }
                let (key, value) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not a unit line: {line}"));
                entries.push((
                    section.clone(),
                    key.trim().to_owned(),
                    value.trim().to_owned(),
                ));
            }
            entries
        }

        fn value<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
            entries
                .iter()
                .find(|(s, k, _)| s == section && k == key)
                .map(|(_, _, value)| value.as_str())
                .unwrap_or_else(|| panic!("no {key}= in [{section}]"))
        }

        /// Parses a shell command line (`exec` and the binary's path first)
        /// as clap would, and returns the mirror's shard.
        fn shard_of(command_line: &str) -> Shard {
            let cli = parse_command_line(command_line)
                .unwrap_or_else(|error| panic!("{command_line}: {error}"));
            assert!(matches!(cli.command, Command::Mirror(_)), "{command_line}");
            assert!(cli.global.all_connections, "{command_line}");
            assert!(cli.global.out.is_some(), "{command_line}");
            cli.global.shard.expect("a shard")
        }

        /// Parses a shell command line (environment assignments and the
        /// binary's path first) as clap would: a `mirror` command.
        fn mirror_of(command_line: &str) -> Cli {
            let cli = parse_command_line(command_line)
                .unwrap_or_else(|error| panic!("{command_line}: {error}"));
            assert!(matches!(cli.command, Command::Mirror(_)), "{command_line}");
            cli
        }

        #[test]
        fn the_one_connection_units_and_the_cron_line_are_valid_and_report_failures() {
            let service = unit(ONE_SERVICE);
            assert_eq!(value(&service, "Service", "Type"), "oneshot");
            assert_eq!(value(&service, "Service", "SuccessExitStatus"), "3 130 143");
            assert_eq!(
                value(&service, "Unit", "OnFailure"),
                "vault-mirror-failure@%n.service"
            );
            let cli = mirror_of(value(&service, "Service", "ExecStart"));
            assert!(cli.global.quiet && cli.global.metrics_file.is_some());
            let timer = unit(ONE_TIMER);
            assert!(value(&timer, "Timer", "OnCalendar").contains("00/6"));
            assert!(!value(&timer, "Timer", "RandomizedDelaySec").is_empty());
            assert_eq!(value(&timer, "Timer", "Persistent"), "true");
            assert_eq!(value(&timer, "Install", "WantedBy"), "timers.target");

            // The guide's crontab line: five time fields, then the command.
            let guide = include_str!("../../docs/scheduling.md");
            let block = guide
                .split("```cron\n")
                .nth(1)
                .and_then(|rest| rest.split("```").next())
                .expect("a cron block in docs/scheduling.md");
            let line = block.lines().next().unwrap();
            let command: Vec<&str> = line.split_whitespace().skip(5).collect();
            let cli = mirror_of(&command.join(" "));
            assert!(cli.global.quiet && cli.global.log_file.is_some(), "{line}");
        }

        /// `script` with `k` for the scheduler's `index + 1` is a mirror of
        /// shard k of `count`, for every index the scheduler gives.
        fn assert_shards(script: &str, k: &str, count: i64) {
            assert!(script.contains(k), "{script}");
            for index in 0..count {
                let line = script.replace(k, &(index + 1).to_string());
                let shard = shard_of(&line);
                assert_eq!(
                    (i64::from(shard.index), i64::from(shard.count)),
                    (index + 1, count),
                    "{line}"
                );
            }
        }

        #[test]
        fn the_systemd_template_runs_shard_k_of_n_and_reports_failures() {
            let service = unit(SERVICE);
            assert_eq!(value(&service, "Service", "Type"), "oneshot");
            assert_eq!(value(&service, "Service", "SuccessExitStatus"), "3 130 143");
            assert_eq!(
                value(&service, "Unit", "OnFailure"),
                "vault-mirror-failure@%n.service"
            );
            // `vault-mirror@2-3.service`: %i is `2-3`, %I is `2/3`.
            let exec = value(&service, "Service", "ExecStart")
                .replace("%I", "2/3")
                .replace("%i", "2-3");
            assert_eq!(shard_of(&exec), Shard { index: 2, count: 3 });

            let timer = unit(TIMER);
            assert!(value(&timer, "Timer", "OnCalendar").contains("00/6"));
            assert!(!value(&timer, "Timer", "RandomizedDelaySec").is_empty());
            assert_eq!(value(&timer, "Timer", "Persistent"), "true");
            assert_eq!(value(&timer, "Install", "WantedBy"), "timers.target");

            let alert = unit(ON_FAILURE);
            let exec = value(&alert, "Service", "ExecStart");
            assert!(
                exec.contains("journalctl --unit=%i") && exec.contains("ntfy"),
                "{exec}"
            );
            let words = shell_words::split(exec).unwrap();
            assert_eq!(words[..2], ["/bin/sh", "-c"]);
        }

        /// A `batch/v1` CronJob that never starts while its last Job runs.
        fn assert_forbids_overlap(cronjob: &saphyr::Yaml<'_>) {
            assert_eq!(cronjob["kind"].as_str(), Some("CronJob"));
            assert_eq!(cronjob["apiVersion"].as_str(), Some("batch/v1"));
            assert_eq!(
                cronjob["spec"]["concurrencyPolicy"].as_str(),
                Some("Forbid")
            );
        }

        #[test]
        fn the_kubernetes_cronjob_is_indexed_forbids_overlap_and_passes_k() {
            use saphyr::{LoadableYamlNode, Yaml};
            let documents = Yaml::load_from_str(CRONJOB).unwrap();
            let cronjob = &documents[0];
            assert_forbids_overlap(cronjob);
            let job = &cronjob["spec"]["jobTemplate"]["spec"];
            assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
            let completions = job["completions"].as_integer().unwrap();
            assert_eq!(job["parallelism"].as_integer(), Some(completions));
            let container = &job["template"]["spec"]["containers"][0];
            let command: Vec<&str> = container["command"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|word| word.as_str().unwrap())
                .collect();
            assert_eq!(command, ["/bin/sh", "-c"]);
            let script = container["args"][0].as_str().unwrap();
            assert_shards(script, "$((JOB_COMPLETION_INDEX + 1))", completions);
        }

        #[test]
        fn the_nomad_job_is_periodic_without_overlap_and_passes_k() {
            let job: serde_json::Value = hcl::from_str(NOMAD).unwrap();
            let job = &job["job"]["vault-mirror"];
            assert_eq!(job["type"], "batch");
            assert_eq!(job["periodic"]["prohibit_overlap"], true);
            assert!(job["periodic"]["crons"][0].is_string());
            let group = &job["group"]["shard"];
            let count = group["count"].as_i64().unwrap();
            let config = &group["task"]["mirror"]["config"];
            assert_eq!(config["command"], "/bin/sh");
            assert_eq!(config["args"][0], "-c");
            let script = config["args"][1].as_str().unwrap();
            assert_shards(script, "$((NOMAD_ALLOC_INDEX + 1))", count);
        }

        /// Parses a command line (`exec` or environment assignments and the
        /// binary's path first) as clap would: a rolling `verify`, its budget.
        fn rolling_verify_of(command_line: &str) -> (Cli, std::time::Duration) {
            let cli = parse_command_line(command_line)
                .unwrap_or_else(|error| panic!("{command_line}: {error}"));
            let Command::Verify(args) = &cli.command else {
                panic!("not a verify: {command_line}");
            };
            assert!(!args.fast && !args.repair, "{command_line}");
            let budget = args.budget.expect("a rolling check has a budget");
            assert!(
                cli.global.quiet && cli.global.out.is_some(),
                "{command_line}"
            );
            (cli, budget)
        }

        #[test]
        fn the_weekly_rolling_check_units_run_verify_within_a_budget() {
            let service = unit(VERIFY_SERVICE);
            assert_eq!(value(&service, "Service", "Type"), "oneshot");
            assert_eq!(
                value(&service, "Unit", "OnFailure"),
                "vault-mirror-failure@%n.service"
            );
            // Damage found (exit 3) is a failure to report, not a success;
            // stopped by a shutdown (130/143) is intended.
            assert_eq!(value(&service, "Service", "SuccessExitStatus"), "130 143");
            let (cli, budget) = rolling_verify_of(value(&service, "Service", "ExecStart"));
            // The same archive as the mirror's unit, so the same lock.
            let mirror = mirror_of(value(&unit(ONE_SERVICE), "Service", "ExecStart"));
            assert_eq!(cli.global.out, mirror.global.out);
            // It ends before the next mirror (03:00 + budget < 06:00).
            assert!(
                budget <= std::time::Duration::from_secs(3 * 3600),
                "{budget:?}"
            );
            let timer = unit(VERIFY_TIMER);
            assert!(value(&timer, "Timer", "OnCalendar").starts_with("Sun "));
            assert!(value(&timer, "Timer", "OnCalendar").contains("03:00"));
            assert_eq!(value(&timer, "Timer", "Persistent"), "true");
            assert_eq!(value(&timer, "Install", "WantedBy"), "timers.target");
        }

        #[test]
        fn the_rolling_check_cronjob_is_weekly_forbids_overlap_and_has_a_budget() {
            use saphyr::{LoadableYamlNode, Yaml};
            let documents = Yaml::load_from_str(VERIFY_CRONJOB).unwrap();
            let cronjob = &documents[0];
            assert_forbids_overlap(cronjob);
            let schedule: Vec<&str> = cronjob["spec"]["schedule"]
                .as_str()
                .unwrap()
                .split(' ')
                .collect();
            assert_eq!(schedule.len(), 5);
            assert_eq!(schedule[2..], ["*", "*", "0"], "weekly, on Sunday");
            let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let script = container["args"][0].as_str().unwrap();
            let (cli, _) = rolling_verify_of(script);
            // The mirror CronJob's volume and archive: the same locks.
            let mirror = &Yaml::load_from_str(CRONJOB).unwrap()[0];
            let mirror_pod = &mirror["spec"]["jobTemplate"]["spec"]["template"]["spec"];
            assert_eq!(
                pod["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str(),
                mirror_pod["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str()
            );
            let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
            assert_eq!(
                cli.global.out.map(|out| out.to_string()).as_deref(),
                Some(mount)
            );
        }

        #[test]
        fn the_guide_shows_each_file_as_it_is() {
            let guide = include_str!("../../docs/scheduling.md");
            for (name, text) in [
                ("vault-mirror@.service", SERVICE),
                ("vault-mirror@.timer", TIMER),
                ("vault-mirror-failure@.service", ON_FAILURE),
                ("vault-mirror.service", ONE_SERVICE),
                ("vault-mirror.timer", ONE_TIMER),
                ("cronjob.yaml", CRONJOB),
                ("vault-mirror.nomad.hcl", NOMAD),
                ("vault-mirror-verify.service", VERIFY_SERVICE),
                ("vault-mirror-verify.timer", VERIFY_TIMER),
                ("verify-cronjob.yaml", VERIFY_CRONJOB),
            ] {
                assert!(
                    guide.contains(text),
                    "docs/scheduling.md does not show deploy/…/{name} as it is"
                );
            }
        }
    }
}
