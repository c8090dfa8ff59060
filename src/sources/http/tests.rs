//! Feed parsing, backoff and redirect rules, and a real feed server with one
//! route per fault.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use chrono::DateTime;

use super::client::redirect_target;
use super::fault::{parse_retry_after, Fault, BACKOFF_MAX, RETRY_AFTER_MAX};
use super::page::{page_url, parse_page};
use super::*;
use crate::config::HttpConfig;
use crate::sources::merge::MergeQueue;
use crate::sources::SourceHandle;

fn page(n: usize, next: Option<&str>) -> Page {
    Page {
        events: (0..n).map(|i| serde_json::json!({ "i": i })).collect(),
        next_cursor: next.map(str::to_string),
    }
}

fn at(cursor: Option<&str>, skip: u64, pages: u64) -> FeedPos {
    FeedPos {
        cursor: cursor.map(str::to_string),
        skip,
        pages,
    }
}

#[test]
fn a_page_with_a_new_cursor_is_read_whole_and_the_next_follows_at_once() {
    let p = plan(&at(None, 0, 0), &page(3, Some("c3")));
    assert_eq!(p.first, 0);
    assert_eq!(p.next, at(Some("c3"), 0, 1));
    assert!(p.more);
}

#[test]
fn an_empty_page_means_caught_up_even_with_a_new_cursor() {
    let p = plan(&at(Some("c3"), 0, 1), &page(0, Some("c3")));
    assert_eq!(p.next, at(Some("c3"), 0, 1), "nothing changes");
    assert!(!p.more);
    let p = plan(&at(Some("c3"), 0, 1), &page(0, Some("c4")));
    assert_eq!(p.next, at(Some("c4"), 0, 2), "the new cursor is kept");
    assert!(!p.more);
}

#[test]
fn a_page_without_next_cursor_is_not_read_twice_when_it_grows() {
    let pos = at(Some("c3"), 0, 1);
    let p = plan(&pos, &page(2, None));
    assert_eq!(
        (p.first, p.next.clone(), p.more),
        (0, at(Some("c3"), 2, 2), false)
    );
    // Polled again: same two events plus one new one; only the new one is read.
    let p2 = plan(&p.next, &page(3, None));
    assert_eq!((p2.first, p2.next.clone()), (2, at(Some("c3"), 3, 3)));
    // Unchanged: nothing to read, nothing to commit.
    let p3 = plan(&p2.next, &page(3, None));
    assert_eq!((p3.first, p3.next.clone()), (3, p2.next.clone()));
    // The same cursor echoed back counts as no new cursor.
    let p4 = plan(&p2.next, &page(4, Some("c3")));
    assert_eq!((p4.first, p4.next), (3, at(Some("c3"), 4, 4)));
    // Then the feed moves on: the rest of that page, then the next cursor.
    let p5 = plan(&p2.next, &page(5, Some("c8")));
    assert_eq!(
        (p5.first, p5.next, p5.more),
        (3, at(Some("c8"), 0, 4), true)
    );
}

