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
2 usage or configuration error; 3 finished, but some variants failed or are still pending, or \
--prune refused to delete more than --max-delete files; 4 the API refused the key or the \
connection needs re-linking."
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
    /// Write the offline archive index: manifest.jsonl, SHA256SUMS, index.html (no network)
    Export,
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
    /// Change nothing on disk at the end: with --prune, only list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Delete local copies of media gone from every mirrored list (each file is listed)
    #[arg(long)]
    pub prune: bool,
    /// With --prune: delete nothing at all if more than N files would go
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_delete: usize,
    /// At the end, write manifest.jsonl, SHA256SUMS and index.html (as `export` does)
    #[arg(long)]
    pub export: bool,
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
}
