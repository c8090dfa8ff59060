//! The single writer: takes parsed batches from all sources, drops duplicates,
//! merges events into documents, derives per-day count changes, and commits
//! everything with the sources' positions in one atomic store write.

mod apply;
mod rejected;
mod shas;

use apply::Prepared;
use shas::ShaIndex;

pub(crate) use crate::state::Shared;
pub(crate) use rejected::trim_rejected;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tracing::{error, info, warn};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::model::SourceKind;
use crate::service::Heartbeat;
use crate::sources::merge::MergeQueue;
use crate::sources::SourceBatch;
use crate::store::pages::PageCache;
use crate::store::{SeenIds, Store, StoreError};

/// Events committed in one store write at most.
pub(crate) const MAX_BATCH_EVENTS: usize = 4096;
/// Memory for decoded pages of documents kept by the writer.
pub(crate) const PAGE_CACHE_BYTES: usize = 8 << 20;

/// Test hook of debug builds: `DOCFLOW_TEST_HANG={point}` blocks the thread
/// at `point` for good, as a dead mount or a stuck sled would, so tests can
/// check that shutdown still ends. Release builds have no such hook.
fn hang_for_test(point: &str) {
    if cfg!(debug_assertions) && std::env::var("DOCFLOW_TEST_HANG").as_deref() == Ok(point) {
        warn!(point, "DOCFLOW_TEST_HANG: this thread now hangs on purpose");
        loop {
            std::thread::park();
        }
    }
}

/// Where the writer's time went, logged at shutdown.
#[derive(Debug, Default)]
struct WriterStats {
    commits: u64,
    pages_written: u64,
    page_bytes: u64,
    prepare: Duration,
    write: Duration,
    apply: Duration,
    slots: Duration,
    dirty: Duration,
    evict: Duration,
}

/// The writer's state.
pub(crate) struct Ingestor {
    stats: WriterStats,
    /// Hashes of every event id seen, per source kind (8 bytes per event id).
    seen: [SeenIds; 2],
    store: Store,
    pages: PageCache,
    shas: ShaIndex,
    tz: Tz,
    required_roles: u8,
    rejected_dir: PathBuf,
    shared: Arc<Shared>,
    /// Fired when a store write fails: sled refuses every later write, so
    /// the store must be reopened (the daemon does it; README, "Disk full").
    store_failed: Option<tokio_util::sync::CancellationToken>,
    /// Beats at each turn of the loop; the systemd watchdog watches it.
    heartbeat: Arc<Heartbeat>,
}

/// Hash of an event id within its source kind.
fn event_hash(kind: SourceKind, id: &str) -> u64 {
    xxh3_64_with_seed(id.as_bytes(), u64::from(kind.as_byte()) + 1)
}

impl Ingestor {
    pub(crate) fn new(
        store: Store,
        tz: Tz,
        required_roles: u8,
        rejected_dir: PathBuf,
        shared: Arc<Shared>,
    ) -> Result<Ingestor, StoreError> {
        Ok(Ingestor {
            stats: WriterStats::default(),
            seen: [
                store.seen_ids(SourceKind::Exchange)?,
                store.seen_ids(SourceKind::Signature)?,
            ],
            pages: PageCache::open(&store, PAGE_CACHE_BYTES)?,
            shas: ShaIndex::open(&store)?,
            store,
            tz,
            required_roles,
            rejected_dir,
            shared,
            store_failed: None,
            heartbeat: Arc::default(),
        })
    }