#[test]
fn events_and_cursor_are_found_by_key_or_json_pointer() {
    let body = br#"{"data":{"items":[{"a":1},{"a":2}],"paging":{"next":"x/2"}}}"#;
    let p = parse_page(body, None, "/data/items", "/data/paging/next").unwrap();
    assert_eq!(p.events.len(), 2);
    assert_eq!(p.next_cursor.as_deref(), Some("x/2"));
    let p = parse_page(
        br#"{"events":[],"next_cursor":17}"#,
        None,
        "/events",
        "/next_cursor",
    )
    .unwrap();
    assert_eq!(
        p.next_cursor.as_deref(),
        Some("17"),
        "numbers are cursors too"
    );
    let p = parse_page(
        br#"{"events":[{}],"next_cursor":null}"#,
        None,
        "/events",
        "/next_cursor",
    )
    .unwrap();
    assert_eq!((p.events.len(), p.next_cursor), (1, None));
    let p = parse_page(b"\xef\xbb\xbf{\"events\":[{}]}", None, "/events", "/n").unwrap();
    assert_eq!(p.events.len(), 1, "a UTF-8 BOM is ignored");
    let p = parse_page(br#"{"a/b":{"m~n":[1]}}"#, None, "/a~1b/m~0n", "/none").unwrap();
    assert_eq!(p.events.len(), 1, "RFC 6901 escapes");
}

#[test]
fn bad_bodies_are_faults_of_the_right_kind() {
    let kind = |body: &[u8], ct: Option<&str>| {
        parse_page(body, ct, "/events", "/next_cursor")
            .unwrap_err()
            .kind
    };
    assert_eq!(
        kind(
            b"<html><body>502 Bad Gateway</body></html>",
            Some("text/html")
        ),
        FaultKind::NotJson
    );
    assert_eq!(kind(b"  <!DOCTYPE html>", None), FaultKind::NotJson);
    assert_eq!(
        kind(br#"{"events":[{"a":1},"#, None),
        FaultKind::InvalidJson
    );
    assert_eq!(
        kind(b"garbage", Some("application/json")),
        FaultKind::InvalidJson
    );
    assert_eq!(kind(br#"{"items":[]}"#, None), FaultKind::BadPage);
    assert_eq!(kind(br#"{"events":{"a":1}}"#, None), FaultKind::BadPage);
    assert_eq!(kind(br#"[1,2]"#, None), FaultKind::BadPage);
    assert_eq!(
        kind(br#"{"events":[],"next_cursor":[1]}"#, None),
        FaultKind::BadPage
    );
    let truncated = parse_page(br#"{"events":[{"a":1},"#, None, "/events", "/n").unwrap_err();
    assert!(
        truncated.message.contains("truncated"),
        "{}",
        truncated.message
    );
}

#[test]
fn retry_after_is_read_as_seconds_or_http_date() {
    let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Saturday, 28-Nov-26 12:01:00 GMT", now),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        parse_retry_after("Sat Nov 28 12:00:05 2026", now),
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now),
        Some(Duration::ZERO),
        "a date in the past means now"
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
    let lows: Vec<f64> = (0..12)
        .map(|n| retry_delay(n, 0.0, None).as_secs_f64())
        .collect();
    let highs: Vec<f64> = (0..12)
        .map(|n| retry_delay(n, 1.0, None).as_secs_f64())
        .collect();
    assert_eq!(&highs[..6], &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
    assert_eq!(&lows[..3], &[0.5, 1.0, 2.0], "jitter keeps the upper half");
    assert!(highs.iter().all(|&s| s <= BACKOFF_MAX.as_secs_f64()));
    assert_eq!(highs[11], BACKOFF_MAX.as_secs_f64());
    assert_eq!(retry_delay(u32::MAX, 0.5, None), BACKOFF_MAX.mul_f64(0.75));
    // Never sooner than Retry-After, never longer than an hour for it.
    assert_eq!(
        retry_delay(0, 1.0, Some(Duration::from_secs(30))),
        Duration::from_secs(30)
    );
    assert_eq!(
        retry_delay(0, 1.0, Some(Duration::from_secs(86_400))),
        RETRY_AFTER_MAX
    );
    assert_eq!(
        retry_delay(5, 1.0, Some(Duration::from_secs(1))),
        Duration::from_secs(32)
    );
    // Within a 60 s outage, at most ~7 attempts even at the lowest jitter.
    let mut t = 0.0;
    let mut attempts = 1;
    while t < 60.0 {
        t += retry_delay(attempts - 1, 0.0, None).as_secs_f64();
        attempts += 1;
    }
    assert!(attempts <= 9, "{attempts} attempts in 60 s");
}

#[test]
fn the_cursor_and_limit_are_added_to_the_configured_query() {
    let text = "[agency]\ncode = \"X\"\n[storage]\npath = \"/tmp/x\"\n[[sources]]\nname = \"hub\"\n\
                kind = \"exchange\"\nurl = \"http://hub.test/feed?agency=H40\"\npage_size = 50\ncursor_param = \"after\"\n";
    let c = crate::config::Config::parse(std::path::Path::new("d.toml"), text).unwrap();
    let http = feed_config(&c);
    assert_eq!(
        page_url(&http, None).unwrap().as_str(),
        "http://hub.test/feed?agency=H40&limit=50"
    );
    assert_eq!(
        page_url(&http, Some("a b&c")).unwrap().as_str(),
        "http://hub.test/feed?agency=H40&after=a+b%26c&limit=50"
    );
}

/// A feed server on 127.0.0.1:0 with one route per fault.
mod server {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::extract::{Query, State};
    use axum::http::{header, HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;

    /// Requests served by `/flaky` and `/outage`, the path and headers
    /// of every request to `/redirect` and `/record`, and the times of
    /// `/outage` requests, per test.
    #[derive(Clone, Default)]
    pub(crate) struct Hits {
        pub(crate) count: Arc<AtomicUsize>,
        pub(crate) seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
        /// When `/outage` was asked, on the test runtime's clock (paused in some tests).
        pub(crate) outage_times: Arc<Mutex<Vec<tokio::time::Instant>>>,
    }

    impl Hits {
        pub(crate) fn take_seen(&self) -> Vec<(String, HeaderMap)> {
            std::mem::take(&mut *self.seen.lock().unwrap())
        }
    }

    fn event(i: usize) -> serde_json::Value {
        serde_json::json!({"event_id": format!("e{i}"), "time": "2026-06-14T09:00:00+07:00",
            "doc_id": format!("D{i}"), "direction": "đi", "channel": "điện tử"})
    }

    /// `/feed`: 5 events in pages of 2, cursor = index; `/flaky`: 503 for the first 2 requests.
    async fn feed(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
        let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let to = (from + 2).min(5);
        let events: Vec<_> = (from..to).map(event).collect();
        axum::Json(serde_json::json!({"events": events, "next_cursor": to.to_string()}))
            .into_response()
    }

    async fn flaky(
        State(hits): State<Hits>,
        q: Query<std::collections::HashMap<String, String>>,
    ) -> Response {
        if hits.count.fetch_add(1, Ordering::SeqCst) < 2 {
            return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
        }
        feed(q).await
    }

    async fn outage(State(hits): State<Hits>) -> Response {
        hits.count.fetch_add(1, Ordering::SeqCst);
        hits.outage_times
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "3600")],
            "maintenance",
        )
            .into_response()
    }

    async fn auth(headers: HeaderMap) -> Response {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match ok {
            Some("Bearer s3cret") | Some("Basic ZG9jZmxvdzpwdw==") => {
                axum::Json(serde_json::json!({"events": [], "next_cursor": null})).into_response()
            }
            _ => StatusCode::UNAUTHORIZED.into_response(),
        }
    }

    /// `/redirect?to=URL`: 302 to `URL`.
    async fn redirect(
        State(hits): State<Hits>,
        uri: Uri,
        headers: HeaderMap,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> Response {
        hits.seen
            .lock()
            .unwrap()
            .push((uri.path().to_string(), headers));
        let to = q.get("to").cloned().unwrap_or_default();
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    }

    /// `/record`: an empty page.
    async fn record(State(hits): State<Hits>, uri: Uri, headers: HeaderMap) -> Response {
        hits.seen
            .lock()
            .unwrap()
            .push((uri.path().to_string(), headers));
        axum::Json(serde_json::json!({"events": [], "next_cursor": null})).into_response()
    }

    pub(crate) async fn start() -> (SocketAddr, Hits) {
        let hits = Hits::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = routes(hits.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, hits)
    }

    /// The same routes over TLS (our own listener), with a certificate for
    /// 127.0.0.1 signed by a test CA written to `dir/ca.pem`.
    pub(crate) async fn start_tls(dir: &Path) -> (SocketAddr, Hits) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(
            dir.join("web.yml"),
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
        )
        .unwrap();
        let web = crate::web::WebConfig::load(&dir.join("web.yml")).unwrap();
        let web = Arc::new(crate::web::Web::new(Some(Arc::new(web))));
        let hits = Hits::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = routes(hits.clone());
        tokio::spawn(crate::server::serve_tcp(
            Arc::new(listener),
            web.tls_now(),
            app,
            crate::server::Limits::default(),
            tokio_util::sync::CancellationToken::new(),
            tokio_util::sync::CancellationToken::new(),
        ));
        (addr, hits)
    }

    fn routes(hits: Hits) -> Router {
        Router::new()
            .route("/feed", get(feed))
            .route("/redirect", get(redirect))
            .route("/record", get(record))
            .route("/flaky", get(flaky))
            .route("/outage", get(outage))
            .route("/auth", get(auth))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    "{}"
                }),
            )
            .route(
                "/500",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route(
                "/429",
                get(|| async {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "7")],
                        "slow down",
                    )
                }),
            )
            .route(
                "/503-date",
                get(|| async {
                    let at = (chrono::Utc::now() + chrono::Duration::seconds(90))
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string();
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, at)],
                        "later",
                    )
                }),
            )
            .route("/403", get(|| async { StatusCode::FORBIDDEN }))
            .route("/404", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/html",
                get(|| async {
                    axum::response::Html("<html><body>Hệ thống đang bảo trì</body></html>")
                }),
            )
            .route(
                "/truncated",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        r#"{"events":[{"doc_id":"A"},"#,
                    )
                }),
            )
            .route(
                "/big",
                get(|| async {
                    // 64 KiB + 1 of valid JSON, served with a Content-Length.
                    let pad = "x".repeat(64 * 1024);
                    axum::Json(serde_json::json!({"events": [], "pad": pad}))
                }),
            )
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
            )
            .with_state(hits)
    }

    /// A raw server that streams a chunked body without Content-Length,
    /// or announces more body than it sends and hangs up.
    pub(crate) async fn raw(response_head: &'static str, body_chunks: usize) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response_head.as_bytes()).await;
                let chunk = format!("{:x}\r\n{}\r\n", 1024, " ".repeat(1024));
                for _ in 0..body_chunks {
                    if s.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
        });
        addr
    }
}

