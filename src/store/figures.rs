//! Read-only queries that sum the state up: per-list figures for `status`
//! and `lists`, the whole archive's, and what a stopped run had finished.
//! Nothing here writes.
//!
//! Counts are of variants (a media's `full` and `thumb` are two), except
//! `members` and `gone`, which count media. Counts and byte sums are read
//! checked: a negative one is an error, never shown as a number (see
//! [`crate::units`]).

use serde::Serialize;

use crate::store::database::{Store, bytes, count, rows};
use crate::store::error::StoreError;

/// One list as the database knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListFigures {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub list_type: Option<String>,
    /// The connection no longer has this list (epoch ms since when).
    pub gone_from_connection_at: Option<i64>,
    /// Current members (media).
    pub members: u64,
    /// Media that left the list upstream (their files are kept).
    pub gone: u64,
    /// Variants of current members that are verified on disk.
    pub verified: u64,
    /// Variants of current members not stored by Vault+ yet.
    pub pending: u64,
    /// Variants of current members whose last attempt failed or was quarantined.
    pub failed: u64,
    /// Bytes of the verified variants of current members.
    pub bytes: u64,
    pub last_synced_at: Option<i64>,
}

/// The whole archive, each media and file counted once.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ArchiveFigures {
    /// Media in at least one list now.
    pub members: u64,
    /// Media known locally that are in no list any more.
    pub gone: u64,
    /// Verified files, whatever list holds (or held) them.
    pub verified: u64,
    pub pending: u64,
    pub failed: u64,
    /// Bytes of all verified files.
    pub bytes: u64,
}

impl Store {
    /// Figures of every list the database knows, by name.
    pub fn list_figures(&self) -> Result<Vec<ListFigures>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT l.list_id, l.name, l.list_type, l.gone_at, l.last_synced_at,
                    count(DISTINCT CASE WHEN m.gone_at IS NULL THEN m.media_id END),
                    count(DISTINCT CASE WHEN m.gone_at IS NOT NULL THEN m.media_id END),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state = 'verified'), 0),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state <> 'verified'
                        AND v.remote_status IN ('pending', 'storing')), 0),
                    coalesce(sum(m.gone_at IS NULL AND v.local_state IN ('failed', 'quarantined')), 0),
                    coalesce(sum(CASE WHEN m.gone_at IS NULL AND v.local_state = 'verified'
                        THEN v.verified_size END), 0)
                 FROM lists l
                 LEFT JOIN membership m ON m.list_id = l.list_id
                 LEFT JOIN variants v ON v.media_id = m.media_id
                 GROUP BY l.list_id
                 ORDER BY l.gone_at IS NOT NULL, l.name, l.list_id",
                [],
                |row| {
                    Ok(ListFigures {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        list_type: row.get(2)?,
                        gone_from_connection_at: row.get(3)?,
                        last_synced_at: row.get(4)?,
                        members: count(row, 5)?,
                        gone: count(row, 6)?,
                        verified: count(row, 7)?,
                        pending: count(row, 8)?,
                        failed: count(row, 9)?,
                        bytes: bytes(row, 10)?,
                    })
                },
            )
        })
    }

    /// Figures of the whole archive.
    pub fn archive_figures(&self) -> Result<ArchiveFigures, StoreError> {
        self.with(|connection| {
            connection.query_row(
                "WITH current AS (SELECT DISTINCT media_id FROM membership WHERE gone_at IS NULL)
                 SELECT
                    (SELECT count(*) FROM current),
                    (SELECT count(*) FROM media WHERE media_id NOT IN current
                        AND media_id IN (SELECT media_id FROM membership)),
                    (SELECT count(*) FROM variants WHERE local_state = 'verified'),
                    (SELECT count(*) FROM variants WHERE media_id IN current
                        AND local_state <> 'verified' AND remote_status IN ('pending', 'storing')),
                    (SELECT count(*) FROM variants WHERE media_id IN current
                        AND local_state IN ('failed', 'quarantined')),
                    (SELECT coalesce(sum(verified_size), 0) FROM variants
                        WHERE local_state = 'verified')",
                [],
                |row| {
                    Ok(ArchiveFigures {
                        members: count(row, 0)?,
                        gone: count(row, 1)?,
                        verified: count(row, 2)?,
                        pending: count(row, 3)?,
                        failed: count(row, 4)?,
                        bytes: bytes(row, 5)?,
                    })
                },
            )
        })
    }

    /// How many variants were verified at or after `since` (ms), and their
    /// bytes: what a run that was stopped early had finished.
    pub fn verified_since(&self, since: i64) -> Result<(u64, u64), StoreError> {
        self.with(|connection| {
            connection.query_row(
                "SELECT count(*), coalesce(sum(verified_size), 0) FROM variants
                 WHERE local_state = 'verified' AND verified_at >= ?1",
                [since],
                |row| Ok((count(row, 0)?, bytes(row, 1)?)),
            )
        })
    }
}

