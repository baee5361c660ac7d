//! Lists and their members: the connection's vault lists as last seen, and
//! which media each holds.
//!
//! Invariants: nothing here is ever deleted because upstream dropped it — a
//! list missing from a complete listing, or a member missing from a list,
//! gets `gone_at`, and returns (cleared) if it comes back. The one delete
//! is of a `--list` id that never had a sync or a member. A list's members
//! are recorded in one transaction, and a re-run writes only what changed.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{OptionalExtension, params};

use crate::store::database::{MediaRecord, Store, dir_name, rows};
use crate::store::error::StoreError;

/// A list as the API described it.
#[derive(Debug, Clone)]
pub struct ListRecord {
    pub list_id: String,
    pub name: String,
    pub list_type: Option<String>,
}

/// A list as the archive shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveList {
    pub list_id: String,
    pub name: String,
    /// Missing from the connection's lists since (epoch ms).
    pub gone_at: Option<i64>,
}

/// One (list, media) membership row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub list_id: String,
    pub media_id: String,
    /// Gone from the list upstream since (epoch ms).
    pub gone_at: Option<i64>,
}

impl Store {
    /// Records the lists the API described. With `complete`, lists we knew
    /// that the API no longer has are marked gone.
    pub fn record_lists(
        &self,
        lists: &[ListRecord],
        complete: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            let mut upsert = transaction.prepare_cached(
                "INSERT INTO lists (list_id, name, list_type, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (list_id) DO UPDATE SET
                    name = excluded.name,
                    list_type = coalesce(excluded.list_type, list_type),
                    last_seen_at = excluded.last_seen_at,
                    gone_at = NULL",
            )?;
            for list in lists {
                upsert.execute(params![list.list_id, list.name, list.list_type, now])?;
            }
            if complete {
                transaction.execute(
                    "UPDATE lists SET gone_at = ?1 WHERE last_seen_at < ?1 AND gone_at IS NULL",
                    params![now],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets `list_id` if nothing was ever recorded of it (no sync, no
    /// member): an id given with `--list` that turned out not to exist
    /// upstream leaves no row behind. Returns whether it was forgotten.
    pub fn forget_unknown_list(&self, list_id: &str) -> Result<bool, StoreError> {
        let forgotten = self.with(|connection| {
            connection.execute(
                "DELETE FROM lists WHERE list_id = ?1 AND last_synced_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM membership WHERE list_id = ?1)",
                params![list_id],
            )
        })?;
        Ok(forgotten > 0)
    }

    /// Known lists by id (for `--list` ids the API listing does not name).
    pub fn list_name(&self, list_id: &str) -> Result<Option<String>, StoreError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT name FROM lists WHERE list_id = ?1",
                    params![list_id],
                    |row| row.get(0),
                )
                .optional()
        })
    }

