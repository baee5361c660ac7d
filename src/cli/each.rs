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

use serde_json::value::RawValue;
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
                result
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
        each.add(&connection, result);
    }
    let written = match Agency::open(settings) {
        Ok(agency) => agency.write_overview(&[], vault_mirror::now_ms()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        eprintln!(
            "warning: cannot write the overview {}: {}",
            settings.shown_out().join(INDEX).display(),
            vault_mirror::report::chain(&error)
        );
    }
    Ok(each.finish())
}

/// One command over every connection: their settings, and what each
/// reported.
struct Each<'a> {
    command: &'static str,
    settings: &'a Settings,
    connections: Vec<Settings>,
    reports: Vec<Box<RawValue>>,
    codes: Vec<i32>,
}

impl<'a> Each<'a> {
    fn new(command: &'static str, settings: &'a Settings, connections: Vec<Settings>) -> Self {
        Each {
            command,
            settings,
            connections,
            reports: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// Which connection the lines that follow belong to.
    fn header(&self, connection: &Settings) {
        if !self.settings.output.json && !self.settings.output.quiet {
            eprintln!("connection {}:", shown_id(connection));
        }
    }

    /// What the command found on `connection`: its exit code and report,
    /// or the failure that stopped it there.
    fn add(&mut self, connection: &Settings, result: Result<(i32, String), Failure>) {
        let (code, report) = match result {
            Ok((code, json)) => {
                // The connection's own report, with its id beside it.
                let mut body: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                if let Some(object) = body.as_object_mut() {
                    object.insert("connection".into(), shown_id(connection).into());
                }
                (code, body)
            }
            Err(failure) => {
                if self.settings.output.json {
                    tracing::error!("{}: {:#}", shown_id(connection), failure.error);
                } else {
                    print_failure(&failure, self.settings.output);
                }
                let body = connection_failure_json(
                    self.command,
                    &shown_id(connection),
                    "failed",
                    &connection.shown_out(),
                    &failure,
                );
                (failure.code, body)
            }
        };
        self.codes.push(code);
        if let Ok(raw) = serde_json::value::to_raw_value(&report) {
            self.reports.push(raw);
        }
    }

    /// Prints the whole (one JSON object with `--json`, else a closing
    /// line) and returns the exit code.
    fn finish(self) -> i32 {
        let code = worst(&self.codes);
        if self.settings.output.json {
            let body = serde_json::json!({
                "command": self.command,
                "out": self.settings.shown_out(),
                "exit_code": code,
                "connections": self.reports,
            });
            println!("{body}");
        } else if !self.settings.output.quiet {
            let clean = self.codes.iter().filter(|code| **code == 0).count();
            eprintln!(
                "{} {}: {clean} without a finding, {} with one (exit {code})",
                self.command,
                vault_mirror::counted(self.codes.len() as u64, "connection"),
                self.codes.len() - clean,
            );
        }
        code
    }
}

fn shown_id(connection: &Settings) -> String {
    connection.connection_id.clone().unwrap_or_default()
}

/// The exit code of many: the policy of [`ExitStatus::worst`] (1 if any
/// failed, a connection's 2 counting as its failure, else 4 if any was
/// refused, else 3 if any found something, else 0).
fn worst(codes: &[i32]) -> i32 {
    ExitStatus::worst(codes.iter().map(|code| ExitStatus::from_code(*code))).code()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_worst_exit_code_wins() {
        assert_eq!(super::worst(&[]), 0);
        assert_eq!(super::worst(&[0, 0]), 0);
        assert_eq!(super::worst(&[0, 3, 0]), 3);
        assert_eq!(super::worst(&[3, 4, 0]), 4);
        assert_eq!(super::worst(&[4, 1, 3]), 1);
        assert_eq!(super::worst(&[0, 2]), 1);
        assert_eq!(super::worst(&[3, 2]), 1);
    }
}
