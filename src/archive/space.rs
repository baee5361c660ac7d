//! Free space on the archive's disk, and the budget a run plans against it.
//!
//! Invariants: a variant larger than the free space measured when resolving
//! began is refused before any byte of it is fetched (no `.part` is even
//! created); with `--min-free`, so is one that would take the projected
//! free space — free at the start minus every byte planned before it —
//! below the floor. Without `--min-free`, planning past the free space
//! only warns, once: other variants may still fit, and a disk that does
//! fill mid-run is handled where bytes are written (the `.part` stays to
//! resume).

use std::path::{Path, PathBuf};

/// Bytes an unprivileged process may still write on the file system that
/// holds `path` (`statvfs` on unix, `GetDiskFreeSpaceExW` on Windows:
/// the space left to this user, quotas included).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    fs4::available_space(path)
}

/// What the budget says about one more variant.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Fits,
    /// Fits, but everything planned so far no longer does: say so once.
    Warn(String),
    /// Not fetched: the reason names the sizes and the folder.
    Refused(String),
}

/// The bytes a run has planned against the free space it started with.
#[derive(Debug)]
pub struct SpaceBudget {
    folder: PathBuf,
    /// `None` when the disk cannot tell (then nothing is refused).
    free_at_start: Option<u64>,
    min_free: Option<u64>,
    planned: u64,
    warned: bool,
}

impl SpaceBudget {
    /// Measures the free space under `folder` now (or takes `assume_free`,
    /// which test suites set).
    pub fn new(folder: &Path, min_free: Option<u64>, assume_free: Option<u64>) -> Self {
        let free_at_start = assume_free.or_else(|| free_bytes(folder).ok());
        Self {
            folder: folder.to_owned(),
            free_at_start,
            min_free,
            planned: 0,
            warned: false,
        }
    }

    /// Plans `size` more bytes, of which `already` are on disk (a `.part`).
    pub fn plan(&mut self, size: u64, already: u64) -> Verdict {
        let Some(free) = self.free_at_start else {
            return Verdict::Fits;
        };
        let needed = size.saturating_sub(already);
        let folder = self.folder.display();
        if needed > free {
            return Verdict::Refused(format!(
                "Vault+ declares {} ({size} bytes), more than the {} free on the disk of {folder}; not fetched",
                crate::human_bytes(size),
                crate::human_bytes(free)
            ));
        }
        let projected = free.checked_sub(self.planned.saturating_add(needed));
        if let Some(floor) = self.min_free
            && projected.is_none_or(|left| left < floor)
        {
            return Verdict::Refused(format!(
                "fetching {} would leave less than --min-free {} on the disk of {folder} ({} free, {} planned before it); not fetched",
                crate::human_bytes(size),
                crate::human_bytes(floor),
                crate::human_bytes(free),
                crate::human_bytes(self.planned)
            ));
        }
        self.planned = self.planned.saturating_add(needed);
        if projected.is_none() && !self.warned {
            self.warned = true;
            return Verdict::Warn(format!(
                "the downloads planned so far ({}) need more than the {} free on the disk of {folder}; the run goes on until the disk is full (`--min-free` stops short instead)",
                crate::human_bytes(self.planned),
                crate::human_bytes(free)
            ));
        }
        Verdict::Fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_larger_than_the_free_space_is_refused() {
        let mut budget = SpaceBudget::new(Path::new("/archive"), None, Some(1000));
        assert!(
            matches!(budget.plan(1001, 0), Verdict::Refused(reason) if reason.contains("/archive"))
        );
        // Bytes already in a `.part` count as written.
        assert_eq!(budget.plan(1001, 500), Verdict::Fits);
    }

    #[test]
    fn planning_past_the_free_space_warns_once_without_a_floor() {
        let mut budget = SpaceBudget::new(Path::new("/archive"), None, Some(1000));
        assert_eq!(budget.plan(600, 0), Verdict::Fits);
        assert!(matches!(budget.plan(600, 0), Verdict::Warn(_)));
        assert_eq!(budget.plan(600, 0), Verdict::Fits);
    }

    #[test]
    fn the_floor_refuses_what_would_go_below_it_and_keeps_what_fits() {
        let mut budget = SpaceBudget::new(Path::new("/archive"), Some(300), Some(1000));
        assert_eq!(budget.plan(500, 0), Verdict::Fits);
        assert!(
            matches!(budget.plan(300, 0), Verdict::Refused(reason) if reason.contains("--min-free"))
        );
        assert_eq!(budget.plan(200, 0), Verdict::Fits);
    }

    #[test]
    fn the_real_disk_reports_some_free_space() {
        let folder = std::env::temp_dir();
        assert!(free_bytes(&folder).unwrap() > 0);
    }
}
