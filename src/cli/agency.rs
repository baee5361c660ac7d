//! `mirror` of many connections in one process (an agency's run): the
//! run itself is the core's ([`vault_mirror::pipeline::many`]); this file
//! builds each connection's settings (its `[[connections]]` table, then
//! the flags) and reporter (its lines labelled, the events), wires the
//! progress display and the stop signal, and prints.
//!
//! [`finish`] is the one place where every connection's result is known:
//! it writes `<out>/index.html`, prints (one JSON object with `--json`),
//! and takes the exit code the core picked (1 if any connection failed,
//! else 4 if any was refused, else 3 if any is partial, else 0; 130/143
//! when stopped).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::FutureExt;
use serde::Serialize;
use vault_mirror::archive::agency::{Agency, INDEX, Registered};
use vault_mirror::exit::ExitStatus;
use vault_mirror::pipeline;
use vault_mirror::pipeline::many::{self, Connection, ConnectionFailure, Totals};
use vault_mirror::report::{Reporter, Stage, TransferId};
use vault_mirror::settings::Settings;

use super::args::{GlobalArgs, MirrorArgs};
use super::connections::{Chosen, settings_for};
use super::failure::{Failure, connection_failure_json, print_failure};
use super::mirror::print_summary;
use super::progress::{self, Progress};
use super::unattended::{ConnectionEnd, Watchers};

/// How one connection's run ended.
pub type RunResult = many::RunResult<Failure>;
/// One connection of the run and how it went.
pub type ConnectionRun = many::ConnectionRun<Failure>;
/// The whole run.
pub type ManyRun = many::ManyRun<Failure>;

impl ConnectionFailure for Failure {
    fn status(&self) -> ExitStatus {
        Failure::status(self)
    }
}

/// Mirrors `chosen`, each into its own archive under `base.local`.
pub async fn run(
    global: &GlobalArgs,
    mirror: &MirrorArgs,
    base: &Settings,
    chosen: Vec<Chosen>,
    watchers: Option<&Watchers>,
) -> Result<i32, Failure> {
    let mixed = one_archive_already(base);
    let Some(watchers) = watchers.filter(|_| !base.mirror.dry_run) else {
        if let Some(failure) = mixed {
            return Err(failure);
        }
        return dry_run(global, mirror, base, &chosen).await;
    };
    // What fails before any connection's run is the process's.
    let process = super::unattended::of_process(base);
    if let Some(failure) = mixed {
        return Err(watchers.fail(&process, failure).await);
    }
    // A run that cannot start creates nothing (but is measured and pinged).
    if let Err(error) = base.account_api_config() {
        return Err(watchers.fail(&process, error.into()).await);
    }
    let display = Arc::new(progress::display_for(base.output));
    let stop = super::stop::graceful_stop(display.clone()).shared();
    let connections: Vec<Connection<Failure>> = chosen
        .into_iter()
        .map(|connection| Connection {
            settings: settings_for(global, mirror, base, &connection.id),
            id: connection.id,
            username: connection.username,
        })
        .collect();
    let plan = Arc::new(WholePlans {
        connections: connections.len(),
        whole: AtomicUsize::new(0),
    });
    let reporter = |settings: &Settings, id: &str| -> Arc<dyn Reporter> {
        let labelled = Arc::new(Labelled {
            label: format!("[{}] ", super::table::shown(id, 40)),
            display: display.clone(),
            plan: plan.clone(),
            whole: AtomicBool::new(false),
        });
        watchers.reporter(labelled, settings)
    };
    let run = many::mirror_many(base, connections, stop, &reporter).await;
    display.finish();
    let status = finish(base, global, &run).await;
    let ends: Vec<ConnectionEnd> = run
        .runs
        .iter()
        .filter_map(|run| {
            let result = match &run.result {
                RunResult::Finished(summary) => Ok(summary.as_ref()),
                RunResult::Failed(failure) => Err(failure),
                RunResult::NotStarted => return None,
            };
            Some(ConnectionEnd {
                settings: run.settings.as_ref()?,
                result,
            })
        })
        .collect();
    watchers
        .finish(&ends, status.code(), &end_text(&run.runs))
        .await;
    Ok(status.code())
}

/// The end ping's body: each connection's outcome and its summary's
/// lines (or its error), in the order they were chosen.
fn end_text(runs: &[ConnectionRun]) -> String {
    let mut text = String::new();
    for run in runs {
        text.push_str(&format!("connection {}: {}\n", run.id, run.outcome()));
        match &run.result {
            RunResult::Finished(summary) => text.push_str(&super::mirror::end_text(Ok(summary))),
            RunResult::Failed(failure) => text.push_str(&super::mirror::end_text(Err(failure))),
            RunResult::NotStarted => {}
        }
    }
    text
}

