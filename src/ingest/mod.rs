//! The single writer: takes parsed batches from all sources, drops duplicates,
//! merges events into documents, derives per-day count changes, and commits
//! everything with the sources' positions in one atomic store write.

mod apply;
mod committer;
mod prepared;
mod rejected;
mod shas;

use committer::{CommitCtx, CommitStats, Committer, Retry};
use prepared::{InFlight, Prepared};
use shas::ShaIndex;

pub(crate) use crate::state::Shared;
pub(crate) use rejected::trim_rejected;

use std::path::PathBuf;
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
    prepare: Duration,
    apply: Duration,
    slots: Duration,
    dirty: Duration,
    evict: Duration,
    /// Waiting for the committer to finish the batch before.
    wait: Duration,
}

/// The writer's state.
pub(crate) struct Ingestor {
    stats: WriterStats,
    commit_stats: CommitStats,
    /// Hashes of every event id seen, per source kind (8 bytes per event id).
    seen: [SeenIds; 2],
    store: Store,
    pages: PageCache,
    shas: ShaIndex,
    tz: Tz,
    required_roles: u8,
    rejected_dir: PathBuf,
    shared: Arc<Shared>,
    ctx: CommitCtx,
    /// The committing thread, while [`Ingestor::run`] runs.
    committer: Option<Committer>,
    /// What the batch handed to the committer changes, until it is committed.
    inflight: Option<InFlight>,
    /// Events committed in one store write at most.
    max_batch: usize,
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
            commit_stats: CommitStats::default(),
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
            ctx: CommitCtx {
                shared: shared.clone(),
                heartbeat: Arc::default(),
                store_failed: None,
            },
            shared,
            committer: None,
            inflight: None,
            max_batch: MAX_BATCH_EVENTS,
        })
    }

    /// Beats `heartbeat` (the process's, which the watchdog reads) instead of its own.
    pub(crate) fn with_heartbeat(mut self, heartbeat: Arc<Heartbeat>) -> Self {
        self.ctx.heartbeat = heartbeat;
        self
    }

    /// Commits at most `events` events at once (tests: many small commits).
    #[cfg(test)]
    fn with_max_batch(mut self, events: usize) -> Self {
        self.max_batch = events;
        self
    }

    /// Stops the writer at the first failed store write and fires `token`,
    /// instead of retrying in place.
    pub(crate) fn stop_on_store_failure(
        mut self,
        token: tokio_util::sync::CancellationToken,
    ) -> Self {
        self.ctx.store_failed = Some(token);
        self
    }

    /// Takes batches until every source has stopped, committing as it goes:
    /// each batch is prepared while the committer writes the one before.
    pub(crate) fn run(mut self, queue: &MergeQueue) -> Store {
        let committer = match Committer::spawn(self.store.clone(), self.ctx.clone()) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "cannot start the committer thread; committing on the writer's");
                return self.run_alone(queue);
            }
        };
        self.committer = Some(committer);
        let mut failed = false;
        while let Some(batches) = queue.pop(self.max_batch, Duration::from_millis(500)) {
            self.ctx.heartbeat.beat();
            if batches.is_empty() {
                continue;
            }
            let Some(p) = self.prepare_with_retry(&batches) else {
                failed = true;
                break;
            };
            // Batches are committed in order: the one before must be durable
            // before this one is handed over.
            if !self.wait_inflight() {
                failed = true;
                break;
            }
            self.note_prepared(&p);
            let inflight = InFlight::of(&p);
            let committer = self.committer.as_ref().expect("running");
            if !committer.send(p) {
                failed = true;
                break;
            }
            let t = std::time::Instant::now();
            self.pages.evict(&inflight.pages);
            self.stats.evict += t.elapsed();
            self.inflight = Some(inflight);
        }
        if !failed && !self.wait_inflight() {
            failed = true;
        }
        let (store, stats) = self.committer.take().expect("running").stop();
        self.store = store;
        self.commit_stats = stats;
        self.finish(failed)
    }

    /// [`Ingestor::run`] without the committer thread.
    fn run_alone(mut self, queue: &MergeQueue) -> Store {
        let mut failed = false;
        while let Some(batches) = queue.pop(self.max_batch, Duration::from_millis(500)) {
            self.ctx.heartbeat.beat();
            if !batches.is_empty() && !self.commit_with_retry(batches) {
                failed = true;
                break;
            }
        }
        self.finish(failed)
    }

    fn finish(self, failed: bool) -> Store {
        let (w, c) = (&self.stats, &self.commit_stats);
        info!(
            commits = c.commits,
            pages_written = c.pages_written,
            page_bytes = c.page_bytes,
            prepare_ms = w.prepare.as_millis() as u64,
            apply_ms = w.apply.as_millis() as u64,
            slots_ms = w.slots.as_millis() as u64,
            dirty_ms = w.dirty.as_millis() as u64,
            evict_ms = w.evict.as_millis() as u64,
            wait_ms = w.wait.as_millis() as u64,
            compress_ms = c.compress.as_millis() as u64,
            write_ms = c.write.as_millis() as u64,
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

    /// Waits until the batch in flight is committed; false if it was not
    /// (the store failed: the writer stops).
    fn wait_inflight(&mut self) -> bool {
        if self.inflight.take().is_none() {
            return true;
        }
        let t = std::time::Instant::now();
        let ok = self.committer.as_ref().is_some_and(Committer::wait);
        self.stats.wait += t.elapsed();
        ok
    }

    /// Prepares the batches, retrying with backoff; `None` if the store is
    /// damaged or failed and the writer must stop.
    fn prepare_with_retry(&mut self, batches: &[SourceBatch]) -> Option<Prepared> {
        let mut retry = Retry::new();
        loop {
            let started = std::time::Instant::now();
            let attempt = self.prepare(batches);
            self.stats.prepare += started.elapsed();
            match attempt {
                // Writes that work again are said by the committer, which
                // alone knows whether they do.
                Ok(p) => return Some(p),
                Err(e) => {
                    // The pages may hold half of this batch: start again from
                    // the store, once the batch in flight is in it.
                    if !self.wait_inflight() {
                        return None;
                    }
                    if let Err(e2) = self.pages.reset(&self.store) {
                        error!(error = %e2, "cannot reload pages");
                    }
                    if !retry.failed(&self.ctx, &e) {
                        return None;
                    }
                }
            }
        }
    }

    /// Prepares and commits the batches on this thread, retrying with
    /// backoff; false if the store failed and the writer must stop.
    fn commit_with_retry(&mut self, batches: Vec<SourceBatch>) -> bool {
        let Some(p) = self.prepare_with_retry(&batches) else {
            return false;
        };
        self.note_prepared(&p);
        let keep = p.page_keys();
        if !committer::write(&mut self.store, &self.ctx, p, &mut self.commit_stats) {
            return false;
        }
        self.pages.evict(&keep);
        true
    }
}

#[cfg(test)]
mod order_tests;
