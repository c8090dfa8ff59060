//! The health of the store as readers see it: whether the full check of
//! this start has passed (documents are served only then) and whether
//! damage was found (nothing is served then).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// Store health, shared by the writer, the checks and the HTTP handlers.
#[derive(Default)]
pub struct StoreHealth {
    verified: AtomicBool,
    damaged: CancellationToken,
    what: Mutex<Option<String>>,
}

impl StoreHealth {
    /// The full check of this start passed: documents may be served.
    pub fn set_verified(&self) {
        self.verified.store(true, Ordering::Relaxed);
    }

    pub fn verified(&self) -> bool {
        self.verified.load(Ordering::Relaxed)
    }

    /// Records damage (the first report wins) and wakes whoever waits for it.
    pub fn report_damage(&self, what: &str) {
        let mut slot = self.what.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(what.to_string());
        }
        self.damaged.cancel();
    }

    pub fn is_damaged(&self) -> bool {
        self.damaged.is_cancelled()
    }

    /// What the damage is, once reported.
    pub fn damage(&self) -> Option<String> {
        self.what.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves when damage is reported.
    pub async fn damaged(&self) {
        self.damaged.cancelled().await
    }
}
