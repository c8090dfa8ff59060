//! The read endpoints on `server.listen`: landing page, `/metrics`, health
//! checks and the JSON API (report, documents, status).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, TimeZone};
use serde_json::{json, Value};

use crate::config::{redact_url, Config, Input};
use crate::ingest::Shared;
use crate::model::{Class, Direction, Document};
use crate::parse::normalize::normalize_unit;
use crate::parse::time::{local_day, parse_date};
use crate::report::{build, ReportRange};
use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub store: Store,
    /// Set once the store is open and every source has started.
    pub ready: Arc<AtomicBool>,
    /// Outcome of the last config reload, exported with the metrics.
    pub reload: Arc<crate::reload::ReloadStatus>,
    /// Alert rules and outbox, when `[alerts]` has rules.
    pub alerts: Option<Arc<crate::alerts::Alerting>>,
    /// `docflow_admin_actions_total`, kept by the admin surface.
    pub admin_metrics: Arc<crate::admin::AdminMetrics>,
}

/// The router of the read endpoints (admin actions are in [`crate::admin`]).
pub fn router(state: AppState) -> Router {
    let guard = axum::middleware::from_fn_with_state(state.clone(), refuse_if_damaged);
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/report", get(report))
        .route("/api/v1/documents", get(documents))
        .route("/api/v1/status", get(status))
        .layer(guard)
        .with_state(state)
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn today(config: &Config) -> NaiveDate {
    local_day(chrono::Utc::now().timestamp(), config.agency.timezone)
}

async fn landing(State(s): State<AppState>) -> Html<String> {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Html(format!(
        r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>docflowd — {name}</title></head>
<body>
<h1>docflowd — {name}</h1>
<p>Giám sát tỷ lệ văn bản điện tử có ký số (Quyết định 534/QĐ-TTg). Mã cơ quan: {code}. Phiên bản {version}.</p>
<ul>
<li><a href="/metrics">/metrics</a> — số liệu cho Prometheus</li>
<li><a href="/api/v1/report">/api/v1/report</a> — báo cáo toàn thời gian (thêm <code>?period=2026-H1</code> hoặc <code>?from=2026-01-01&amp;to=2026-06-30</code>)</li>
<li><a href="/api/v1/documents?class=electronic_unsigned">/api/v1/documents?class=electronic_unsigned</a> — văn bản chưa đủ chữ ký số</li>
<li><a href="/api/v1/status">/api/v1/status</a> — trạng thái nguồn dữ liệu</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a></li>
</ul>
</body></html>
"#,
        name = esc(&s.config.agency.name),
        code = esc(&s.config.agency.code),
        version = env!("CARGO_PKG_VERSION"),
    ))
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut body = crate::metrics::render(&s.shared, &s.config.agency, today(&s.config));
    body.push_str(&s.reload.render());
    if let Some(alerts) = &s.alerts {
        body.push_str(&alerts.render_metrics());
    }
    body.push_str(&s.admin_metrics.render());
    body.push_str("# HELP docflow_store_damaged 1 while the store failed a check and no counts are served.\n# TYPE docflow_store_damaged gauge\ndocflow_store_damaged 0\n");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
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

async fn report(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(k) = q
        .keys()
        .find(|k| !["period", "from", "to"].contains(&k.as_str()))
    {
        return bad_request(format!("unknown parameter `{k}` (period, from, to)"));
    }
    let range = match ReportRange::parse(
        q.get("period").map(String::as_str),
        q.get("from").map(String::as_str),
        q.get("to").map(String::as_str),
    ) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let agg = s.shared.aggregates.read().expect("aggregates lock");
    let mut report = build(&s.config.agency.code, &range, &agg);
    if crate::report::has_edxml_source(&s.config) {
        crate::report::add_rejected_by_receiver(&mut report, &range, &agg);
    }
    Json(report).into_response()
}

/// Default and largest page of `/api/v1/documents`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn document_json(d: &Document, class: Class, tz: chrono_tz::Tz) -> Value {
    let time = tz.timestamp_opt(d.time, 0).single().map(|t| t.to_rfc3339());
    json!({
        "direction": d.direction.as_str(),
        "doc_id": d.doc_id,
        "doc_number": d.doc_number,
        "doc_type": d.doc_type,
        "subject": d.subject,
        "unit": d.unit,
        "counterpart": d.counterpart,
        "time": time,
        "date": local_day(d.time, tz).to_string(),
        "class": class.as_str(),
        "channel": if d.electronic { "electronic" } else { "paper" },
        "confidentiality": d.confidentiality.as_str(),
        "signature_roles": d.role_names(),
        "signers": d.signers,
        "exchange_events": d.events,
        "revoked": d.revoked(),
        "edxml_business": d.business_names(),
        "exchange_status": (d.status.code != 0).then(|| json!({
            "code": format!("{:02}", d.status.code),
            "label": crate::model::status_label(d.status.code),
            "time": tz.timestamp_opt(d.status.time, 0).single().map(|t| t.to_rfc3339()),
        })),
        "rejected_by_receiver": d.status.rejected,
    })
}

fn encode_cursor(direction: Direction, doc_id: &str) -> String {
    let mut s = String::with_capacity(2 + doc_id.len() * 2);
    s.push_str(if direction == Direction::Outgoing {
        "o"
    } else {
        "i"
    });
    for b in doc_id.as_bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_cursor(c: &str) -> Option<(Direction, String)> {
    let (d, hex) = c.split_at_checked(1)?;
    let direction = match d {
        "o" => Direction::Outgoing,
        "i" => Direction::Incoming,
        _ => return None,
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((direction, String::from_utf8(bytes?).ok()?))
}

async fn documents(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let known = [
        "from",
        "to",
        "direction",
        "class",
        "unit",
        "limit",
        "cursor",
    ];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return bad_request(format!("unknown parameter `{k}` ({})", known.join(", ")));
    }
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let date = |k: &str| {
        get(k)
            .map(|v| parse_date(v).map_err(|e| format!("bad `{k}`: {e}")))
            .transpose()
    };
    let (from, to) = match (date("from"), date("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let direction = match get("direction") {
        None => None,
        Some(d) => match Direction::from_canonical(d) {
            Some(d) => Some(d),
            None => return bad_request("bad `direction` (outgoing, incoming)"),
        },
    };
    let class =
        match get("class") {
            None => None,
            Some(c) => match Class::from_name(c) {
                Some(c) => Some(c),
                None => return bad_request(
                    "bad `class` (electronic_signed, electronic_unsigned, paper, secret_exempt)",
                ),
            },
        };
    let unit = q.get("unit").map(|u| normalize_unit(u));
    let limit = match get("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad_request(format!("bad `limit` (1..{MAX_LIMIT})")),
    };
    let cursor = match get("cursor") {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(c) => Some(c),
            None => return bad_request("bad `cursor`"),
        },
    };
    if !s.shared.health.verified() || s.shared.health.is_damaged() {
        return store_unavailable(&s);
    }
    let tz = s.config.agency.timezone;
    let required = s.config.required_roles;
    let store = s.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut next = None;
        let start = cursor.as_ref().map(|(_, id)| id.as_str());
        for item in store.groups_from(start) {
            let (doc_id, group) = item?;
            for d in Direction::ALL {
                if let Some((cd, cid)) = &cursor {
                    if *cid == doc_id && d <= *cd {
                        continue;
                    }
                }
                let Some(doc) = group.doc(d) else { continue };
                let doc_class = doc.class(required);
                let day = local_day(doc.time, tz);
                let keep = direction.is_none_or(|x| x == d)
                    && class.is_none_or(|c| c == doc_class)
                    && unit.as_ref().is_none_or(|u| *u == doc.unit)
                    && from.is_none_or(|f| day >= f)
                    && to.is_none_or(|t| day <= t);
                if !keep {
                    continue;
                }
                if out.len() == limit {
                    next = Some(encode_cursor_before(&out));
                    return Ok::<_, crate::store::StoreError>((out, next));
                }
                out.push((
                    doc.direction,
                    doc.doc_id.clone(),
                    document_json(doc, doc_class, tz),
                ));
            }
        }
        Ok((out, next))
    })
    .await;
    match result {
        Ok(Ok((docs, next))) => Json(json!({
            "documents": docs.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
            "next_cursor": next,
        }))
        .into_response(),
        Ok(Err(e)) if e.is_damage() => {
            s.shared.health.report_damage(&e.detail());
            store_unavailable(&s)
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("store {}: {e}", s.store.path().display())})),
        )
            .into_response(),
        Err(e) => {
            // sled panics on some damaged files instead of returning an error.
            s.shared
                .health
                .report_damage(&format!("the store panicked while being read: {e}"));
            store_unavailable(&s)
        }
    }
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
        Json(json!({"error": message})),
    )
        .into_response()
}