    /// Beats `heartbeat` (the process's, which the watchdog reads) instead of its own.
    pub(crate) fn with_heartbeat(mut self, heartbeat: Arc<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Stops the writer at the first failed store write and fires `token`,
    /// instead of retrying in place.
    pub(crate) fn stop_on_store_failure(
        mut self,
        token: tokio_util::sync::CancellationToken,
    ) -> Self {
        self.store_failed = Some(token);
        self
    }

    /// Takes batches until every source has stopped, committing as it goes.
    pub(crate) fn run(mut self, queue: &MergeQueue) -> Store {
        let mut failed = false;
        while let Some(batches) = queue.pop(MAX_BATCH_EVENTS, Duration::from_millis(500)) {
            self.heartbeat.beat();
            if !batches.is_empty() && !self.commit_with_retry(batches) {
                failed = true;
                break;
            }
        }
        info!(
            commits = self.stats.commits,
            pages_written = self.stats.pages_written,
            page_bytes = self.stats.page_bytes,
            prepare_ms = self.stats.prepare.as_millis() as u64,
            write_ms = self.stats.write.as_millis() as u64,
            apply_ms = self.stats.apply.as_millis() as u64,
            slots_ms = self.stats.slots.as_millis() as u64,
            dirty_ms = self.stats.dirty.as_millis() as u64,
            evict_ms = self.stats.evict.as_millis() as u64,
            "writer totals"
        );
        if self.shas.log_scans > 0 {
            info!(
                scans = self.shas.log_scans,
                "sha256 joins that needed a scan of the sha256 log"
            );
        }
        if failed {
            return self.store;
        }
        hang_for_test("writer-stop");
        if let Err(e) = self.store.flush() {
            error!(error = %e, "store flush at shutdown failed");
        }
        self.store
    }

    /// Commits the batches, retrying with backoff; false if the store failed
    /// and the writer must stop (only with [`Ingestor::stop_on_store_failure`]).
    fn commit_with_retry(&mut self, batches: Vec<SourceBatch>) -> bool {
        let mut delay = Duration::from_millis(500);
        let mut failing = false;
        let mut prepared: Option<Prepared> = None;
        loop {
            let started = std::time::Instant::now();
            let attempt = match prepared.take() {
                Some(p) => Ok(p),
                None => self.prepare(&batches),
            };
            self.stats.prepare += started.elapsed();
            let started = std::time::Instant::now();
            let error = match attempt {
                Err(e) => {
                    // The pages may hold half of this batch: start again from the store.
                    if let Err(e2) = self.pages.reset(&self.store) {
                        error!(error = %e2, "cannot reload pages");
                    }
                    e
                }
                Ok(p) => match self.store.record_batch_once(&p.commit) {
                    Ok(()) => {
                        self.stats.write += started.elapsed();
                        self.stats.commits += 1;
                        self.stats.pages_written += p.commit.pages.len() as u64;
                        self.stats.page_bytes += p
                            .commit
                            .pages
                            .iter()
                            .map(|(_, v)| v.len() as u64)
                            .sum::<u64>();
                        self.publish(p, &batches);
                        let t = std::time::Instant::now();
                        self.pages.evict();
                        self.stats.evict += t.elapsed();
                        if self.shared.writes.recovered() || failing {
                            info!("store writes work again; ingestion resumed");
                            self.shared.store_ok.store(true, Ordering::Relaxed);
                        }
                        return true;
                    }
                    Err(e) => {
                        prepared = Some(p);
                        e
                    }
                },
            };
            if error.is_damage() {
                // A read that fails or does not decode: the store is damaged,
                // and retrying reads the same damage.
                self.shared.health.report_damage(&error.detail());
                return false;
            }
            let sled_failed = error.is_write_failure();
            if !failing {
                self.shared.store_ok.store(false, Ordering::Relaxed);
                failing = true;
                if self.shared.writes.fail() {
                    warn!(error = %error, "store write still failing; batch not committed, positions not advanced");
                } else {
                    error!(error = %error, "store write failed (disk full?); batch not committed, positions not advanced; retrying");
                }
            }
            if sled_failed {
                if let Some(token) = &self.store_failed {
                    // sled 0.34 keeps the first I/O error and fails every later
                    // write: reopening is the only retry that can succeed.
                    token.cancel();
                    return false;
                }
            }
            // Waiting to retry is alive, not stuck (a restart would not fix a
            // full disk): keep the watchdog's heartbeat going.
            let until = std::time::Instant::now() + delay;
            while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                self.heartbeat.beat();
                std::thread::sleep(left.min(Duration::from_secs(1)));
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}

#[cfg(test)]
mod order_tests;