/// The HTTP settings of the first source of `c`.
fn feed_config(c: &crate::config::Config) -> HttpConfig {
    match &c.sources[0].input {
        crate::config::Input::HttpFeed(feed) => feed.http.clone(),
        other => panic!("not an HTTP feed: {other:?}"),
    }
}

fn http_config(url: &str, extra: &str) -> crate::config::Config {
    let text = format!(
        "[agency]\ncode = \"X\"\n[storage]\npath = \"/tmp/x\"\n[[sources]]\nname = \"hub\"\n\
         kind = \"exchange\"\nurl = \"{url}\"\npoll_interval = \"50ms\"\ntimeout = \"2s\"\n\
         max_response_bytes = \"64KiB\"\n{extra}"
    );
    crate::config::Config::parse(std::path::Path::new("/tmp/d.toml"), &text).unwrap()
}

async fn fetch(url: &str, extra: &str) -> Result<Page, Fault> {
    let c = http_config(url, extra);
    Feed::new(&feed_config(&c))?.fetch(None).await
}

#[tokio::test]
async fn every_fault_is_classified_and_never_yields_a_page() {
    let (addr, _) = server::start().await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let chunked = server::raw(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        1000,
    )
    .await;
    let cut = server::raw(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 60000\r\nconnection: close\r\n\r\n{\"events\":[",
        0,
    )
    .await;
    let cases: Vec<(String, FaultKind)> = vec![
        (format!("http://{refused}/feed"), FaultKind::Connect),
        (
            "http://feed.docflow-test.invalid/feed".into(),
            FaultKind::Dns,
        ),
        (format!("http://{addr}/slow"), FaultKind::Timeout),
        (format!("http://{addr}/500"), FaultKind::ServerError),
        (format!("http://{addr}/429"), FaultKind::RateLimited),
        (format!("http://{addr}/503-date"), FaultKind::ServerError),
        (format!("http://{addr}/auth"), FaultKind::Unauthorized),
        (format!("http://{addr}/403"), FaultKind::Unauthorized),
        (format!("http://{addr}/404"), FaultKind::HttpStatus),
        (format!("http://{addr}/html"), FaultKind::NotJson),
        (format!("http://{addr}/truncated"), FaultKind::InvalidJson),
        (format!("http://{addr}/big"), FaultKind::TooLarge),
        (format!("http://{chunked}/"), FaultKind::TooLarge),
        (format!("http://{cut}/"), FaultKind::Body),
        (format!("http://{addr}/loop"), FaultKind::Redirect),
    ];
    for (url, kind) in cases {
        let started = Instant::now();
        let fault = fetch(&url, "").await.unwrap_err();
        assert_eq!(fault.kind, kind, "{url}: {}", fault.message);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url} took too long"
        );
    }
    let f = fetch(&format!("http://{addr}/429"), "").await.unwrap_err();
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    let f = fetch(&format!("http://{addr}/503-date"), "")
        .await
        .unwrap_err();
    let wait = f.retry_after.unwrap().as_secs();
    assert!((85..=90).contains(&wait), "HTTP-date Retry-After: {wait}");
    assert!(fetch(&format!("http://{addr}/feed"), "").await.is_ok());
}

