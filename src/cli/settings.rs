//! Arguments, environment and config file → one validated [`Settings`].
//!
//! Precedence: flag > environment > config file > default. clap already
//! merges the first two (a flag wins over its variable), so this builds the
//! defaults, applies the file over them, then applies whatever clap holds.

use std::path::PathBuf;

use secrecy::SecretString;
use vault_mirror::config::{self, ConfigFile, Origin};
use vault_mirror::location::ArchiveLocation;
use vault_mirror::settings::{
    Output, Quality, Settings, SettingsError, default_db, parse_base_url,
};

use super::args::{GlobalArgs, MirrorArgs};

pub const DEFAULT_OUT: &str = "vault-archive";

/// The output mode from the command line alone, for reporting a failure
/// that happened before the settings were complete.
pub fn output(global: &GlobalArgs) -> Output {
    Output {
        json: global.json,
        quiet: global.quiet,
        verbose: global.verbose,
    }
}

/// Settings for any command. `mirror` is given for commands that take the
/// mirror options; the file's `[mirror]` values apply either way (so
/// `verify --repair` fetches with the configured `jobs`).
pub fn build(
    global: &GlobalArgs,
    mirror: Option<&MirrorArgs>,
    default_out: &str,
) -> Result<Settings, SettingsError> {
    let out = global
        .out
        .clone()
        .unwrap_or_else(|| ArchiveLocation::Disk(PathBuf::from(default_out)));
    let file = config_file(global, &out)?;
    let mut settings = Settings::new(PathBuf::new());
    settings.archive = out;
    if let Some(file) = &file {
        file.apply(&mut settings)?;
    }

    // Flags and environment, over the file.
    if let Some(out) = &global.out {
        settings.archive = out.clone();
    }
    let on_bucket = settings.locate()?;
    settings.db = match (&global.db, &file) {
        (Some(db), _) => db.clone(),
        (None, Some(file)) if file.sets("db") => settings.db,
        // On object storage: `~/.local/state/vault-mirror/<archive>/state.sqlite`.
        _ if on_bucket => settings.local.with_file_name("state.sqlite"),
        // The default follows the archive, wherever the file or flag put it.
        _ => default_db(&settings.local),
    };
    if let Some(base_url) = &global.base_url {
        settings.base_url = parse_base_url(base_url)?;
    }
    if let Some(path) = &global.api_key_file {
        let key = config::read_key_file(path).map_err(|reason| SettingsError::Invalid {
            name: "API key file (--api-key-file, OFAUTH_API_KEY_FILE)",
            reason,
        })?;
        settings.api_key = Some(key);
    }
    if let Some(key) = non_empty(global.api_key.as_deref()) {
        settings.api_key = Some(SecretString::from(key.to_owned()));
    }
    // One connection keeps the archive's own layout; several are chosen
    // by [`super::connections`], each into an archive of its own.
    if let [connection] = global.connection.as_slice()
        && let Some(connection) = non_empty(Some(connection))
    {
        settings.connection_id = Some(connection.to_owned());
    }
    if let Some(at_once) = global.connections_at_once {
        settings.mirror.connections_at_once = usize::from(at_once);
    }
    if let Some(log_file) = &global.log_file {
        settings.log_file = Some(log_file.clone());
    }
    if global.single_writer {
        settings.single_writer = true;
    }
    apply_output(&mut settings.output, global);
    apply_watch(&mut settings, global)?;

    // Test suites shorten retry pauses (as uv's UV_TEST_NO_HTTP_RETRY_DELAY does).
    if let Some(delay) = std::env::var("VAULT_MIRROR_TEST_RETRY_DELAY_MS")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    {
        settings.network.retry_delay = std::time::Duration::from_millis(delay);
        settings.network.max_retry_delay = std::time::Duration::from_millis(delay * 10);
        settings.network.poll_interval = std::time::Duration::from_millis(delay * 10);
    }
    // Test suites pretend a nearly full disk without filling one.
    if let Some(free) = std::env::var("VAULT_MIRROR_TEST_FREE_BYTES")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    {
        settings.mirror.assume_free = Some(free);
    }
    if let Some(mirror) = mirror {
        apply_mirror(&mut settings, mirror)?;
    }
    Ok(settings)
}

