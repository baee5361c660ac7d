//! Logging with tracing: to stderr at the level `-q`/`-v` choose, and with
//! `--log-file` also to a file (appended, with timestamps, at info level or
//! more with `-v`), which additionally receives every reported event (the
//! lines the progress display shows, target [`EVENTS`]).
//!
//! Invariants: logs hold no secret. Only vault-mirror's own targets are
//! logged (HTTP libraries may print URLs with their signed query strings),
//! and every line passes through [`redact::scrub`] on its way out, so a
//! query string never reaches a terminal or a file. The key is a
//! `SecretString` and is never formatted.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use vault_mirror::redact;
use vault_mirror::settings::Settings;

use super::failure::Failure;
use super::progress::{EVENTS, colour_wanted};

/// Starts logging for this process (once; later calls do nothing).
pub fn init(settings: &Settings) -> Result<(), Failure> {
    let output = settings.output;
    let level = match (output.quiet, output.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // `VAULT_MIRROR_LOG` overrides the stderr level; the HTTP stack stays off
    // whatever it says (it logs URLs with queries).
    let stderr_filter = filter_from_env("VAULT_MIRROR_LOG")
        .unwrap_or_else(|| Targets::new().with_target("vault_mirror", level));
    let stderr_filter = silence_http(stderr_filter);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(Scrubbed(std::io::stderr))
        .with_ansi(colour_wanted())
        .with_target(false)
        .with_filter(stderr_filter);

    let file = match &settings.log_file {
        Some(path) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs_err::create_dir_all(folder).map_err(|error| {
                    Failure::usage(anyhow::Error::new(error).context("cannot open the log file"))
                })?;
            }
            let mut options = fs_err::OpenOptions::new();
            options.create(true).append(true);
            // What a user mirrors is their business: the log is theirs alone.
            #[cfg(unix)]
            fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let log = options.open(path).map_err(|error| {
                Failure::usage(anyhow::Error::new(error).context("cannot open the log file"))
            })?;
            let file_level = match output.verbose {
                0 | 1 => LevelFilter::INFO,
                2 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            };
            let filter = silence_http(
                Targets::new()
                    .with_target("vault_mirror", file_level)
                    .with_target(EVENTS, LevelFilter::DEBUG),
            );
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Scrubbed(SharedFile(Arc::new(Mutex::new(log.into_file())))))
                    .with_ansi(false)
                    .with_filter(filter),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(())
}

/// The filter a variable holds: comma-separated `target=level` directives
/// or a bare level (`vault_mirror=debug`, `debug`, `vault_mirror::api=trace,warn`),
/// the static subset of tracing's `RUST_LOG` syntax. Unset or unparsable:
/// `None`, and the defaults hold. (`Targets` rather than `EnvFilter`: the
/// same prefix matching, without a regex engine in the build.)
fn filter_from_env(name: &str) -> Option<Targets> {
    let value = std::env::var(name).ok()?;
    let directives: Vec<&str> = value.split(',').filter(|d| !d.is_empty()).collect();
    if directives.is_empty() {
        // Set but empty: no directive, nothing enabled (as EnvFilter did).
        return Some(Targets::new());
    }
    directives.join(",").parse().ok()
}

fn silence_http(filter: Targets) -> Targets {
    filter.with_targets(
        ["reqwest", "hyper", "hyper_util", "h2", "rustls"].map(|target| (target, LevelFilter::OFF)),
    )
}

/// A writer whose lines lose any URL query string on the way out.
#[derive(Clone)]
struct Scrubbed<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubbedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedWriter(self.0.make_writer())
    }
}

struct ScrubbedWriter<W>(W);

impl<W: Write> Write for ScrubbedWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        // tracing hands over one whole formatted event per write.
        let text = String::from_utf8_lossy(buffer);
        let scrubbed: Vec<String> = text.split('\n').map(redact::scrub).collect();
        self.0.write_all(scrubbed.join("\n").as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The log file, shared by the threads that log.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<std::fs::File>>);

impl Write for SharedFile {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        // One whole event under the lock, so threads never interleave.
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(buffer)?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFile;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
