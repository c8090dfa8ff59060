//! The second half of the writer: compressing a prepared batch's pages and
//! committing it, on its own thread, while the writer prepares the next
//! batch. At most one batch is in flight, and batches are committed in the
//! order they were prepared, so a crash leaves the store at the end of some
//! batch: positions and counts of the last commit, as with one thread.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::prepared::Prepared;
use crate::service::Heartbeat;
use crate::state::Shared;
use crate::store::encoding::compress_page;
use crate::store::{Store, StoreError};

/// What a commit needs besides the store: where to publish it and whom to tell.
#[derive(Clone)]
pub(super) struct CommitCtx {
    pub(super) shared: Arc<Shared>,
    pub(super) heartbeat: Arc<Heartbeat>,
    /// Fired when a store write fails: sled refuses every later write, so
    /// the store must be reopened (the daemon does it; README, "Disk full").
    pub(super) store_failed: Option<tokio_util::sync::CancellationToken>,
}

/// Where the committing time went, logged at shutdown with the writer's.
#[derive(Debug, Default)]
pub(super) struct CommitStats {
    pub(super) commits: u64,
    pub(super) pages_written: u64,
    pub(super) page_bytes: u64,
    pub(super) compress: Duration,
    pub(super) write: Duration,
}

/// Retrying a failed step with backoff, saying so once.
pub(super) struct Retry {
    delay: Duration,
    failing: bool,
}

impl Retry {
    pub(super) fn new() -> Retry {
        Retry {
            delay: Duration::from_millis(500),
            failing: false,
        }
    }

    /// After a failed step: false if it must not be retried (damage, or a
    /// failed sled that must be reopened); else waits, beating the heartbeat.
    pub(super) fn failed(&mut self, ctx: &CommitCtx, error: &StoreError) -> bool {
        if error.is_damage() {
            // A read that fails or does not decode: the store is damaged,
            // and retrying reads the same damage.
            ctx.shared.health.report_damage(&error.detail());
            return false;
        }
        if !self.failing {
            ctx.shared.store_ok.store(false, Ordering::Relaxed);
            self.failing = true;
            if ctx.shared.writes.fail() {
                warn!(error = %error, "store write still failing; batch not committed, positions not advanced");
            } else {
                error!(error = %error, "store write failed (disk full?); batch not committed, positions not advanced; retrying");
            }
        }
        if error.is_write_failure() {
            if let Some(token) = &ctx.store_failed {
                // sled 0.34 keeps the first I/O error and fails every later
                // write: reopening is the only retry that can succeed.
                token.cancel();
                return false;
            }
        }
        // Waiting to retry is alive, not stuck (a restart would not fix a
        // full disk): keep the watchdog's heartbeat going.
        let until = Instant::now() + self.delay;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            ctx.heartbeat.beat();
            std::thread::sleep(left.min(Duration::from_secs(1)));
        }
        self.delay = (self.delay * 2).min(Duration::from_secs(30));
        true
    }

    /// After a step that worked.
    pub(super) fn succeeded(&self, ctx: &CommitCtx) {
        if ctx.shared.writes.recovered() || self.failing {
            info!("store writes work again; ingestion resumed");
            ctx.shared.store_ok.store(true, Ordering::Relaxed);
        }
    }
}

/// Compresses the pages of `p`, commits it (retrying as [`Retry`] says) and
/// publishes it; false if the store failed and the writer must stop.
pub(super) fn write(
    store: &mut Store,
    ctx: &CommitCtx,
    mut p: Prepared,
    stats: &mut CommitStats,
) -> bool {
    let started = Instant::now();
    p.commit.pages = std::mem::take(&mut p.raw_pages)
        .into_iter()
        .map(|draft| (draft.key.clone(), compress_page(&draft.encode()).into()))
        .collect();
    stats.compress += started.elapsed();
    if cfg!(debug_assertions) {
        // Tests kill the process while batch N hangs here and N + 1 is prepared.
        super::hang_for_test(&format!("commit-{}", stats.commits + 1));
    }
    let mut retry = Retry::new();
    loop {
        let started = Instant::now();
        match store.record_batch_once(&p.commit) {
            Ok(()) => {
                stats.write += started.elapsed();
                stats.commits += 1;
                stats.pages_written += p.commit.pages.len() as u64;
                stats.page_bytes += p
                    .commit
                    .pages
                    .iter()
                    .map(|(_, v)| v.len() as u64)
                    .sum::<u64>();
                p.publish(&ctx.shared);
                retry.succeeded(ctx);
                return true;
            }
            Err(e) => {
                if !retry.failed(ctx, &e) {
                    return false;
                }
            }
        }
    }
}

/// The committing thread, fed one prepared batch at a time.
pub(super) struct Committer {
    jobs: Sender<Prepared>,
    done: Receiver<bool>,
    thread: JoinHandle<(Store, CommitStats)>,
}

impl Committer {
    pub(super) fn spawn(mut store: Store, ctx: CommitCtx) -> std::io::Result<Committer> {
        let (jobs, inbox) = channel::<Prepared>();
        let (report, done) = channel();
        let thread = std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || {
                let mut stats = CommitStats::default();
                for p in inbox {
                    let ok = write(&mut store, &ctx, p, &mut stats);
                    if report.send(ok).is_err() || !ok {
                        break;
                    }
                }
                (store, stats)
            })?;
        Ok(Committer { jobs, done, thread })
    }

    /// Hands a batch over; its outcome comes from [`Committer::wait`].
    pub(super) fn send(&self, p: Prepared) -> bool {
        self.jobs.send(p).is_ok()
    }

    /// Waits for the batch handed over last: whether it was committed.
    pub(super) fn wait(&self) -> bool {
        self.done.recv().unwrap_or(false)
    }

    /// Ends the thread once its work is done; its store (which knows the
    /// last sha256-log sequence) and timings. A panic inside it (sled on a
    /// damaged file) goes on in the caller, which reports it as damage.
    pub(super) fn stop(self) -> (Store, CommitStats) {
        drop(self.jobs);
        match self.thread.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