/// Middleware: no answer from a store found damaged (the run is ending).
pub async fn refuse_if_damaged(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if s.shared.health.is_damaged() && req.uri().path() != "/healthz" {
        return store_unavailable(&s);
    }
    next.run(req).await
}

/// The cursor after the last document of a full page.
fn encode_cursor_before(out: &[(Direction, String, Value)]) -> String {
    let (d, id, _) = out.last().expect("a full page is not empty");
    encode_cursor(*d, id)
}

/// The URL of an HTTP feed source, as it may be shown.
fn feed_url(input: &Input) -> Option<String> {
    match input {
        Input::HttpFeed(feed) => Some(redact_url(&feed.http.url)),
        Input::Files(_) | Input::EdxmlDir(_) => None,
    }
}

async fn status(State(s): State<AppState>) -> Json<Value> {
    let tz = s.config.agency.timezone;
    let shared = s.shared.clone();
    let sources: Vec<Value> = tokio::task::spawn_blocking(move || {
        shared
            .sources
            .iter()
            .map(|h| {
                let caught_up = h.caught_up();
                let p = h.progress().clone();
                let time = |t: i64| tz.timestamp_opt(t, 0).single().map(|t| t.to_rfc3339());
                json!({
                    "name": h.config.name,
                    "kind": h.config.kind.as_str(),
                    "format": h.config.input.format_name(),
                    "path": h.config.input.path(),
                    "url": feed_url(&h.config.input),
                    "position": match &h.config.input {
                        Input::Files(_) | Input::EdxmlDir(_) => json!({
                            "files": p.state.files.iter().map(|f| json!({"path": f.path, "offset": f.offset, "line": f.line})).collect::<Vec<_>>(),
                        }),
                        Input::HttpFeed(feed) => json!({
                            "url": redact_url(&feed.http.url),
                            "cursor": p.state.feed.cursor,
                            "index": p.state.feed.skip,
                            "pages": p.state.feed.pages,
                        }),
                    },
                    "events": {"accepted": p.state.accepted, "duplicate": p.state.duplicate, "invalid": p.state.invalid},
                    "accepted": p.state.accepted,
                    "duplicate": p.state.duplicate,
                    "invalid": p.state.invalid,
                    "last_event_time": p.state.last_event_time.and_then(time),
                    "up": p.up,
                    "caught_up": caught_up,
                    "last_error": p.last_error.as_ref().map(|(m, t)| json!({"message": m, "time": time(*t), "kind": p.last_error_kind})),
                })
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let all_caught_up = sources.iter().all(|s| s["caught_up"] == true);
    Json(json!({
        "agency": {"code": s.config.agency.code, "name": s.config.agency.name, "timezone": tz.name()},
        "version": env!("CARGO_PKG_VERSION"),
        "ready": s.ready.load(Ordering::Relaxed),
        "store": {"path": s.store.path().display().to_string(), "ok": s.shared.store_ok.load(Ordering::Relaxed), "verified": s.shared.health.verified(), "damage": s.shared.health.damage()},
        "caught_up": all_caught_up,
        "sources": sources,
        "alerts": s.alerts.as_ref().map_or_else(|| json!({"rules": [], "outbox": []}), |a| a.status()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(Direction::Incoming, "12/QĐ-UBND");
        assert_eq!(
            decode_cursor(&c),
            Some((Direction::Incoming, "12/QĐ-UBND".into()))
        );
        assert_eq!(decode_cursor("x00"), None);
        assert_eq!(decode_cursor("o0"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
