//! `status`: what the local mirror holds, per list, and how the last runs
//! went. Reads only the database (and peeks at the lock): instant, offline,
//! and safe while a run is going on.

use serde::Serialize;
use vault_mirror::archive::bucket::snapshot::restore_state;
use vault_mirror::lock::{Holder, current_holder};
use vault_mirror::settings::Settings;
use vault_mirror::store::{ArchiveFigures, CheckFigures, ListFigures, RunRecord, Store};

use super::failure::Failure;
use super::table::{Align, Table, shown};

#[derive(Serialize)]
struct Status<'a> {
    command: &'static str,
    out: &'a vault_mirror::location::ArchiveLocation,
    db: &'a std::path::Path,
    lists: Vec<ListFigures>,
    total: ArchiveFigures,
    /// The latest run of each command, the most recent first.
    runs: Vec<RunStatus>,
    /// The last `mirror` run that ended with exit code 0.
    last_success: Option<RunRecord>,
    /// The process using the archive right now, if any.
    running: Option<Running>,
    /// How old the oldest check is (`verify`), and how long a full cycle
    /// takes at the pace of the last runs.
    checks: CheckFigures,
}

#[derive(Serialize)]
struct RunStatus {
    #[serde(flatten)]
    record: RunRecord,
    /// `complete`, `partial`, `failed`, … as recorded; `running` while it
    /// runs; `interrupted` if it never finished.
    state: String,
    seconds: Option<f64>,
}

#[derive(Serialize)]
struct Running {
    pid: Option<u32>,
    host: Option<String>,
    command: Option<String>,
    started_at: Option<i64>,
}

pub fn run(settings: &Settings) -> Result<i32, Failure> {
    let store = open(settings)?;
    let holder = current_holder(&settings.local);
    let runs = store
        .last_runs()?
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let state = match (&record.outcome, record.finished_at) {
                (Some(outcome), _) if outcome == "refused" => {
                    "refused: another run held the archive".to_owned()
                }
                (Some(outcome), _) => outcome.clone(),
                // Only the most recent run can be the one going on.
                (None, None) if index == 0 && holder.is_some() => "running".to_owned(),
                (None, _) => "interrupted".to_owned(),
            };
            let seconds = record
                .finished_at
                .map(|finished| (finished - record.started_at) as f64 / 1000.0);
            RunStatus {
                record,
                state,
                seconds,
            }
        })
        .collect();
    let shown = settings.archive.clone();
    let status = Status {
        command: "status",
        out: &shown,
        db: &settings.db,
        lists: store.list_figures()?,
        total: store.archive_figures()?,
        runs,
        last_success: store.last_success("mirror")?,
        running: holder.map(|holder: Holder| Running {
            pid: holder.pid,
            host: holder.host,
            command: holder.command,
            started_at: holder.started_at,
        }),
        checks: store.check_figures()?,
    };
    if settings.output.json {
        println!("{}", serde_json::to_string(&status).unwrap_or_default());
    } else {
        print!(
            "{}",
            super::terminal::for_stdout(&render(&status, vault_mirror::now_ms()))
        );
    }
    Ok(0)
}

/// `status` of an agency's archive whose rows were read (`rows`).
pub fn print_many(
    settings: &Settings,
    rows: &[vault_mirror::archive::agency::ConnectionRow],
) -> i32 {
    let out = settings.archive.clone();
    if settings.output.json {
        let body = serde_json::json!({"command": "status", "out": out, "connections": rows});
        println!("{body}");
    } else {
        print!(
            "{}",
            super::terminal::for_stdout(&render_many(&out, rows, vault_mirror::now_ms()))
        );
    }
    0
}

fn render_many(
    out: &vault_mirror::location::ArchiveLocation,
    rows: &[vault_mirror::archive::agency::ConnectionRow],
    now: i64,
) -> String {
    let mut table = Table::new(&[
        ("CONNECTION", Align::Left),
        ("USERNAME", Align::Left),
        ("MEDIA", Align::Right),
        ("VERIFIED", Align::Right),
        ("PENDING", Align::Right),
        ("FAILED", Align::Right),
        ("BYTES", Align::Right),
        ("LAST RUN", Align::Left),
        ("OUTCOME", Align::Left),
    ]);
    let mut total = ArchiveFigures::default();
    for row in rows {
        let figures = &row.figures;
        let (when, outcome) = match &row.last_run {
            Some(run) => (
                vault_mirror::time_ago(run.finished_at.unwrap_or(run.started_at), now),
                vault_mirror::archive::agency::run_outcome(run),
            ),
            None => (String::new(), "no run yet".to_owned()),
        };
        table.row(vec![
            shown(&row.id, 32),
            shown(row.username.as_deref().unwrap_or(""), 24),
            figures.members.to_string(),
            figures.verified.to_string(),
            figures.pending.to_string(),
            figures.failed.to_string(),
            vault_mirror::human_bytes(figures.bytes),
            when,
            outcome,
        ]);
        total.members += figures.members;
        total.verified += figures.verified;
        total.pending += figures.pending;
        total.failed += figures.failed;
        total.bytes += figures.bytes;
    }
    table.row(vec![
        "all".into(),
        vault_mirror::counted(rows.len() as u64, "connection"),
        total.members.to_string(),
        total.verified.to_string(),
        total.pending.to_string(),
        total.failed.to_string(),
        vault_mirror::human_bytes(total.bytes),
        String::new(),
        String::new(),
    ]);
    format!(
        "archive  {} (one archive per connection; `status --out {}/<connection>` for one)

{}",
        out,
        out,
        table.render()
    )
}