/// The file named by `--config`/`VAULT_MIRROR_CONFIG` (which must exist),
/// else `<out>/vault-mirror.toml` if there is one.
pub fn config_file(
    global: &GlobalArgs,
    out: &ArchiveLocation,
) -> Result<Option<ConfigFile>, SettingsError> {
    if let Some(path) = &global.config {
        return Ok(Some(ConfigFile::load(path, Origin::Given)?));
    }
    // Only a folder can hold one; a bucket's settings are given.
    let Some(folder) = out.folder() else {
        return Ok(None);
    };
    let in_archive = folder.join(config::FILE_NAME);
    if in_archive.is_file() {
        return Ok(Some(ConfigFile::load(&in_archive, Origin::InArchive)?));
    }
    Ok(None)
}

/// `--metrics-file`, `--ping-url`, `--ping-exit-code`, `--events` over the
/// file; events on stdout and `--json` would share one stream: refused.
fn apply_watch(settings: &mut Settings, global: &GlobalArgs) -> Result<(), SettingsError> {
    let watch = &mut settings.watch;
    if let Some(path) = &global.metrics_file {
        watch.metrics_file = Some(path.clone());
    }
    if let Some(url) = non_empty(global.ping_url.as_deref()) {
        vault_mirror::report::ping::check_url(url).map_err(|reason| SettingsError::Invalid {
            name: "ping URL (--ping-url, VAULT_MIRROR_PING_URL)",
            reason,
        })?;
        watch.ping_url = Some(SecretString::from(url.to_owned()));
    }
    if global.ping_exit_code {
        watch.ping_exit_code = true;
    }
    if let Some(path) = &global.events {
        watch.events = Some(path.clone());
    }
    if let Some(path) = &watch.metrics_file {
        check_metrics_folder(path)?;
    }
    if watch.events_on_stdout() && settings.output.json {
        return Err(SettingsError::Invalid {
            name: "--events",
            reason: "`--events -` writes events on stdout, where `--json` writes its summary; \
                     give `--events` a file, or leave out `--json`"
                .into(),
        });
    }
    Ok(())
}

/// The metrics file is written atomically beside itself: its folder must
/// exist before the run, or the run would end well and leave no metrics.
fn check_metrics_folder(path: &std::path::Path) -> Result<(), SettingsError> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => std::path::Path::new("."),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(SettingsError::Invalid {
        name: "metrics file (--metrics-file, VAULT_MIRROR_METRICS_FILE, `metrics_file`)",
        reason: format!(
            "its folder {} does not exist; create it (`mkdir -p {}`, writable by the user the run runs as) or name a file in an existing folder",
            folder.display(),
            folder.display()
        ),
    })
}

/// A switch given on the command line wins over the file; one not given
/// leaves the file's value. `-q` and `-v` each cancel the other's file value.
fn apply_output(output: &mut Output, global: &GlobalArgs) {
    if global.json {
        output.json = true;
    }
    if global.quiet {
        output.quiet = true;
        output.verbose = 0;
    }
    if global.verbose > 0 {
        output.verbose = global.verbose;
        output.quiet = false;
    }
}

