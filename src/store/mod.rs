//! The state database (SQLite): what the API described, what the archive
//! holds, and what each run did. Nothing else in the library speaks SQL.
//!
//! Invariants:
//! - One writer: the [`Store`] owns one connection behind a mutex. Every
//!   statement runs through [`Store::with`] (one statement, or reads) or
//!   [`Store::transaction`] (several changes, batched, committed whole or
//!   not at all); both classify SQLite's errors in one place.
//! - The schema is `schema.sql` plus append-only migrations keyed by
//!   `PRAGMA user_version` ([`open`]); WAL, `foreign_keys = ON`, a busy
//!   timeout. A database that is not ours, or is damaged, is reported and
//!   never recreated over.
//! - A variant is `verified` only after its file was checked, fsynced and
//!   renamed into place (the pipeline calls [`Store::mark_verified`] last).
//! - No secrets: neither the API key nor a signed URL is ever stored.
//! - Sizes and times cross into SQL as [`crate::units`] types or i64,
//!   never through an `as` cast.
//!
//! One concern a file: [`open`] (opening, pragmas, migrations, integrity),
//! [`runs`], [`history`] (what each run did and changed, for `history`,
//! `status` and the metrics file), [`membership`] (lists and who is in them), [`variants`] (media
//! and their variants: the remote description and the local state
//! machine), [`archive`] (views, kept versions, verified files), [`prune`],
//! [`figures`] (what `status` and `lists` sum up), [`checks`] (each
//! variant's last check by `verify`, and the age of the oldest), [`resume`]
//! (the points a big transfer resumes from after a crash, and the uploads
//! kept open for it).

mod archive;
mod checks;
mod database;
mod error;
mod figures;
mod history;
mod membership;
mod open;
mod prune;
mod resume;
mod runs;
#[cfg(test)]
pub(crate) mod testing;
mod variants;

pub use archive::{
    ArchivedVariant, PreviousBytes, VerifiedFile, VersionRecord, ViewFile, ViewState,
};
pub use checks::{CheckFigures, CheckOutcome, CheckRecord, CheckRun, PACE_RUNS, Pace};
pub use figures::{ArchiveFigures, ListFigures, WatchedFigures};
pub use history::{RunChange, RunHistory, StateCount};
pub use membership::{ArchiveList, ListRecord, Membership};
pub use prune::{GoneMedia, PrunedFile, RecordedFile};
pub use resume::{RESUMABLE_FOR_MS, ResumableUpload, ResumePoint};
pub use runs::RunRecord;
pub use variants::{LocalState, LocalVariant, RemoteVariant};

pub use database::{MediaRecord, Store};
pub use error::StoreError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_batch_leaves_nothing_behind() {
        let (_dir, store) = testing::open();
        let error = store
            .transaction(|transaction| {
                transaction.execute(
                    "INSERT INTO runs (command, started_at) VALUES ('mirror', 1)",
                    [],
                )?;
                transaction.execute("INSERT INTO no_such_table VALUES (1)", [])
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::Sql { .. }), "{error}");
        assert!(store.last_runs().unwrap().is_empty());
    }
}
