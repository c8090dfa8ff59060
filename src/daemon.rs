//! Wiring of the daemon: opens the store, starts the writer, one thread per
//! source and the HTTP server, and drains them in order on shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::ingest::{trim_rejected, Ingestor, Shared};
use crate::reload::{ReloadStatus, Reloader};
use crate::service;
use crate::sources::file::Waker;
use crate::sources::merge::MergeQueue;
use crate::sources::SourceHandle;
use crate::store::{Settings, Store};
use crate::web::Web;

/// Opens the store and brings its counts in line with the configured settings.
pub fn open_store(config: &Config) -> anyhow::Result<(Store, crate::aggregate::Aggregates)> {
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let store = Store::open(&config.storage.path, config.storage.cache_capacity)?;
    let unreadable = || {
        format!(
            "store {} cannot be read; rebuild it from the logs: docflowd rebuild -c {}",
            config.storage.path.display(),
            config.file.display()
        )
    };
    let settings = Settings {
        timezone: config.agency.timezone.name().to_string(),
        required_roles: config.required_roles,
    };
    let aggregates = match store.settings().with_context(unreadable)? {
        Some(s) if s == settings => store.aggregates().with_context(unreadable)?,
        previous => {
            if previous.is_some() {
                info!("timezone or required signature roles changed: recounting documents");
            }
            let tz = config.agency.timezone;
            let roles = config.required_roles;
            store
                .recount(&settings, |doc| Ingestor::slot(doc, tz, roles))
                .with_context(unreadable)?
        }
    };
    Ok((store, aggregates))
}

/// The reader threads of the sources, one per source.
pub struct Readers {
    threads: Vec<std::thread::JoinHandle<()>>,
    wakers: Vec<Arc<Waker>>,
}

impl Readers {
    /// Starts a reader per source (file tailer, HTTP feed or edXML
    /// directory), sending to `queue` until `stop`.
    pub fn spawn(
        handles: &[Arc<SourceHandle>],
        config: &Config,
        store: &Store,
        queue: &Arc<MergeQueue>,
        stop: &CancellationToken,
    ) -> anyhow::Result<Readers> {
        let mut readers = Readers {
            threads: Vec::new(),
            wakers: Vec::new(),
        };
        let tz = config.agency.timezone;
        for (i, handle) in handles.iter().enumerate() {
            let waker = Arc::new(Waker::default());
            readers.wakers.push(waker.clone());
            let (handle, queue, stop) = (handle.clone(), queue.clone(), stop.clone());
            let thread = std::thread::Builder::new().name(format!("source-{}", handle.config.name));
            readers
                .threads
                .push(if handle.config.format == crate::config::Format::Edxml {
                    let done = store.edxml_files(&handle.config.name)?;
                    let code = config.agency.code.clone();
                    thread.spawn(move || {
                        crate::sources::edxml::run(i, handle, tz, code, done, queue, stop, waker)
                    })?
                } else if handle.config.http.is_some() {
                    thread.spawn(move || crate::sources::http::run(i, handle, tz, queue, stop))?
                } else {
                    thread.spawn(move || {
                        crate::sources::file::run(i, handle, tz, queue, stop, waker)
                    })?
                });
        }
        Ok(readers)
    }

    /// Wakes readers waiting for file changes (their stop token must be
    /// cancelled first) and waits for them to end.
    pub fn wake_and_join(self) {
        for w in &self.wakers {
            w.wake();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds the HTTP listener, naming the config key on failure.
pub async fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "{}: cannot listen on {}",
                config.server.listen_location, config.server.listen
            )
        })
}

/// What lives as long as the process, across restarts on an imported store:
/// the listeners stay bound, so an import never loses the port.
struct Process {
    tcp: Arc<tokio::net::TcpListener>,
    admin: Arc<tokio::net::UnixListener>,
    web: Arc<Web>,
    reload_status: Arc<ReloadStatus>,
    admin_metrics: Arc<crate::admin::AdminMetrics>,
    allowed_hosts: Arc<crate::guard::AllowedHosts>,
}

