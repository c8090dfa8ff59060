//! While there is no store to serve numbers from — it is damaged (rebuilt
//! from the logs, or waiting for the operator) or the disk is full at start —
//! the daemon still answers: `/healthz` 200, `/readyz` 503, `/metrics` with
//! `docflow_store_damaged` and no counts, every other endpoint 503 saying why.
//! It never serves numbers from a store that failed a check.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{disk_full, Process};
use crate::config::{Config, OnDamage};
use crate::service;
use crate::store::swap::{self, Replace};
use crate::store::Store;

/// Why the store is not served, as shown to clients.
#[derive(Clone)]
struct Why {
    message: Arc<Mutex<String>>,
    damaged: bool,
}

impl Why {
    fn text(&self) -> String {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn metrics(State(why): State<Why>) -> Response {
    use crate::metrics::{BuildInfo, StoreDamaged};
    let body = crate::metrics::render(&[&StoreDamaged(why.damaged), &BuildInfo]);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

async fn refuse(State(why): State<Why>) -> Response {
    let status = if why.damaged {
        "damaged"
    } else {
        "unavailable"
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "30")],
        Json(json!({"error": why.text(), "store": status})),
    )
        .into_response()
}

fn router(why: Why) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(refuse)
        .with_state(why)
}

/// Serves the unavailable router on both listeners until `stop`.
fn serve(
    config: &Config,
    process: &Process,
    why: Why,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let tcp = router(why.clone());
    let admin = router(why);
    let (tcp, admin) = super::guarded(config, process, tcp, admin);
    process.serve(config, (tcp, admin), stop, CancellationToken::new())
}

/// A damaged store: says so once at ERROR, then rebuilds it from the logs
/// (keeping it for inspection) or, with `on_damage = "refuse"`, waits for
/// the operator. `Ok(())` when a rebuilt store is in place.
pub(super) async fn after_damage(
    config: &Config,
    process: &Process,
    shutdown: &CancellationToken,
    what: &str,
) -> anyhow::Result<()> {
    let path = &config.storage.path;
    let command = format!("docflowd rebuild -c {}", config.file.display());
    let why = Why {
        message: Arc::new(Mutex::new(format!(
            "store {} is damaged ({what}); no numbers are served from it",
            path.display()
        ))),
        damaged: true,
    };
    let stop = shutdown.child_token();
    let server = serve(config, process, why.clone(), &stop);
    let beat = tokio::spawn(feed_watchdog(process.heartbeat.clone(), stop.clone()));
    let result = match config.storage.on_damage {
        OnDamage::Refuse => {
            error!(store = %path.display(), damage = what, remedy = %command, "the store is damaged: no numbers are served; stop docflowd and rebuild it from the logs (storage.on_damage = \"refuse\")");
            service::notify_ready("store damaged: waiting for the operator");
            shutdown.cancelled().await;
            Err(anyhow::anyhow!(
                "store {} is damaged ({what}); rebuild it from the logs: {command}",
                path.display()
            ))
        }
        OnDamage::Rebuild => {
            error!(store = %path.display(), damage = what, "the store is damaged: no numbers are served; rebuilding it from the logs (the damaged files are kept)");
            service::notify_ready("store damaged: rebuilding from the logs");
            *why.message.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                "store {} is damaged ({what}); it is being rebuilt from the logs",
                path.display()
            );
            rebuild(config, shutdown).await
        }
    };
    stop.cancel();
    let _ = server.await;
    beat.abort();
    result
}

/// Rebuilds into a staging store and swaps it in, keeping the damaged files
/// in `damaged-{time}/`.
async fn rebuild(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let (config, shutdown) = (config.clone(), shutdown.clone());
    tokio::task::spawn_blocking(move || {
        let path = &config.storage.path;
        let carried = carry_alerts(&config);
        let staged = swap::staging_dir(path, "rebuild");
        let rebuilt = crate::rebuild::rebuild_into(&config, &staged, &carried, &shutdown, false)?;
        let kept = format!("damaged-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        swap::install(path, &staged, Replace::KeepingOld(kept.clone()))?;
        let events: u64 = rebuilt.sources.iter().map(|s| s.1).sum();
        info!(store = %path.display(), kept = %path.join(&kept).display(), events, elapsed_s = rebuilt.elapsed.as_secs(), carried = rebuilt.carried, "store rebuilt from the logs and put in place; the damaged files are kept for inspection (remove them when done)");
        Ok(())
    })
    .await?
}

/// The alert state and outbox of the damaged store that still decode, so no
/// alert mail is sent twice; nothing if it cannot be read.
fn carry_alerts(config: &Config) -> Vec<(Vec<u8>, Vec<u8>)> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> Result<Vec<_>, crate::store::StoreError> {
            let store = Store::open(&config.storage.path, config.storage.cache_capacity)?;
            let mut carried = Vec::new();
            for prefix in crate::store::keys::ALERT_PREFIXES {
                carried.extend(store.raw_with_prefix(prefix)?);
            }
            Ok(carried)
        },
    ));
    match read {
        Ok(Ok(records)) => records
            .into_iter()
            .filter(|(k, v)| crate::alerts::record_decodes(k, v))
            .collect(),
        Ok(Err(e)) => {
            warn!(error = %e, "the damaged store's alert state cannot be read: alert mails may be sent again");
            Vec::new()
        }
        Err(_) => {
            warn!("the damaged store's alert state cannot be read: alert mails may be sent again");
            Vec::new()
        }
    }
}

/// Beats the watchdog heartbeat while waiting (the wait is a state, not a stall).
async fn feed_watchdog(heartbeat: Arc<crate::service::Heartbeat>, stop: CancellationToken) {
    while disk_full::wait_alive(Duration::from_secs(1), &heartbeat, &stop).await {}
}

/// Serves "unavailable" while the store cannot be opened for lack of space;
/// the returned token stops it.
pub(super) fn while_disk_full(config: &Config, process: &Process) -> CancellationToken {
    let stop = CancellationToken::new();
    let why = Why {
        message: Arc::new(Mutex::new(format!(
            "the store {} cannot be opened: its filesystem is full; docflowd retries and resumes once space is freed",
            config.storage.path.display()
        ))),
        damaged: false,
    };
    let server = serve(config, process, why, &stop);
    let beat = tokio::spawn(feed_watchdog(process.heartbeat.clone(), stop.clone()));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            let _ = server.await;
            beat.abort();
        }
    });
    service::notify_ready("disk full: waiting for space");
    stop
}
