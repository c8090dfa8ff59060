//! The admin surface: every action that changes or dumps the store (import,
//! export) is reachable only by an administrator — on the local admin socket
//! (`{storage.path}/admin.sock`, mode 0600, the peer's uid checked by the
//! kernel's credentials), or over TLS by a user the web config lists in
//! `admin_users`. A browser can reach neither, so cross-site requests and DNS
//! rebinding cannot touch the store. Every action is logged with who asked
//! and counted in `docflow_admin_actions_total`.

mod actions;
pub(crate) mod client;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{IntCounterVec, Opts};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub(crate) use actions::stage_import;

use crate::config::Config;
use crate::server::Peer;
use crate::store::Store;
use crate::web::{AuthUser, Web};

/// File name of the admin socket in the store directory.
const SOCKET_NAME: &str = "admin.sock";

/// The admin socket of the daemon that `config` describes: in the store
/// directory, which only the service user can enter, so `docflowd export`
/// and `import` find it from the config alone.
pub(crate) fn socket_path(config: &Config) -> PathBuf {
    config.storage.path.join(SOCKET_NAME)
}

/// Binds the admin socket (replacing a stale one) with mode 0600.
pub(crate) fn bind_socket(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    // A socket file left by a daemon that was killed: nobody answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let listener = tokio::net::UnixListener::bind(path).with_context(|| {
        format!(
            "cannot create the admin socket {} (is another docflowd running on this store? a path over 107 bytes is refused by the system)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict the admin socket {}", path.display()))?;
    Ok(listener)
}

/// A request to restart the daemon on a store imported next to the live one.
#[derive(Clone, Default)]
pub(crate) struct Restart {
    /// Cancelled to stop serving and restart.
    pub(crate) token: CancellationToken,
    /// The staged store waiting to replace the live one.
    imported: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

impl Restart {
    /// The imported store waiting to replace the live one, if any.
    pub(crate) fn take_imported(&self) -> Option<PathBuf> {
        self.imported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn request(&self, staged: PathBuf) {
        *self.imported.lock().unwrap_or_else(|e| e.into_inner()) = Some(staged);
        self.token.cancel();
    }
}

/// `docflow_admin_actions_total{action,result}`, for the life of the process.
pub(crate) struct AdminMetrics {
    actions: IntCounterVec,
}

impl Default for AdminMetrics {
    fn default() -> Self {
        let actions = IntCounterVec::new(
            Opts::new(
                "docflow_admin_actions_total",
                "Admin actions (import, export, verify) by result (ok, failed, refused).",
            ),
            &["action", "result"],
        )
        .expect("valid metric definition");
        for action in ["import", "export", "verify"] {
            for result in ["ok", "failed", "refused"] {
                actions.with_label_values(&[action, result]);
            }
        }
        AdminMetrics { actions }
    }
}

impl crate::metrics::Collect for AdminMetrics {
    fn collect(&self, scrape: &crate::metrics::Scrape) {
        scrape.add(&self.actions);
    }
}

/// Who asked for an admin action, for the audit line.
#[derive(Debug, Clone)]
pub(crate) struct Who(String);

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the admin handlers share.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) restart: Restart,
    pub(crate) metrics: Arc<AdminMetrics>,
    pub(crate) web: Arc<Web>,
    /// Cancelled when the daemon stops serving: long admin work ends early.
    pub(crate) stop: CancellationToken,
    /// Set while an import runs (one at a time).
    pub(crate) importing: Arc<AtomicBool>,
    /// The store's health: a verify that finds damage reports it here.
    pub(crate) health: Arc<crate::ingest::Shared>,
    /// Cancelled once the TCP listener stops accepting for this run: an
    /// import answers only then, so a request sent after the answer is
    /// served by the restarted daemon, on the imported store.
    pub(crate) tcp_closed: CancellationToken,
}