/// `base.local` as the archive of one connection (today's layout): a run of
/// many would put their archives inside it, mixing the two layouts.
fn one_archive_already(base: &Settings) -> Option<Failure> {
    if base.archive.bucket().is_some() || !vault_mirror::settings::default_db(&base.local).is_file()
    {
        return None;
    }
    let out = base.local.display();
    Some(
        Failure::usage(
            anyhow::anyhow!(
                "{out} is the archive of one connection; a run of many connections puts each \
                 in a folder of its own, <out>/<connection id>/, and would mix the two layouts there"
            ),
        )
        .hint(format!(
            "give the agency's archive a folder of its own (`--out …`), or name one \
             `--connection` to go on mirroring {out} as it is"
        )),
    )
}

/// The one place where every connection's result is known: the registry
/// and `<out>/index.html`, what is printed, and the exit status.
pub async fn finish(base: &Settings, global: &GlobalArgs, run: &ManyRun) -> ExitStatus {
    let status = run.status();
    let index = write_index(base, &run.runs).await;
    let totals = run.totals();
    if base.output.json {
        let object = ManyJson {
            command: "mirror",
            outcome: run.outcome(),
            exit_code: status,
            out: &base.local,
            shard: global.shard.map(|shard| shard.to_string()),
            connections: run.runs.iter().map(connection_json).collect(),
            totals,
        };
        println!("{}", serde_json::to_string(&object).unwrap_or_default());
    } else {
        print_runs(base, &run.runs, &totals, global);
    }
    if let Err(error) = index {
        eprintln!(
            "warning: cannot write {}: {}",
            base.archive.shown_file(INDEX),
            vault_mirror::report::chain(&error)
        );
    }
    status
}

/// Registers the run's connections and writes `<out>/index.html` from
/// every archive there (the other shards' too, on a shared disk or bucket);
/// nothing where no run created the folder.
async fn write_index(
    base: &Settings,
    runs: &[ConnectionRun],
) -> Result<(), vault_mirror::archive::ArchiveError> {
    if base.archive.bucket().is_none() && !base.local.is_dir() {
        return Ok(());
    }
    Agency::open(base)?
        .write_overview(&registered(runs), vault_mirror::now_ms())
        .await
        .map(drop)
}

/// The run's connections as the registry names them.
fn registered(runs: &[ConnectionRun]) -> Vec<Registered> {
    runs.iter()
        .map(|run| Registered {
            id: run.id.clone(),
            folder: vault_mirror::names::safe_name(&run.id),
            username: run.username.clone(),
        })
        .collect()
}

/// The `--json` object of a run of many connections.
#[derive(Serialize)]
struct ManyJson<'a> {
    command: &'static str,
    outcome: &'static str,
    exit_code: ExitStatus,
    out: &'a Path,
    shard: Option<String>,
    /// Each as its own object, its fields in their own order.
    connections: Vec<Box<serde_json::value::RawValue>>,
    totals: Totals,
}

