//! HTTP feed sources (SPEC §3.3) against a real feed server in this process:
//! faults injected by request number, `kill -9` mid-stream, an outage.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};

use crate::common::*;

/// How the feed answers one request.
#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    RetryAfter(u16, &'static str),
    Html,
    Truncated,
    Garbage,
    Slow(Duration),
}

#[derive(Default)]
struct Feed {
    events: Vec<Value>,
    /// Events published so far (the feed grows).
    available: usize,
    requests: usize,
    /// When each request arrived, in order (request `n` at index `n - 1`).
    arrivals: Vec<Instant>,
    /// Fault by request number (1-based).
    faults: HashMap<usize, Fault>,
    /// Every request answers 503 while set; counted in `outage_hits`.
    outage: bool,
    outage_hits: usize,
    /// When each request during the outage arrived.
    outage_arrivals: Vec<Instant>,
    /// Every `access_token` the feed was sent.
    access_tokens: HashSet<String>,
}

type Shared = Arc<Mutex<Feed>>;

/// `GET /feed?cursor=N&limit=M`: events N.., `next_cursor` = the index after
/// them, `null` once the feed has nothing more.
async fn feed(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (fault, page) = {
        let mut f = state.lock().unwrap();
        f.requests += 1;
        f.arrivals.push(Instant::now());
        if let Some(t) = q.get("access_token") {
            f.access_tokens.insert(t.clone());
        }
        if f.outage {
            f.outage_hits += 1;
            f.outage_arrivals.push(Instant::now());
            return (StatusCode::SERVICE_UNAVAILABLE, "bảo trì").into_response();
        }
        let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let limit: usize = q.get("limit").and_then(|c| c.parse().ok()).unwrap_or(50);
        let to = (from + limit.min(100)).min(f.available);
        let events: Vec<Value> = f.events[from.min(to)..to].to_vec();
        let next = if events.is_empty() {
            Value::Null
        } else {
            Value::String(to.to_string())
        };
        let fault = f.faults.get(&f.requests).cloned();
        (fault, json!({"events": events, "next_cursor": next}))
    };
    match fault {
        None => axum::Json(page).into_response(),
        Some(Fault::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        Some(Fault::RetryAfter(s, after)) => (
            StatusCode::from_u16(s).unwrap(),
            [(header::RETRY_AFTER, after)],
            "later",
        )
            .into_response(),
        Some(Fault::Html) => {
            axum::response::Html("<html><body><h1>502 Bad Gateway</h1></body></html>")
                .into_response()
        }
        Some(Fault::Truncated) => {
            let text = page.to_string();
            (
                [(header::CONTENT_TYPE, "application/json")],
                text[..text.len() / 2].to_string(),
            )
                .into_response()
        }
        Some(Fault::Garbage) => (
            [(header::CONTENT_TYPE, "application/json")],
            "\u{0}\u{1}garbage",
        )
            .into_response(),
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            axum::Json(page).into_response()
        }
    }
}

/// A feed server on a loopback port of [`tool_addr`], running on its own thread.
struct FeedServer {
    addr: SocketAddr,
    state: Shared,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl FeedServer {
    fn start(events: Vec<Value>, faults: HashMap<usize, Fault>) -> FeedServer {
        let state: Shared = Arc::new(Mutex::new(Feed {
            available: events.len(),
            events,
            faults,
            ..Feed::default()
        }));
        // Below the ephemeral range: while it is shut down, no port-0 bind
        // (a daemon's, say) can take the port it listens on again.
        let listener = std::net::TcpListener::bind(tool_addr()).unwrap();
        let mut server = FeedServer {
            addr: listener.local_addr().unwrap(),
            state,
            stop: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let app = axum::Router::new()
            .route("/feed", get(feed))
            .with_state(self.state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    r = axum::serve(listener, app) => r.unwrap(),
                    _ = rx => {}
                }
            });
            // Dropping the runtime closes the listener and every connection.
        });
        self.stop = Some((tx, thread));
    }

    /// Stops listening: connections are refused until [`FeedServer::restart`].
    fn shut_down(&mut self) {
        if let Some((tx, thread)) = self.stop.take() {
            let _ = tx.send(());
            thread.join().unwrap();
        }
    }

    /// Listens again on the same port.
    fn restart(&mut self) {
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        self.serve(listener);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Feed) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn hub_source(server: &FeedServer, timeout: &str) -> String {
    format!(
        "[[sources]]\nname = \"hub\"\nkind = \"exchange\"\nurl = \"http://{}/feed\"\n\
         poll_interval = \"100ms\"\ntimeout = \"{timeout}\"\npage_size = 100\n",
        server.addr
    )
}

