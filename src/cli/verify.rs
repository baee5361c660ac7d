//! `verify [--fast] [--repair]`: checks the state database page by page,
//! then re-reads every verified file and checks it against the database;
//! reports missing and damaged files (exit 3 if any).
//!
//! The run (what it finds recorded, `--repair` fetching it again) is the
//! core's ([`vault_mirror::pipeline::verify`]); this file opens the
//! database, calls and prints.

use std::sync::Arc;

use vault_mirror::archive::verify::{Budget, Depth, Problem};
use vault_mirror::pipeline;
use vault_mirror::pipeline::repair::problem_word;
use vault_mirror::pipeline::verify::VerifyReport;
use vault_mirror::report::Reporter;
use vault_mirror::settings::Settings;

use super::args::VerifyArgs;
use super::failure::Failure;
use super::{progress, status};

pub async fn run(settings: &Settings, args: &VerifyArgs) -> Result<i32, Failure> {
    let report = run_report(settings, args).await?;
    if settings.output.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    }
    Ok(report.exit_code.code())
}

/// A verify run: its report (printed by the caller with `--json`; the
/// lines for a person are printed here).
pub async fn run_report(settings: &Settings, args: &VerifyArgs) -> Result<VerifyReport, Failure> {
    if args.repair {
        // Fail now, not after an hour of hashing.
        settings.api_config()?;
    }
    let store = status::open(settings)?;
    let depth = if args.fast { Depth::Fast } else { Depth::Full };
    let display = || -> Arc<dyn Reporter> { Arc::new(progress::display_for(settings.output)) };
    let budget = Budget {
        max_bytes: args.max_bytes,
        time: args.budget,
    };
    let report =
        pipeline::verify::verify(settings, &store, depth, budget, args.repair, &display).await?;
    let code = report.exit_code.code();
    if !settings.output.json && (!settings.output.quiet || code != 0) {
        // The summary is for a person, on stderr like every command's;
        // stdout carries only `--json`.
        eprint!("{}", super::terminal::for_stderr(&render(&report, args)));
    }
    Ok(report)
}

fn render(report: &VerifyReport, args: &VerifyArgs) -> String {
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
        report.out,
        report.intact,
    );
    if report.left > 0 {
        text.push_str(&format!(
            "budget spent: {} left for the next runs (checked longest ago first)\n",
            vault_mirror::counted(report.left, "file")
        ));
    }
    if let Some(checks) = &report.checks
        && !args.fast
    {
        text.push_str(&format!(
            "checks: {}\n",
            status::checks_sentence(checks, vault_mirror::now_ms())
        ));
    }
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