    pub fn record_sync(&self, list_id: &str, counters: &str, now: i64) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.execute(
                "UPDATE lists SET last_synced_at = ?2, last_sync = ?3 WHERE list_id = ?1",
                params![list_id, now, counters],
            )
        })?;
        Ok(())
    }

    /// Records a list's current members: new (or returning) ones are
    /// added, members no longer present are marked gone (never deleted),
    /// and the rest are touched in one statement. The list's current
    /// members are read once and compared, so a re-run writes only what
    /// changed. Returns (members now, newly gone).
    pub fn record_membership(
        &self,
        list_id: &str,
        members: &[MediaRecord],
        now: i64,
    ) -> Result<(usize, usize), StoreError> {
        self.transaction(|transaction| {
            let mut current: HashSet<String> = transaction
                .prepare_cached(
                    "SELECT media_id FROM membership WHERE list_id = ?1 AND gone_at IS NULL",
                )?
                .query_map([list_id], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut add_media = transaction.prepare_cached(
                "INSERT INTO media (media_id, media_type, dir_name, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (media_id) DO UPDATE SET
                    media_type = coalesce(excluded.media_type, media_type)",
            )?;
            let mut add_member = transaction.prepare_cached(
                "INSERT INTO membership (list_id, media_id, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (list_id, media_id) DO UPDATE SET
                    last_seen_at = excluded.last_seen_at, gone_at = NULL",
            )?;
            let mut present = HashSet::with_capacity(members.len());
            for member in members {
                present.insert(member.media_id.as_str());
                if current.contains(&member.media_id) {
                    continue;
                }
                add_media.execute(params![
                    member.media_id,
                    member.media_type,
                    dir_name(&member.media_id),
                    now
                ])?;
                add_member.execute(params![list_id, member.media_id, now])?;
            }
            current.retain(|media_id| !present.contains(media_id.as_str()));
            let mut mark_gone = transaction.prepare_cached(
                "UPDATE membership SET gone_at = ?3 WHERE list_id = ?1 AND media_id = ?2",
            )?;
            let mut gone = 0;
            for media_id in &current {
                gone += mark_gone.execute(params![list_id, media_id, now])?;
            }
            transaction.execute(
                "UPDATE membership SET last_seen_at = ?2 WHERE list_id = ?1 AND gone_at IS NULL",
                params![list_id, now],
            )?;
            Ok((members.len(), gone))
        })
    }

    /// Current (not gone) members of the given lists, each media id once,
    /// in a stable order.
    pub fn current_members(&self, list_ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT DISTINCT media_id FROM membership
                 WHERE list_id = ?1 AND gone_at IS NULL ORDER BY media_id",
            )?;
            let mut seen = BTreeSet::new();
            for list_id in list_ids {
                for media_id in statement.query_map(params![list_id], |row| row.get(0))? {
                    seen.insert(media_id?);
                }
            }
            Ok(seen.into_iter().collect())
        })
    }

    /// Every list the database knows, by name then id.
    pub fn archive_lists(&self) -> Result<Vec<ArchiveList>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT list_id, name, gone_at FROM lists ORDER BY name, list_id",
                [],
                |row| {
                    Ok(ArchiveList {
                        list_id: row.get(0)?,
                        name: row.get(1)?,
                        gone_at: row.get(2)?,
                    })
                },
            )
        })
    }

    /// Every membership row, current or gone.
    pub fn archive_membership(&self) -> Result<Vec<Membership>, StoreError> {
        self.with(|connection| {
            rows(
                connection,
                "SELECT list_id, media_id, gone_at FROM membership ORDER BY list_id, media_id",
                [],
                |row| {
                    Ok(Membership {
                        list_id: row.get(0)?,
                        media_id: row.get(1)?,
                        gone_at: row.get(2)?,
                    })
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{self, list, media};

    #[test]
    fn membership_marks_gone_and_returns() {
        let (_dir, store) = testing::open();
        store.record_lists(&[list("7")], true, 1).unwrap();
        assert_eq!(
            store
                .record_membership("7", &[media("1"), media("2")], 1)
                .unwrap(),
            (2, 0)
        );
        assert_eq!(
            store.record_membership("7", &[media("2")], 2).unwrap(),
            (1, 1)
        );
        assert_eq!(
            store.current_members(&["7".into()]).unwrap(),
            vec!["2".to_owned()]
        );
        assert_eq!(
            store
                .record_membership("7", &[media("1"), media("2")], 3)
                .unwrap(),
            (2, 0)
        );
        assert_eq!(store.current_members(&["7".into()]).unwrap().len(), 2);
    }

    #[test]
    fn an_unknown_list_is_forgotten_a_known_one_kept() {
        let (_dir, store) = testing::open();
        store
            .record_lists(&[list("1"), list("2")], false, 1)
            .unwrap();
        store.record_membership("2", &[media("9")], 1).unwrap();
        assert!(store.forget_unknown_list("1").unwrap());
        assert!(!store.forget_unknown_list("2").unwrap());
        assert_eq!(store.list_name("1").unwrap(), None);
        assert_eq!(store.list_name("2").unwrap().as_deref(), Some("list 2"));
    }
}
