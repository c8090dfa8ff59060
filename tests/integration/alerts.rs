//! Alert mail (SPEC §6) through a real SMTP server: Debian's aiosmtpd on
//! 127.0.0.1, with STARTTLS and a test certificate. The daemon is the real
//! binary, restarted between steps; mails are read back from the Maildir.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const PYTHON: &str = "/usr/bin/python3";

fn tls_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Fails (never skips) when the SMTP server is missing.
fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs Debian's python3-aiosmtpd for {PYTHON} (apt-get install python3-aiosmtpd)"
    );
}

/// An aiosmtpd process storing every mail in a Maildir.
struct SmtpServer {
    child: Child,
}

impl SmtpServer {
    fn start(addr: SocketAddr, maildir: &Path, starttls: bool) -> SmtpServer {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()]);
        if starttls {
            cmd.arg("--tlscert")
                .arg(tls_fixture("smtp-cert.pem"))
                .arg("--tlskey")
                .arg(tls_fixture("smtp-key.pem"));
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start aiosmtpd");
        wait_listening(addr);
        SmtpServer { child }
    }

    /// TLS from the first byte (smtps://), with the test certificate.
    fn start_smtps(addr: SocketAddr, maildir: &Path) -> SmtpServer {
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .arg("--smtpscert")
            .arg(tls_fixture("smtp-cert.pem"))
            .arg("--smtpskey")
            .arg(tls_fixture("smtp-key.pem"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        wait_listening(addr);
        SmtpServer { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A received mail, decoded by Python's `email` package.
#[derive(Debug)]
struct Received {
    alert: String,
    subject: String,
    text: String,
    html: String,
}

/// Every mail in the Maildir, oldest first.
fn mails(maildir: &Path) -> Vec<Received> {
    let script = r#"
import email, email.policy, json, mailbox, sys
out = []
for key, msg in mailbox.Maildir(sys.argv[1], create=True).items():
    m = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    plain = m.get_body(("plain",))
    html = m.get_body(("html",))
    out.append({"date": float(msg.get_date()), "alert": m["X-Docflow-Alert"] or "",
                "subject": str(m["Subject"]), "text": plain.get_content() if plain else "",
                "html": html.get_content() if html else ""})
out.sort(key=lambda x: x["date"])
print(json.dumps(out))
"#;
    let o = Command::new(PYTHON)
        .args(["-c", script])
        .arg(maildir)
        .output()
        .expect("run python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).expect("mail list JSON");
    v.into_iter()
        .map(|m| Received {
            alert: m["alert"].as_str().unwrap_or("").to_string(),
            subject: m["subject"].as_str().unwrap_or("").to_string(),
            text: m["text"].as_str().unwrap_or("").to_string(),
            html: m["html"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

fn wait_mails(maildir: &Path, n: usize, within: Duration) -> Vec<Received> {
    let deadline = Instant::now() + within;
    loop {
        let m = mails(maildir);
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} mails within {within:?}, got {}: {m:?}",
            m.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn outgoing(i: u32, time: &str) -> String {
    format!(
        "{{\"event_id\":\"x{i}\",\"time\":\"{time}\",\"doc_id\":\"D{i:02}\",\"doc_number\":\"{i}/UBND-VP\",\"subject\":\"Công văn số {i} <về việc> & thử\",\"direction\":\"đi\",\"channel\":\"điện tử\",\"unit\":\"Văn phòng\"}}\n"
    )
}

fn signatures(range: std::ops::RangeInclusive<u32>, time: &str) -> String {
    range
        .flat_map(|i| {
            ["person", "organization"].map(|role| {
                format!("{{\"event_id\":\"s{i}{role}\",\"time\":\"{time}\",\"doc_id\":\"D{i:02}\",\"role\":\"{role}\"}}\n")
            })
        })
        .collect()
}

fn append_config(env: &Env, text: &str) {
    let mut c = std::fs::read_to_string(&env.config).expect("config");
    c.push_str(text);
    std::fs::write(&env.config, c).expect("write config");
}

fn rule_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["alerts"]["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("rule {name} missing in status: {status}"))
}

/// The value of one `docflow_alert_notifications_total` series.
fn notifications(metrics: &str, rule: &str, state: &str, result: &str) -> u64 {
    let series =
        format!("docflow_alert_notifications_total{{result=\"{result}\",rule=\"{rule}\",state=\"{state}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{series} missing in:\n{metrics}"))
        .trim()
        .parse()
        .expect("counter value")
}

#[test]
#[ignore = "needs python3-aiosmtpd"]
fn ratio_alert_fires_once_across_restart_and_outage_then_resolves_once() {
    require_aiosmtpd();
    let env = Env::exchange_and_signatures();
    let maildir = env.dir.path().join("maildir");
    let smtp_addr = tool_addr();
    append_config(
        &env,
        &format!(
            r#"
[alerts]
evaluation_interval = "200ms"
dashboard_url = "https://grafana.example.gov.vn/d/docflow"
[alerts.smtp]
url = "smtp://localhost:{port}?tls=required"
ca_file = "{ca}"
from = "docflow@example.gov.vn"
to = ["vanphong@example.gov.vn"]
timeout = "5s"
[[alerts.rules]]
name = "outgoing-30d"
direction = "outgoing"
window = "30d"
below = 1.0
for = "1s"
min_documents = 5
repeat_interval = "1h"
"#,
            port = smtp_addr.port(),
            ca = tls_fixture("smtp-cert.pem").display()
        ),
    );
    let now = now_rfc3339();
    let exchange: String = (1..=10).map(|i| outgoing(i, &now)).collect();
    env.append("exchange-1.jsonl", &exchange);
    env.append("signatures-1.jsonl", &signatures(1..=5, &now));
    let smtp = SmtpServer::start(smtp_addr, &maildir, true);

    // 5 of 10 signed: 50 % < 100 % for 1 s → one firing mail, over STARTTLS.
    let d = env.start();
    let m = wait_mails(&maildir, 1, Duration::from_secs(30));
    assert_eq!(m[0].alert, "outgoing-30d; state=firing");
    assert!(
        m[0].subject.contains("50,0 %") && m[0].subject.contains("ngưỡng 100 %"),
        "{}",
        m[0].subject
    );
    assert!(
        m[0].subject.contains("văn bản đi") && m[0].subject.contains("30 ngày"),
        "{}",
        m[0].subject
    );
    assert!(
        m[0].text.contains("Điện tử, chưa đủ chữ ký số: 5"),
        "{}",
        m[0].text
    );
    assert!(
        m[0].text
            .contains("6/UBND-VP — Công văn số 6 <về việc> & thử — Văn phòng"),
        "{}",
        m[0].text
    );
    assert!(
        !m[0].text.contains("1/UBND-VP"),
        "signed documents are not listed: {}",
        m[0].text
    );
    assert!(m[0]
        .text
        .contains("https://grafana.example.gov.vn/d/docflow"));
    assert!(
        m[0].html
            .contains("Công văn số 6 &lt;về việc&gt; &amp; thử"),
        "{}",
        m[0].html
    );
    let s = d.wait_status(Duration::from_secs(10), "firing sent", |s| {
        rule_status(s, "outgoing-30d")["notifications"]["firing"]["sent"] == 1
    });
    assert_eq!(rule_status(&s, "outgoing-30d")["state"], "firing");
    d.stop();

    // A restart while firing sends nothing more.
    let d = env.start();
    d.wait_caught_up();
    // The first evaluation after the restart sets `condition_holds` and, in
    // the same step, would have queued a mail (outbox, or `sent` once gone).
    let s = d.wait_status(Duration::from_secs(10), "evaluated after restart", |s| {
        rule_status(s, "outgoing-30d")["condition_holds"] == true
    });
    let rule = rule_status(&s, "outgoing-30d");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["outbox"], 0, "a restart must not queue a mail: {rule}");
    assert_eq!(rule["notifications"]["firing"]["sent"], 1, "{rule}");
    assert_eq!(mails(&maildir).len(), 1, "a restart must not re-send");

    // The mail server goes down; late signatures restore the ratio.
    smtp.stop();
    env.append("signatures-1.jsonl", &signatures(6..=10, &now));
    d.wait_status(Duration::from_secs(30), "resolved mail failed", |s| {
        let r = rule_status(s, "outgoing-30d");
        r["state"] == "inactive" && r["notifications"]["resolved"]["failed"].as_u64() >= Some(1)
    });
    // Restart during the outage: the queued mail is kept, not lost or duplicated.
    d.stop();
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(
        s["alerts"]["outbox"].as_array().map(Vec::len),
        Some(1),
        "{s}"
    );
    assert_eq!(s["alerts"]["outbox"][0]["state"], "resolved");

    // The server comes back: exactly one resolved mail arrives.
    let _smtp = SmtpServer::start(smtp_addr, &maildir, true);
    let m = wait_mails(&maildir, 2, Duration::from_secs(60));
    assert_eq!(m[1].alert, "outgoing-30d; state=resolved");
    assert!(
        m[1].subject.contains("Đã khắc phục") && m[1].subject.contains("100,0 %"),
        "{}",
        m[1].subject
    );
    // Nothing left to send, and the rule inactive: no further mail can come.
    let s = d.wait_status(Duration::from_secs(10), "outbox empty", |s| {
        s["alerts"]["outbox"].as_array().is_some_and(Vec::is_empty)
            && rule_status(s, "outgoing-30d")["state"] == "inactive"
            && rule_status(s, "outgoing-30d")["condition_holds"] == false
    });
    assert_eq!(
        mails(&maildir).len(),
        2,
        "exactly one firing and one resolved mail"
    );

    // Counters match what arrived; failed tries are counted, not lost.
    let (_, metrics) = d.get("/metrics");
    assert_eq!(notifications(&metrics, "outgoing-30d", "firing", "sent"), 1);
    assert_eq!(
        notifications(&metrics, "outgoing-30d", "resolved", "sent"),
        1
    );
    assert_eq!(
        notifications(&metrics, "outgoing-30d", "firing", "failed"),
        0
    );
    let failed = notifications(&metrics, "outgoing-30d", "resolved", "failed");
    assert!(failed >= 1);
    assert_eq!(
        rule_status(&s, "outgoing-30d")["notifications"]["resolved"]["failed"].as_u64(),
        Some(failed)
    );
    assert!(
        metrics.contains("docflow_alert_firing{rule=\"outgoing-30d\"} 0"),
        "{metrics}"
    );
    // The mails sent are listed newest first, across the restarts, as they
    // arrived (the console's "Thư đã gửi gần đây").
    let sent = s["alerts"]["sent"].as_array().expect("alerts.sent");
    let listed: Vec<(&str, &str)> = sent
        .iter()
        .map(|m| (m["state"].as_str().unwrap(), m["subject"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("resolved", m[1].subject.as_str()),
            ("firing", m[0].subject.as_str())
        ],
        "{s}"
    );
    let (code, page) = d.get("/alerts");
    assert_eq!(code, 200);
    assert!(
        page.contains("Đã hết cảnh báo") && page.contains("outgoing-30d"),
        "{page}"
    );
    d.stop();
}

#[test]
#[ignore = "needs python3-aiosmtpd"]
fn stale_feed_fires_while_smtp_is_down_then_new_events_resolve() {
    require_aiosmtpd();
    let env = Env::exchange_and_signatures();
    let maildir = env.dir.path().join("maildir");
    let smtp_addr = tool_addr();
    append_config(
        &env,
        &format!(
            r#"
[alerts]
evaluation_interval = "200ms"
[alerts.smtp]
url = "smtp://127.0.0.1:{port}"
from = "docflow@example.gov.vn"
to = ["vanphong@example.gov.vn"]
[[alerts.rules]]
name = "exchange-feed-stale"
stale_source = "exchange"
after = "2s"
"#,
            port = smtp_addr.port()
        ),
    );
    env.append("exchange-1.jsonl", &outgoing(1, &now_rfc3339()));
    // The mail server is down when the rule fires: the mail waits in the outbox.
    let d = env.start();
    d.wait_status(Duration::from_secs(30), "firing mail failed", |s| {
        let r = rule_status(s, "exchange-feed-stale");
        r["state"] == "firing" && r["notifications"]["firing"]["failed"].as_u64() >= Some(1)
    });
    let _smtp = SmtpServer::start(smtp_addr, &maildir, false);
    let m = wait_mails(&maildir, 1, Duration::from_secs(90));
    assert_eq!(m[0].alert, "exchange-feed-stale; state=firing");
    assert!(
        m[0].subject
            .contains("nguồn dữ liệu «exchange» không có sự kiện mới trong 2 giây"),
        "{}",
        m[0].subject
    );
    d.wait_status(Duration::from_secs(10), "firing sent", |s| {
        rule_status(s, "exchange-feed-stale")["notifications"]["firing"]["sent"] == 1
    });
    env.append("exchange-1.jsonl", &outgoing(2, &now_rfc3339()));
    let m = wait_mails(&maildir, 2, Duration::from_secs(30));
    assert_eq!(m[1].alert, "exchange-feed-stale; state=resolved");
    assert!(m[1].subject.contains("Đã khắc phục"), "{}", m[1].subject);
    // Without further events the feed goes stale again 2 s later and fires
    // anew; what must never happen is a repeated mail of the same state.
    d.wait_status(Duration::from_secs(30), "firing again, mail sent", |s| {
        let r = rule_status(s, "exchange-feed-stale");
        r["state"] == "firing" && r["notifications"]["firing"]["sent"] == 2 && r["outbox"] == 0
    });
    let states: Vec<String> = mails(&maildir).into_iter().map(|m| m.alert).collect();
    assert_eq!(states.len(), 3, "{states:?}");
    for (i, state) in states.iter().enumerate() {
        let want = if i % 2 == 0 { "firing" } else { "resolved" };
        assert_eq!(
            state,
            &format!("exchange-feed-stale; state={want}"),
            "{states:?}"
        );
    }
    d.stop();
}

#[test]
#[ignore = "needs python3-aiosmtpd"]
fn alert_test_sends_one_mail_and_explains_smtp_errors() {
    require_aiosmtpd();
    let env = Env::exchange_and_signatures();
    let maildir = env.dir.path().join("maildir");
    let smtp_addr = tool_addr();
    let config = std::fs::read_to_string(&env.config).expect("config");
    let write = |url: &str| {
        std::fs::write(
            &env.config,
            format!(
                "{config}\n[alerts]\n[alerts.smtp]\nurl = \"{url}\"\nfrom = \"docflow@example.gov.vn\"\nto = [\"vanphong@example.gov.vn\"]\ntimeout = \"5s\"\n"
            ),
        )
        .expect("write config")
    };

    // Nobody listens yet.
    write(&format!("smtp://127.0.0.1:{}", smtp_addr.port()));
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("nothing accepts connections on 127.0.0.1:"),
        "{err}"
    );

    let _smtp = SmtpServer::start(smtp_addr, &maildir, false);
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = wait_mails(&maildir, 1, Duration::from_secs(10));
    assert!(m[0].subject.contains("Thư thử nghiệm"), "{}", m[0].subject);

    // The server offers no STARTTLS but the url requires it.
    write(&format!(
        "smtp://127.0.0.1:{}?tls=required",
        smtp_addr.port()
    ));
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert_eq!(mails(&maildir).len(), 1);

    // The reverse: a server that insists on STARTTLS, a plain url.
    let tls_addr = tool_addr();
    let _tls = SmtpServer::start(tls_addr, &maildir, true);
    write(&format!("smtp://127.0.0.1:{}", tls_addr.port()));
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("requires TLS before accepting mail"), "{err}");
    assert_eq!(mails(&maildir).len(), 1);

    // smtps://: trusted through `ca_file`; without it the certificate is refused.
    let smtps_addr = tool_addr();
    let _smtps = SmtpServer::start_smtps(smtps_addr, &maildir);
    write(&format!("smtps://localhost:{}", smtps_addr.port()));
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("TLS with localhost:"), "{err}");
    write(&format!(
        "smtps://localhost:{}\"\nca_file = \"{}",
        smtps_addr.port(),
        tls_fixture("smtp-cert.pem").display()
    ));
    let o = env.cli(&["alert-test", "-c", &env.config.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mails(&maildir).len(), 2);
}