/// The routers of one run: the TCP listener's and the admin socket's.
fn routers(
    config: &Config,
    process: &Process,
    state: AppState,
    admin: crate::admin::AdminState,
) -> (axum::Router, axum::Router) {
    use axum::middleware::{from_fn, from_fn_with_state};
    let public = api::router(state).layer(from_fn(crate::guard::refuse_body));
    let tcp = public
        .merge(crate::admin::router(admin.clone()))
        .layer(from_fn_with_state(
            process.web.clone(),
            crate::web::require_basic_auth,
        ))
        .layer(from_fn_with_state(
            crate::guard::HostCheck {
                allowed: process.allowed_hosts.clone(),
                listen: config.server.listen,
            },
            crate::guard::check_host,
        ));
    (tcp, crate::admin::router(admin))
}

/// Runs one pipeline (store, writer, sources, alerts, servers) until
/// `shutdown` fires or `restart` asks for a restart on an imported store.
async fn run_once(
    config: &Config,
    shutdown: &CancellationToken,
    process: &Process,
    restart: crate::admin::Restart,
) -> anyhow::Result<()> {
    let (store, aggregates) = open_store(config)?;
    let unreadable = || {
        format!(
            "store {} cannot be read; rebuild it from the logs: docflowd rebuild -c {}",
            config.storage.path.display(),
            config.file.display()
        )
    };
    if crate::ingest::store_failing() {
        store.probe_write()?;
        crate::ingest::store_recovered();
    }
    let committed = store.sources().with_context(unreadable)?;
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
    let shared = Shared::new(aggregates, handles.clone());

    let queue = Arc::new(MergeQueue::new(handles.len()));
    let store_failed = CancellationToken::new();
    let ingestor = Ingestor::new(
        store.clone(),
        config.agency.timezone,
        config.required_roles,
        rejected_dir,
        shared.clone(),
    )
    .with_context(unreadable)?
    .stop_on_store_failure(store_failed.clone());
    let heartbeat = ingestor.heartbeat();
    let writer = std::thread::Builder::new().name("writer".into()).spawn({
        let queue = queue.clone();
        move || ingestor.run(&queue)
    })?;

    let sources_stop = shutdown.child_token();
    let readers = Readers::spawn(&handles, config, &store, &queue, &sources_stop)?;

    let alerting = crate::alerts::Alerting::open(config, store.clone(), shared.clone())
        .context("cannot read alert state")?;
    let alerts_stop = shutdown.child_token();
    let alerts_task = alerting
        .clone()
        .map(|a| tokio::spawn(a.run(alerts_stop.clone())));

    let ready = Arc::new(AtomicBool::new(true));
    let store_keepalive = store.clone();
    // Stops serving on shutdown and on a restart for an import.
    let serving = CancellationToken::new();
    let tcp_closed = CancellationToken::new();
    let config_arc = Arc::new(config.clone());
    let state = AppState {
        config: config_arc.clone(),
        shared: shared.clone(),
        store: store.clone(),
        ready: ready.clone(),
        reload: process.reload_status.clone(),
        alerts: alerting,
        admin_metrics: process.admin_metrics.clone(),
    };
    let admin_state = crate::admin::AdminState {
        config: config_arc,
        store,
        restart: restart.clone(),
        metrics: process.admin_metrics.clone(),
        web: process.web.clone(),
        stop: serving.clone(),
        importing: Arc::default(),
        tcp_closed: tcp_closed.clone(),
    };
    let (tcp_router, admin_router) = routers(config, process, state, admin_state);
    let watchdog_stop = serving.clone();
    service::spawn_watchdog(move || heartbeat.age(), watchdog_stop);
    let limits = crate::server::Limits {
        max_connections: config.server.max_connections,
        ..Default::default()
    };
    let servers = tokio::spawn({
        let (tcp, admin, web, stop) = (
            process.tcp.clone(),
            process.admin.clone(),
            process.web.clone(),
            serving.clone(),
        );
        async move {
            tokio::join!(
                crate::server::serve_tcp(tcp, web, tcp_router, limits, stop.clone(), tcp_closed),
                crate::server::serve_unix(admin, admin_router, limits, stop),
            );
        }
    });
    info!(
        sources = handles.len(),
        store = %config.storage.path.display(),
        "pipeline started"
    );
    service::notify_ready(&format!(
        "serving on {}, {} sources",
        config.server.listen,
        handles.len()
    ));
    let recovery = tokio::spawn(recover_after_store_failure(
        store_failed.clone(),
        shutdown.clone(),
        sources_stop.clone(),
        store_keepalive,
        config.storage.path.clone(),
    ));
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = restart.token.cancelled() => {}
    }
    serving.cancel();
    let _ = servers.await;

    info!("shutting down: stopping sources");
    service::notify_stopping();
    ready.store(false, Ordering::Relaxed);
    alerts_stop.cancel();
    if let Some(task) = alerts_task {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            warn!("alert delivery did not stop within 10 s");
        }
    }
    sources_stop.cancel();
    // The writer finishes its current batch only: what is still queued was
    // never committed and is read again at the next start.
    let dropped = queue.discard_queued();
    if dropped > 0 {
        info!(batches = dropped, "queued batches left for the next start");
    }
    let joined = tokio::task::spawn_blocking(move || {
        readers.wake_and_join();
        writer.join()
    });
    match tokio::time::timeout(Duration::from_secs(20), joined).await {
        Ok(Ok(Ok(_store))) => info!("store flushed; bye"),
        Ok(_) => warn!("writer thread ended abnormally"),
        Err(_) => warn!("shutdown took longer than 20 s; exiting without waiting"),
    }
    recovery.abort();
    // Its clone of the store must be gone before the store is reopened.
    let _ = recovery.await;
    Ok(())
}

