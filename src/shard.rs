//! `--shard K/N`: which connections one of N machines mirrors, with no
//! coordinator. Each connection goes to the shard with the highest score
//! for it (rendezvous hashing), the score being the first 8 bytes of
//! sha256 over the connection id and the shard number.
//!
//! Invariants:
//! - Disjoint and covering: every id has exactly one winning shard of N,
//!   so N machines given K = 1..N mirror every connection exactly once.
//! - Stable: the score depends only on the id and K (sha256, never std's
//!   randomly seeded hasher), so the same K/N picks the same connections on
//!   every machine, every run, every build.
//! - Growing N to N+1 moves only the ids the new shard wins (about one in
//!   N+1); no id moves between the old shards.

use sha2::{Digest, Sha256};

/// Shard `index` of `count` (both from 1: `--shard 2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` with 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let invalid = || {
            format!(
                "{text:?}: write K/N with 1 ≤ K ≤ N, e.g. `2/3` for the second of three machines"
            )
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(invalid)?;
        let index: u32 = index.trim().parse().map_err(|_| invalid())?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        if index == 0 || count == 0 || index > count {
            return Err(invalid());
        }
        Ok(Shard { index, count })
    }

    /// Whether connection `id` belongs to this shard.
    pub fn keeps(&self, id: &str) -> bool {
        owner(id, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

/// The shard (1..=`count`) that holds connection `id`.
pub fn owner(id: &str, count: u32) -> u32 {
    (1..=count.max(1))
        .max_by_key(|&index| (score(id, index), std::cmp::Reverse(index)))
        .unwrap_or(1)
}

/// The rendezvous score of `id` on shard `index`.
fn score(id: &str, index: u32) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"vault-mirror shard\0");
    hasher.update(id.as_bytes());
    hasher.update(b"\0");
    hasher.update(index.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("conn_{n:05}")).collect()
    }

    #[test]
    fn parses_k_of_n() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(
            Shard::parse(" 1 / 1 ").map(|s| s.to_string()),
            Ok("1/1".into())
        );
        for bad in ["0/3", "4/3", "3", "1/0", "a/b", "-1/3", "1/3/4", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_id() {
        let ids = ids(3000);
        for count in 1..=7 {
            for id in &ids {
                let keepers = (1..=count)
                    .filter(|&index| Shard { index, count }.keeps(id))
                    .count();
                assert_eq!(keepers, 1, "{id} in {keepers} of {count} shards");
            }
        }
    }

    #[test]
    fn the_same_id_always_lands_on_the_same_shard() {
        // Fixed values: a change of hash would move every agency's
        // connections between machines.
        assert_eq!(owner("conn_demo", 3), owner("conn_demo", 3));
        let placed: Vec<u32> = ["conn_a", "conn_b", "conn_c", "conn_d", "conn_e", "conn_f"]
            .iter()
            .map(|id| owner(id, 3))
            .collect();
        assert_eq!(placed, FIXED_PLACEMENT);
    }

    /// Where the ids above land among three shards.
    const FIXED_PLACEMENT: [u32; 6] = [2, 1, 3, 3, 3, 1];

    #[test]
    fn growing_n_moves_few_and_only_to_the_new_shard() {
        let ids = ids(6000);
        for count in 1..=9u32 {
            let mut moved = 0;
            for id in &ids {
                let (before, after) = (owner(id, count), owner(id, count + 1));
                if before != after {
                    assert_eq!(after, count + 1, "{id} moved between old shards");
                    moved += 1;
                }
            }
            // About one in count + 1 moves; allow a generous margin.
            let expected = ids.len() / (count as usize + 1);
            assert!(
                moved > expected * 8 / 10 && moved < expected * 12 / 10,
                "{count} → {}: {moved} of {} moved, expected about {expected}",
                count + 1,
                ids.len()
            );
        }
    }

    proptest::proptest! {
        /// Whatever the ids and N: exactly one shard of N keeps each id,
        /// the same one every time, and going to N+1 moves an id only to
        /// the new shard.
        #[test]
        fn any_id_has_one_stable_shard(id in "\\PC{0,40}", count in 1u32..40) {
            let owner_now = owner(&id, count);
            let keepers: Vec<u32> = (1..=count)
                .filter(|&index| Shard { index, count }.keeps(&id))
                .collect();
            proptest::prop_assert_eq!(keepers, vec![owner_now]);
            proptest::prop_assert_eq!(owner(&id, count), owner_now);
            let next = owner(&id, count + 1);
            proptest::prop_assert!(next == owner_now || next == count + 1);
        }
    }

    #[test]
    fn shards_are_balanced() {
        let ids = ids(6000);
        let mut sizes = [0usize; 4];
        for id in &ids {
            sizes[owner(id, 4) as usize - 1] += 1;
        }
        for size in sizes {
            assert!((1200..1800).contains(&size), "{sizes:?}");
        }
    }
}
