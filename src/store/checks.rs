//! Rolling verification's records: each variant's last check by `verify`
//! (when its bytes were last re-read and hashed, and what that found),
//! and the figures an operator reads from them (`status`, the `--json`
//! summaries, the metrics file): how old the oldest check is, and how long
//! a full cycle takes at the pace of the last runs.
//!
//! Invariants: a check is recorded only for bytes that were read (a
//! `--fast` pass records none); committing new bytes clears the variant's
//! check ([`Store::mark_verified`]); the cycle is estimated only from
//! recorded runs, never guessed.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::store::database::{Store, bytes, count, rows};
use crate::store::error::StoreError;
use crate::units::EpochMillis;

/// What one check of a variant's bytes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Intact,
    Missing,
    Damaged,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Intact => "intact",
            CheckOutcome::Missing => "missing",
            CheckOutcome::Damaged => "damaged",
        }
    }
}

/// One variant's check, to record.
#[derive(Debug, Clone)]
pub struct CheckRecord<'a> {
    pub media_id: &'a str,
    pub label: &'a str,
    pub outcome: CheckOutcome,
}

/// How old the archive's checks are, and the pace of the last runs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckFigures {
    /// Verified files (what a full cycle covers), and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Of those, the files `verify` has not re-read since they were
    /// written (their sha256 was taken as they were written).
    pub never_checked: u64,
    /// When the file hashed longest ago was last hashed (epoch ms): its
    /// last check, or its writing for one never checked. `None` when the
    /// archive holds no verified file.
    pub oldest_check_at: Option<i64>,
    /// The last `verify` run that re-hashed files, if any.
    pub last_run: Option<CheckRun>,
    /// The pace of the last re-hashing runs, when there was one.
    pub pace: Option<Pace>,
}

/// A `verify` run that re-hashed files, as its summary recorded it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckRun {
    pub run_id: i64,
    pub finished_at: i64,
    pub exit_code: Option<i32>,
    /// Files and bytes it re-hashed.
    pub files: u64,
    pub bytes: u64,
    /// Missing and damaged files it found.
    pub damaged: u64,
}

/// The pace of the last (up to [`PACE_RUNS`]) re-hashing `verify` runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pace {
    /// How many runs it is measured on.
    pub runs: u64,
    /// Bytes re-hashed per run, on average.
    pub bytes_per_run: u64,
    /// The average time between those runs' ends (with two or more).
    pub seconds_between_runs: Option<f64>,
    /// Runs a full cycle takes at this pace.
    pub cycle_runs: u64,
    /// How long a full cycle takes at this pace (with two runs or more).
    pub cycle_seconds: Option<f64>,
}

/// How many of the last runs the pace is measured on.
pub const PACE_RUNS: u32 = 5;

impl Store {
    /// Records the checks of one run, at `now`, in one transaction.
    pub fn record_checks(
        &self,
        checks: &[CheckRecord<'_>],
        now: EpochMillis,
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            let mut statement = transaction.prepare_cached(
                "UPDATE variants SET checked_at = ?3, check_outcome = ?4
                 WHERE media_id = ?1 AND label = ?2",
            )?;
            for check in checks {
                statement.execute(params![
                    check.media_id,
                    check.label,
                    now,
                    check.outcome.as_str()
                ])?;
            }
            Ok(())
        })
    }

    /// The archive's [`CheckFigures`].
    pub fn check_figures(&self) -> Result<CheckFigures, StoreError> {
        let (files, bytes, never_checked, oldest_check_at) = self.with(|connection| {
            connection.query_row(
                "SELECT count(*), coalesce(sum(max(verified_size, 0)), 0),
                        count(*) - count(checked_at), min(coalesce(checked_at, verified_at))
                 FROM variants WHERE local_state = 'verified'",
                [],
                |row| {
                    Ok((
                        count(row, 0)?,
                        bytes(row, 1)?,
                        count(row, 2)?,
                        row.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
        })?;
        let runs = self.check_runs()?;
        Ok(CheckFigures {
            files,
            bytes,
            never_checked,
            oldest_check_at,
            last_run: runs.first().cloned(),
            pace: pace(&runs, bytes),
        })
    }

    /// The last [`PACE_RUNS`] `verify` runs that re-hashed (depth `full`),
    /// newest first.
    fn check_runs(&self) -> Result<Vec<CheckRun>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT run_id, finished_at, exit_code,
                        json_extract(summary, '$.checked'), json_extract(summary, '$.bytes'),
                        json_array_length(summary, '$.findings')
                 FROM runs
                 WHERE command = 'verify' AND finished_at IS NOT NULL AND json_valid(summary)
                   AND json_extract(summary, '$.depth') = 'full'
                   AND json_type(summary, '$.checked') = 'integer'
                 ORDER BY run_id DESC LIMIT ?1",
                params![PACE_RUNS],
                |row| {
                    let whole = |index: usize| -> rusqlite::Result<u64> {
                        Ok(row
                            .get::<_, Option<i64>>(index)?
                            .and_then(|value| u64::try_from(value).ok())
                            .unwrap_or(0))
                    };
                    Ok(CheckRun {
                        run_id: row.get(0)?,
                        finished_at: row.get(1)?,
                        exit_code: row.get(2)?,
                        files: whole(3)?,
                        bytes: whole(4)?,
                        damaged: whole(5)?,
                    })
                },
            )
        })
    }

    /// When variant `media_id`/`label` was last checked, and what that found.
    pub fn last_check(
        &self,
        media_id: &str,
        label: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT checked_at, check_outcome FROM variants
                     WHERE media_id = ?1 AND label = ?2 AND checked_at IS NOT NULL",
                    params![media_id, label],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
        })
    }
}

