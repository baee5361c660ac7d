//! Run history (`vault-mirror history`): the runs newest first with their
//! figures, what one run changed (`run_changes`, migration 4), the last
//! successful run, and the figures the metrics file reports.
//!
//! Invariants:
//! - A run's changes are written once, in the transaction that finishes
//!   it ([`Store::finish_run`]); they are
//!   read from what the database holds at that moment (files verified,
//!   versions kept, members gone and files pruned since the run began)
//!   and from its summary (failed and pending items). Only `mirror` and
//!   `repair` runs fetch or prune, so only they get database-derived
//!   changes: a `verify` run's window holds its own repair run's work.
//! - A run refused before it could start (the archive in use by another
//!   run) is recorded whole at once ([`Store::record_refused_run`]), with
//!   the outcome `refused` (not `failed`: nothing of the archive failed)
//!   and no changes: the files another run verified meanwhile are not its.
//! - "Success" is exit code 0.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::store::database::{Store, rows};
use crate::store::error::StoreError;
use crate::store::runs::{RunRecord, run_record};

/// One run as `history` lists it: its record, and its figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunHistory {
    #[serde(flatten)]
    pub record: RunRecord,
    pub downloaded: Option<u64>,
    pub bytes: Option<u64>,
    pub failed: Option<u64>,
    pub pending: Option<u64>,
    /// Why a failed run stopped, or a partial run's errors.
    pub error: Option<String>,
}

impl RunHistory {
    /// Seconds the run took, if it finished.
    pub fn seconds(&self) -> Option<f64> {
        let record = &self.record;
        record
            .finished_at
            .map(|finished| (finished - record.started_at) as f64 / 1000.0)
    }
}

/// One item a run changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunChange {
    /// `added`, `changed`, `gone`, `pruned`, `failed` or `pending`.
    pub kind: String,
    pub media_id: String,
    pub label: Option<String>,
    /// `gone`: the list the media left.
    pub list_id: Option<String>,
    /// The file (relative to the archive root): fetched, or deleted.
    pub local_path: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// `changed`: where the previous bytes are kept (under `.versions/`).
    pub kept_path: Option<String>,
    /// `failed`, `pending`: why.
    pub reason: Option<String>,
}

/// How many variants are in each state, per label (for the metrics file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub label: String,
    /// `verified`, `pending`, `failed`, `quarantined` or `missing`.
    pub state: &'static str,
    pub count: u64,
}

const RUN_COLUMNS: &str = "run_id, command, started_at, finished_at, outcome, exit_code,
    downloaded, bytes, failed, pending, error";

fn run_history(row: &Row<'_>) -> rusqlite::Result<RunHistory> {
    let unsigned = |index: usize| -> rusqlite::Result<Option<u64>> {
        match row.get::<_, Option<i64>>(index)? {
            None => Ok(None),
            Some(value) => u64::try_from(value)
                .map(Some)
                .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value)),
        }
    };
    Ok(RunHistory {
        record: run_record(row)?,
        downloaded: unsigned(6)?,
        bytes: unsigned(7)?,
        failed: unsigned(8)?,
        pending: unsigned(9)?,
        error: row.get(10)?,
    })
}

