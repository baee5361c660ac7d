//! `verify` and `export` on an agency's archive (`<out>/<connection id>/`
//! each, see `cli::agency`): the command runs on every connection's
//! archive in turn, each under its own lock and recorded in its own
//! history, and what they found is told once.
//!
//! Invariants: one connection's failure (a run holding its lock, a
//! damaged database) is reported and the others are still checked; the
//! exit code is the worst of the connections' (`ExitStatus::worst`: 1,
//! else 4, else 3, else 0), as `mirror` picks it; `--json` prints one object with a
//! `connections` array holding each connection's own report.

use vault_mirror::archive::agency::{Agency, INDEX};
use vault_mirror::exit::ExitStatus;
use vault_mirror::settings::Settings;

use super::args::VerifyArgs;
use super::failure::{Failure, connection_failure_json, print_failure};

/// The connections of the agency's archive at `settings`' `--out` (a
/// folder, or an `s3://` prefix), each as its own archive's settings; or
/// `None` when it is not an agency's archive.
pub async fn agency_connections(settings: &Settings) -> Result<Option<Vec<Settings>>, Failure> {
    let Some(agency) = Agency::find(settings).await.map_err(Failure::failed)? else {
        return Ok(None);
    };
    let connections = agency.connections().await.map_err(Failure::failed)?;
    Ok(Some(
        connections
            .into_iter()
            .map(|(_, settings)| settings)
            .collect(),
    ))
}

/// `verify` on every connection of an agency's archive.
pub async fn verify(
    settings: &Settings,
    connections: Vec<Settings>,
    args: &VerifyArgs,
) -> Result<i32, Failure> {
    let mut each = Each::new("verify", settings, connections);
    for connection in each.connections.clone() {
        each.header(&connection);
        let started_at = vault_mirror::now_ms();
        let result = match super::lock::lock(&connection, "verify") {
            Ok(lock) => {
                let result = super::verify::run_report(&connection, args).await;
                drop(lock);
                result.map(|report| (report.exit_code, serde_json::to_value(&report)))
            }
            Err(failure) => {
                super::history::record_refused(&connection, "verify", started_at, &failure);
                Err(failure)
            }
        };
        each.add(&connection, result);
    }
    Ok(each.finish())
}

/// `export` on every connection of an agency's archive, then its
/// overview page again (it links into each connection's gallery).
pub async fn export(settings: &Settings, connections: Vec<Settings>) -> Result<i32, Failure> {
    let mut each = Each::new("export", settings, connections);
    for connection in each.connections.clone() {
        each.header(&connection);
        let result = super::export::run_report(&connection).await;
        let result = result.map(|report| (report.exit_code, Ok(super::export::json(&report))));
        each.add(&connection, result);
    }
    let written = match Agency::open(settings) {
        Ok(agency) => agency.write_overview(&[], vault_mirror::now_ms()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        eprintln!(
            "warning: cannot write the overview {}: {}",
            settings.archive.shown_file(INDEX),
            vault_mirror::report::chain(&error)
        );
    }
    Ok(each.finish())
}

/// A connection's report as JSON (its keys in alphabetical order, as a
/// `serde_json::Value` writes them).
type Report = Result<serde_json::Value, serde_json::Error>;

/// One command over every connection: their settings, and what each
/// reported.
struct Each<'a> {
    command: &'static str,
    settings: &'a Settings,
    connections: Vec<Settings>,
    reports: Vec<serde_json::Value>,
    statuses: Vec<ExitStatus>,
}

impl<'a> Each<'a> {
    fn new(command: &'static str, settings: &'a Settings, connections: Vec<Settings>) -> Self {
        Each {
            command,
            settings,
            connections,
            reports: Vec::new(),
            statuses: Vec::new(),
        }
    }

    /// Which connection the lines that follow belong to.
    fn header(&self, connection: &Settings) {
        if !self.settings.output.json && !self.settings.output.quiet {
            eprintln!("connection {}:", shown_id(connection));
        }
    }

    /// What the command found on `connection`: its exit status and
    /// report (as JSON), or the failure that stopped it there.
    fn add(&mut self, connection: &Settings, result: Result<(ExitStatus, Report), Failure>) {
        let (status, report) = match result {
            Ok((status, report)) => {
                // The connection's own report, with its id beside it.
                let mut body = report.unwrap_or_default();
                if let Some(object) = body.as_object_mut() {
                    object.insert("connection".into(), shown_id(connection).into());
                }
                (status, body)
            }
            Err(failure) => {
                if self.settings.output.json {
                    tracing::error!("{}: {}", shown_id(connection), failure.one_line());
                } else {
                    print_failure(&failure, self.settings.output);
                }
                let body = connection_failure_json(
                    self.command,
                    &shown_id(connection),
                    "failed",
                    &connection.archive,
                    &failure,
                );
                (failure.status(), body)
            }
        };
        self.statuses.push(status);
        self.reports.push(report);
    }

    /// Prints the whole (one JSON object with `--json`, else a closing
    /// line) and returns the exit code.
    fn finish(self) -> i32 {
        let code = ExitStatus::worst(self.statuses.iter().copied()).code();
        if self.settings.output.json {
            let body = serde_json::json!({
                "command": self.command,
                "out": self.settings.archive.clone(),
                "exit_code": code,
                "connections": self.reports,
            });
            println!("{body}");
        } else if !self.settings.output.quiet {
            let clean = self
                .statuses
                .iter()
                .filter(|status| **status == ExitStatus::Ok)
                .count();
            eprintln!(
                "{} {}: {clean} without a finding, {} with one (exit {code})",
                self.command,
                vault_mirror::counted(self.statuses.len() as u64, "connection"),
                self.statuses.len() - clean,
            );
        }
        code
    }
}

fn shown_id(connection: &Settings) -> String {
    connection.connection_id.clone().unwrap_or_default()
}
