//! The `runs` table: one row per command run, begun when it starts and
//! finished with its outcome, exit code and JSON summary.
//!
//! Invariant: a row without `finished_at` is a run still going, or one that
//! was killed; nothing else marks a run as interrupted.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::store::database::{Store, rows};
use crate::store::error::StoreError;

/// One row of the `runs` table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    pub run_id: i64,
    pub command: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `complete`, `partial`, `failed`, …; None while running or if it was killed.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
}

impl Store {
    /// Starts a run record; returns its id.
    pub fn begin_run(&self, command: &str, now: i64) -> Result<i64, StoreError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO runs (command, started_at) VALUES (?1, ?2)",
                params![command, now],
            )?;
            Ok(connection.last_insert_rowid())
        })
    }

    /// Ends run `run_id`: its outcome, exit code and JSON summary, the
    /// figures `history` lists (read from the summary: `downloaded`,
    /// `bytes`, the `failed` and `pending` lists, `error` or `errors`), and
    /// what the run changed ([`crate::store::history`]), in one transaction.
    pub fn finish_run(
        &self,
        run_id: i64,
        outcome: &str,
        exit_code: i32,
        summary: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            transaction.execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, exit_code = ?4, summary = ?5,
                    downloaded = CASE WHEN json_valid(?5) THEN json_extract(?5, '$.downloaded') END,
                    bytes = CASE WHEN json_valid(?5) THEN json_extract(?5, '$.bytes') END,
                    failed = CASE WHEN json_valid(?5) THEN json_array_length(?5, '$.failed') END,
                    pending = CASE WHEN json_valid(?5) THEN json_array_length(?5, '$.pending') END,
                    error = CASE WHEN json_valid(?5) THEN coalesce(json_extract(?5, '$.error'),
                        (SELECT group_concat(value, '; ') FROM json_each(?5, '$.errors'))) END
                 WHERE run_id = ?1",
                params![run_id, now, outcome, exit_code, summary],
            )?;
            record_changes(transaction, run_id, summary)
        })
    }

    /// The latest run of each command, the most recent first.
    pub fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT run_id, command, started_at, finished_at, outcome, exit_code FROM runs
                 WHERE run_id IN (SELECT max(run_id) FROM runs GROUP BY command)
                 ORDER BY run_id DESC",
                [],
                run_record,
            )
        })
    }

    /// The last run of `command` that ended with exit code 0.
    pub fn last_success(&self, command: &str) -> Result<Option<RunRecord>, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT run_id, command, started_at, finished_at, outcome, exit_code FROM runs
                     WHERE command = ?1 AND exit_code = 0 AND finished_at IS NOT NULL
                     ORDER BY run_id DESC LIMIT 1",
                    [command],
                    run_record,
                )
                .optional()
        })
    }

    /// The summary JSON a run recorded, if any.
    pub fn run_summary(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT summary FROM runs WHERE run_id = ?1",
                    params![run_id],
                    |row| row.get(0),
                )
                .optional()
                .map(Option::flatten)
        })
    }
}

/// A [`RunRecord`] from a row whose first six columns are `run_id,
/// command, started_at, finished_at, outcome, exit_code`.
pub(super) fn run_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        command: row.get(1)?,
        started_at: row.get(2)?,
        finished_at: row.get(3)?,
        outcome: row.get(4)?,
        exit_code: row.get(5)?,
    })
}

/// Writes what run `run_id` changed (see [`crate::store::history`]); part of the
/// transaction that finishes it.
fn record_changes(
    transaction: &Transaction<'_>,
    run_id: i64,
    summary: &str,
) -> rusqlite::Result<()> {
    // Files verified since the run began; `changed` when the run kept the
    // bytes they replaced.
    transaction.execute(
        "INSERT INTO run_changes (run_id, kind, media_id, label, local_path, size, sha256, kept_path)
         SELECT r.run_id, CASE WHEN k.local_path IS NULL THEN 'added' ELSE 'changed' END,
            v.media_id, v.label, v.local_path, v.verified_size, v.sha256, k.local_path
         FROM runs r
         JOIN variants v ON v.local_state = 'verified' AND v.verified_at >= r.started_at
         LEFT JOIN versions k ON k.version_id = (SELECT max(version_id) FROM versions
            WHERE media_id = v.media_id AND label = v.label AND kept_at >= r.started_at)
         WHERE r.run_id = ?1 AND r.command IN ('mirror', 'repair')",
        [run_id],
    )?;
    transaction.execute(
        "INSERT INTO run_changes (run_id, kind, media_id, list_id)
         SELECT r.run_id, 'gone', m.media_id, m.list_id
         FROM runs r JOIN membership m ON m.gone_at >= r.started_at
         WHERE r.run_id = ?1 AND r.command = 'mirror'",
        [run_id],
    )?;
    transaction.execute(
        "INSERT INTO run_changes (run_id, kind, media_id, local_path, size, sha256)
         SELECT r.run_id, 'pruned', p.media_id, p.local_path, p.size, p.sha256
         FROM runs r JOIN pruned_files p ON p.pruned_at >= r.started_at
         WHERE r.run_id = ?1 AND r.command = 'mirror'",
        [run_id],
    )?;
    for kind in ["failed", "pending"] {
        transaction.execute(
            &format!(
                "INSERT INTO run_changes (run_id, kind, media_id, label, reason)
                 SELECT ?1, '{kind}', coalesce(json_extract(value, '$.id'), ''),
                    nullif(json_extract(value, '$.label'), ''), json_extract(value, '$.reason')
                 FROM json_each(CASE WHEN json_valid(?2) THEN ?2 ELSE '{{}}' END, '$.{kind}')"
            ),
            params![run_id, summary],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::testing;

    #[test]
    fn the_latest_run_of_each_command_with_its_summary() {
        let (_dir, store) = testing::open();
        let first = store.begin_run("mirror", 1).unwrap();
        store.finish_run(first, "partial", 4, "{}", 2).unwrap();
        let second = store.begin_run("mirror", 3).unwrap();
        let verify = store.begin_run("verify", 4).unwrap();
        let runs = store.last_runs().unwrap();
        let ids: Vec<i64> = runs.iter().map(|run| run.run_id).collect();
        assert_eq!(ids, [verify, second]);
        assert_eq!(runs[1].finished_at, None);
        assert_eq!(store.run_summary(first).unwrap().as_deref(), Some("{}"));
        assert_eq!(store.run_summary(second).unwrap(), None);
        assert_eq!(store.run_summary(99).unwrap(), None);
    }
}
