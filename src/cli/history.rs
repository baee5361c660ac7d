//! `history [--limit N]`: the runs recorded in the archive, newest first;
//! `history RUN_ID`: what that run added, changed, removed and failed.
//! Reads only the database (like `status`, which on object storage a
//! machine without one first restores from the archive's snapshot):
//! instant, offline, and safe while a run is going on; it records nothing
//! itself.

use serde::Serialize;
use vault_mirror::lock::current_holder;
use vault_mirror::settings::Settings;
use vault_mirror::store::{RunChange, RunHistory, Store};

use super::args::HistoryArgs;
use super::failure::Failure;
use super::status::{self, duration_text, exit_and_took};
use super::table::{Align, Table, shown};

#[derive(Serialize)]
struct RunRow {
    #[serde(flatten)]
    run: RunHistory,
    /// The outcome as recorded; `running` while it runs; `interrupted` if
    /// it never finished (killed).
    state: String,
    seconds: Option<f64>,
}

pub fn run(settings: &Settings, args: &HistoryArgs) -> Result<i32, Failure> {
    let store = status::open(settings)?;
    if let Some(run_id) = args.run_id {
        let running = running_run(settings, &store);
        let row = |run: RunHistory| row_of(run, running);
        let Some(run) = store.run_history(run_id)? else {
            return Err(Failure::usage(anyhow::anyhow!(
                "the archive {} has no run #{run_id}",
                settings.local.display()
            ))
            .hint("`vault-mirror history` lists the runs with their ids"));
        };
        let changes = store.run_changes(run_id)?;
        let run = row(run);
        if settings.output.json {
            let body = serde_json::json!({
                "command": "history",
                "run": run,
                "changes": changes,
            });
            println!("{body}");
        } else {
            print!(
                "{}",
                super::terminal::for_stdout(&render_run(&run, &changes, vault_mirror::now_ms()))
            );
        }
        return Ok(0);
    }
    let runs = runs_of(settings, &store, args.limit)?;
    if settings.output.json {
        let body = serde_json::json!({ "command": "history", "runs": runs });
        println!("{body}");
    } else {
        print!(
            "{}",
            super::terminal::for_stdout(&format!(
                "{}\n`vault-mirror history RUN` {RUN_HINT}\n",
                render_runs(&runs)
            ))
        );
    }
    Ok(0)
}

/// `history` on an agency's archive: each connection's recent runs, under
/// its id (`--json`: `{"command": "history", "connections": [{"connection",
/// "runs"}]}`). On object storage a connection this machine has no
/// database for starts from its snapshot; one without either shows no runs.
pub async fn run_many(
    settings: &Settings,
    connections: &[Settings],
    args: &HistoryArgs,
) -> Result<i32, Failure> {
    if args.run_id.is_some() {
        let out = settings.archive.to_string();
        return Err(Failure::usage(anyhow::anyhow!(
            "{out} holds one archive per connection: a run's number is one connection's"
        ))
        .hint(format!(
            "give that connection's folder: `vault-mirror history RUN --out {out}/<connection id>`"
        )));
    }
    let mut all = Vec::new();
    let mut text = String::new();
    for connection in connections {
        let id = connection.connection_id.clone().unwrap_or_default();
        status::restore(connection).await?;
        let runs = match Store::open_existing(&connection.db)? {
            Some(store) => runs_of(connection, &store, args.limit)?,
            None => Vec::new(),
        };
        text.push_str(&format!("connection {id}:\n"));
        if runs.is_empty() {
            text.push_str("  no runs yet\n");
        } else {
            text.push_str(&render_runs(&runs));
        }
        all.push(serde_json::json!({ "connection": id, "runs": runs }));
    }
    if settings.output.json {
        let body = serde_json::json!({ "command": "history", "connections": all });
        println!("{body}");
    } else {
        let out = settings.archive.to_string();
        print!(
            "{}",
            super::terminal::for_stdout(&format!(
                "{text}\n`vault-mirror history RUN --out {out}/<connection id>` {RUN_HINT}\n"
            ))
        );
    }
    Ok(0)
}

/// The `limit` newest runs of the archive of `settings`, whose database
/// is `store`.
fn runs_of(settings: &Settings, store: &Store, limit: u32) -> Result<Vec<RunRow>, Failure> {
    let running = running_run(settings, store);
    Ok(store
        .history(limit)?
        .into_iter()
        .map(|run| row_of(run, running))
        .collect())
}

/// The run going on now, if the archive's lock says one is: the newest.
fn running_run(settings: &Settings, store: &Store) -> Option<i64> {
    current_holder(&settings.local)?;
    store.history(1).ok()?.first().map(|run| run.record.run_id)
}

/// `run` as `history` shows it (`running` if it is the run going on).
fn row_of(run: RunHistory, running: Option<i64>) -> RunRow {
    let state = state_of(&run, running == Some(run.record.run_id));
    RunRow {
        seconds: run.seconds(),
        state,
        run,
    }
}

/// Records a run of `command` that the archive's lock refused, in the
/// archive's history (when the archive has a database: nothing is created
/// for it). Best effort: the refusal itself is what the user must see.
pub fn record_refused(settings: &Settings, command: &str, started_at: i64, failure: &Failure) {
    if let Ok(Some(store)) = Store::open_existing(&settings.db) {
        let error = failure.one_line();
        let _ = store.record_refused_run(
            command,
            started_at,
            vault_mirror::now_ms(),
            failure.code,
            &error,
        );
    }
}

