//! The archive's lock, for the commands that write: a second run says
//! clearly who holds it.

use vault_mirror::lock::ArchiveLock;
use vault_mirror::settings::Settings;

use super::failure::Failure;

/// Takes the archive's lock for a command that writes.
pub fn lock(settings: &Settings, command: &str) -> Result<ArchiveLock, Failure> {
    let lock = ArchiveLock::acquire(&settings.local, command)?;
    if let Some(previous) = &lock.taken_over {
        tracing::info!(
            "took over the lock left by {} (no longer running)",
            previous.describe()
        );
    }
    Ok(lock)
}