#[tokio::test]
async fn credentials_come_from_files_and_are_never_in_messages() {
    let (addr, _) = server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw").unwrap();
    let url = format!("http://{addr}/auth");
    let bearer = format!(
        "bearer_token_file = \"{}\"\nallow_insecure_http = true\n",
        token.display()
    );
    assert!(fetch(&url, &bearer).await.is_ok());
    let basic = format!(
        "username = \"docflow\"\npassword_file = \"{}\"\nallow_insecure_http = true\n",
        pw.display()
    );
    assert!(fetch(&url, &basic).await.is_ok());
    std::fs::write(&token, "wrong").unwrap();
    let f = fetch(&url, &bearer).await.unwrap_err();
    assert_eq!(f.kind, FaultKind::Unauthorized);
    assert!(!f.message.contains("wrong"), "{}", f.message);
    std::fs::remove_file(&token).unwrap();
    let f = fetch(&url, &bearer).await.unwrap_err();
    assert_eq!(f.kind, FaultKind::Credentials);
}

/// A bearer token file in `dir`, then `[sources.headers]` with a credential and a plain header.
fn secrets(dir: &std::path::Path, before: &str) -> String {
    let token = dir.join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    format!(
        "{before}bearer_token_file = \"{}\"\n[sources.headers]\nX-API-Key = \"k3y\"\n\
         X-Agency = \"H40.27.01\"\n",
        token.display()
    )
}

