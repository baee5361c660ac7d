//! [`Limits`]: what one process shares among every run it makes at once.

use std::sync::Arc;

use crate::pipeline::bandwidth::Bandwidth;
use crate::settings::Settings;

/// The limits one process shares among every run it makes at once (one
/// per connection): the transfer slots (`--jobs`) and the `--limit-rate`
/// budget. Cheap to clone; clones share the same slots and budget. Each
/// run keeps its own API client and token bucket: OFAuth paces the API per
/// connection.
#[derive(Clone)]
pub struct Limits {
    /// `--jobs` permits. tokio's semaphore serves waiters first come, first
    /// served, so runs that wait for a slot take turns.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// `--limit-rate`: one budget of bytes shared fairly by every transfer.
    pub bandwidth: Option<Arc<Bandwidth>>,
}

impl Limits {
    /// The limits `settings` asks for, for one process.
    pub fn new(settings: &Settings) -> Self {
        Limits {
            slots: Arc::new(tokio::sync::Semaphore::new(settings.mirror.jobs.max(1))),
            bandwidth: settings
                .mirror
                .limit_rate
                .map(|rate| Arc::new(Bandwidth::new(rate))),
        }
    }
}
