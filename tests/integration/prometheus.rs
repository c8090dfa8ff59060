//! The Prometheus and Grafana side, checked with the real tools: promtool on the
//! rules (check and unit tests) and on docflowd's live `/metrics`, the example
//! configs, and every Grafana dashboard query run through a real Prometheus that
//! scrapes two real docflowd (two agencies, a province in miniature).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// Runs a command; returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (out.status.success(), printed(&out))
}

#[test]
#[ignore = "needs promtool"]
fn promtool_checks_and_unit_tests_the_rules() {
    let promtool = require_tool("promtool");
    let (ok, out) = run(Command::new(&promtool)
        .args(["check", "rules", "docflow-rules.yml"])
        .current_dir(deploy("prometheus")));
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = run(Command::new(&promtool)
        .args(["test", "rules", "docflow-rules.test.yml"])
        .current_dir(deploy("prometheus")));
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

#[test]
#[ignore = "needs promtool"]
fn example_prometheus_config_is_valid() {
    let promtool = require_tool("promtool");
    let dir = tempfile::tempdir().unwrap();
    // The example points at /etc/prometheus/: check it against copies.
    let text = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    let etc = format!("{}/", dir.path().display());
    std::fs::write(
        dir.path().join("prometheus.yml"),
        text.replace("/etc/prometheus/", &etc),
    )
    .unwrap();
    std::fs::copy(
        deploy("prometheus/docflow-rules.yml"),
        dir.path().join("docflow-rules.yml"),
    )
    .unwrap();
    let (ok, out) = run(Command::new(&promtool)
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml")));
    assert!(ok, "promtool check config:\n{out}");
    assert!(
        text.matches("agency: \"").count() >= 2,
        "every target needs an agency label"
    );
}

#[test]
#[ignore = "needs amtool"]
fn example_alertmanager_config_is_valid_with_resolved_mail() {
    let amtool = require_tool("amtool");
    let (ok, out) = run(Command::new(&amtool)
        .args(["check-config", "alertmanager.yml"])
        .current_dir(deploy("prometheus")));
    assert!(ok, "amtool check-config:\n{out}");
    let text = std::fs::read_to_string(deploy("prometheus/alertmanager.yml")).unwrap();
    assert!(text.contains("email_configs") && !text.contains("send_resolved: false"));
    assert_eq!(
        text.matches("email_configs").count(),
        text.matches("send_resolved: true").count()
    );
}

#[test]
#[ignore = "needs promtool"]
fn live_metrics_pass_promtool_check_metrics() {
    let promtool = require_tool("promtool");
    let env = Env::exchange_and_signatures();
    install_corpus(&env);
    let d = env.start();
    d.wait_caught_up();
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("docflow_compliance_ratio{"), "{metrics}");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = printed(&out);
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "promtool check metrics ({}):\n{printed}",
        out.status
    );
    d.stop();
}

/// Every panel target of the dashboard: (panel title, expr, instant).
fn dashboard_targets(dashboard: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("").to_string(),
                t["expr"].as_str().expect("target expr").to_string(),
                t["instant"] == true,
            ));
        }
    }
    out
}

fn load_dashboard() -> Value {
    let text = std::fs::read_to_string(deploy("grafana/dashboards/docflow.json")).unwrap();
    serde_json::from_str(&text).expect("dashboard is JSON")
}

#[test]
fn dashboard_is_raw_provisionable_json_with_variables_and_vietnamese_titles() {
    let text = std::fs::read_to_string(deploy("grafana/dashboards/docflow.json")).unwrap();
    let d = load_dashboard();
    // File provisioning does not resolve import-time inputs.
    assert!(!text.contains("${DS_") && d.get("__inputs").is_none());
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in ["datasource", "agency", "window"] {
        assert!(vars.contains(&v), "variable {v} missing: {vars:?}");
    }
    let mut stack: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    let mut titles = 0;
    while let Some(p) = stack.pop() {
        let title = p["title"].as_str().unwrap();
        // Vietnamese: every title carries a letter outside ASCII (ă, â, ê, ơ, ư, đ, tones).
        assert!(!title.is_ascii(), "title not in Vietnamese: {title}");
        titles += 1;
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title}");
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "target of {title}");
        }
    }
    assert!(titles >= 10);
    for needed in [
        "province:docflow_compliance_ratio:ratio",
        "docflow_documents",
        "docflow_unit_documents",
        "docflow_source_events_total",
        "docflow_source_up",
        "docflow_source_last_event_timestamp_seconds",
        "docflow_alert_firing",
        "docflow_alert_notifications_total",
    ] {
        assert!(text.contains(needed), "no panel uses {needed}");
    }
}