/// Whether a request carried the token and both headers, or nothing of them.
fn carried(headers: &axum::http::HeaderMap) -> (bool, bool) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let all = get("authorization") == Some("Bearer s3cret")
        && get("x-api-key") == Some("k3y")
        && get("x-agency") == Some("H40.27.01");
    let none = ["authorization", "x-api-key", "x-agency", "referer"]
        .iter()
        .all(|n| get(n).is_none())
        && headers.values().all(|v| {
            let v = String::from_utf8_lossy(v.as_bytes());
            !v.contains("s3cr") && !v.contains("k3y")
        });
    (all, none)
}

fn paths(seen: &[(String, axum::http::HeaderMap)]) -> Vec<&str> {
    seen.iter().map(|(p, _)| p.as_str()).collect()
}

#[tokio::test]
async fn redirects_carry_headers_and_credentials_only_within_the_configured_origin() {
    let (a, a_hits) = server::start().await;
    let (b, b_hits) = server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = secrets(dir.path(), "allow_insecure_http = true\n");

    // Same origin: a relative redirect keeps them.
    fetch(&format!("http://{a}/redirect?to=/record"), &extra)
        .await
        .unwrap();
    let seen = a_hits.take_seen();
    assert_eq!(paths(&seen), ["/redirect", "/record"]);
    assert!(seen.iter().all(|(_, h)| carried(h).0), "{seen:?}");

    // Another port is another origin: neither headers, nor token, nor a
    // Referer with the query's secret.
    fetch(
        &format!("http://{a}/redirect?to=http://{b}/record&access_token=s3cr3t"),
        &extra,
    )
    .await
    .unwrap();
    let (at_a, at_b) = (a_hits.take_seen(), b_hits.take_seen());
    assert_eq!(
        (paths(&at_a), paths(&at_b)),
        (vec!["/redirect"], vec!["/record"])
    );
    assert!(carried(&at_a[0].1).0, "{at_a:?}");
    assert!(carried(&at_b[0].1).1, "leaked to another origin: {at_b:?}");

    // Back at the configured origin, they are sent again.
    fetch(
        &format!("http://{a}/redirect?to=http://{b}/redirect?to=http://{a}/record"),
        &extra,
    )
    .await
    .unwrap();
    let (at_a, at_b) = (a_hits.take_seen(), b_hits.take_seen());
    assert_eq!(paths(&at_a), ["/redirect", "/record"]);
    assert!(at_a.iter().all(|(_, h)| carried(h).0), "{at_a:?}");
    assert!(carried(&at_b[0].1).1, "{at_b:?}");
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, a_hits) = server::start_tls(dir.path()).await;
    let (b, b_hits) = server::start().await;
    let ca = format!("ca_file = \"{}\"\n", dir.path().join("ca.pem").display());
    let extra = secrets(dir.path(), &ca);

    // Over TLS, within the origin: followed, with the credentials.
    fetch(&format!("https://{a}/redirect?to=/record"), &extra)
        .await
        .unwrap();
    let seen = a_hits.take_seen();
    assert_eq!(paths(&seen), ["/redirect", "/record"]);
    assert!(seen.iter().all(|(_, h)| carried(h).0), "{seen:?}");

    // Down to plain http, even on the same host: refused before any request.
    for to in [format!("http://{b}/record"), format!("http://{a}/record")] {
        let url = format!("https://{a}/redirect?to={to}&access_token=s3cr3t");
        let f = fetch(&url, &extra).await.unwrap_err();
        assert_eq!(f.kind, FaultKind::Redirect, "{}", f.message);
        assert!(
            f.message.contains("from https to plain http refused")
                && f.message.contains("access_token=REDACTED")
                && !f.message.contains("s3cr3t"),
            "{}",
            f.message
        );
    }
    assert!(b_hits.take_seen().is_empty(), "nothing reached plain http");
    assert_eq!(paths(&a_hits.take_seen()), ["/redirect", "/redirect"]);
}

