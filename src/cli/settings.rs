//! Arguments and environment → one validated [`Settings`] (flag >
//! environment > default; clap applies the environment layer).

use std::path::PathBuf;

use secrecy::SecretString;
use vault_mirror::settings::{
    Output, Quality, Settings, SettingsError, default_db, parse_base_url,
};

use super::args::{GlobalArgs, MirrorArgs};

pub const DEFAULT_OUT: &str = "vault-archive";

pub fn output(global: &GlobalArgs) -> Output {
    Output {
        json: global.json,
        quiet: global.quiet,
        verbose: global.verbose,
    }
}

/// Settings for commands that talk to the API.
pub fn build(
    global: &GlobalArgs,
    mirror: Option<&MirrorArgs>,
    default_out: &str,
) -> Result<Settings, SettingsError> {
    let out = global
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_out));
    let mut settings = Settings::new(out);
    settings.db = global
        .db
        .clone()
        .unwrap_or_else(|| default_db(&settings.out));
    if let Some(base_url) = &global.base_url {
        settings.base_url = parse_base_url(base_url)?;
    }
    settings.api_key =
        non_empty(global.api_key.as_deref()).map(|key| SecretString::from(key.to_owned()));
    settings.connection_id = non_empty(global.connection.as_deref()).map(str::to_owned);
    settings.output = output(global);
    // Test suites shorten retry pauses (as uv's UV_TEST_NO_HTTP_RETRY_DELAY does).
    if let Some(delay) = std::env::var("VAULT_MIRROR_TEST_RETRY_DELAY_MS")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    {
        settings.network.retry_delay = std::time::Duration::from_millis(delay);
        settings.network.max_retry_delay = std::time::Duration::from_millis(delay * 10);
    }
    if let Some(mirror) = mirror {
        apply_mirror(&mut settings, mirror)?;
    }
    Ok(settings)
}

pub fn apply_mirror(settings: &mut Settings, mirror: &MirrorArgs) -> Result<(), SettingsError> {
    settings.mirror.lists = mirror
        .lists
        .iter()
        .map(|list| list.trim().to_owned())
        .filter(|list| !list.is_empty())
        .collect();
    settings.mirror.quality = Quality::parse(&mirror.quality)?;
    settings.mirror.jobs = usize::from(mirror.jobs);
    settings.mirror.sync = !mirror.no_sync;
    settings.mirror.dry_run = mirror.dry_run;
    settings.mirror.prune = mirror.prune;
    settings.mirror.max_delete = mirror.max_delete;
    settings.mirror.export = mirror.export;
    Ok(())
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}