/// `application/x-www-form-urlencoded` value encoding.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus API call; panics unless `status` is `success`.
fn api(prom: SocketAddr, path: &str) -> Value {
    let (code, body) =
        http_get(prom, path).unwrap_or_else(|e| panic!("GET {path} from Prometheus: {e}"));
    let v: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
    assert!(
        code == 200 && v["status"] == "success",
        "GET {path}: {code} {body}"
    );
    v
}

fn instant(prom: SocketAddr, expr: &str) -> Vec<Value> {
    api(prom, &format!("/api/v1/query?query={}", encode(expr)))["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Events dated a minute ago: today's documents, so every window has data.
fn todays_events(prefix: &str, unsigned: bool) -> (String, String) {
    let t = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut exchange = String::new();
    let mut signatures = String::new();
    for (i, (dir, channel, unit)) in [
        ("đi", "điện tử", "Văn phòng"),
        ("đi", "điện tử", "Phòng Kinh tế"),
        ("đến", "điện tử", "Văn phòng"),
        ("đến", "giấy", "Phòng Kinh tế"),
    ]
    .iter()
    .enumerate()
    {
        let doc = format!("{prefix}-T{i}");
        exchange.push_str(&format!(
            "{{\"event_id\":\"{doc}-x\",\"time\":\"{t}\",\"doc_id\":\"{doc}\",\"direction\":\"{dir}\",\"channel\":\"{channel}\",\"unit\":\"{unit}\"}}\n"
        ));
        if *channel == "điện tử" && !(unsigned && i == 1) {
            for role in ["person", "organization"] {
                signatures.push_str(&format!(
                    "{{\"event_id\":\"{doc}-{role}\",\"time\":\"{t}\",\"doc_id\":\"{doc}\",\"role\":\"{role}\"}}\n"
                ));
            }
        }
    }
    (exchange, signatures)
}

/// The alert block of the README's "Alerts" section, mailing to a closed port (sends fail, are counted).
fn alerts_block() -> String {
    let closed = tool_addr();
    format!(
        "\n[alerts]\nevaluation_interval = \"1s\"\n[alerts.smtp]\nurl = \"smtp://{closed}\"\nfrom = \"docflow@example.gov.vn\"\nto = [\"vanphong@example.gov.vn\"]\n\
         [[alerts.rules]]\nname = \"outgoing-30d\"\ndirection = \"outgoing\"\nwindow = \"30d\"\nbelow = 1.0\nfor = \"1s\"\nmin_documents = 1\nrepeat_interval = \"24h\"\n"
    )
}

#[test]
#[ignore = "needs prometheus"]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let prometheus = require_tool("prometheus");
    // Agency A: the golden corpus plus today's documents (one unsigned), with
    // an alert rule. Agency B: today's only.
    let a = Env::exchange_and_signatures();
    install_corpus(&a);
    let (x, s) = todays_events("A", true);
    a.append("exchange-today.jsonl", &x);
    a.append("signatures-today.jsonl", &s);
    let with_alerts = std::fs::read_to_string(&a.config).unwrap() + &alerts_block();
    std::fs::write(&a.config, &with_alerts).unwrap();
    let checked = a.cli(&["check-config", "-c", &a.config.display().to_string()]);
    assert!(
        checked.status.success(),
        "check-config refused the alerts block the dashboard's alert panels need:\n{}",
        printed(&checked)
    );
    let b = Env::exchange_and_signatures();
    let text = std::fs::read_to_string(&b.config).unwrap();
    std::fs::write(
        &b.config,
        text.replace("H40.27.01", "H40.27.98")
            .replace("Hương Bình", "Hương Thủy"),
    )
    .unwrap();
    let (x, s) = todays_events("B", false);
    b.append("exchange-today.jsonl", &x);
    b.append("signatures-today.jsonl", &s);
    let da = a.start();
    let db = b.start();
    da.wait_caught_up();
    db.wait_caught_up();

    // A real Prometheus: 1 s scrapes and rule evaluations, random port, temp storage.
    let dir = tempfile::tempdir().unwrap();
    let prom_addr = tool_addr();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: docflow\n    static_configs:\n\
         \x20     - targets: [\"{}\"]\n        labels: {{agency: \"H40.27.01\"}}\n\
         \x20     - targets: [\"{}\"]\n        labels: {{agency: \"H40.27.98\"}}\n",
        deploy("prometheus/docflow-rules.yml").display(),
        da.addr,
        db.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Prometheus(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let log_text =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    // Five scrapes of both targets: enough samples for rate() over 30 s.
    wait_for(
        Duration::from_secs(60),
        "five scrapes of both docflowd",
        || {
            let r = http_get(
                prom_addr,
                &format!(
                    "/api/v1/query?query={}",
                    encode("count(count_over_time(up{job=\"docflow\"}[1m]) >= 5 and up == 1)")
                ),
            )
            .ok()?;
            let v: Value = serde_json::from_str(&r.1).ok()?;
            (v["data"]["result"][0]["value"][1] == "2").then_some(())
        },
    );
    assert!(
        !instant(prom_addr, "province:docflow_compliance_ratio:ratio").is_empty(),
        "recording rules not evaluated; prometheus log:\n{}",
        log_text()
    );

    let dashboard = load_dashboard();
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let options = |name: &str| -> Vec<String> {
        let v = vars.iter().find(|v| v["name"] == name).unwrap();
        v["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap().to_string())
            .collect()
    };

    // The `agency` variable's own query (label_values) must list both agencies.
    let values = api(
        prom_addr,
        &format!(
            "/api/v1/label/agency/values?{}={}",
            encode("match[]"),
            encode("docflow_agency_info")
        ),
    );
    assert_eq!(
        values["data"],
        serde_json::json!(["H40.27.01", "H40.27.98"]),
        "label_values(docflow_agency_info, agency)"
    );
    let mut verified = 1;
    // Grafana renders a multi-value variable as an alternation with regex
    // escapes, themselves escaped for the PromQL string literal.
    let agency = r"(H40\\.27\\.01|H40\\.27\\.98)";
    let now = chrono::Utc::now().timestamp();
    let mut executed = BTreeSet::new();
    let mut failures = Vec::new();
    for (title, expr, is_instant) in dashboard_targets(&dashboard) {
        let windows = if expr.contains("$window") {
            options("window")
        } else if expr.contains("$unit_window") {
            options("unit_window")
        } else {
            vec![String::new()]
        };
        for w in windows {
            let q = expr
                .replace("$agency", agency)
                .replace("$unit_window", &w)
                .replace("$window", &w)
                .replace("$__rate_interval", "30s");
            assert!(!q.contains('$'), "unsubstituted variable in {title}: {q}");
            if !executed.insert((q.clone(), is_instant)) {
                continue;
            }
            let result = if is_instant {
                instant(prom_addr, &q)
            } else {
                api(
                    prom_addr,
                    &format!(
                        "/api/v1/query_range?query={}&start={}&end={now}&step=2",
                        encode(&q),
                        now - 20
                    ),
                )["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            };
            if result.is_empty() {
                failures.push(format!("{title} [{w}]: empty result for\n  {q}"));
            } else {
                verified += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} dashboard queries returned nothing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("dashboard queries verified through Prometheus: {verified} (alert rules configured)");
    assert!(verified >= 20, "only {verified} queries verified");
    da.stop();
    db.stop();
}
