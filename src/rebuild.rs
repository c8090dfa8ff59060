//! `docflowd rebuild`: a new store made by re-reading every source from the
//! beginning, into `{storage.path}.rebuild`, which replaces the old store
//! only once every source is caught up. Alert state is carried over.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
pub const CARRIED_PREFIXES: [u8; 2] = crate::store::keys::ALERT_PREFIXES;
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

/// `{path}{suffix}` next to the store.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Bytes of all files the sources name, and bytes read so far.
fn progress_bytes(handles: &[Arc<SourceHandle>]) -> (u64, u64) {
    let mut total = 0;
    let mut done = 0;
    for h in handles {
        if let Ok(paths) = glob::glob(&h.config.path) {
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

/// Rebuilds the store of `config` from its sources.
pub fn rebuild(config: &Config) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let path = config.storage.path.clone();
    let work = sibling(&path, ".rebuild");
    let old = sibling(&path, ".old");
    if old.exists() {
        bail!(
            "{} exists (left by an interrupted rebuild?): check it and remove it first",
            old.display()
        );
    }

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

    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot remove the unfinished {}", work.display()))?;
    }
    let mut work_config = config.clone();
    work_config.storage.path = work.clone();
    let (store, aggregates) = crate::daemon::open_store(&work_config)?;
    store.put_raw(&carried)?;
    info!(from = %work.display(), carried = carried.len(), "rebuilding the store from the sources");

    let handles: Vec<Arc<SourceHandle>> = config
        .sources
        .iter()
        .map(|s| Arc::new(SourceHandle::new(s.clone(), SourceState::default())))
        .collect();
    let shared = Shared::new(aggregates, handles.clone());
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
    let stop = CancellationToken::new();
    let readers = crate::daemon::Readers::spawn(&handles, config, &reader_store, &queue, &stop)?;
    drop(reader_store);

    let bar = std::io::stderr().is_terminal().then(|| {
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
    let failed = loop {
        if store_failed.is_cancelled() {
            break true;
        }
        let (total, done) = progress_bytes(&handles);
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
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    stop.cancel();
    readers.wake_and_join();
    let store = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    if failed {
        // sled refuses writes after a failure and its drop would block.
        std::mem::forget(store);
        bail!(
            "writing the new store {} failed (disk full?); the old store is unchanged",
            work.display()
        );
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

    drop(old_store);
    if path.exists() {
        std::fs::rename(&path, &old).with_context(|| {
            format!(
                "cannot move the old store {} aside to {}",
                path.display(),
                old.display()
            )
        })?;
    }
    if let Err(e) = std::fs::rename(&work, &path) {
        let _ = std::fs::rename(&old, &path);
        return Err(e).with_context(|| {
            format!(
                "cannot move the new store {} to {}",
                work.display(),
                path.display()
            )
        });
    }
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the old store {}", old.display()))?;
    }
    Ok(Rebuilt {
        sources,
        carried: carried.len(),
        elapsed: started.elapsed(),
    })
}