/// The outcome, `running` or `interrupted` (a run without an end).
fn state_of(run: &RunHistory, going_on: bool) -> String {
    match (&run.record.outcome, run.record.finished_at) {
        (Some(outcome), _) => outcome.clone(),
        (None, None) if going_on => "running".to_owned(),
        (None, _) => "interrupted".to_owned(),
    }
}

fn figure(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// `2026-12-02 05:42` (UTC, to the minute): the table of runs fits 80
/// columns; `history RUN` gives the second.
fn started_minute(epoch_ms: i64) -> String {
    let time = vault_mirror::utc_time(epoch_ms);
    time.get(..16).map_or(time.clone(), str::to_owned)
}

fn render_runs(runs: &[RunRow]) -> String {
    if runs.is_empty() {
        return "no runs yet\n".to_owned();
    }
    let mut table = Table::new(&[
        ("RUN", Align::Right),
        ("COMMAND", Align::Left),
        ("STARTED UTC", Align::Left),
        ("TOOK", Align::Right),
        ("OUTCOME", Align::Left),
        ("EXIT", Align::Right),
        ("FILES", Align::Right),
        ("BYTES", Align::Right),
        ("FAIL", Align::Right),
        ("PEND", Align::Right),
    ]);
    let mut errors = Vec::new();
    for row in runs {
        let run = &row.run;
        let record = &run.record;
        table.row(vec![
            record.run_id.to_string(),
            record.command.clone(),
            started_minute(record.started_at),
            row.seconds.map(duration_text).unwrap_or_default(),
            row.state.clone(),
            record
                .exit_code
                .map(|code| code.to_string())
                .unwrap_or_default(),
            figure(run.downloaded),
            run.bytes
                .map_or_else(|| "-".to_owned(), vault_mirror::human_bytes),
            figure(run.failed),
            figure(run.pending),
        ]);
        if let Some(error) = &run.error {
            errors.push(format!("  #{}: {}\n", record.run_id, shown(error, 200)));
        }
    }
    let mut text = table.render();
    if !errors.is_empty() {
        text.push_str("\nerrors:\n");
        text.extend(errors);
    }
    text
}

/// What to run next, under a list of runs.
const RUN_HINT: &str = "lists what a run added, changed, removed and failed";

fn render_run(row: &RunRow, changes: &[RunChange], now: i64) -> String {
    let run = &row.run;
    let record = &run.record;
    let (exit, took) = exit_and_took(record.exit_code, row.seconds);
    let mut text = format!(
        "run #{} {}: {}{exit}, started {} ({}){took}\n",
        record.run_id,
        record.command,
        row.state,
        vault_mirror::utc_time(record.started_at),
        vault_mirror::time_ago(record.started_at, now),
    );
    if let (Some(downloaded), Some(bytes)) = (run.downloaded, run.bytes) {
        text.push_str(&format!(
            "  {downloaded} downloaded ({}), {} failed, {} pending\n",
            vault_mirror::human_bytes(bytes),
            figure(run.failed),
            figure(run.pending)
        ));
    }
    if let Some(error) = &run.error {
        text.push_str(&format!("  error: {}\n", shown(error, 500)));
    }
    for (kind, title) in [
        ("added", "added"),
        ("changed", "changed upstream"),
        ("gone", "gone upstream"),
        ("pruned", "pruned"),
        ("failed", "failed"),
        ("pending", "pending upstream"),
    ] {
        let items: Vec<&RunChange> = changes
            .iter()
            .filter(|change| change.kind == kind)
            .collect();
        if items.is_empty() {
            continue;
        }
        text.push_str(&format!("{title} ({}):\n", items.len()));
        for change in items {
            text.push_str(&format!("  {}\n", describe(change)));
        }
    }
    if changes.is_empty() && record.finished_at.is_some() {
        text.push_str("nothing added, changed, removed or failed\n");
    }
    text
}

/// One change on a line.
fn describe(change: &RunChange) -> String {
    let name = vault_mirror::pipeline::display_name(
        &change.media_id,
        change.label.as_deref().unwrap_or("*"),
    );
    let size = change
        .size
        .map(|size| format!(" ({})", vault_mirror::human_bytes(size)))
        .unwrap_or_default();
    let path = change.local_path.as_deref().map(|path| shown(path, 120));
    match change.kind.as_str() {
        "added" => format!("{}{size}", path.unwrap_or(name)),
        "changed" => format!(
            "{}{size}; the previous bytes are kept as {}",
            path.unwrap_or(name),
            change
                .kept_path
                .as_deref()
                .map_or_else(String::new, |kept| shown(kept, 120))
        ),
        "gone" => format!(
            "media {} left list {} (its files are kept unless pruned)",
            shown(&change.media_id, 40),
            shown(change.list_id.as_deref().unwrap_or("?"), 40)
        ),
        "pruned" => format!("{}{size}", path.unwrap_or(name)),
        _ => format!(
            "{name}: {}",
            shown(change.reason.as_deref().unwrap_or(""), 300)
        ),
    }
}