/// Event `i`: three events per document (one per recipient); every 97th has an
/// unknown channel and every 500th is not an object.
fn event(i: usize) -> Value {
    if i % 500 == 123 {
        return Value::String(format!("not an event {i}"));
    }
    let doc = i / 3;
    let channel = if i % 97 == 50 {
        "fax"
    } else if doc % 3 == 0 {
        "giấy"
    } else {
        "điện tử"
    };
    json!({
        "event_id": format!("ev-{i}"),
        "time": format!("{:02}/03/2026 09:{:02}", 1 + doc % 28, i % 60),
        "doc_id": format!("VB-{doc}"),
        "direction": if doc % 2 == 0 { "đi" } else { "đến" },
        "channel": channel,
        "unit": "Văn phòng",
    })
}

fn is_valid(i: usize) -> bool {
    i % 500 != 123 && i % 97 != 50
}

/// (outgoing, incoming) documents as (total, electronic_unsigned, paper), from the rules.
fn expected_documents(n: usize) -> [(u64, u64, u64); 2] {
    let mut docs: HashMap<usize, bool> = HashMap::new();
    for i in (0..n).filter(|&i| is_valid(i)) {
        let doc = i / 3;
        *docs.entry(doc).or_default() |= doc % 3 != 0;
    }
    let mut out = [(0, 0, 0); 2];
    for (doc, electronic) in docs {
        let d = &mut out[doc % 2];
        d.0 += 1;
        if electronic {
            d.1 += 1;
        } else {
            d.2 += 1;
        }
    }
    out
}