/// On object storage, a machine with no database for the archive starts
/// from the snapshot in the bucket (as `mirror` does).
pub async fn restore(settings: &Settings) -> Result<(), Failure> {
    let restored = restore_state(settings).await.map_err(|error| {
        if error.is_config() {
            Failure::usage(error)
        } else {
            Failure::failed(error)
        }
    })?;
    if restored {
        tracing::info!("no local state database: started from the archive's snapshot");
    }
    Ok(())
}

/// The archive's database, which must exist: `status` never creates one.
pub fn open(settings: &Settings) -> Result<Store, Failure> {
    match Store::open_existing(&settings.db)? {
        Some(store) => Ok(store),
        None if settings.archive.bucket().is_none()
            && vault_mirror::archive::agency::is_agency(&settings.local) =>
        {
            let out = settings.local.display();
            Err(Failure::usage(
                anyhow::anyhow!(
                    "{out} holds one archive per connection (an agency's), not one archive"
                ),
            )
            .hint(format!(
                "give one connection's folder: `--out {out}/<connection id>`; `vault-mirror status --out {out}` lists them"
            )))
        }
        None => Err(Failure::usage(
            anyhow::anyhow!(
                "no archive at {}: there is no database at {}",
                settings.archive,
                settings.db.display()
            ),
        )
        .hint(format!(
            "run `vault-mirror mirror --out {}` to create it, or point `--out` (or `--db`) at an existing archive",
            settings.archive
        ))),
    }
}

fn render(status: &Status<'_>, now: i64) -> String {
    let mut text = format!(
        "archive  {}\ndatabase {}\n\n",
        status.out,
        status.db.display()
    );
    if status.lists.is_empty() {
        text.push_str("no lists yet: run `vault-mirror mirror`\n");
    } else {
        let mut table = Table::new(&[
            ("LIST", Align::Left),
            ("NAME", Align::Left),
            ("MEMBERS", Align::Right),
            ("VERIFIED", Align::Right),
            ("PENDING", Align::Right),
            ("FAILED", Align::Right),
            ("GONE", Align::Right),
            ("BYTES", Align::Right),
        ]);
        for list in &status.lists {
            let mut name = shown(&list.name, 32);
            if list.gone_from_connection_at.is_some() {
                name.push_str(" (gone)");
            }
            table.row(vec![
                shown(&list.id, 24),
                name,
                list.members.to_string(),
                list.verified.to_string(),
                list.pending.to_string(),
                list.failed.to_string(),
                list.gone.to_string(),
                vault_mirror::human_bytes(list.bytes),
            ]);
        }
        let total = &status.total;
        table.row(vec![
            "all".into(),
            "(each media once)".into(),
            total.members.to_string(),
            total.verified.to_string(),
            total.pending.to_string(),
            total.failed.to_string(),
            total.gone.to_string(),
            vault_mirror::human_bytes(total.bytes),
        ]);
        text.push_str(&table.render());
        text.push_str(
            "\nMEMBERS and GONE count media (GONE: left the list upstream; files kept);\n\
             VERIFIED, PENDING and FAILED count files (a media's full and thumb are two).\n",
        );
    }
    text.push('\n');
    text.push_str(&render_runs(status, now));
    text.push_str(&format!(
        "checks: {}\n",
        checks_sentence(&status.checks, now)
    ));
    text
}

/// How old the archive's checks are, in a sentence: "every file checked
/// within the last 23 days; at the last runs' pace (…) a full cycle takes
/// about 9 days".
pub fn checks_sentence(checks: &CheckFigures, now: i64) -> String {
    let Some(oldest) = checks.oldest_check_at.filter(|_| checks.files > 0) else {
        return "no verified files to check yet".to_owned();
    };
    let within = span_up(now - oldest);
    let mut text = match checks.never_checked {
        0 => format!("every file checked within the last {within}"),
        never if never == checks.files => format!(
            "no file re-read by `verify` yet; every file hashed within the last {within}, as it was written"
        ),
        never => format!(
            "every file checked within the last {within}, {} of them only as they were written (not yet re-read by `verify`)",
            vault_mirror::counted(never, "file")
        ),
    };
    match &checks.pace {
        Some(pace) => {
            let per_run = vault_mirror::human_bytes(pace.bytes_per_run);
            match (pace.seconds_between_runs, pace.cycle_seconds) {
                (Some(between), Some(cycle)) => text.push_str(&format!(
                    "; at the last {} runs' pace ({per_run} a run, one every {}) a full cycle takes about {}",
                    pace.runs,
                    span_about(between),
                    span_about(cycle)
                )),
                _ => text.push_str(&format!(
                    "; at the last run's pace ({per_run} a run) a full cycle takes {}",
                    vault_mirror::counted(pace.cycle_runs, "run")
                )),
            }
        }
        None => {
            text.push_str("; run `vault-mirror verify --budget 30m` to re-hash the oldest first")
        }
    }
    text
}

