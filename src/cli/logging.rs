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

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use vault_mirror::redact;
use vault_mirror::settings::Settings;

use super::failure::Failure;
use super::progress::{EVENTS, colour_wanted};

/// Starts logging for this process (once; later calls do nothing).
pub fn init(settings: &Settings) -> Result<(), Failure> {
    let output = settings.output;
    let level = match (output.quiet, output.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // `VAULT_MIRROR_LOG` (EnvFilter syntax) overrides the stderr level; the
    // HTTP stack stays off whatever it says (it logs URLs with queries).
    let stderr_filter = EnvFilter::try_from_env("VAULT_MIRROR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("vault_mirror={level}")));
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
                    Failure::new(
                        anyhow::Error::new(error).context("cannot open the log file"),
                        2,
                    )
                })?;
            }
            let mut options = fs_err::OpenOptions::new();
            options.create(true).append(true);
            // What a user mirrors is their business: the log is theirs alone.
            #[cfg(unix)]
            fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let log = options.open(path).map_err(|error| {
                Failure::new(
                    anyhow::Error::new(error).context("cannot open the log file"),
                    2,
                )
            })?;
            let file_level = match output.verbose {
                0 | 1 => "info",
                2 => "debug",
                _ => "trace",
            };
            let filter = silence_http(EnvFilter::new(format!(
                "vault_mirror={file_level},{EVENTS}=debug"
            )));
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

fn silence_http(filter: EnvFilter) -> EnvFilter {
    [
        "reqwest=off",
        "hyper=off",
        "hyper_util=off",
        "h2=off",
        "rustls=off",
    ]
    .into_iter()
    .fold(filter, |filter, directive| {
        filter.add_directive(directive.parse().expect("a fixed directive parses"))
    })
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