fn assert_exact(d: &Daemon, env: &Env, n: usize) {
    let status = d.wait_status(CATCH_UP, &format!("{n} events read"), |s| {
        s["caught_up"] == true && {
            let (a, dup, inv) = counts(s, "hub");
            a + dup + inv == n as u64
        }
    });
    let invalid = (0..n).filter(|&i| !is_valid(i)).count() as u64;
    assert_eq!(
        counts(&status, "hub"),
        (n as u64 - invalid, 0, invalid),
        "every event once, none twice"
    );
    let hub = &status["sources"][0];
    assert_eq!(hub["position"]["cursor"], n.to_string(), "{hub}");
    let report = d.report("");
    for (direction, (total, unsigned, paper)) in
        ["outgoing", "incoming"].iter().zip(expected_documents(n))
    {
        let r = &report[*direction];
        assert_eq!(r["total"], total, "{direction}: {r}");
        assert_eq!(r["electronic_unsigned"], unsigned, "{direction}: {r}");
        assert_eq!(r["paper"], paper, "{direction}: {r}");
        assert_eq!(r["electronic_signed"], 0, "{direction}: {r}");
    }
    let rejected = rejected_lines(&env.rejected("hub"));
    assert_eq!(
        rejected.len() as u64,
        invalid,
        "one rejected line per invalid event"
    );
    let positions: HashSet<(String, u64)> = rejected
        .iter()
        .map(|r| {
            let cursor = r["file"].as_str().unwrap().to_string();
            assert!(cursor.starts_with("cursor="), "{r}");
            (cursor, r["line"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(positions.len() as u64, invalid, "positions are distinct");
    let not_objects = rejected
        .iter()
        .filter(|r| r["reason"].as_str().unwrap().contains("not a JSON object"))
        .count();
    assert_eq!(
        not_objects,
        (0..n).filter(|i| i % 500 == 123).count(),
        "{rejected:?}"
    );
}

#[test]
fn http_feed_with_faults_and_a_crash_mid_stream_counts_exactly() {
    let faults = HashMap::from([
        (3, Fault::Status(500)),
        (5, Fault::RetryAfter(429, "2")),
        (7, Fault::Html),
        (9, Fault::Truncated),
        (11, Fault::Slow(Duration::from_secs(3))),
        (13, Fault::Garbage),
        (15, Fault::RetryAfter(503, "2")),
        (17, Fault::Status(502)),
    ]);
    let server = FeedServer::start((0..3300).map(event).collect(), faults);
    server.with(|f| f.available = 3000);
    let env = Env::new(&hub_source(&server, "1s"));
    let d = env.start();
    // Crash once a good part, but not all, of the feed is committed.
    let cursor = |s: &Value| {
        s["sources"][0]["position"]["cursor"]
            .as_str()
            .and_then(|c| c.parse::<u64>().ok())
    };
    let s = d.wait_status(CATCH_UP, "cursor past 1200", |s| {
        cursor(s).is_some_and(|c| c >= 1200)
    });
    d.crash();
    assert!(cursor(&s).unwrap() < 3000, "crashed mid-stream: {s}");
    let d = env.start();
    assert_exact(&d, &env, 3000);
    // Retry-After: 2 outweighs the backoff of a first failure (0.5 to 1 s).
    let arrivals = server.with(|f| f.arrivals.clone());
    for n in [5, 15] {
        let waited = arrivals[n] - arrivals[n - 1];
        assert!(
            waited >= Duration::from_secs(2),
            "request {} came {waited:?} after the Retry-After: 2 of request {n}",
            n + 1
        );
    }
    let errors = d.get("/metrics").1;
    for kind in [
        "server_error",
        "rate_limited",
        "not_json",
        "invalid_json",
        "timeout",
    ] {
        let line = format!("docflow_source_errors_total{{kind=\"{kind}\",source=\"hub\"}}");
        assert!(errors.contains(&line), "{kind} counted:\n{errors}");
    }
    assert!(errors.contains("docflow_source_poll_duration_seconds_count{source=\"hub\"}"));

    // The feed grows: only the new events are read.
    server.with(|f| f.available = 3300);
    assert_exact(&d, &env, 3300);
    d.stop();
    let d = env.start();
    assert_exact(&d, &env, 3300);
    d.stop();
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn http_feed_outage_backs_off_reports_down_and_recovers() {
    let server = FeedServer::start((0..60).map(event).collect(), HashMap::new());
    server.with(|f| f.available = 40);
    let env = Env::new(&hub_source(&server, "10s"));
    let d = env.start();
    assert_exact(&d, &env, 40);

    server.with(|f| f.outage = true);
    d.wait_status(Duration::from_secs(10), "source down", |s| {
        s["sources"][0]["up"] == false
    });
    let metrics = d.get("/metrics").1;
    assert_eq!(
        metric(&metrics, "docflow_source_up{source=\"hub\"}"),
        Some(0.0)
    );
    let status = d.status();
    let hub = &status["sources"][0];
    assert_eq!(hub["caught_up"], false, "{hub}");
    assert_eq!(hub["last_error"]["kind"], "server_error", "{hub}");
    assert!(hub["last_error"]["time"].is_string(), "{hub}");
    assert_eq!(hub["position"]["cursor"], "40", "the cursor does not move");
    // Backoff from 1 s, doubling, with equal jitter: the k-th wait is between
    // 2^k / 2 and 2^k seconds (poll_interval is 100 ms: without backoff the
    // requests would come 100 ms apart).
    let arrivals = wait_for(Duration::from_secs(30), "4 requests in the outage", || {
        Some(server.with(|f| f.outage_arrivals.clone())).filter(|a| a.len() >= 4)
    });
    for (k, pair) in arrivals.windows(2).take(3).enumerate() {
        let waited = pair[1] - pair[0];
        let full = Duration::from_secs(1 << k);
        assert!(
            waited >= full / 2 && waited < full + Duration::from_millis(1500),
            "wait {k} of the outage: {waited:?}, expected {:?} to {full:?}",
            full / 2
        );
    }

    server.with(|f| {
        f.outage = false;
        f.available = 60;
    });
    d.wait_status(Duration::from_secs(40), "source up again", |s| {
        s["sources"][0]["up"] == true
    });
    assert_exact(&d, &env, 60);
    let hits = server.with(|f| f.outage_hits);
    let metrics = d.get("/metrics").1;
    assert_eq!(
        metric(&metrics, "docflow_source_up{source=\"hub\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "docflow_source_errors_total{kind=\"server_error\",source=\"hub\"}"
        ),
        Some(hits as f64),
        "every failed poll counted once"
    );
    let log = d.stderr_text();
    assert_eq!(
        log.matches("HTTP feed poll failed").count(),
        1,
        "one WARN per outage, not per retry:\n{log}"
    );
    assert_eq!(log.matches("HTTP feed reachable again").count(), 1, "{log}");
    d.stop();
}

#[test]
fn http_feed_server_down_means_refused_then_followed_when_back() {
    let mut server = FeedServer::start((0..50).map(event).collect(), HashMap::new());
    server.with(|f| f.available = 30);
    let env = Env::new(&hub_source(&server, "10s"));
    let d = env.start();
    assert_exact(&d, &env, 30);

    server.shut_down();
    let s = d.wait_status(Duration::from_secs(10), "source down", |s| {
        s["sources"][0]["up"] == false
    });
    assert_eq!(s["sources"][0]["last_error"]["kind"], "connect", "{s}");
    assert_eq!(s["sources"][0]["position"]["cursor"], "30");

    server.with(|f| f.available = 50);
    server.restart();
    assert_exact(&d, &env, 50);
    let log = d.stderr_text();
    assert_eq!(log.matches("HTTP feed poll failed").count(), 1, "{log}");
    assert_eq!(log.matches("HTTP feed reachable again").count(), 1, "{log}");
    d.stop();
}

#[test]
fn http_feed_secret_in_the_url_query_is_never_shown() {
    let mut server = FeedServer::start((0..30).map(event).collect(), HashMap::new());
    let env = Env::new(&hub_source(&server, "10s").replace(
        "/feed\"\n",
        "/feed?agency=H40&access_token=s3cr3t\"\nallow_insecure_http = true\n",
    ));
    let d = env.start();
    assert_exact(&d, &env, 30);
    assert_eq!(
        server.with(|f| f.access_tokens.clone()),
        HashSet::from(["s3cr3t".to_string()]),
        "the feed is sent the real token"
    );

    // A fault whose message names the URL (reqwest puts it in its errors).
    server.shut_down();
    d.wait_status(Duration::from_secs(10), "source down", |s| {
        s["sources"][0]["up"] == false
    });
    let (code, status) = d.get("/api/v1/status");
    assert_eq!(code, 200, "{status}");
    let status_json: Value = serde_json::from_str(&status).unwrap();
    let hub = &status_json["sources"][0];
    let shown = format!(
        "http://{}/feed?agency=H40&access_token=REDACTED",
        server.addr
    );
    assert_eq!(hub["url"], shown.as_str(), "{hub}");
    assert_eq!(hub["position"]["url"], shown.as_str(), "{hub}");
    let message = hub["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("access_token=REDACTED&cursor=30"),
        "the failing URL is named, redacted: {message}"
    );
    let log = d.stderr_text();
    assert!(
        log.contains("polling HTTP feed") && log.contains("HTTP feed poll failed"),
        "{log}"
    );
    assert!(log.contains("access_token=REDACTED"), "{log}");
    assert!(
        log.contains("credentials are sent over plain http"),
        "the opt-out is logged: {log}"
    );
    d.stop();
    let log = std::fs::read_to_string(env.stderr_path()).unwrap();
    assert!(
        !status.contains("s3cr3t"),
        "status shows the secret: {status}"
    );
    assert!(!log.contains("s3cr3t"), "the log shows the secret:\n{log}");

    // A config error that quotes the URL.
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        config.replace(&server.addr.to_string(), "127.0.0.1:99999"),
    )
    .unwrap();
    let check = env.cli(&["check-config", "-c", &env.config.display().to_string()]);
    let text = printed(&check);
    assert!(!check.status.success(), "{text}");
    assert!(
        text.contains("key `sources.url`: bad URL")
            && text.contains("access_token=REDACTED")
            && !text.contains("s3cr3t"),
        "{text}"
    );
}
