//! Wiring of the daemon: opens the store, starts the writer, one thread per
//! source and the HTTP server, and drains them in order on shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::ingest::{trim_rejected, Ingestor, Shared};
use crate::reload::{ReloadStatus, Reloader};
use crate::service;
use crate::sources::file::Waker;
use crate::sources::merge::MergeQueue;
use crate::sources::SourceHandle;
use crate::store::{Settings, Store};
use crate::web::{Web, WebListener};

/// Opens the store and brings its counts in line with the configured settings.
pub fn open_store(config: &Config) -> anyhow::Result<(Store, crate::aggregate::Aggregates)> {
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let store = Store::open(&config.storage.path, config.storage.cache_capacity)?;
    let settings = Settings {
        timezone: config.agency.timezone.name().to_string(),
        required_roles: config.required_roles,
    };
    let aggregates = match store.settings()? {
        Some(s) if s == settings => store.aggregates()?,
        previous => {
            if previous.is_some() {
                info!("timezone or required signature roles changed: recounting documents");
            }
            let tz = config.agency.timezone;
            let roles = config.required_roles;
            store.recount(&settings, |doc| Ingestor::slot(doc, tz, roles))?
        }
    };
    Ok((store, aggregates))
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

/// Runs the daemon until `shutdown` fires; `on_ready` is called with the bound address.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = bind(&config).await?;
    let addr = listener.local_addr()?;
    let (store, aggregates) = open_store(&config)?;
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
    let shared = Arc::new(Shared {
        aggregates: RwLock::new(aggregates),
        sources: handles.clone(),
        store_ok: AtomicBool::new(true),
    });

    let queue = Arc::new(MergeQueue::new(handles.len()));
    let ingestor = Ingestor::new(
        store.clone(),
        config.agency.timezone,
        config.required_roles,
        rejected_dir,
        shared.clone(),
    )?;
    let heartbeat = ingestor.heartbeat();
    let writer = std::thread::Builder::new().name("writer".into()).spawn({
        let queue = queue.clone();
        move || ingestor.run(&queue)
    })?;

    let sources_stop = shutdown.child_token();
    let mut readers = Vec::new();
    let mut wakers = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        let waker = Arc::new(Waker::default());
        wakers.push(waker.clone());
        let (handle, queue, stop, tz) = (
            handle.clone(),
            queue.clone(),
            sources_stop.clone(),
            config.agency.timezone,
        );
        readers.push(
            std::thread::Builder::new()
                .name(format!("source-{}", handle.config.name))
                .spawn(move || crate::sources::file::run(i, handle, tz, queue, stop, waker))?,
        );
    }

    let alerting = crate::alerts::Alerting::open(&config, store.clone(), shared.clone())
        .context("cannot read alert state")?;
    let alerts_stop = shutdown.child_token();
    let alerts_task = alerting
        .clone()
        .map(|a| tokio::spawn(a.run(alerts_stop.clone())));

    let ready = Arc::new(AtomicBool::new(true));
    let reload_status = Arc::new(ReloadStatus::default());
    let web = Arc::new(Web::new(config.server.web.clone()));
    let state = AppState {
        config: Arc::new(config.clone()),
        shared: shared.clone(),
        store,
        ready: ready.clone(),
        reload: reload_status.clone(),
        alerts: alerting,
    };
    let router = api::router(state).layer(axum::middleware::from_fn_with_state(
        web.clone(),
        crate::web::require_basic_auth,
    ));
    let listener = WebListener::new(listener, web.clone(), shutdown.clone());
    spawn_reload_on_sighup(
        Reloader::new(&config, web.clone(), reload_status),
        shutdown.clone(),
    )?;
    service::spawn_watchdog(move || heartbeat.age(), shutdown.clone());
    info!(
        listen = %addr,
        web = crate::web::describe(config.server.web.as_deref()),
        sources = handles.len(),
        store = %config.storage.path.display(),
        "docflowd started"
    );
    crate::web::warn_if_weak(config.server.web.as_deref(), addr);
    service::notify_ready(&format!("serving on {addr}, {} sources", handles.len()));
    on_ready(addr);
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let result = server.await;

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
    for w in &wakers {
        w.wake();
    }
    let joined = tokio::task::spawn_blocking(move || {
        for r in readers {
            let _ = r.join();
        }
        writer.join()
    });
    match tokio::time::timeout(Duration::from_secs(20), joined).await {
        Ok(Ok(Ok(_store))) => info!("store flushed; bye"),
        Ok(_) => warn!("writer thread ended abnormally"),
        Err(_) => warn!("shutdown took longer than 20 s; exiting without waiting"),
    }
    result.context("HTTP server failed")
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
