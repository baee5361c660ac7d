//! `verify [--fast] [--repair]`: checks the state database page by page,
//! then re-reads every verified file and checks it against the database;
//! reports missing and damaged files (exit 3 if any).
//!
//! What it finds is recorded, and `--repair` fetches it again, by the
//! core ([`vault_mirror::pipeline::repair`]); this file checks, calls and
//! prints.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use vault_mirror::archive::Archive;
use vault_mirror::archive::verify::{Depth, Finding, Problem, verify_files};
use vault_mirror::pipeline;
use vault_mirror::pipeline::repair::{self, Repair, problem_word};
use vault_mirror::report::{Reporter, Stage};
use vault_mirror::settings::Settings;
use vault_mirror::store::Store;

use super::args::VerifyArgs;
use super::failure::Failure;
use super::{progress, status};

#[derive(Serialize)]
struct Report<'a> {
    command: &'static str,
    /// `intact` (nothing found), `repaired` (all found were fetched again),
    /// or `damaged` (some files are still missing or damaged).
    outcome: &'static str,
    exit_code: i32,
    out: &'a std::path::Path,
    /// `full` (size and sha256) or `fast` (size only).
    depth: &'static str,
    run_id: i64,
    checked: u64,
    intact: u64,
    bytes: u64,
    /// Missing and damaged files, by path.
    findings: &'a [Finding],
    /// With `--repair`: how the refetch went.
    repair: Option<Repair>,
    seconds: f64,
}

pub async fn run(settings: &Settings, args: &VerifyArgs) -> Result<i32, Failure> {
    let (code, json) = run_report(settings, args).await?;
    if settings.output.json {
        println!("{json}");
    }
    Ok(code)
}

/// A verify run: its exit code and its `--json` report (printed by the
/// caller; the lines for a person are printed here).
pub async fn run_report(settings: &Settings, args: &VerifyArgs) -> Result<(i32, String), Failure> {
    let started = Instant::now();
    if args.repair {
        // Fail now, not after an hour of hashing.
        settings.api_config()?;
    }
    let store = status::open(settings)?;
    // The database first: a run notices damage only in the pages it reads.
    store.check()?;
    let run_id = store.begin_run("verify", vault_mirror::now_ms())?;
    let result = checked(settings, args, &store, run_id, started).await;
    if let Err(failure) = &result {
        // Best effort: the failure itself is what the user must see.
        let error = serde_json::json!({ "error": format!("{:#}", failure.error) });
        let _ = store.finish_run(
            run_id,
            "failed",
            failure.code,
            &error.to_string(),
            vault_mirror::now_ms(),
        );
    }
    result
}

/// The checks of run `run_id`, the repair if asked, and the report.
async fn checked(
    settings: &Settings,
    args: &VerifyArgs,
    store: &Store,
    run_id: i64,
    started: Instant,
) -> Result<(i32, String), Failure> {
    let depth = if args.fast { Depth::Fast } else { Depth::Full };
    let files = store.files_to_verify()?;
    let total: u64 = files.iter().map(|file| file.size).sum();

    let display = Arc::new(progress::display_for(settings.output));
    display.on_stage(
        Stage::Verify,
        &format!(
            "{} {} ({})",
            if args.fast {
                "checking the sizes of"
            } else {
                "re-hashing"
            },
            vault_mirror::counted(files.len() as u64, "file"),
            vault_mirror::human_bytes(total)
        ),
    );
    let archive = Archive::open(&settings.archive()).map_err(Failure::usage)?;
    let workers = archive.parallel_reads();
    let checked = verify_files(&archive, &files, depth, workers, &*display).await;
    display.finish();

    repair::record_findings(store, &files, &checked)?;

    let repair = if args.repair && !checked.findings.is_empty() {
        let display = Arc::new(progress::display_for(settings.output));
        display.on_stage(
            Stage::Resolve,
            &format!("fetching {} files again", checked.findings.len()),
        );
        let repaired = repair::repair(settings, store, &checked, display.clone()).await;
        display.finish();
        Some(repaired?)
    } else {
        None
    };
    let still_broken = match &repair {
        Some(repair) => repair.unrepaired.len(),
        None => checked.findings.len(),
    };
    let (outcome, exit_code) = match (checked.findings.is_empty(), still_broken) {
        (true, _) => ("intact", 0),
        (false, 0) => ("repaired", 0),
        _ => ("damaged", 3),
    };
    let report = Report {
        command: "verify",
        outcome,
        exit_code,
        out: &settings.shown_out(),
        depth: if args.fast { "fast" } else { "full" },
        run_id,
        checked: checked.checked,
        intact: checked.intact,
        bytes: checked.bytes,
        findings: &checked.findings,
        repair,
        seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string(&report).unwrap_or_default();
    store.finish_run(run_id, outcome, exit_code, &text, vault_mirror::now_ms())?;
    if !settings.output.json && (!settings.output.quiet || exit_code != 0) {
        // The summary is for a person, on stderr like every command's;
        // stdout carries only `--json`.
        eprint!("{}", render(&report, args));
    }
    Ok((exit_code, text))
}

fn render(report: &Report<'_>, args: &VerifyArgs) -> String {
    let missing = report
        .findings
        .iter()
        .filter(|finding| finding.problem == Problem::Missing)
        .count();
    let damaged = report.findings.len() - missing;
    let what = if args.fast {
        "sizes checked"
    } else {
        "re-hashed"
    };
    let mut text = format!(
        "verify: {} ({}) {what} in {}: {} intact, {missing} missing, {damaged} damaged\n",
        vault_mirror::counted(report.checked, "file"),
        vault_mirror::human_bytes(report.bytes),
        report.out.display(),
        report.intact,
    );
    const SHOWN: usize = 50;
    for finding in report.findings.iter().take(SHOWN) {
        text.push_str(&format!(
            "  {}: {} ({}): {}\n",
            problem_word(finding.problem),
            finding.path,
            pipeline::display_name(&finding.id, &finding.label),
            finding.reason
        ));
    }
    if report.findings.len() > SHOWN {
        text.push_str(&format!(
            "  … and {} more (see `--json`)\n",
            report.findings.len() - SHOWN
        ));
    }
    match &report.repair {
        Some(repair) => {
            text.push_str(&format!(
                "repair: {} of {} fetched again and verified\n",
                repair.repaired,
                report.findings.len()
            ));
            for finding in repair.unrepaired.iter().take(SHOWN) {
                text.push_str(&format!("  still {}: {}: {}\n", problem_word(finding.problem), finding.path, finding.reason));
            }
        }
        None if !report.findings.is_empty() => text.push_str(
            "hint: `vault-mirror verify --repair` fetches them again now; the next `mirror` run does too\n",
        ),
        None => {}
    }
    text
}