/// What the metrics file of an unattended run says of an archive's
/// database (docs/scheduling.md); each figure is `None` where the
/// database cannot be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchedFigures {
    /// When the last `mirror` run that succeeded ended (0: none has).
    pub last_success_at: Option<i64>,
    /// Variants per state, in the order of
    /// [`crate::report::metrics::VARIANT_STATES`]: every verified one,
    /// the others only where `wanted` (by their label: the run's
    /// `--quality`).
    pub variants: Option<[u64; 5]>,
    /// Bytes of every verified file.
    pub archive_bytes: Option<u64>,
    /// How old the checks are ([`crate::store::CheckFigures`]).
    pub checks: Option<crate::store::CheckFigures>,
}

impl WatchedFigures {
    /// The figures of the database at `db`; all `None` when there is none
    /// or it cannot be opened.
    pub fn read(db: &std::path::Path, wanted: impl Fn(&str) -> bool) -> WatchedFigures {
        match Store::open_existing(db) {
            Ok(Some(store)) => store.watched_figures(wanted),
            _ => WatchedFigures::default(),
        }
    }
}

impl Store {
    /// [`WatchedFigures`] of this database.
    pub fn watched_figures(&self, wanted: impl Fn(&str) -> bool) -> WatchedFigures {
        let last_success_at = self
            .last_success("mirror")
            .ok()
            .map(|run| run.and_then(|run| run.finished_at).unwrap_or(0));
        let variants = self.variant_states().ok().map(|states| {
            let mut counts = [0u64; 5];
            for state in states {
                let counted = state.state == "verified" || wanted(&state.label);
                if let Some(index) = crate::report::metrics::VARIANT_STATES
                    .iter()
                    .position(|name| *name == state.state)
                    && counted
                {
                    counts[index] += state.count;
                }
            }
            counts
        });
        let archive_bytes = self.archive_figures().ok().map(|figures| figures.bytes);
        WatchedFigures {
            last_success_at,
            variants,
            archive_bytes,
            checks: self.check_figures().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::models::RemoteStatus;
    use crate::store::RemoteVariant;
    use crate::store::testing::{self, list, media, stored};

    #[test]
    fn figures_count_members_and_verified_bytes() {
        let (_dir, store) = testing::open();
        store.record_lists(&[list("a")], true, 1).unwrap();
        store
            .record_membership("a", &[media("1"), media("2")], 1)
            .unwrap();
        let pending = RemoteVariant {
            status: RemoteStatus::Pending,
            ..stored("2", 10, 2)
        };
        store
            .record_remote(&[media("1"), media("2")], &[stored("1", 10, 2), pending], 2)
            .unwrap();
        store
            .mark_verified(
                "1",
                "full",
                "media/1/full",
                "ab",
                crate::units::ByteSize(10),
                crate::units::EpochMillis(3),
            )
            .unwrap();
        let figures = store.archive_figures().unwrap();
        assert_eq!(
            (
                figures.members,
                figures.verified,
                figures.pending,
                figures.bytes
            ),
            (2, 1, 1, 10)
        );
        let lists = store.list_figures().unwrap();
        assert_eq!((lists[0].members, lists[0].bytes), (2, 10));
        assert_eq!(store.verified_since(3).unwrap(), (1, 10));
        assert_eq!(store.verified_since(4).unwrap(), (0, 0));

        // A negative sum can only come of damage: an error, not a figure.
        store
            .with(|connection| connection.execute("UPDATE variants SET verified_size = -20", []))
            .unwrap();
        let error = store.archive_figures().unwrap_err();
        assert!(error.to_string().contains("-20"), "{error}");
    }
}
