//! Wiring of the daemon: binds the listeners once for the life of the
//! process, then runs the pipeline on the store (`pipeline`) — again after
//! an import, after a rebuild of a damaged store (`unavailable`), and
//! after a full disk frees up (`disk_full`).

mod disk_full;
mod pipeline;
mod unavailable;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::reload::{ReloadStatus, Reloader};
use crate::service::{self, Heartbeat};
use crate::web::Web;
use pipeline::Ended;

/// Time the writer and the sources get to stop; past it the process exits
/// (status 1) without waiting for whatever is stuck.
pub(crate) const JOIN_DEADLINE: Duration = Duration::from_secs(20);
/// Longest wait between attempts to open the store on a full disk.
const MAX_REOPEN_DELAY: Duration = Duration::from_secs(10);

/// What lives as long as the process, across restarts on another store: the
/// listeners stay bound (an import or a rebuild never loses the port), and
/// the watchdog's heartbeat is beaten by whoever keeps the service alive.
pub(crate) struct Process {
    tcp: Arc<tokio::net::TcpListener>,
    admin: Arc<tokio::net::UnixListener>,
    web: Arc<Web>,
    reload_status: Arc<ReloadStatus>,
    admin_metrics: Arc<crate::admin::AdminMetrics>,
    allowed_hosts: Arc<crate::guard::AllowedHosts>,
    heartbeat: Arc<Heartbeat>,
    /// Whether store writes fail (logged at ERROR once per failure).
    writes: Arc<crate::state::WriteHealth>,
}

impl Process {
    /// Serves the TCP and admin routers until `stop`.
    fn serve(
        &self,
        config: &Config,
        (tcp_router, admin_router): (axum::Router, axum::Router),
        stop: &CancellationToken,
        tcp_closed: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let limits = crate::server::Limits {
            max_connections: config.server.max_connections,
            ..Default::default()
        };
        let (tcp, admin, web, stop) = (
            self.tcp.clone(),
            self.admin.clone(),
            self.web.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            tokio::join!(
                crate::server::serve_tcp(
                    tcp,
                    web.tls_now(),
                    tcp_router,
                    limits,
                    stop.clone(),
                    tcp_closed
                ),
                crate::server::serve_unix(admin, admin_router, limits, stop),
            );
        })
    }
}

/// The TCP router behind the Host check and basic auth; the admin router as is.
fn guarded(
    config: &Config,
    process: &Process,
    tcp: axum::Router,
    admin: axum::Router,
) -> (axum::Router, axum::Router) {
    use axum::middleware::from_fn_with_state;
    let tcp = tcp
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
    (tcp, admin)
}

/// The routers of one run: reads and (gated) admin on TCP, admin on the socket.
fn routers(
    config: &Config,
    process: &Process,
    state: AppState,
    admin: crate::admin::AdminState,
) -> (axum::Router, axum::Router) {
    let public = api::router(state.clone())
        .merge(crate::console::router(state))
        .layer(axum::middleware::from_fn(crate::guard::refuse_body));
    let tcp = public.merge(crate::admin::router(admin.clone()));
    guarded(config, process, tcp, crate::admin::router(admin))
}

/// Binds the HTTP listener, naming the config key on failure.
pub(crate) async fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "{}: cannot listen on {}",
                config.server.listen_location, config.server.listen
            )
        })
}

/// Runs the daemon until `shutdown` fires; `on_ready` is called with the
/// bound address once the listeners are bound.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let writes = Arc::new(crate::state::WriteHealth::default());
    if std::env::var_os(disk_full::RECOVERING_ENV).is_some() {
        // Re-executed after a failed write: the failure was logged already.
        writes.fail();
    }
    std::env::remove_var(disk_full::RECOVERING_ENV);
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
        heartbeat: Arc::default(),
        writes,
    };
    spawn_reload_on_sighup(
        Reloader::new(&config, process.web.clone(), process.reload_status.clone()),
        shutdown.clone(),
    )?;
    let heartbeat = process.heartbeat.clone();
    service::spawn_watchdog(move || heartbeat.age(), shutdown.clone());
    info!(
        listen = %addr,
        admin_socket = %admin_path.display(),
        web = crate::web::describe(config.server.web.as_deref()),
        "docflowd started"
    );
    crate::web::warn_if_weak(config.server.web.as_deref(), addr);
    on_ready(addr);
    let result = supervise(&config, &shutdown, &process).await;
    service::notify_stopping();
    let _ = std::fs::remove_file(&admin_path);
    result
}

/// Runs the pipeline again after an import, after a damaged store is
/// rebuilt, and on a full disk until the store opens.
async fn supervise(
    config: &Config,
    shutdown: &CancellationToken,
    process: &Process,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(500);
    let mut waiting_for_space: Option<CancellationToken> = None;
    loop {
        let restart = crate::admin::Restart::default();
        let result = pipeline::run_once(config, shutdown, process, restart.clone()).await;
        if !matches!(&result, Err(e) if is_disk_full(e)) {
            if let Some(stop) = waiting_for_space.take() {
                stop.cancel();
            }
        }
        let damage = match &result {
            Ok(Ended::Damaged(what)) => Some(what.clone()),
            Err(e) => pipeline::damage_of(e),
            Ok(Ended::Stopped) => None,
        };
        if let Some(what) = damage {
            if shutdown.is_cancelled() {
                return Err(anyhow::anyhow!(
                    "store {} is damaged ({what}); rebuild it from the logs: docflowd rebuild -c {}",
                    config.storage.path.display(),
                    config.file.display()
                ));
            }
            unavailable::after_damage(config, process, shutdown, &what).await?;
            continue;
        }
        if let Some(staged) = restart.take_imported() {
            result?;
            if shutdown.is_cancelled() {
                // Stopped meanwhile: the staged store is discarded at the next start.
                warn!(imported = %staged.display(), "stopped before the imported store was put in place");
                return Ok(());
            }
            crate::store::swap::install(
                &config.storage.path,
                &staged,
                crate::store::swap::Replace::Store,
            )
            .with_context(|| {
                format!(
                    "cannot put the imported store in place in {}",
                    config.storage.path.display()
                )
            })?;
            info!(store = %config.storage.path.display(), "imported store in place: starting on it");
            continue;
        }
        let error = match result {
            Ok(Ended::Stopped) => return Ok(()),
            Ok(Ended::Damaged(_)) => unreachable!("handled above"),
            Err(e) => e,
        };
        let retry = is_disk_full(&error)
            || (process.writes.failing()
                && error
                    .downcast_ref::<crate::store::StoreError>()
                    .is_some_and(|e| {
                        matches!(e, crate::store::StoreError::Open { .. }) || e.is_write_failure()
                    }));
        if !retry || shutdown.is_cancelled() {
            return Err(error);
        }
        if !process.writes.fail() {
            // Started on a full disk: the one ERROR line of this failure.
            error!(error = %format!("{error:#}"), "cannot open the store: disk full; serving health only and retrying");
        }
        if waiting_for_space.is_none() {
            waiting_for_space = Some(unavailable::while_disk_full(config, process));
        }
        warn!(retry_in_ms = delay.as_millis() as u64, error = %format!("{error:#}"), "store still cannot be opened");
        if !disk_full::wait_alive(delay, &process.heartbeat, shutdown).await {
            return Ok(());
        }
        delay = (delay * 2).min(MAX_REOPEN_DELAY);
    }
}

fn is_disk_full(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::store::StoreError>()
        .is_some_and(crate::store::StoreError::is_disk_full)
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