/// A time span in milliseconds as a bound: `3 minutes`, `5 hours`, `23
/// days` (rounded up, so "within" stays true).
fn span_up(millis: i64) -> String {
    let seconds = (millis.max(0) as f64 / 1000.0).max(1.0);
    let (count, unit) = if seconds < 3_600.0 {
        ((seconds / 60.0).ceil(), "minute")
    } else if seconds < 86_400.0 * 2.0 {
        ((seconds / 3_600.0).ceil(), "hour")
    } else {
        ((seconds / 86_400.0).ceil(), "day")
    };
    // "within the last minute", not "the last 1 minute".
    if count == 1.0 {
        unit.to_owned()
    } else {
        plural(count, unit)
    }
}

/// A time span in seconds, rounded: `40 seconds`, `12 minutes`, `9 days`.
fn span_about(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    let (count, unit) = if seconds < 90.0 {
        (seconds.round().max(1.0), "second")
    } else if seconds < 5_400.0 {
        ((seconds / 60.0).round(), "minute")
    } else if seconds < 86_400.0 * 2.0 {
        ((seconds / 3_600.0).round(), "hour")
    } else {
        ((seconds / 86_400.0).round(), "day")
    };
    plural(count, unit)
}

fn plural(count: f64, unit: &str) -> String {
    if count == 1.0 {
        format!("1 {unit}")
    } else {
        format!("{count:.0} {unit}s")
    }
}

/// The lines about runs: the one going on, the last of each command, and
/// the last success.
fn render_runs(status: &Status<'_>, now: i64) -> String {
    let mut text = String::new();
    if let Some(running) = &status.running {
        let holder = Holder {
            pid: running.pid,
            host: running.host.clone(),
            command: running.command.clone(),
            started_at: running.started_at,
        };
        text.push_str(&format!("running now: {}\n", holder.describe()));
    }
    if status.runs.is_empty() {
        text.push_str("no runs yet\n");
    }
    for (index, run) in status.runs.iter().enumerate() {
        let title = if index == 0 { "last run" } else { "last    " };
        let record = &run.record;
        let when = record.finished_at.unwrap_or(record.started_at);
        let verb = if record.finished_at.is_some() {
            "finished"
        } else {
            "started"
        };
        let (exit, took) = exit_and_took(record.exit_code, run.seconds);
        text.push_str(&format!(
            "{title} {} #{}: {}{exit}, {verb} {} ({}){took}\n",
            record.command,
            record.run_id,
            run.state,
            vault_mirror::utc_time(when),
            vault_mirror::time_ago(when, now),
        ));
    }
    match &status.last_success {
        Some(record) => {
            let when = record.finished_at.unwrap_or(record.started_at);
            text.push_str(&format!(
                "last success {} #{}: finished {} ({})\n",
                record.command,
                record.run_id,
                vault_mirror::utc_time(when),
                vault_mirror::time_ago(when, now),
            ));
        }
        None if !status.runs.is_empty() => {
            text.push_str("last success: none (no `mirror` run has ended with exit 0)\n");
        }
        None => {}
    }
    text
}

/// ` (exit 3)` and `, took 1.2s` for a run's line (empty where unknown).
pub fn exit_and_took(exit_code: Option<i32>, seconds: Option<f64>) -> (String, String) {
    let exit = exit_code
        .map(|code| format!(" (exit {code})"))
        .unwrap_or_default();
    let took = seconds
        .map(|seconds| format!(", took {}", duration_text(seconds)))
        .unwrap_or_default();
    (exit, took)
}

/// `40ms`, `12.3s`, `4m 05s`, `2h 10m`.
pub fn duration_text(seconds: f64) -> String {
    let whole = std::time::Duration::try_from_secs_f64(seconds.max(0.0).round())
        .map_or(u64::MAX, |duration| duration.as_secs());
    if seconds < 1.0 {
        return format!("{:.0}ms", seconds.max(0.0) * 1000.0);
    }
    match whole {
        0..60 => format!("{:.1}s", seconds.max(0.0)),
        60..3_600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3_600, whole % 3_600 / 60),
    }
}