/// The pace of `runs` (newest first) over an archive of `bytes`.
fn pace(runs: &[CheckRun], bytes: u64) -> Option<Pace> {
    let measured = u64::try_from(runs.len()).ok().filter(|&count| count > 0)?;
    let bytes_per_run = runs.iter().map(|run| run.bytes).sum::<u64>() / measured;
    let cycle_runs = if bytes_per_run == 0 {
        return None;
    } else {
        bytes.div_ceil(bytes_per_run).max(1)
    };
    let seconds_between_runs = match (runs.first(), runs.last()) {
        (Some(newest), Some(oldest)) if measured > 1 => {
            Some((newest.finished_at - oldest.finished_at) as f64 / 1000.0 / (measured - 1) as f64)
        }
        _ => None,
    };
    Some(Pace {
        runs: measured,
        bytes_per_run,
        seconds_between_runs,
        cycle_runs,
        cycle_seconds: seconds_between_runs.map(|between| between * cycle_runs as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{self, verified};

    fn run(store: &Store, finished_at: i64, checked: u64, bytes: u64, findings: usize) {
        let id = store.begin_run("verify", finished_at - 1).unwrap();
        let findings: Vec<serde_json::Value> =
            (0..findings).map(|_| serde_json::json!({})).collect();
        let summary = serde_json::json!({
            "depth": "full", "checked": checked, "bytes": bytes, "findings": findings
        });
        store
            .finish_run(id, "intact", 0, &summary.to_string(), finished_at)
            .unwrap();
    }

    #[test]
    fn the_oldest_check_and_the_pace_of_the_last_runs() {
        let (_dir, store) = testing::open();
        assert_eq!(store.check_figures().unwrap(), CheckFigures::default());
        for (index, id) in ["1", "2", "3", "4"].iter().enumerate() {
            verified(&store, id, 1_000 + index as i64);
        }
        let figures = store.check_figures().unwrap();
        assert_eq!(
            (figures.files, figures.bytes, figures.never_checked),
            (4, 40, 4)
        );
        // Never checked: its writing is its last hashing.
        assert_eq!(figures.oldest_check_at, Some(1_000));
        assert_eq!(figures.pace, None);

        let check = |id| CheckRecord {
            media_id: id,
            label: "full",
            outcome: CheckOutcome::Intact,
        };
        store
            .record_checks(&[check("1"), check("2")], EpochMillis(5_000))
            .unwrap();
        run(&store, 5_000, 2, 20, 0);
        let figures = store.check_figures().unwrap();
        assert_eq!(figures.never_checked, 2);
        assert_eq!(figures.oldest_check_at, Some(1_002));
        assert_eq!(
            store.last_check("1", "full").unwrap(),
            Some((5_000, "intact".into()))
        );
        let pace = figures.pace.unwrap();
        assert_eq!(
            (pace.bytes_per_run, pace.cycle_runs, pace.cycle_seconds),
            (20, 2, None)
        );

        store
            .record_checks(
                &[
                    check("3"),
                    CheckRecord {
                        outcome: CheckOutcome::Damaged,
                        ..check("4")
                    },
                ],
                EpochMillis(65_000),
            )
            .unwrap();
        run(&store, 65_000, 2, 20, 1);
        let figures = store.check_figures().unwrap();
        assert_eq!(
            (figures.never_checked, figures.oldest_check_at),
            (0, Some(5_000))
        );
        let last = figures.last_run.unwrap();
        assert_eq!((last.files, last.bytes, last.damaged), (2, 20, 1));
        let pace = figures.pace.unwrap();
        assert_eq!(pace.seconds_between_runs, Some(60.0));
        assert_eq!((pace.cycle_runs, pace.cycle_seconds), (2, Some(120.0)));

        // New bytes committed: the old check no longer speaks of them.
        verified(&store, "1", 70_000);
        assert_eq!(store.last_check("1", "full").unwrap(), None);
        assert_eq!(store.check_figures().unwrap().never_checked, 1);
    }
}