#[test]
fn redirect_targets_are_resolved_and_downgrades_refused() {
    let url = |u: &str| reqwest::Url::parse(u).unwrap();
    let followed = [
        (
            "https://hub.test/a/feed?x=1",
            Some("next"),
            "https://hub.test/a/next",
        ),
        (
            "https://hub.test/feed",
            Some("/v2/feed"),
            "https://hub.test/v2/feed",
        ),
        (
            "https://hub.test/feed",
            Some("https://cdn.test/f"),
            "https://cdn.test/f",
        ),
        (
            "https://hub.test/feed",
            Some("//cdn.test/f"),
            "https://cdn.test/f",
        ),
        (
            "http://hub.test/feed",
            Some("https://hub.test/feed"),
            "https://hub.test/feed",
        ),
        (
            "http://hub.test/feed",
            Some("http://other.test:81/"),
            "http://other.test:81/",
        ),
    ];
    for (from, location, to) in followed {
        assert_eq!(
            redirect_target(&url(from), location).unwrap(),
            url(to),
            "{from}"
        );
    }
    let refused = [
        (
            "https://hub.test/feed",
            Some("http://hub.test/feed"),
            "plain http refused",
        ),
        (
            "https://hub.test/feed",
            Some("HTTP://hub.test:443/"),
            "plain http refused",
        ),
        (
            "https://hub.test/feed",
            Some("ftp://hub.test/f"),
            "ftp: URL refused",
        ),
        (
            "https://hub.test/feed",
            Some("file:///etc/passwd"),
            "file: URL refused",
        ),
        ("https://hub.test/feed", Some("http://[::1"), "bad Location"),
        ("https://hub.test/feed", None, "without a Location"),
    ];
    for (from, location, why) in refused {
        let f = redirect_target(&url(from), location).unwrap_err();
        assert_eq!(f.kind, FaultKind::Redirect);
        assert!(f.message.contains(why), "{location:?}: {}", f.message);
    }
    let f = redirect_target(
        &url("https://hub.test/feed?token=a1"),
        Some("http://evil.test/?sig=b2"),
    )
    .unwrap_err();
    assert!(
        !f.message.contains("a1") && !f.message.contains("b2"),
        "{}",
        f.message
    );
    // What counts as the same origin for headers and credentials.
    let same = |a: &str, b: &str| url(a).origin() == url(b).origin();
    assert!(same(
        "https://hub.test/feed",
        "https://HUB.test:443/other?x"
    ));
    assert!(!same("https://hub.test/feed", "http://hub.test/feed"));
    assert!(!same("http://127.0.0.1:80/", "http://127.0.0.1:8080/"));
    assert!(!same("http://127.0.0.1/", "http://localhost/"));
    assert!(!same("https://hub.test/", "https://api.hub.test/"));
}

