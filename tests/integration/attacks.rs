//! The attacks of the security review (issue 13), each run against the real
//! binary: none may change the counts, send mail, stop the daemon, or take
//! memory without bound.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::corpus::{assert_golden_reports, golden, run_on_corpus, EXCHANGE_COUNTS};

/// Sends raw request bytes; returns the status code (0 if none) and the whole answer.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    status_of(&answer)
}

fn status_of(answer: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(answer).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn admin_socket(env: &Env) -> PathBuf {
    env.store().join("admin.sock")
}

/// A snapshot of the running daemon, through the CLI.
fn export(env: &Env) -> Vec<u8> {
    let out = env.cli(&["export", "-c", env.config.to_str().unwrap()]);
    assert!(out.status.success(), "export failed:\n{}", printed(&out));
    out.stdout
}

/// `docflowd import` with `input` on stdin.
fn import(env: &Env, input: &[u8]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["import", "-c"])
        .arg(&env.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn import");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Rewrites the snapshot's header agency and adds lines before the end line
/// (fixing its record count).
fn doctor(snapshot: &[u8], agency: Option<&str>, extra: &[String]) -> Vec<u8> {
    let text = String::from_utf8(snapshot.to_vec()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
    if let Some(a) = agency {
        header["agency"] = Value::from(a);
    }
    lines[0] = header.to_string();
    let end: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let records = end["records"].as_u64().unwrap() + extra.len() as u64;
    lines.pop();
    lines.extend(extra.iter().cloned());
    lines.push(serde_json::json!({"type": "end", "records": records}).to_string());
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

fn metric(addr: std::net::SocketAddr, series: &str) -> f64 {
    let (_, body) = get(addr, "/metrics");
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_cross_site_import_on_the_listen_port_is_refused_and_changes_nothing() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let snapshot = export(&env);
    let other = doctor(&snapshot, Some("H40.99.99"), &[]);
    // What a page in the clerk's browser sends: a cross-site simple request.
    for (body, name) in [(&snapshot, "own"), (&other, "foreign")] {
        let mut request = format!(
            "POST /api/v1/import HTTP/1.1\r\nHost: {}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            d.addr,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (code, answer) = raw(d.addr, &request);
        assert_eq!(code, 403, "{name} snapshot over TCP: {answer}");
        assert!(answer.contains("admin socket"), "{answer}");
    }
    let (code, _) = raw(
        d.addr,
        format!(
            "GET /api/v1/export HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            d.addr
        )
        .as_bytes(),
    );
    assert_eq!(code, 403, "export over TCP without remote admin");
    assert_golden_reports(d.addr);
    assert_eq!(
        metric(
            d.addr,
            "docflow_admin_actions_total{action=\"import\",result=\"refused\"}"
        ),
        2.0
    );
    assert!(
        d.stderr_text().contains("admin action"),
        "refusals are logged"
    );
    d.stop();
}

#[test]
fn a_snapshot_of_another_agency_is_refused_naming_both() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let other = doctor(&export(&env), Some("H40.99.99"), &[]);
    let out = import(&env, &other);
    assert!(!out.status.success(), "a foreign snapshot was imported");
    let said = printed(&out);
    assert!(
        said.contains("H40.99.99") && said.contains("H40.27.01"),
        "{said}"
    );
    assert_golden_reports(d.addr);
    assert!(
        !env.store().join(".import.staging").exists(),
        "staging left behind"
    );
    d.stop();
}

#[test]
fn alert_mail_in_a_snapshot_is_dropped_never_queued() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    // An outbox record (key `O` + sequence) and an alert state record.
    let phishing = serde_json::json!({
        "type": "alert_outbox",
        "key": hex(b"O\0\0\0\0\0\0\0\x07"),
        "value": hex(b"X-Docflow-Alert: outgoing-30d; state=firing\r\n\r\nhttp://evil.example/login"),
    });
    let state = serde_json::json!({"type": "alert_state", "key": hex(b"Aoutgoing-30d"), "value": hex(b"\x01")});
    let snapshot = doctor(
        &export(&env),
        None,
        &[phishing.to_string(), state.to_string()],
    );
    let out = import(&env, &snapshot);
    assert!(out.status.success(), "import failed:\n{}", printed(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("alert_outbox_dropped") && said.contains("alert_state_dropped"),
        "{said}"
    );
    assert_golden_reports(d.addr);
    d.stop();
    let store = docflow::store::Store::open(&env.store(), 1 << 20).unwrap();
    assert!(
        store.outbox().unwrap().is_empty(),
        "the attacker's mail is queued"
    );
    assert!(store.alert_states().unwrap().is_empty());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn an_import_keeps_the_port_and_the_next_request_sees_the_imported_store() {
    let env = Env::exchange_and_signatures();
    let mut d = run_on_corpus(&env);
    let snapshot = export(&env);
    // Documents only the live store knows: the import removes them.
    env.append("exchange-extra.jsonl", &exchange_lines("EXTRA", 1..=3));
    d.wait_status(CATCH_UP, "3 extra documents", |s| {
        counts(s, "exchange").0 == EXCHANGE_COUNTS.0 + 3 && s["caught_up"] == true
    });
    std::fs::remove_file(env.log("exchange-extra.jsonl")).unwrap();
    for round in 0..2 {
        let out = import(&env, &snapshot);
        assert!(
            out.status.success(),
            "import {round} failed:\n{}",
            printed(&out)
        );
        // One request, no retry: the listener never closed, so it waits in
        // the backlog for the restarted daemon and sees the imported counts.
        let report = d.report("");
        assert_eq!(report, golden("expected-report-all.json"), "round {round}");
        assert!(
            d.running(),
            "daemon exited after import {round}:\n{}",
            d.stderr_text()
        );
    }
    assert!(!d.stderr_text().contains("Address already in use"));
    assert_golden_reports(d.addr);
    d.stop();
}

#[test]
fn a_rebinding_page_gets_nothing_from_any_endpoint() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    for path in [
        "/api/v1/documents",
        "/api/v1/report",
        "/metrics",
        "/api/v1/export",
        "/",
    ] {
        let (code, answer) = raw(
            d.addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{}\r\nConnection: close\r\n\r\n",
                d.addr.port()
            )
            .as_bytes(),
        );
        assert_eq!(code, 421, "{path}: {answer}");
        assert!(!answer.contains("doc_id"), "{path} leaked documents");
    }
    // The same requests by the server's own names pass.
    for host in [d.addr.to_string(), format!("localhost:{}", d.addr.port())] {
        let (code, _) = raw(
            d.addr,
            format!("GET /api/v1/documents HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(code, 200, "{host}");
    }
    d.stop();
}

#[test]
fn an_export_reader_that_stops_reading_holds_up_neither_ingestion_nor_shutdown() {
    let env = Env::exchange_and_signatures();
    link_generated(&env);
    let d = env.start();
    let caught = d.wait_status(Duration::from_secs(180), "caught up", |s| {
        s["caught_up"] == true
    });
    let accepted = counts(&caught, "exchange").0;
    // `docflowd export | sleep 60`: a pipe nobody reads.
    let mut stalled = Command::new(BIN)
        .args(["export", "-c"])
        .arg(&env.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The snapshot is streaming once its first byte arrives; then nobody reads.
    let mut first = [0u8; 1];
    stalled
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .expect("the export starts");
    env.append("exchange-more.jsonl", &exchange_lines("MORE", 1..=5));
    d.wait_status(
        Duration::from_secs(20),
        "new lines accepted during the stalled export",
        |s| counts(s, "exchange").0 == accepted + 5,
    );
    assert!(
        stalled.try_wait().unwrap().is_none(),
        "the export finished: the test did not stall it"
    );
    assert_eq!(
        metric(
            d.addr,
            "docflow_admin_actions_total{action=\"export\",result=\"ok\"}"
        ),
        0.0
    );
    let took = d.stop();
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let _ = stalled.kill();
    let _ = stalled.wait();
}

#[test]
fn half_sent_requests_are_dropped_and_metrics_keep_answering() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
            .unwrap()
            .count()
    };
    let baseline = fds();
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..1100)
        .map(|_| {
            let mut s = TcpStream::connect(d.addr).expect("connect");
            s.write_all(b"GET /metr").unwrap();
            s
        })
        .collect();
    // A scrape while 1,100 half requests are open: the oldest give way.
    let (code, body) = get(d.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("docflow_documents"));
    // At most `server.max_connections` (256) sockets beyond what it held
    // before, at any moment: an evicted connection counts until its socket
    // is closed, so the bound holds however far the machine lags.
    let held = fds();
    let bound = baseline + 256 + 16;
    assert!(
        held <= bound,
        "the daemon holds {held} file descriptors ({baseline} before the 1,100 connections)"
    );
    // Every half request is closed by the server within the header timeout.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "a half request was still open after {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_golden_reports(d.addr);
    d.stop();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", d.addr).as_bytes())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break idle_since.elapsed(),
            Ok(_) => continue,
        }
    };
    assert!(
        closed >= Duration::from_secs(9) && closed < Duration::from_secs(15),
        "closed after {closed:?}"
    );
    d.stop();
}

#[test]
fn an_oversized_import_line_is_refused_in_bounded_memory() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let before = vm_hwm_kib(d.pid());
    // A header, then one line of 256 MiB (16 times the cap), streamed
    // (never held by the test); without the cap it would all be in memory.
    let mut child = Command::new(BIN)
        .args(["import", "-c"])
        .arg(&env.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let header = b"{\"docflow_snapshot\":1,\"agency\":\"H40.27.01\",\"store_version\":3}\n{\"type\":\"x\",\"key\":\"";
        stdin.write_all(header)?;
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..256 {
            stdin.write_all(&chunk)?;
        }
        stdin.write_all(b"\"}\n")
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    assert!(!out.status.success(), "a 256 MiB line was accepted");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("longer than"), "{said}");
    let after = vm_hwm_kib(d.pid());
    eprintln!(
        "daemon peak RSS: {} MiB before, {} MiB after the 1 GiB line",
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} to {after} KiB"
    );
    assert_golden_reports(d.addr);
    d.stop();
}