/// Environment variable set across the re-exec that reopens a failed store.
const RECOVERING_ENV: &str = "DOCFLOW_STORE_RECOVERING";
/// Free bytes the store's filesystem must take before the store is reopened.
const PROBE_BYTES: usize = 1 << 20;
/// Longest wait between checks for free space.
const MAX_PROBE_DELAY: Duration = Duration::from_secs(10);

/// Whether `dir` takes [`PROBE_BYTES`] of new data right now.
fn space_available(dir: &Path) -> bool {
    let probe = dir.join(".docflow-space-probe");
    let ok = std::fs::File::create(&probe)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        })
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// After a failed store write: keeps the HTTP server up with `/readyz`
/// failing, waits (with backoff) until the filesystem takes writes again,
/// then re-executes docflowd to reopen the store from its last commit.
///
/// sled 0.34 keeps its first I/O error and fails every later write, and
/// dropping the failed database blocks forever in its final flush; its file
/// lock forbids a second open in this process. A fresh process image (same
/// PID, same arguments) is the only clean reopen: files and sockets close on
/// exec, and the store on disk holds the last batch committed with its
/// positions, so what was not committed is read again.
async fn recover_after_store_failure(
    store_failed: CancellationToken,
    shutdown: CancellationToken,
    sources_stop: CancellationToken,
    store: Store,
    dir: PathBuf,
) {
    tokio::select! {
        _ = store_failed.cancelled() => {}
        _ = shutdown.cancelled() => return,
    }
    // Never let the failed database be dropped: its drop would hang.
    std::mem::forget(store);
    sources_stop.cancel();
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let probe_dir = dir.clone();
        let space = tokio::task::spawn_blocking(move || space_available(&probe_dir))
            .await
            .unwrap_or(false);
        if space {
            break;
        }
        delay = (delay * 2).min(MAX_PROBE_DELAY);
    }
    info!("the store's filesystem takes writes again: restarting docflowd to reopen the store");
    let err = reexec();
    error!(error = %err, "cannot re-execute docflowd; stop and start it to resume ingestion");
}

fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return e,
    };
    std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(RECOVERING_ENV, "1")
        .exec()
}

/// Longest wait between attempts to open the store while recovering.
const MAX_REOPEN_DELAY: Duration = Duration::from_secs(10);