#[tokio::test]
async fn a_fault_message_never_shows_a_secret_of_the_url() {
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = fetch(
        &format!("http://{refused}/feed?agency=H40&access_token=s3cr3t"),
        "allow_insecure_http = true\n",
    )
    .await
    .unwrap_err();
    assert_eq!(f.kind, FaultKind::Connect);
    assert!(
        f.message.contains("/feed?agency=H40&access_token=REDACTED")
            && !f.message.contains("s3cr3t"),
        "{}",
        f.message
    );
    // The URL's text does not steer the kind of fault.
    let f = fetch(&format!("http://{refused}/tls/certificate"), "")
        .await
        .unwrap_err();
    assert_eq!(f.kind, FaultKind::Connect, "{}", f.message);
}

fn start_source(
    url: &str,
    state: crate::store::SourceState,
) -> (
    Arc<SourceHandle>,
    Arc<MergeQueue>,
    CancellationToken,
    std::thread::JoinHandle<()>,
) {
    let ctx = context(url, state);
    let (handle, queue, cancel) = (ctx.handle.clone(), ctx.queue.clone(), ctx.stop.clone());
    let thread = std::thread::spawn(move || crate::sources::run(ctx));
    (handle, queue, cancel, thread)
}

/// What a reader of one HTTP feed source at `url` starts with.
fn context(url: &str, state: crate::store::SourceState) -> crate::sources::SourceContext {
    let c = http_config(url, "");
    crate::sources::SourceContext {
        index: 0,
        handle: Arc::new(SourceHandle::new(c.sources[0].clone(), state)),
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        agency_code: "X".into(),
        queue: Arc::new(MergeQueue::new(1)),
        stop: CancellationToken::new(),
        waker: Arc::default(),
        files_read: Default::default(),
        state_dir: std::env::temp_dir(),
    }
}

