//! The command-line contract (`DESIGN.md`): commands, flags and the
//! environment variables that stand in for them. Only clap lives here;
//! [`super::settings`] turns these into `Settings`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vault-mirror",
    version,
    about = "Keep a local, verified, resumable mirror of the media OFAuth Vault+ caches",
    long_about = "Keep a local, verified, resumable mirror of the media OFAuth Vault+ caches for an \
OnlyFans connection.\n\nEvery file is checked (exact size, content type, magic bytes) and recorded \
with its sha256 in a SQLite database; a run killed at any moment resumes where it stopped.",
    after_help = "Exit codes: 0 all selected variants mirrored and verified; 1 fatal error; \
2 usage or configuration error; 3 finished, but some variants failed or are still pending; \
4 the API refused the key or the connection needs re-linking."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Archive root [default: ./vault-archive; ./vault-demo for `demo`]
    #[arg(long, env = "VAULT_MIRROR_OUT", global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// State database [default: <out>/.vault-mirror/state.sqlite]
    #[arg(long, env = "VAULT_MIRROR_DB", global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// OFAuth API key (prefer the environment: a flag shows in `ps`)
    #[arg(
        long,
        env = "OFAUTH_API_KEY",
        global = true,
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Connection id (conn_…)
    #[arg(long, env = "OFAUTH_CONNECTION_ID", global = true, value_name = "ID")]
    pub connection: Option<String>,
    /// API base URL [default: https://api.ofauth.com]
    #[arg(long, env = "OFAUTH_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print one JSON summary on stdout at the end; no progress display
    #[arg(long, global = true)]
    pub json: bool,
    /// Errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logging (repeatable: -vv)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror the connection's vault lists: sync, read members, download, verify, record
    Mirror(MirrorArgs),
    /// Run the mirror against a built-in sample vault served on loopback
    Demo(DemoArgs),
    /// Serve the fake Vault+ API on loopback (for trying faults and benchmarks)
    #[command(hide = true)]
    FakeServer(FakeServerArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MirrorArgs {
    /// A list to mirror (repeatable) [default: every list of the connection]
    #[arg(long = "list", value_name = "ID")]
    pub lists: Vec<String>,
    /// Variant labels to mirror, comma-separated, or `all`
    #[arg(long, value_name = "LABELS", default_value = "full,thumb")]
    pub quality: String,
    /// Concurrent transfers
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Skip the PUT sync; mirror the membership Vault+ has cached
    #[arg(long)]
    pub no_sync: bool,
    /// Poll until pending variants are stored, up to this long (e.g. 10m)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait_pending: Option<std::time::Duration>,
    /// Overall bandwidth cap in bytes per second (e.g. 20M, 512K)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Attempts per variant (send + stream + verify is one attempt)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub retries: u16,
    /// Abandon and retry a transfer that receives nothing for this long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub stall_timeout: std::time::Duration,
    /// API calls per minute (token bucket refill)
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_rate: u32,
    /// API calls allowed in a burst
    #[arg(long, value_name = "N", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_burst: u32,
}

fn parse_rate(text: &str) -> Result<u64, String> {
    vault_mirror::settings::parse_rate(text).map_err(|error| error.to_string())
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Media in the sample vault
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub media: usize,
    #[command(flatten)]
    pub mirror: MirrorArgs,
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
    /// Lifetime of signed URLs (e.g. 10m, 5s)
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub url_ttl: std::time::Duration,
    /// Bandwidth cap per transfer in bytes per second
    #[arg(long)]
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
}