/// Runs the daemon until `shutdown` fires; `on_ready` is called with the
/// bound address once serving. An import restarts the pipeline on the
/// imported store with the listeners kept bound. When started again after a
/// failed store write (the re-execution described in the README), a store
/// that cannot be opened for lack of space is retried with backoff.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let recovering = std::env::var_os(RECOVERING_ENV).is_some();
    std::env::remove_var(RECOVERING_ENV);
    if recovering {
        crate::ingest::mark_store_failing();
    }
    let tcp = bind(&config).await?;
    let addr = tcp.local_addr()?;
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let admin_path = crate::admin::socket_path(&config);
    let process = Process {
        tcp: Arc::new(tcp),
        admin: Arc::new(crate::admin::bind_socket(&admin_path)?),
        web: Arc::new(Web::new(config.server.web.clone())),
        reload_status: Arc::new(ReloadStatus::default()),
        admin_metrics: Arc::default(),
        allowed_hosts: Arc::new(crate::guard::AllowedHosts::new(
            &config.server.allowed_hosts,
        )),
    };
    spawn_reload_on_sighup(
        Reloader::new(&config, process.web.clone(), process.reload_status.clone()),
        shutdown.clone(),
    )?;
    info!(
        listen = %addr,
        admin_socket = %admin_path.display(),
        web = crate::web::describe(config.server.web.as_deref()),
        "docflowd started"
    );
    crate::web::warn_if_weak(config.server.web.as_deref(), addr);
    let result = supervise(&config, &shutdown, &process, addr, on_ready).await;
    let _ = std::fs::remove_file(&admin_path);
    result
}

/// Restarts the pipeline after an import and, on a full disk, until the store opens.
async fn supervise(
    config: &Config,
    shutdown: &CancellationToken,
    process: &Process,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let mut on_ready = Some(on_ready);
    let mut delay = Duration::from_millis(500);
    loop {
        let restart = crate::admin::Restart::default();
        if let Some(f) = on_ready.take() {
            // Connections wait in the listener's backlog until the pipeline serves.
            f(addr);
        }
        let result = run_once(config, shutdown, process, restart.clone()).await;
        if let Some(staged) = restart.take_imported() {
            result?;
            if shutdown.is_cancelled() {
                // Stopped meanwhile: the staged store is discarded at the next start.
                warn!(imported = %staged.display(), "stopped before the imported store was put in place");
                return Ok(());
            }
            crate::store::swap::install(&config.storage.path, &staged, None).with_context(
                || {
                    format!(
                        "cannot put the imported store in place in {}",
                        config.storage.path.display()
                    )
                },
            )?;
            info!(store = %config.storage.path.display(), "imported store in place: starting on it");
            continue;
        }
        let store_error = result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<crate::store::StoreError>());
        let disk_full = matches!(store_error, Some(crate::store::StoreError::Open { source: sled::Error::Io(e), .. } | crate::store::StoreError::Write(sled::Error::Io(e))) if e.kind() == std::io::ErrorKind::StorageFull);
        let retry = disk_full
            || (crate::ingest::store_failing()
                && matches!(
                    store_error,
                    Some(
                        crate::store::StoreError::Open { .. } | crate::store::StoreError::Write(_)
                    )
                ));
        if !retry || shutdown.is_cancelled() {
            return result;
        }
        if !crate::ingest::store_failing() {
            // Started on a full disk: the one ERROR line of this failure.
            crate::ingest::mark_store_failing();
            error!(error = %result.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default(), "cannot open the store: disk full; retrying");
        }
        warn!(retry_in_ms = delay.as_millis() as u64, error = %result.err().map(|e| format!("{e:#}")).unwrap_or_default(), "store still cannot be opened");
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_REOPEN_DELAY);
    }
}

/// Reloads the config on each SIGHUP until `stop`.
fn spawn_reload_on_sighup(mut reloader: Reloader, stop: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = hangup.recv() => if received.is_none() { return },
            }
            info!("SIGHUP received: reloading the config");
            service::notify_reloading();
            // A reload reads a few small files and checks bcrypt hashes: brief
            // enough to run here.
            let accepted = reloader.reload();
            service::notify_ready(if accepted {
                "config reloaded"
            } else {
                "config reload refused; running config kept"
            });
        }
    });
    Ok(())
}
