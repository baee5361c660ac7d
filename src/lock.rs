//! One run per archive: [`ArchiveLock`] holds `<out>/.vault-mirror/lock`
//! for as long as a command that writes (mirror, demo, verify) runs.
//!
//! Invariants:
//! - Exclusion comes from an OS file lock (`flock` on Unix, `LockFileEx` on
//!   Windows) on the lock file, not from the file's existence: the kernel
//!   drops the lock when its process dies, even by `kill -9`, so a lock left
//!   by a dead process is simply taken over and never has to be guessed
//!   stale from a pid that may have been reused.
//! - The file's text says who holds it (pid, host, command, start time), so
//!   a refused run can name the holder. It is rewritten by each holder and
//!   left in place on exit (deleting it would race with the next taker).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// How long [`ArchiveLock::acquire`] tries before it says the lock is held.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The lock file of an archive.
pub fn lock_path(out: &Path) -> PathBuf {
    out.join(".vault-mirror").join("lock")
}

/// Who holds (or last held) a lock, as written in its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub command: Option<String>,
    /// Epoch milliseconds.
    pub started_at: Option<i64>,
}

impl Holder {
    fn this_process(command: &str) -> Self {
        Holder {
            pid: Some(std::process::id()),
            host: host_name(),
            command: Some(command.to_owned()),
            started_at: Some(crate::now_ms()),
        }
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid = {pid}\n"));
        }
        if let Some(host) = &self.host {
            text.push_str(&format!("host = {host}\n"));
        }
        if let Some(command) = &self.command {
            text.push_str(&format!("command = {command}\n"));
        }
        if let Some(started_at) = self.started_at {
            text.push_str(&format!("started_at = {started_at}\n"));
        }
        text
    }

    /// Reads `key = value` lines; anything else is ignored, so a garbled
    /// file costs only the details of the message.
    fn parse(text: &str) -> Self {
        let mut holder = Holder::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "pid" => holder.pid = value.parse().ok(),
                "host" => holder.host = Some(shown(value)),
                "command" => holder.command = Some(shown(value)),
                "started_at" => holder.started_at = value.parse().ok(),
                _ => {}
            }
        }
        holder
    }

    /// "process 1234 on host `nas` (`mirror`, since 2026-05-01 10:00:00 UTC)".
    pub fn describe(&self) -> String {
        let mut text = match self.pid {
            Some(pid) => format!("process {pid}"),
            None => "another process".to_owned(),
        };
        if let Some(host) = &self.host {
            text.push_str(&format!(" on host `{host}`"));
        }
        let mut details = Vec::new();
        if let Some(command) = &self.command {
            details.push(format!("`{command}`"));
        }
        if let Some(started_at) = self.started_at {
            details.push(format!("since {}", crate::utc_time(started_at)));
        }
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join(", ")));
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another vault-mirror run is using the archive {out}: {}", holder.describe())]
    Held { out: PathBuf, holder: Holder },
    #[error("cannot lock the archive {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// What a person can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { holder, .. } => Some(match holder.pid {
                Some(pid) => format!(
                    "wait for it to finish; if it is stuck, stop it (`{}`): the next run resumes where it stopped",
                    // PowerShell's on Windows, where there is no `kill`.
                    if cfg!(windows) {
                        format!("Stop-Process -Id {pid}")
                    } else {
                        format!("kill {pid}")
                    }
                ),
                None => "wait for the other run to finish".to_owned(),
            }),
            LockError::Io { .. } => None,
        }
    }
}

/// Holds the archive's lock until dropped.
#[derive(Debug)]
pub struct ArchiveLock {
    path: PathBuf,
    // Never read: holding the open file is what holds the OS lock.
    _file: fs_err::File,
    /// The previous holder, when this run took over a lock left behind by
    /// a process that is gone.
    pub taken_over: Option<Holder>,
}

impl ArchiveLock {
    /// Takes the lock of the archive at `out` for `command`, or says who
    /// holds it. Waits at most [`PATIENCE`], so that a `status` probing the
    /// lock at the same moment never makes a run fail.
    pub fn acquire(out: &Path, command: &str) -> Result<ArchiveLock, LockError> {
        let path = lock_path(out);
        let io = |source: std::io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(folder) = path.parent() {
            crate::durable::create_dir_all(folder).map_err(io)?;
        }
        let mut file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut previous = String::new();
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    // Best effort: on some systems a locked file cannot be read.
                    let _ = file.read_to_string(&mut previous);
                    return Err(LockError::Held {
                        out: out.to_owned(),
                        holder: Holder::parse(&previous),
                    });
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        file.read_to_string(&mut previous).map_err(io)?;
        let taken_over = Some(Holder::parse(&previous)).filter(|holder| holder.pid.is_some());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(Holder::this_process(command).to_text().as_bytes())
            .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(ArchiveLock {
            path,
            _file: file,
            taken_over,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds the archive's lock right now, if anyone (for `status`).
/// Never creates the file.
pub fn current_holder(out: &Path) -> Option<Holder> {
    let path = lock_path(out);
    let mut file = fs_err::File::open(&path).ok()?;
    match file.try_lock() {
        // Free: dropping the file releases it at once (a run starting
        // meanwhile waits for it; see PATIENCE).
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(Holder::parse(&text))
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// Keeps text from the file printable and short.
fn shown(text: &str) -> String {
    text.chars()
        .filter(|character| !character.is_control())
        .take(64)
        .collect()
}

/// This machine's name, if it can be known (shown in lock files and leases).
pub fn host_name() -> Option<String> {
    // Linux exposes it without a library; elsewhere the environment may.
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| shown(name.trim()))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_and_told_who_holds_it() {
        let out = tempfile::tempdir().unwrap();
        let first = ArchiveLock::acquire(out.path(), "mirror").unwrap();
        assert!(first.taken_over.is_none());
        let error = ArchiveLock::acquire(out.path(), "verify").unwrap_err();
        let LockError::Held { holder, .. } = &error else {
            panic!("expected Held, got {error}")
        };
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.command.as_deref(), Some("mirror"));
        assert!(error.to_string().contains("another vault-mirror run"));
        assert!(error.hint().unwrap().contains("kill"));
        assert_eq!(current_holder(out.path()).unwrap().pid, holder.pid);
        drop(first);
        assert!(current_holder(out.path()).is_none());
        let again = ArchiveLock::acquire(out.path(), "verify").unwrap();
        // The lock left by the first holder names it: this one took over.
        assert_eq!(again.taken_over.unwrap().command.as_deref(), Some("mirror"));
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let out = tempfile::tempdir().unwrap();
        let path = lock_path(out.path());
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, "pid = 4194303\nhost = gone\ncommand = mirror\n").unwrap();
        let lock = ArchiveLock::acquire(out.path(), "mirror").unwrap();
        assert_eq!(lock.taken_over.unwrap().pid, Some(4_194_303));
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("pid = {}", std::process::id())));
        assert!(!text.contains("4194303"));
    }

    #[test]
    fn garbled_lock_files_still_parse() {
        let holder = Holder::parse("pid = x\nhost = a\u{1b}[31mb\nnonsense");
        assert_eq!(holder.pid, None);
        assert_eq!(holder.host.as_deref(), Some("a[31mb"));
        assert!(!holder.describe().contains('\u{1b}'));
    }
}