#[test]
fn a_unit_name_that_is_a_formula_is_text_in_the_csv_report() {
    let env = Env::exchange_and_signatures();
    env.append(
        "exchange.jsonl",
        "{\"event_id\":\"f1\",\"time\":\"2026-05-04T09:00:00+07:00\",\"doc_id\":\"F-1\",\"direction\":\"đi\",\"channel\":\"điện tử\",\"unit\":\"=HYPERLINK(\\\"http://evil.example/\\\",\\\"x\\\")\"}\n",
    );
    let d = env.start();
    d.wait_status(CATCH_UP, "the line read", |s| counts(s, "exchange").0 == 1);
    let out = env.cli(&[
        "report",
        "-c",
        env.config.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", printed(&out));
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    for line in csv.lines() {
        assert!(
            !line.starts_with('=') && !line.contains(",=") && !line.contains(",\"="),
            "{line}"
        );
    }
    d.stop();
}

#[test]
fn a_listener_open_to_the_network_without_tls_and_auth_is_warned_about_at_start() {
    let env = Env::exchange_and_signatures();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace(
            &format!("listen = \"{ANY_PORT}\""),
            "listen = \"0.0.0.0:0\"",
        ),
    )
    .unwrap();
    let d = env.start();
    let said = d.stderr_text();
    assert!(
        said.contains("WARN") && said.contains("without TLS and authentication"),
        "{said}"
    );
    d.stop();
}

#[test]
fn the_admin_socket_is_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let path = admin_socket(&env);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    // A request on it carries the peer's uid: ours is the daemon's, so it passes.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"GET /admin/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(status_of(&answer).0, 200);
    d.stop();
    assert!(!Path::new(&path).exists(), "the socket is removed at exit");
}
