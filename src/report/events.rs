//! `--events PATH` (`-`: stdout): one JSON object per line as a run goes,
//! for a GUI, a log shipper or a wrapper script. The fields are
//! documented in docs/reference.md ("Events") and stable: a new field may be
//! added, none is renamed or changes meaning without `v` changing.
//!
//! Invariants:
//! - One [`EventSink`] per process, shared by every connection's
//!   [`EventReporter`]; each line is written whole (one `write_all` under
//!   a lock, then a flush) and carries `v`, `time`, `connection` and
//!   `event`.
//! - Free text (reasons, notes, errors) passes through
//!   [`crate::redact::scrub`]: no signed URL's query reaches the stream.
//! - A sink that cannot be written (a full disk, a closed pipe) stops
//!   writing, says so once in the log, and never changes the run.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::redact::scrub;
use crate::report::{Reporter, Stage, TransferId};

/// The version of the events' shape (the `v` field).
pub const VERSION: u64 = 1;

/// Where events go: one NDJSON stream for the whole process.
pub struct EventSink {
    writer: Mutex<Box<dyn Write + Send>>,
    broken: AtomicBool,
}

impl EventSink {
    /// Events on stdout.
    pub fn stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    /// Events appended to the file at `path` (created `0600`: it names
    /// what is mirrored).
    pub fn file(path: &std::path::Path) -> std::io::Result<Self> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(folder)?;
        }
        let mut options = fs_err::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self::to_writer(Box::new(options.open(path)?)))
    }

    /// Events written to `writer` (tests read them back).
    pub fn to_writer(writer: Box<dyn Write + Send>) -> Self {
        EventSink {
            writer: Mutex::new(writer),
            broken: AtomicBool::new(false),
        }
    }

    /// Writes one event of `connection`: `fields` plus `v`, `time`,
    /// `connection` and `event`.
    pub fn emit(&self, connection: &str, event: &str, fields: Value) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let now = std::time::SystemTime::now();
        let mut line = Map::new();
        line.insert("v".into(), VERSION.into());
        line.insert(
            "time".into(),
            humantime::format_rfc3339_millis(now).to_string().into(),
        );
        line.insert("connection".into(), connection.into());
        line.insert("event".into(), event.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush());
        if let Err(error) = written {
            self.broken.store(true, Ordering::Relaxed);
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!("events are no longer written ({error}); the run goes on");
            }
        }
    }
}

/// Reports a connection's events to the sink, and everything on to
/// `inner` (the display).
pub struct EventReporter {
    inner: Arc<dyn Reporter>,
    sink: Arc<EventSink>,
    connection: String,
}

impl EventReporter {
    pub fn new(inner: Arc<dyn Reporter>, sink: Arc<EventSink>, connection: &str) -> Self {
        EventReporter {
            inner,
            sink,
            connection: connection.to_owned(),
        }
    }

    fn emit(&self, event: &str, fields: Value) {
        self.sink.emit(&self.connection, event, fields);
    }
}

impl Reporter for EventReporter {
    fn on_stage(&self, stage: Stage, detail: &str) {
        self.inner.on_stage(stage, detail);
        self.emit(
            "stage",
            json!({ "stage": stage.name(), "detail": scrub(detail) }),
        );
    }
    fn on_queued(&self, files: u64, bytes: u64) {
        self.inner.on_queued(files, bytes);
    }
    fn on_planned(&self) {
        self.inner.on_planned();
        self.emit("planned", json!({}));
    }
    fn on_start(&self, id: TransferId, name: &str, size: u64, resumed_from: u64) {
        self.inner.on_start(id, name, size, resumed_from);
        self.emit(
            "file_started",
            json!({ "transfer": id.0, "file": name, "size": size, "resumed_from": resumed_from }),
        );
    }
    fn on_bytes(&self, id: TransferId, new_bytes: u64) {
        self.inner.on_bytes(id, new_bytes);
    }
    fn on_rewind(&self, id: TransferId, lost_bytes: u64) {
        self.inner.on_rewind(id, lost_bytes);
    }
    fn on_verified(&self, id: TransferId, name: &str, path: &str, size: u64, sha256: &str) {
        self.inner.on_verified(id, name, path, size, sha256);
        self.emit(
            "file_verified",
            json!({ "transfer": id.0, "file": name, "path": path, "size": size, "sha256": sha256 }),
        );
    }
    fn on_done(&self, id: TransferId) {
        self.inner.on_done(id);
    }
    fn on_resign(&self, what: &str, reason: &str) {
        self.inner.on_resign(what, reason);
        self.emit("resigned", json!({ "what": what, "reason": scrub(reason) }));
    }
    fn on_retry(&self, what: &str, tries_left: usize, reason: &str) {
        self.inner.on_retry(what, tries_left, reason);
        self.emit(
            "retried",
            json!({ "what": scrub(what), "tries_left": tries_left, "reason": scrub(reason) }),
        );
    }
    fn on_failed(&self, what: &str, reason: &str) {
        self.inner.on_failed(what, reason);
        self.emit(
            "failed",
            json!({ "what": scrub(what), "reason": scrub(reason) }),
        );
    }
    fn on_abandoned(&self, id: TransferId) {
        self.inner.on_abandoned(id);
        self.emit("file_abandoned", json!({ "transfer": id.0 }));
    }
    fn on_note(&self, text: &str) {
        self.inner.on_note(text);
        self.emit("note", json!({ "text": scrub(text) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_line_with_the_common_fields() {
        let buffer = Shared::default();
        let sink = Arc::new(EventSink::to_writer(Box::new(buffer.clone())));
        let reporter = EventReporter::new(Arc::new(crate::report::SilentReporter), sink, "conn_x");
        reporter.on_stage(Stage::Lists, "reading");
        reporter.on_retry("batch", 2, "503 from https://api.example/x?sig=SECRET");
        reporter.on_verified(TransferId(7), "1/full", "media/1/full.jpg", 10, "ab");
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        for line in &lines {
            assert_eq!(line["v"], 1);
            assert_eq!(line["connection"], "conn_x");
            assert!(line["time"].as_str().unwrap().ends_with('Z'));
        }
        assert_eq!(lines[0]["event"], "stage");
        assert_eq!(lines[0]["stage"], "lists");
        assert_eq!(lines[1]["tries_left"], 2);
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(lines[2]["sha256"], "ab");
        assert_eq!(lines[2]["size"], 10);
    }
}