impl Store {
    /// The last `limit` runs, newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<RunHistory>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                &format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT ?1"),
                [limit],
                run_history,
            )
        })
    }

    /// Run `run_id`, if there is one.
    pub fn run_history(&self, run_id: i64) -> Result<Option<RunHistory>, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                    [run_id],
                    run_history,
                )
                .optional()
        })
    }

    /// What run `run_id` changed, by kind, then media and label.
    pub fn run_changes(&self, run_id: i64) -> Result<Vec<RunChange>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT kind, media_id, label, list_id, local_path, size, sha256, kept_path, reason
                 FROM run_changes WHERE run_id = ?1
                 ORDER BY CASE kind WHEN 'added' THEN 1 WHEN 'changed' THEN 2 WHEN 'gone' THEN 3
                    WHEN 'pruned' THEN 4 WHEN 'failed' THEN 5 ELSE 6 END,
                    media_id, label, list_id, local_path",
                [run_id],
                |row| {
                    let size: Option<i64> = row.get(5)?;
                    Ok(RunChange {
                        kind: row.get(0)?,
                        media_id: row.get(1)?,
                        label: row.get(2)?,
                        list_id: row.get(3)?,
                        local_path: row.get(4)?,
                        size: size.and_then(|size| u64::try_from(size).ok()),
                        sha256: row.get(6)?,
                        kept_path: row.get(7)?,
                        reason: row.get(8)?,
                    })
                },
            )
        })
    }

    /// Records a run of `command` that was refused before it could start
    /// (another run holds the archive), whole: begun at `started_at`,
    /// failed at `now` with `exit_code` and `error`. Returns its id.
    pub fn record_refused_run(
        &self,
        command: &str,
        started_at: i64,
        now: i64,
        exit_code: i32,
        error: &str,
    ) -> Result<i64, StoreError> {
        let summary = serde_json::json!({ "error": error }).to_string();
        self.with(|connection| {
            connection.execute(
                "INSERT INTO runs (command, started_at, finished_at, outcome, exit_code, summary, error)
                 VALUES (?1, ?2, ?3, 'refused', ?4, ?5, ?6)",
                params![command, started_at, now, exit_code, summary, error],
            )?;
            Ok(connection.last_insert_rowid())
        })
    }

    /// Variants by label and state: every verified one, and the others
    /// of media some list holds now. `pending` is a variant not verified
    /// whose Vault+ status is `pending` or `storing`; `missing` covers
    /// `missing` and `downloading` (a transfer in flight, or stopped).
    pub fn variant_states(&self) -> Result<Vec<StateCount>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                // Two halves, each read through variants_by_state: every
                // verified variant, then the others of current members.
                "SELECT label, 'verified', count(*) FROM variants
                    WHERE local_state = 'verified' GROUP BY label
                 UNION ALL
                 SELECT label,
                    CASE WHEN remote_status IN ('pending', 'storing') THEN 'pending'
                         WHEN local_state IN ('failed', 'quarantined') THEN local_state
                         ELSE 'missing' END AS state,
                    count(*)
                 FROM variants v
                 WHERE local_state IN ('missing', 'downloading', 'failed', 'quarantined')
                    AND EXISTS (SELECT 1 FROM membership m
                        WHERE m.media_id = v.media_id AND m.gone_at IS NULL)
                 GROUP BY label, state",
                [],
                |row| {
                    let state: String = row.get(1)?;
                    let count: i64 = row.get(2)?;
                    Ok(StateCount {
                        label: row.get(0)?,
                        state: match state.as_str() {
                            "verified" => "verified",
                            "pending" => "pending",
                            "failed" => "failed",
                            "quarantined" => "quarantined",
                            _ => "missing",
                        },
                        count: u64::try_from(count).unwrap_or(0),
                    })
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{self, list, media, verified};

    #[test]
    fn a_run_records_its_figures_and_changes() {
        let (_dir, store) = testing::open();
        store.record_lists(&[list("a")], true, 1).unwrap();
        store
            .record_membership("a", &[media("1"), media("2")], 1)
            .unwrap();
        verified(&store, "1", 5);
        let run = store.begin_run("mirror", 10).unwrap();
        verified(&store, "2", 11);
        // Media 1 leaves the list during the run.
        store.record_membership("a", &[media("2")], 12).unwrap();
        let summary = serde_json::json!({
            "downloaded": 1, "bytes": 10,
            "failed": [{"id": "3", "label": "full", "reason": "retries spent"}],
            "pending": [{"id": "4", "label": "*", "reason": "storing"}],
            "errors": ["list a: 503", "list b: 503"],
        });
        store
            .finish_run(run, "partial", 3, &summary.to_string(), 13)
            .unwrap();
        let history = store.history(10).unwrap();
        assert_eq!(history.len(), 1);
        let row = &history[0];
        assert_eq!(
            (row.downloaded, row.bytes, row.failed, row.pending),
            (Some(1), Some(10), Some(1), Some(1))
        );
        assert_eq!(row.error.as_deref(), Some("list a: 503; list b: 503"));
        assert_eq!(row.seconds(), Some(0.003));
        let changes = store.run_changes(run).unwrap();
        let kinds: Vec<(&str, &str)> = changes
            .iter()
            .map(|change| (change.kind.as_str(), change.media_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("added", "2"),
                ("gone", "1"),
                ("failed", "3"),
                ("pending", "4")
            ]
        );
        assert_eq!(changes[0].local_path.as_deref(), Some("media/2/full.jpg"));
        assert_eq!(changes[1].list_id.as_deref(), Some("a"));
        assert_eq!(changes[2].reason.as_deref(), Some("retries spent"));
        assert_eq!(store.run_history(run).unwrap().unwrap(), *row);
        assert_eq!(store.run_history(99).unwrap(), None);
    }

    #[test]
    fn success_is_exit_0_and_survives_later_failures() {
        let (_dir, store) = testing::open();
        assert_eq!(store.last_success("mirror").unwrap(), None);
        let good = store.begin_run("mirror", 1).unwrap();
        store.finish_run(good, "complete", 0, "{}", 2).unwrap();
        let bad = store.begin_run("mirror", 3).unwrap();
        store
            .finish_run(bad, "failed", 4, r#"{"error":"key refused"}"#, 4)
            .unwrap();
        let refused = store
            .record_refused_run("mirror", 5, 6, 1, "the archive is in use")
            .unwrap();
        assert_eq!(store.last_success("mirror").unwrap().unwrap().run_id, good);
        let history = store.history(2).unwrap();
        assert_eq!(
            history
                .iter()
                .map(|run| run.record.run_id)
                .collect::<Vec<_>>(),
            [refused, bad]
        );
        assert_eq!(history[1].error.as_deref(), Some("key refused"));
        assert_eq!(history[0].error.as_deref(), Some("the archive is in use"));
        assert_eq!(history[0].record.outcome.as_deref(), Some("refused"));
        assert!(store.run_changes(refused).unwrap().is_empty());
    }

    #[test]
    fn variant_states_are_counted_per_label() {
        use crate::api::models::RemoteStatus;
        use crate::store::RemoteVariant;
        use crate::store::testing::stored;
        let (_dir, store) = testing::open();
        store.record_lists(&[list("a")], true, 1).unwrap();
        store
            .record_membership("a", &[media("1"), media("2"), media("3")], 1)
            .unwrap();
        verified(&store, "1", 5);
        let pending = RemoteVariant {
            status: RemoteStatus::Pending,
            ..stored("2", 10, 2)
        };
        store
            .record_remote(&[media("2"), media("3")], &[pending, stored("3", 10, 2)], 2)
            .unwrap();
        // Media 3 leaves the list: its missing variant is no longer wanted.
        store
            .record_membership("a", &[media("1"), media("2")], 3)
            .unwrap();
        let mut states: Vec<(String, &str, u64)> = store
            .variant_states()
            .unwrap()
            .into_iter()
            .map(|state| (state.label, state.state, state.count))
            .collect();
        states.sort();
        assert_eq!(
            states,
            [
                ("full".into(), "pending", 1),
                ("full".into(), "verified", 1)
            ]
        );
    }
}
