//! Rebuilding a store by re-reading every source from the beginning, into a
//! staging store inside the store directory that replaces the old store
//! only once every source is caught up. Alert state is carried over.
//! `docflowd rebuild` does it with the daemon stopped; the daemon does it on
//! a damaged store (`storage.on_damage = "rebuild"`).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::ingest::{Ingestor, Shared};
use crate::sources::merge::MergeQueue;
use crate::sources::SourceHandle;
use crate::store::{SourceState, Store, StoreError};

/// Key prefixes of state that the logs cannot give back (alert state and
/// mail outbox): copied from the old store.
pub(crate) const CARRIED_PREFIXES: [u8; 2] = crate::store::keys::ALERT_PREFIXES;
/// Interval of progress log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What a rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    /// Events read per source: (name, accepted, duplicate, invalid).
    pub sources: Vec<(String, u64, u64, u64)>,
    /// Keys of alert state carried over from the old store.
    pub carried: usize,
    pub elapsed: Duration,
}

/// Bytes of all files the sources name, and bytes read so far.
fn progress_bytes(handles: &[Arc<SourceHandle>]) -> (u64, u64) {
    let mut total = 0;
    let mut done = 0;
    for h in handles {
        if let Some(Ok(paths)) = h.config.input.path().map(glob::glob) {
            for p in paths.flatten() {
                total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            }
        }
        done += h
            .progress()
            .state
            .files
            .iter()
            .map(|f| f.offset)
            .sum::<u64>();
    }
    (total, done.min(total))
}

/// Rebuilds the store of `config` from its sources (`docflowd rebuild`, the
/// daemon stopped): into a staging store inside the store directory, which
/// replaces the old store's files (and `rejected/`) once every source has
/// caught up. Alert state is carried over from the old store when it opens.
pub fn rebuild(config: &Config) -> anyhow::Result<Rebuilt> {
    let path = config.storage.path.clone();
    // Holding the old store open keeps a daemon from starting meanwhile.
    let mut carried = Vec::new();
    let old_store = if Store::exists(&path) {
        match Store::open(&path, config.storage.cache_capacity) {
            Ok(store) => {
                for prefix in CARRIED_PREFIXES {
                    carried.extend(store.raw_with_prefix(prefix)?);
                }
                Some(store)
            }
            Err(e @ StoreError::Locked { .. }) => {
                bail!("{e}: stop docflowd before rebuilding")
            }
            Err(e) => {
                warn!(error = %e, "the old store cannot be opened: rebuilding without its alert state (alert mails may be sent again)");
                None
            }
        }
    } else {
        None
    };
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let staged = crate::store::swap::staging_dir(&path, "rebuild");
    let rebuilt = rebuild_into(
        config,
        &staged,
        &carried,
        &CancellationToken::new(),
        std::io::stderr().is_terminal(),
    )?;
    drop(old_store);
    crate::store::swap::install(&path, &staged, crate::store::swap::Replace::WithRejected)
        .with_context(|| {
            format!(
                "cannot put the rebuilt store in place in {}",
                path.display()
            )
        })?;
    Ok(rebuilt)
}

/// Builds a store at `staged` from every source of `config`, read from the
/// beginning until all have caught up, with `carried` alert records; `stop`
/// ends it early (an error). On error nothing is left at `staged`.
pub(crate) fn rebuild_into(
    config: &Config,
    staged: &Path,
    carried: &[(Vec<u8>, Vec<u8>)],
    stop: &CancellationToken,
    bar: bool,
) -> anyhow::Result<Rebuilt> {
    crate::store::swap::discard(staged);
    let result = build(config, staged, carried, stop, bar);
    if result.is_err() {
        crate::store::swap::discard(staged);
    }
    result
}

fn build(
    config: &Config,
    work: &Path,
    carried: &[(Vec<u8>, Vec<u8>)],
    stop: &CancellationToken,
    bar: bool,
) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let mut work_config = config.clone();
    work_config.storage.path = work.to_path_buf();
    let (store, aggregates) = crate::state::open_store(&work_config)?;
    store.put_raw(carried)?;
    info!(into = %work.display(), carried = carried.len(), "rebuilding the store from the sources");

    let handles: Vec<Arc<SourceHandle>> = config
        .sources
        .iter()
        .map(|s| Arc::new(SourceHandle::new(s.clone(), SourceState::default())))
        .collect();
    let shared = Shared::new(aggregates, handles.clone(), Arc::default());
    let queue = Arc::new(MergeQueue::new(handles.len()));
    let store_failed = CancellationToken::new();
    // The readers need the store only to start (edXML files already read).
    let reader_store = store.clone();
    let ingestor = Ingestor::new(
        store,
        config.agency.timezone,
        config.required_roles,
        work.join("rejected"),
        shared.clone(),
    )?
    .stop_on_store_failure(store_failed.clone());
    let writer = std::thread::Builder::new().name("writer".into()).spawn({
        let queue = queue.clone();
        move || ingestor.run(&queue)
    })?;
    let readers_stop = stop.child_token();
    let readers =
        crate::sources::Readers::spawn(&handles, config, &reader_store, &queue, &readers_stop)?;
    drop(reader_store);
    let outcome = wait_caught_up(&handles, &store_failed, &shared, stop, bar);
    readers_stop.cancel();
    readers.wake_and_join();
    let store = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    match outcome {
        Outcome::CaughtUp => {}
        Outcome::Failed => {
            // sled refuses writes after a failure and its drop would block.
            std::mem::forget(store);
            bail!(
                "writing the new store {} failed (disk full?); the old store is unchanged",
                work.display()
            );
        }
        Outcome::Stopped => bail!("the rebuild was stopped before every source caught up"),
    }
    store.flush()?;
    drop(store);
    let sources = handles
        .iter()
        .map(|h| {
            let s = h.committed_state();
            (h.config.name.clone(), s.accepted, s.duplicate, s.invalid)
        })
        .collect();
    Ok(Rebuilt {
        sources,
        carried: carried.len(),
        elapsed: started.elapsed(),
    })
}

enum Outcome {
    CaughtUp,
    Failed,
    Stopped,
}

/// Shows progress until every source has caught up, a write failed or `stop`.
fn wait_caught_up(
    handles: &[Arc<SourceHandle>],
    store_failed: &CancellationToken,
    shared: &Shared,
    stop: &CancellationToken,
    show_bar: bool,
) -> Outcome {
    let bar = show_bar.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        bar
    });
    let mut last_log = Instant::now();
    let outcome = loop {
        if store_failed.is_cancelled() || shared.health.is_damaged() {
            break Outcome::Failed;
        }
        if stop.is_cancelled() {
            break Outcome::Stopped;
        }
        let (total, done) = progress_bytes(handles);
        let events: u64 = handles.iter().map(|h| h.progress().state.accepted).sum();
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{events} events"));
        } else if last_log.elapsed() >= LOG_EVERY {
            info!(
                read_bytes = done,
                total_bytes = total,
                events,
                "rebuild progress"
            );
            last_log = Instant::now();
        }
        if handles.iter().all(|h| h.caught_up()) {
            break Outcome::CaughtUp;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    outcome
}