/// A connection's entry: its summary, or what stopped it.
fn connection_json(run: &ConnectionRun) -> Box<serde_json::value::RawValue> {
    let entry =
        match &run.result {
            RunResult::Finished(summary) => serde_json::value::to_raw_value(summary),
            RunResult::Failed(failure) => serde_json::value::to_raw_value(
                &connection_failure_json("mirror", &run.id, run.outcome(), &run.out, failure),
            ),
            RunResult::NotStarted => serde_json::value::to_raw_value(&serde_json::json!({
                "command": "mirror",
                "connection": run.id,
                "outcome": run.outcome(),
                "exit_code": serde_json::Value::Null,
                "out": run.out,
            })),
        };
    entry.unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

fn print_runs(base: &Settings, runs: &[ConnectionRun], totals: &Totals, global: &GlobalArgs) {
    if runs.is_empty() {
        let shard = global
            .shard
            .map(|shard| format!(" in shard {shard}"))
            .unwrap_or_default();
        eprintln!("no connection to mirror{shard}");
        return;
    }
    for run in runs {
        match &run.result {
            RunResult::Finished(summary) => {
                let output = run
                    .settings
                    .as_ref()
                    .map_or(base.output, |settings| settings.output);
                print_summary(summary, output);
            }
            RunResult::Failed(failure) => {
                eprintln!("connection {}: {}", run.id, run.outcome());
                print_failure(failure, base.output);
            }
            RunResult::NotStarted if !base.output.quiet => {
                eprintln!(
                    "connection {}: not started (stopped before its turn)",
                    run.id
                );
            }
            RunResult::NotStarted => {}
        }
    }
    if !base.output.quiet {
        let line = format!(
            "{}: {} complete, {} partial, {} refused, {} failed, {} interrupted, {} not started; \
             {} downloaded ({}) in {:.1}s; overview in {}",
            vault_mirror::counted(totals.connections as u64, "connection"),
            totals.complete,
            totals.partial,
            totals.refused,
            totals.failed,
            totals.interrupted,
            totals.not_started,
            totals.downloaded,
            vault_mirror::human_bytes(totals.bytes),
            totals.seconds,
            base.local.join(INDEX).display()
        );
        eprintln!("{}", super::terminal::for_stderr(&line));
    }
}

/// `--dry-run` of many connections: each connection's plan, one after
/// another (with `--json`, one object holding them all).
async fn dry_run(
    global: &GlobalArgs,
    mirror: &MirrorArgs,
    base: &Settings,
    chosen: &[Chosen],
) -> Result<i32, Failure> {
    let mut plans = Vec::new();
    for connection in chosen {
        let settings = settings_for(global, mirror, base, &connection.id)?;
        if base.output.json {
            let display = Arc::new(progress::messages_for(base.output));
            let plan = pipeline::dry_run::dry_run(&settings, display).await?;
            plans.push(serde_json::to_value(&plan).unwrap_or_default());
        } else {
            eprintln!("connection {}:", connection.id);
            super::mirror::run_dry(&settings).await?;
        }
    }
    if base.output.json {
        let object =
            serde_json::json!({"command": "mirror", "dry_run": true, "connections": plans});
        println!("{object}");
    }
    Ok(0)
}

/// A connection's reporter: the process's display (one overall bar for
/// every connection), each line it shows beginning with the connection's id.
struct Labelled {
    label: String,
    display: Arc<Progress>,
    /// How many of the run's connections have their plan whole.
    plan: Arc<WholePlans>,
    /// Whether this connection's plan is whole (or its run ended).
    whole: AtomicBool,
}

/// The display's totals are final once every connection's plan is whole
/// or its run ended (then it adds nothing more); until then they stay
/// lower bounds (`≥`, no ETA).
struct WholePlans {
    connections: usize,
    whole: AtomicUsize,
}

impl Labelled {
    /// This connection adds nothing more: the last one to say so makes
    /// the display's totals final.
    fn plan_whole(&self) {
        if !self.whole.swap(true, Ordering::Relaxed)
            && self.plan.whole.fetch_add(1, Ordering::Relaxed) + 1 == self.plan.connections
        {
            self.display.on_planned();
        }
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        self.plan_whole();
    }
}

impl Reporter for Labelled {
    fn on_stage(&self, stage: Stage, detail: &str) {
        self.display
            .on_stage(stage, &format!("{}{detail}", self.label));
    }
    fn on_queued(&self, files: u64, bytes: u64) {
        if self.whole.swap(false, Ordering::Relaxed) {
            self.plan.whole.fetch_sub(1, Ordering::Relaxed);
        }
        self.display.on_queued(files, bytes);
    }
    /// Passed on only with the last connection's: one connection's plan
    /// being whole says nothing of the others'.
    fn on_planned(&self) {
        self.plan_whole();
    }
    fn on_start(&self, id: TransferId, name: &str, size: u64, resumed_from: u64) {
        self.display
            .on_start(id, &format!("{}{name}", self.label), size, resumed_from);
    }
    fn on_bytes(&self, id: TransferId, new_bytes: u64) {
        self.display.on_bytes(id, new_bytes);
    }
    fn on_rewind(&self, id: TransferId, lost_bytes: u64) {
        self.display.on_rewind(id, lost_bytes);
    }
    fn on_done(&self, id: TransferId) {
        self.display.on_done(id);
    }
    fn on_resign(&self, what: &str, reason: &str) {
        self.display
            .on_resign(&format!("{}{what}", self.label), reason);
    }
    fn on_retry(&self, what: &str, tries_left: usize, reason: &str) {
        self.display
            .on_retry(&format!("{}{what}", self.label), tries_left, reason);
    }
    fn on_failed(&self, what: &str, reason: &str) {
        self.display
            .on_failed(&format!("{}{what}", self.label), reason);
    }
    fn on_abandoned(&self, id: TransferId) {
        self.display.on_abandoned(id);
    }
    fn on_note(&self, text: &str) {
        self.display.on_note(&format!("{}{text}", self.label));
    }
}