pub fn apply_mirror(settings: &mut Settings, mirror: &MirrorArgs) -> Result<(), SettingsError> {
    let lists: Vec<String> = mirror
        .lists
        .iter()
        .map(|list| list.trim().to_owned())
        .filter(|list| !list.is_empty())
        .collect();
    if !lists.is_empty() {
        settings.mirror.lists = lists;
    }
    if let Some(quality) = &mirror.quality {
        settings.mirror.quality = Quality::parse(quality)?;
    }
    if let Some(jobs) = mirror.jobs {
        settings.mirror.jobs = usize::from(jobs);
    }
    if mirror.no_sync {
        settings.mirror.sync = false;
    }
    if mirror.sync {
        settings.mirror.sync = true;
    }
    if mirror.dry_run {
        settings.mirror.dry_run = true;
    }
    if let Some(wait) = mirror.wait_pending {
        settings.mirror.wait_pending = Some(wait);
    }
    if let Some(rate) = mirror.limit_rate {
        settings.mirror.limit_rate = Some(rate);
    }
    if let Some(retries) = mirror.retries {
        settings.network.transfer_attempts = usize::from(retries);
    }
    if let Some(stall) = mirror.stall_timeout {
        settings.network.stall_timeout = stall;
    }
    if let Some(rate) = mirror.api_rate {
        settings.network.api_rate_per_minute = rate;
    }
    if let Some(burst) = mirror.api_burst {
        settings.network.api_burst = burst;
    }
    if mirror.prune {
        settings.mirror.prune = true;
    }
    if let Some(max_delete) = mirror.max_delete {
        settings.mirror.max_delete = max_delete;
    }
    if mirror.export {
        settings.mirror.export = true;
    }
    if let Some(min_free) = mirror.min_free {
        settings.mirror.min_free = Some(min_free);
    }
    Ok(())
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_with(config: &str) -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        fs_err::write(out.path().join(config::FILE_NAME), config).unwrap();
        out
    }

    fn global_for(out: &std::path::Path) -> GlobalArgs {
        GlobalArgs {
            out: Some(ArchiveLocation::Disk(out.to_owned())),
            ..GlobalArgs::default()
        }
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let out = archive_with("[mirror]\njobs = 3\nquality = \"thumb\"\nsync = false\n");
        let global = global_for(out.path());
        let from_file = build(&global, Some(&MirrorArgs::default()), DEFAULT_OUT).unwrap();
        assert_eq!(from_file.mirror.jobs, 3);
        assert_eq!(
            from_file.mirror.quality,
            Quality::Labels(vec!["thumb".into()])
        );
        assert!(!from_file.mirror.sync);
        // The database follows the archive.
        assert_eq!(from_file.db, default_db(out.path()));

        let flags = MirrorArgs {
            jobs: Some(5),
            quality: Some("full".into()),
            sync: true,
            ..MirrorArgs::default()
        };
        let from_flags = build(&global, Some(&flags), DEFAULT_OUT).unwrap();
        assert_eq!(from_flags.mirror.jobs, 5);
        assert_eq!(
            from_flags.mirror.quality,
            Quality::Labels(vec!["full".into()])
        );
        assert!(from_flags.mirror.sync);

        let plain = tempfile::tempdir().unwrap();
        let defaults = build(
            &global_for(plain.path()),
            Some(&MirrorArgs::default()),
            DEFAULT_OUT,
        )
        .unwrap();
        assert_eq!(defaults.mirror.jobs, vault_mirror::settings::DEFAULT_JOBS);
        assert!(defaults.mirror.sync);
    }

    #[test]
    fn a_given_file_may_place_the_archive_and_its_paths_are_its_own() {
        let folder = tempfile::tempdir().unwrap();
        let config = folder.path().join("mirror.toml");
        fs_err::write(folder.path().join("key"), "sk_file\n").unwrap();
        fs_err::write(
            &config,
            "out = \"archive\"\napi_key_file = \"key\"\nconnection = \"conn_file\"\nquiet = true\n",
        )
        .unwrap();
        let global = GlobalArgs {
            config: Some(config.clone()),
            ..GlobalArgs::default()
        };
        let settings = build(&global, None, DEFAULT_OUT).unwrap();
        assert_eq!(settings.local, folder.path().join("archive"));
        assert_eq!(settings.db, default_db(&folder.path().join("archive")));
        assert_eq!(settings.connection_id.as_deref(), Some("conn_file"));
        assert!(settings.output.quiet);

        // The environment (clap's value) wins over the file.
        let global = GlobalArgs {
            config: Some(config),
            api_key: Some("sk_env".into()),
            connection: vec!["conn_env".into()],
            verbose: 1,
            ..GlobalArgs::default()
        };
        let settings = build(&global, None, DEFAULT_OUT).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(settings.api_key.unwrap().expose_secret(), "sk_env");
        assert_eq!(settings.connection_id.as_deref(), Some("conn_env"));
        assert!(!settings.output.quiet && settings.output.verbose == 1);
    }

    #[test]
    fn a_missing_or_broken_file_is_a_configuration_error() {
        let global = GlobalArgs {
            config: Some(PathBuf::from("/nonexistent/vault-mirror.toml")),
            ..GlobalArgs::default()
        };
        let error = build(&global, None, DEFAULT_OUT).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/vault-mirror.toml"),
            "{error}"
        );
        let out = archive_with("[mirror]\njobs = \"many\"\n");
        let error = build(&global_for(out.path()), None, DEFAULT_OUT).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
