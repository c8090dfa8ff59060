//! One run of the daemon on one store: open it (with the quick check), serve
//! reads, run the full check, then start the writer, the sources and the
//! alerts, and drain them in order when the run ends (shutdown, an import,
//! damage).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{disk_full, routers, Process};
use crate::api::AppState;
use crate::config::Config;
use crate::ingest::{trim_rejected, Ingestor, Shared};
use crate::service;
use crate::state::open_store;

use crate::sources::merge::MergeQueue;
use crate::sources::{Readers, SourceHandle};
use crate::store::verify::VerifyOptions;
use crate::store::{Store, StoreError};

/// How a run ended.
pub(super) enum Ended {
    /// Shutdown, or an import waiting to be put in place.
    Stopped,
    /// A check found damage, or a read failed: what was found.
    Damaged(String),
}

/// What a run started besides the servers: writer, readers, alerts.
struct Pipeline {
    writer: std::thread::JoinHandle<std::thread::Result<Store>>,
    readers: Readers,
    queue: Arc<MergeQueue>,
    sources_stop: CancellationToken,
    alerts: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
    recovery: tokio::task::JoinHandle<()>,
}

/// A handle per configured source, at its committed position; the
/// rejected-events files cut back to what was committed.
fn source_handles(config: &Config, store: &Store) -> anyhow::Result<Vec<Arc<SourceHandle>>> {
    let committed = store.sources()?;
    let rejected_dir = config.storage.path.join("rejected");
    let mut handles = Vec::new();
    for source in &config.sources {
        let state = committed.get(&source.name).cloned().unwrap_or_default();
        trim_rejected(&rejected_dir, &source.name, state.rejected_len).with_context(|| {
            format!(
                "cannot trim {}/{}.jsonl",
                rejected_dir.display(),
                source.name
            )
        })?;
        handles.push(Arc::new(SourceHandle::new(source.clone(), state)));
    }
    Ok(handles)
}

/// Serves the read endpoints (`state`) and the admin actions of this run until `serving`.
fn serve(
    config: &Config,
    process: &Process,
    state: AppState,
    restart: crate::admin::Restart,
    serving: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let tcp_closed = CancellationToken::new();
    let admin_state = crate::admin::AdminState {
        config: state.config.clone(),
        store: state.store.clone(),
        restart,
        metrics: process.admin_metrics.clone(),
        web: process.web.clone(),
        stop: serving.clone(),
        importing: Arc::default(),
        health: state.shared.clone(),
        tcp_closed: tcp_closed.clone(),
    };
    process.serve(
        config,
        routers(config, process, state, admin_state),
        serving,
        tcp_closed,
    )
}

/// Runs one pipeline until `shutdown`, `restart` (an import) or damage.
pub(super) async fn run_once(
    config: &Config,
    shutdown: &CancellationToken,
    process: &Process,
    restart: crate::admin::Restart,
) -> anyhow::Result<Ended> {
    // Before sled touches the files: were they left as a clean close left them?
    let clean = crate::store::clean::take(&config.storage.path);
    let (store, aggregates) = open_store(config)?;
    let watch = store.watch();
    if process.writes.failing() {
        store.probe_write()?;
        if process.writes.recovered() {
            info!("store writes work again; ingestion resumes from the last commit");
        }
    }
    let handles = source_handles(config, &store)?;
    let shared = Shared::new(aggregates, handles.clone(), process.writes.clone());
    let ready = Arc::new(AtomicBool::new(true));
    // Ends the run: on shutdown, on a restart for an import, on damage.
    let serving = shutdown.child_token();
    tokio::spawn({
        let (serving, restart, shared) = (serving.clone(), restart.token.clone(), shared.clone());
        async move {
            tokio::select! {
                _ = serving.cancelled() => {}
                _ = restart.cancelled() => {}
                _ = shared.health.damaged() => {}
            }
            serving.cancel();
        }
    });
    let alerting = crate::alerts::Alerting::open(config, store.clone(), shared.clone())
        .context("cannot read alert state")?;
    let state = AppState {
        config: Arc::new(config.clone()),
        shared: shared.clone(),
        store: store.clone(),
        ready: ready.clone(),
        reload: process.reload_status.clone(),
        alerts: alerting.clone(),
        admin_metrics: process.admin_metrics.clone(),
    };
    let servers = serve(config, process, state, restart, &serving);
    service::notify_ready(&format!(
        "serving on {}, {} sources",
        config.server.listen,
        handles.len()
    ));
    info!(sources = handles.len(), store = %config.storage.path.display(), "store open; checking it before reading the sources");

    let verified = if clean {
        info!("the store's files are those of its last clean close: full check skipped");
        Check::Sound
    } else {
        verify(&store, &serving, 1.0).await
    };
    let pipeline = match verified {
        Check::Sound => {
            shared.health.set_verified();
            Some(start(
                config, &store, &shared, &handles, process, shutdown, alerting,
            )?)
        }
        Check::Damaged(what) => {
            shared.health.report_damage(&what);
            None
        }
        Check::Stopped => None,
    };
    if pipeline.is_some() {
        if let Some(every) = config.storage.scrub_interval {
            tokio::spawn(scrub(store.clone(), shared.clone(), every, serving.clone()));
        }
    }
    drop(store);
    serving.cancelled().await;
    let _ = servers.await;
    info!("stopping sources");
    ready.store(false, Ordering::Relaxed);
    let flushed = match pipeline {
        Some(p) => p.stop().await,
        None => false,
    };
    let ended = match shared.health.damage() {
        Some(what) => Ended::Damaged(what),
        None => Ended::Stopped,
    };
    drop(shared);
    if flushed && matches!(ended, Ended::Stopped) && watch.closed() {
        if let Err(e) = crate::store::clean::mark(&config.storage.path) {
            warn!(error = %e, "cannot record the clean close: the next start checks the whole store");
        }
    }
    Ok(ended)
}

