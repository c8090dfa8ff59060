//! The read endpoints on `server.listen` (README, "HTTP API"):
//! `/metrics`, health checks and the JSON API, whose answers are typed:
//! [`crate::report::Report`], [`DocumentPage`], [`Status`], [`ErrorAnswer`].

pub(crate) mod documents;
pub(crate) mod query;
pub(crate) mod status;
pub(crate) mod verdicts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::ingest::Shared;
use crate::parse::time::local_day;
use crate::report::ReportRange;
use crate::store::Store;
use query::Params;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) store: Store,
    /// Set once the store is open and every source has started.
    pub(crate) ready: Arc<AtomicBool>,
    /// Outcome of the last config reload, exported with the metrics.
    pub(crate) reload: Arc<crate::reload::ReloadStatus>,
    /// Alert rules and outbox, when `[alerts]` has rules.
    pub alerts: Option<Arc<crate::alerts::Alerting>>,
    /// `docflow_admin_actions_total`, kept by the admin surface.
    pub(crate) admin_metrics: Arc<crate::admin::AdminMetrics>,
}

/// The router of the read endpoints (admin actions are in [`crate::admin`]).
pub(crate) fn router(state: AppState) -> Router {
    let guard = axum::middleware::from_fn_with_state(state.clone(), refuse_if_damaged);
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/report", get(report))
        .route("/api/v1/documents", get(documents::documents))
        .route("/api/v1/status", get(status::status))
        .layer(guard)
        .with_state(state)
}

/// The answer to a request that could not be served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorAnswer {
    /// What went wrong, for people.
    pub error: String,
}

impl ErrorAnswer {
    fn json(error: String) -> Json<ErrorAnswer> {
        Json(ErrorAnswer { error })
    }
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, ErrorAnswer::json(message.into())).into_response()
}

/// RFC 3339 in the agency's time zone.
fn local_time(t: i64, tz: chrono_tz::Tz) -> Option<String> {
    tz.timestamp_opt(t, 0).single().map(|t| t.to_rfc3339())
}

fn today(config: &Config) -> NaiveDate {
    local_day(chrono::Utc::now().timestamp(), config.agency.timezone)
}

async fn metrics(State(s): State<AppState>) -> Response {
    use crate::metrics::{AgencyInfo, BuildInfo, Documents, Sources, StoreDamaged};
    let documents = Documents {
        aggregates: &s.shared.aggregates,
        today: today(&s.config),
    };
    let body = crate::metrics::render(&[
        &documents,
        &Sources(&s.shared.sources),
        &AgencyInfo(&s.config.agency),
        &BuildInfo,
        &s.reload,
        &s.alerts,
        &s.admin_metrics,
        // A damaged store stops the API (`refuse_if_damaged`): this one is sound.
        &StoreDamaged(false),
    ]);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let health = &s.shared.health;
    if s.ready.load(Ordering::Relaxed)
        && s.shared.store_ok.load(Ordering::Relaxed)
        && health.verified()
        && !health.is_damaged()
    {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn report(State(s): State<AppState>, Params(range): Params<ReportRange>) -> Response {
    let aggregates = s.shared.aggregates.read().expect("aggregates lock");
    Json(crate::report::for_config(&s.config, &range, &aggregates)).into_response()
}

/// 503 while the store's full check has not passed, or once it failed.
fn store_unavailable(s: &AppState) -> Response {
    let message = match s.shared.health.damage() {
        Some(what) => format!(
            "store {} is damaged ({what}); no numbers are served from it",
            s.store.path().display()
        ),
        None => format!(
            "store {} is being checked; documents are listed once the check passes",
            s.store.path().display()
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        ErrorAnswer::json(message),
    )
        .into_response()
}

/// Middleware: no answer from a store found damaged (the run is ending).
pub(crate) async fn refuse_if_damaged(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if s.shared.health.is_damaged() && req.uri().path() != "/healthz" {
        return store_unavailable(&s);
    }
    next.run(req).await
}