/// Pops batches until the feed's cursor reaches `cursor`, acting as the writer.
fn drain_until(handle: &SourceHandle, queue: &MergeQueue, cursor: &str) -> Vec<SourceBatch> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        for b in queue
            .pop(1000, Duration::from_millis(100))
            .unwrap_or_default()
        {
            let mut state = handle.committed_state();
            state.feed = b.feed.clone().unwrap();
            handle.committed(state, b.seq);
            out.push(b);
        }
        if handle.committed_state().feed.cursor.as_deref() == Some(cursor) && handle.caught_up() {
            return out;
        }
    }
    panic!("feed did not reach cursor {cursor}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_recovers_after_faults_and_resumes_from_its_cursor() {
    let (addr, hits) = server::start().await;
    let (handle, queue, cancel, thread) = tokio::task::block_in_place(|| {
        start_source(&format!("http://{addr}/flaky"), Default::default())
    });
    let batches = tokio::task::block_in_place(|| drain_until(&handle, &queue, "5"));
    let cursors: Vec<_> = batches
        .iter()
        .map(|b| {
            (
                b.items.len(),
                b.feed.as_ref().unwrap().cursor.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cursors,
        vec![
            (2, "2".to_string()),
            (2, "4".to_string()),
            (1, "5".to_string())
        ],
        "each page once, in order, after two failed polls"
    );
    assert!(handle.progress().up);
    let m = handle.feed_metrics.as_ref().unwrap();
    assert_eq!(m.errors.with_label_values(&["server_error"]).get(), 2);
    assert!(m.poll_seconds.get_sample_count() >= 5);
    assert_eq!(handle.progress().last_error_kind, Some("server_error"));
    assert!(hits.count.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    cancel.cancel();
    tokio::task::block_in_place(|| thread.join().unwrap());

    // A restart from the committed cursor asks only for what follows.
    let state = handle.committed_state();
    let (handle, queue, cancel, thread) =
        tokio::task::block_in_place(|| start_source(&format!("http://{addr}/feed"), state));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handle.caught_up() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        handle.caught_up(),
        "an empty page at the committed cursor is caught up"
    );
    assert!(
        queue.pop(1000, Duration::ZERO).unwrap().is_empty(),
        "nothing read twice"
    );
    cancel.cancel();
    tokio::task::block_in_place(|| thread.join().unwrap());
}

/// Paused time: the runtime's clock jumps to the next timer whenever every
/// task waits, so an hour of backoff takes no wall time, and the server
/// runs on the same runtime so a request in flight is never mistaken for
/// idleness.
#[tokio::test(start_paused = true)]
async fn an_outage_sets_up_to_zero_honours_retry_after_and_shutdown_interrupts_the_backoff() {
    use tokio::time::{sleep, sleep_until, Instant};
    let (addr, hits) = server::start().await;
    let ctx = context(&format!("http://{addr}/outage"), Default::default());
    let (handle, cancel) = (ctx.handle.clone(), ctx.stop.clone());
    let crate::config::Input::HttpFeed(input) = handle.config.input.clone() else {
        panic!("an HTTP feed source")
    };
    let source = tokio::spawn(async move { poll(&ctx, &input).await });
    let times = || hits.outage_times.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while times().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let first = *times().first().expect("the outage was polled");

    // Retry-After: 3600 outweighs the 1 s backoff of a first failure.
    sleep_until(first + RETRY_AFTER_MAX - Duration::from_secs(1)).await;
    assert!(!handle.progress().up);
    assert!(!handle.caught_up());
    assert_eq!(times().len(), 1, "no retry before Retry-After: 3600");
    sleep_until(first + RETRY_AFTER_MAX + Duration::from_secs(1)).await;
    let seen = times();
    assert_eq!(seen.len(), 2, "retried once Retry-After had passed");
    let waited = seen[1] - seen[0];
    assert!(
        (RETRY_AFTER_MAX..RETRY_AFTER_MAX + Duration::from_secs(1)).contains(&waited),
        "retried after {waited:?}"
    );

    // Shutdown interrupts the next hour of backoff at once.
    sleep(Duration::from_secs(60)).await;
    let stopping = Instant::now();
    cancel.cancel();
    source.await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(times().len(), 2);
}

#[test]
fn jitter_stays_in_the_unit_interval() {
    let mut j = Jitter::new(3);
    for _ in 0..1000 {
        let x = j.next();
        assert!((0.0..1.0).contains(&x), "{x}");
    }
}