/// The writer, readers, alerts and disk-full recovery of a sound store.
fn start(
    config: &Config,
    store: &Store,
    shared: &Arc<Shared>,
    handles: &[Arc<SourceHandle>],
    process: &Process,
    shutdown: &CancellationToken,
    alerting: Option<Arc<crate::alerts::Alerting>>,
) -> anyhow::Result<Pipeline> {
    let queue = Arc::new(MergeQueue::new(handles.len()));
    let store_failed = CancellationToken::new();
    let ingestor = Ingestor::new(
        store.clone(),
        config.agency.timezone,
        config.required_roles,
        config.storage.path.join("rejected"),
        shared.clone(),
    )?
    .with_heartbeat(process.heartbeat.clone())
    .stop_on_store_failure(store_failed.clone());
    let writer = std::thread::Builder::new().name("writer".into()).spawn({
        let (queue, shared) = (queue.clone(), shared.clone());
        move || {
            let ran =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ingestor.run(&queue)));
            if let Err(panic) = &ran {
                // sled panics on some damaged files instead of returning an error.
                shared.health.report_damage(&format!(
                    "the store panicked while being read: {}",
                    crate::store::panic_text(panic)
                ));
            }
            ran
        }
    })?;
    let sources_stop = shutdown.child_token();
    let readers = Readers::spawn(handles, config, store, &queue, &sources_stop)?;
    let alerts = alerting.map(|a| {
        let stop = shutdown.child_token();
        (tokio::spawn(a.run(stop.clone())), stop)
    });
    let recovery = tokio::spawn(disk_full::recover_after_store_failure(
        store_failed,
        shutdown.clone(),
        sources_stop.clone(),
        store.clone(),
        config.storage.path.clone(),
        process.heartbeat.clone(),
    ));
    Ok(Pipeline {
        writer,
        readers,
        queue,
        sources_stop,
        alerts,
        recovery,
    })
}

impl Pipeline {
    /// Stops the alerts and the sources, lets the writer finish its batch;
    /// whether the writer flushed the store and ended normally.
    async fn stop(self) -> bool {
        if let Some((task, stop)) = self.alerts {
            stop.cancel();
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                warn!("alert delivery did not stop within 10 s");
            }
        }
        self.sources_stop.cancel();
        // The writer finishes its current batch only: what is still queued was
        // never committed and is read again at the next start.
        let dropped = self.queue.discard_queued();
        if dropped > 0 {
            info!(batches = dropped, "queued batches left for the next start");
        }
        let (readers, writer) = (self.readers, self.writer);
        let joined = tokio::task::spawn_blocking(move || {
            readers.wake_and_join();
            writer.join()
        });
        let flushed = match tokio::time::timeout(super::JOIN_DEADLINE, joined).await {
            Ok(Ok(Ok(Ok(_store)))) => {
                info!("store flushed");
                true
            }
            Ok(_) => {
                warn!("writer thread ended abnormally");
                false
            }
            Err(_) => {
                // Whatever is stuck (a reader on a dead mount, sled) would
                // also hold up the runtime's drop: leave without waiting.
                error!(
                    deadline_s = super::JOIN_DEADLINE.as_secs(),
                    "the writer or a source did not stop in time; exiting without waiting"
                );
                std::process::exit(1);
            }
        };
        self.recovery.abort();
        // Its clone of the store must be gone before the store is reopened.
        let _ = self.recovery.await;
        flushed
    }
}

/// The outcome of a full check.
enum Check {
    Sound,
    Damaged(String),
    Stopped,
}

/// Runs the full check on a blocking thread, holding commits at most
/// `lock_share` of the time; stops when `stop` fires.
async fn verify(store: &Store, stop: &CancellationToken, lock_share: f64) -> Check {
    let (store, stop) = (store.clone(), stop.clone());
    let started = std::time::Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.verify(&VerifyOptions {
                lock_share,
                stop: &|| stop.is_cancelled(),
                progress: &|_| {},
                deep: None,
            })
        }))
    })
    .await;
    match run {
        Ok(Ok(Ok(Some(report)))) => {
            info!(
                keys = report.keys,
                pages = report.pages,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "store checked: every key is the last commit's"
            );
            Check::Sound
        }
        Ok(Ok(Ok(None))) => Check::Stopped,
        Ok(Ok(Err(e))) if !e.is_damage() => {
            warn!(error = %e, "the store check could not finish");
            Check::Stopped
        }
        Ok(Ok(Err(e))) => Check::Damaged(e.detail()),
        Ok(Err(panic)) => Check::Damaged(format!(
            "the store panicked while being read: {}",
            crate::store::panic_text(&panic)
        )),
        Err(e) => Check::Damaged(format!("the store check failed: {e}")),
    }
}

/// Checks the store again every `every`, beside the writer (holding commits
/// at most a tenth of the time); reports damage to `shared`.
async fn scrub(store: Store, shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        info!("scrub: checking the store in the background");
        match verify(&store, &stop, 0.1).await {
            Check::Damaged(what) => {
                shared.health.report_damage(&what);
                return;
            }
            Check::Sound | Check::Stopped => {}
        }
    }
}

/// Whether an error of a run is the store's damage (rather than, say, a
/// busy port or a full disk).
pub(super) fn damage_of(e: &anyhow::Error) -> Option<String> {
    e.downcast_ref::<StoreError>()
        .filter(|s| s.is_damage())
        .map(StoreError::detail)
}