impl AdminState {
    /// Logs and counts one admin action; `detail` says what or why.
    pub(crate) fn audit(&self, who: &Who, action: &str, result: &str, detail: &str) {
        self.metrics
            .actions
            .with_label_values(&[action, result])
            .inc();
        if result == "ok" {
            info!(%who, action, result, detail, "admin action");
        } else {
            warn!(%who, action, result, detail, "admin action");
        }
    }
}

/// The admin routes; the same on the socket and, when enabled, over TLS.
pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/api/v1/export", get(actions::export))
        .route("/api/v1/import", post(actions::import))
        .route("/api/v1/verify", post(actions::verify))
        .route("/admin/healthz", get(|| async { "ok\n" }))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .with_state(state)
}

/// The effective uid of this process: only it and root may use the socket.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a request may not act as an administrator, if it may not.
fn refusal(
    peer: Option<&Peer>,
    user: Option<&AuthUser>,
    headers: &HeaderMap,
    web: &Web,
) -> Result<Who, String> {
    match peer {
        Some(Peer::Unix { uid, .. }) if *uid == own_uid() || *uid == 0 => {
            Ok(Who(peer.map(ToString::to_string).unwrap_or_default()))
        }
        Some(Peer::Unix { uid, .. }) => Err(format!(
            "uid {uid} may not use the admin socket: run the command as the user docflowd runs as"
        )),
        Some(Peer::Tcp(addr)) => {
            let remote = web.current().filter(|c| c.remote_admin());
            let Some(web) = remote else {
                return Err("admin actions go through the local admin socket (docflowd export|import -c CONFIG on the server); remote admin is off (see admin_users in the web config)".into());
            };
            let Some(AuthUser(name)) = user.filter(|u| web.is_admin(&u.0)) else {
                return Err("this user has no admin role (admin_users in the web config)".into());
            };
            // A page in a browser sends Origin or Sec-Fetch-Site; the CLI and curl do not.
            let cross_site = headers.contains_key(header::ORIGIN)
                || headers
                    .get("sec-fetch-site")
                    .is_some_and(|v| v != "none" && v != "same-origin");
            if cross_site {
                return Err("admin actions are not taken from a web page".into());
            }
            Ok(Who(format!("user {name} from {addr}")))
        }
        None => Err("unknown peer".into()),
    }
}

async fn authorize(State(s): State<AdminState>, mut req: Request, next: Next) -> Response {
    let who = refusal(
        req.extensions().get::<Peer>(),
        req.extensions().get::<AuthUser>(),
        req.headers(),
        &s.web,
    );
    match who {
        Ok(who) => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(why) => {
            let action = ["import", "verify"]
                .into_iter()
                .find(|a| req.uri().path().ends_with(a))
                .unwrap_or("export");
            let peer = req
                .extensions()
                .get::<Peer>()
                .map_or_else(|| "unknown".to_string(), ToString::to_string);
            s.audit(&Who(peer), action, "refused", &why);
            (StatusCode::FORBIDDEN, Json(json!({"error": why}))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_service_user_or_root_and_remote_admins_without_a_browser_may_act() {
        let web = Web::new(None);
        let headers = HeaderMap::new();
        let me = Peer::Unix {
            uid: own_uid(),
            pid: Some(1),
        };
        assert!(refusal(Some(&me), None, &headers, &web).is_ok());
        let root = Peer::Unix { uid: 0, pid: None };
        assert!(refusal(Some(&root), None, &headers, &web).is_ok());
        let other = Peer::Unix {
            uid: own_uid() + 1,
            pid: None,
        };
        assert!(refusal(Some(&other), None, &headers, &web)
            .unwrap_err()
            .contains("may not use"));
        let tcp = Peer::Tcp("127.0.0.1:5000".parse().unwrap());
        let e = refusal(Some(&tcp), Some(&AuthUser("admin".into())), &headers, &web).unwrap_err();
        assert!(e.contains("remote admin is off"), "{e}");
        assert!(refusal(None, None, &headers, &web).is_err());
    }
}
