//! A failure to show the user: the error chain, hints, and the exit code
//! its kind picks; printed as `error:` / `caused by:` / `hint:` lines (and
//! as one JSON object with `--json`).

use vault_mirror::archive::bucket::diagnose::{Diagnosis, diagnose};
use vault_mirror::exit::ExitStatus;
use vault_mirror::location::ArchiveLocation;
use vault_mirror::lock::LockError;
use vault_mirror::pipeline::MirrorError;
use vault_mirror::settings::{Output, SettingsError};
use vault_mirror::store::StoreError;

use super::progress;

/// A failure to show the user: the error chain, hints, and the exit code.
pub struct Failure {
    pub error: anyhow::Error,
    pub hints: Vec<String>,
    pub code: i32,
}

impl Failure {
    /// The error and its causes on one line, none repeated (for JSON, the
    /// log and the run's record); for a set-up mistake on object storage,
    /// the one sentence that says what happened.
    pub fn one_line(&self) -> String {
        match self.diagnosis() {
            Some(diagnosis) => diagnosis.what,
            None => vault_mirror::report::chain(self.error.as_ref()),
        }
    }

    /// The set-up mistake on object storage this failure shows, if any.
    pub fn diagnosis(&self) -> Option<Diagnosis> {
        diagnose(self.error.as_ref())
    }

    /// The hints to show: the diagnosis's first, then the failure's own.
    pub fn all_hints(&self) -> Vec<String> {
        let diagnosed = self.diagnosis().map(|diagnosis| diagnosis.hint);
        diagnosed
            .into_iter()
            .chain(self.hints.iter().cloned())
            .collect()
    }

    pub fn new(error: impl Into<anyhow::Error>, status: ExitStatus) -> Self {
        Failure {
            error: error.into(),
            hints: Vec::new(),
            code: status.code(),
        }
    }

    /// A fatal error (exit 1).
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Failure::new(error, ExitStatus::Failed)
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure::new(error, ExitStatus::Usage)
    }

    pub fn status(&self) -> ExitStatus {
        ExitStatus::from_code(self.code)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl From<MirrorError> for Failure {
    fn from(error: MirrorError) -> Self {
        let code = error.exit_code().code();
        let mut hints = Vec::new();
        match &error {
            MirrorError::Api(api) => hints.extend(api.hint()),
            MirrorError::Store(store) => hints.extend(store_hint(store)),
            MirrorError::UnknownLists { .. } => hints.push(
                "`vault-mirror lists` shows the connection's lists with their ids".into(),
            ),
            MirrorError::UnknownLabels { suggestion, .. } => hints.push(match suggestion {
                Some(label) => format!(
                    "did you mean `{label}`? (labels are case-sensitive; `--quality all` takes every one); nothing was changed"
                ),
                None => "`--quality all` takes every label; nothing was changed".into(),
            }),
            MirrorError::Settings(SettingsError::MissingApiKey) => hints.push(
                "`vault-mirror --help` lists where settings come from; docs/reference.md has an annotated config file".into(),
            ),
            _ => {}
        }
        Failure {
            error: error.into(),
            hints,
            code,
        }
    }
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        MirrorError::from(error).into()
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        MirrorError::from(error).into()
    }
}

impl From<LockError> for Failure {
    fn from(error: LockError) -> Self {
        let hint = error.hint();
        let mut failure = Failure::failed(error);
        failure.hints.extend(hint);
        failure
    }
}

fn store_hint(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Busy { .. } => Some(
            "another program holds the database; a database on a network share (NFS, SMB) is best moved to a local disk with `--db`".into(),
        ),
        StoreError::ReadOnly { .. } => Some(
            "nothing was changed; make the folder writable, or point `--db` at a writable place".into(),
        ),
        StoreError::DiskFull { .. } => Some(
            "free some space on that disk, or move the database to another disk with `--db`; files already verified stay verified".into(),
        ),
        StoreError::NotOurs { .. } => Some(
            "point `--db` at another file to start a fresh database; the damaged one was not changed".into(),
        ),
        _ => None,
    }
}

pub fn print_failure(failure: &Failure, output: Output) {
    if output.json {
        let body = serde_json::json!({
            "outcome": "failed",
            "exit_code": failure.code,
            "error": failure.one_line(),
        });
        println!("{body}");
    }
    tracing::error!(target: progress::EVENTS, "{}", failure.one_line());
    if failure.diagnosis().is_some() {
        tracing::debug!("{}", vault_mirror::report::chain(failure.error.as_ref()));
    }
    eprint!(
        "{}",
        super::terminal::for_stderr(&failure_text(failure, output.verbose > 0))
    );
}

/// One connection's entry in the `--json` object of a command over many
/// connections, when `failure` stopped the command there: `outcome` is
/// `failed` (or `refused` for a connection that needs re-linking).
pub fn connection_failure_json(
    command: &str,
    connection: &str,
    outcome: &str,
    out: &ArchiveLocation,
    failure: &Failure,
) -> serde_json::Value {
    serde_json::json!({
        "command": command,
        "connection": connection,
        "outcome": outcome,
        "exit_code": failure.code,
        "out": out,
        "error": failure.one_line(),
        "hints": failure.all_hints(),
    })
}

/// A failure as the lines `print_failure` shows: `error:`, `caused by:`,
/// `hint:`. A set-up mistake on object storage is one `error:` line and its
/// hint, its chain of causes only when `verbose`.
pub fn failure_text(failure: &Failure, verbose: bool) -> String {
    let mut text = String::new();
    let causes = vault_mirror::report::causes(failure.error.as_ref());
    let shown = match failure.diagnosis() {
        Some(diagnosis) => {
            text.push_str(&format!("error: {}\n", diagnosis.what));
            if verbose { &causes[..] } else { &[] }
        }
        None => &causes[..],
    };
    for (index, cause) in shown.iter().enumerate() {
        let lead = if index == 0 && text.is_empty() {
            "error:"
        } else {
            "  caused by:"
        };
        text.push_str(&format!("{lead} {cause}\n"));
    }
    for hint in &failure.all_hints() {
        text.push_str(&format!("hint: {hint}\n"));
    }
    text
}
