//! The golden corpus (tests/fixtures/corpus, see its README): every alias,
//! time format, cut-off edge and kind of bad line, compared with reports
//! whose numbers were derived by hand.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::*;

/// (query, golden file) pairs.
pub const GOLDEN: [(&str, &str); 6] = [
    ("", "expected-report-all.json"),
    ("period=2026-H1", "expected-report-2026-H1.json"),
    ("period=2026-Q1", "expected-report-2026-Q1.json"),
    ("period=2026-03", "expected-report-2026-03.json"),
    ("period=2026", "expected-report-2026.json"),
    (
        "from=2026-06-01&to=2026-06-30",
        "expected-report-from-2026-06-01-to-2026-06-30.json",
    ),
];

pub fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("golden file");
    serde_json::from_str(&text).expect("golden file is JSON")
}

/// Per source (accepted, duplicate, invalid) once the whole corpus is read.
pub const EXCHANGE_COUNTS: (u64, u64, u64) = (37, 2, 9);
pub const SIGNATURE_COUNTS: (u64, u64, u64) = (28, 2, 5);

/// Starts a daemon on the whole corpus (late signature included) and waits until it is read.
pub fn run_on_corpus(env: &Env) -> Daemon {
    install(&fixture("signatures.jsonl"), &env.log("signatures.jsonl"));
    install(&fixture("exchange.jsonl"), &env.log("exchange.jsonl"));
    let late = std::fs::read(fixture("signatures-late.jsonl")).expect("late fixture");
    append(&env.log("signatures.jsonl"), &late);
    let d = env.start();
    d.wait_caught_up();
    d
}

/// Every golden report equals what the daemon at `addr` answers.
pub fn assert_golden_reports(addr: std::net::SocketAddr) {
    for (query, file) in GOLDEN {
        let got = report(addr, query);
        let want = golden(file);
        assert_eq!(
            got,
            want,
            "report `{query}` differs from {file}:\n got: {}\nwant: {}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }
}

/// Samples of a metric family: labels → value.
pub fn metric_samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let end = r.rfind('}').expect("closing brace");
                (&r[..end], r[end + 1..].trim())
            }
            None if rest.starts_with(' ') => ("", rest.trim()),
            None => continue, // another metric with this prefix
        };
        let mut map = BTreeMap::new();
        let mut s = labels;
        while !s.is_empty() {
            let (k, v) = s.split_once("=\"").expect("label=\"value\"");
            let mut val = String::new();
            let mut chars = v.char_indices();
            let end = loop {
                match chars.next().expect("closing quote") {
                    (i, '"') => break i,
                    (_, '\\') => val.push(chars.next().expect("escaped char").1),
                    (_, c) => val.push(c),
                }
            };
            map.insert(k.trim_start_matches(',').to_string(), val);
            s = v[end + 1..].trim_start_matches(',');
        }
        out.push((map, value.parse().expect("sample value")));
    }
    out
}

fn sample(samples: &[(BTreeMap<String, String>, f64)], want: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(labels, _)| {
            want.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one sample with {want:?}: {samples:?}"
    );
    found[0]
}

#[test]
fn golden_corpus_reports_counts_rejections_and_metrics_match_the_hand_derived_numbers() {
    let env = Env::exchange_and_signatures();
    // Signatures first: the daemon starts with only the signature log.
    install(&fixture("signatures.jsonl"), &env.log("signatures.jsonl"));
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "signatures"), (27, 2, 5));
    assert_eq!(counts(&s, "exchange"), (0, 0, 0));
    let empty = d.report("");
    assert_eq!(empty["outgoing"]["total"], 0, "{empty}");
    assert_eq!(empty["incoming"]["total"], 0, "{empty}");

    // Then the exchange log appears.
    install(&fixture("exchange.jsonl"), &env.log("exchange.jsonl"));
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), EXCHANGE_COUNTS);
    let unsigned = d.json("/api/v1/documents?class=electronic_unsigned&direction=outgoing");
    let ids: Vec<&str> = unsigned["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"O08"),
        "O08 lacks its organization signature until the late one: {ids:?}"
    );

    // The late signature turns O08 into electronic_signed.
    let late = std::fs::read(fixture("signatures-late.jsonl")).unwrap();
    append(&env.log("signatures.jsonl"), &late);
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), EXCHANGE_COUNTS);
    assert_eq!(counts(&s, "signatures"), SIGNATURE_COUNTS);
    assert_golden_reports(d.addr);

    // Rejected events: one JSON object per invalid line, with file, line and reason.
    let expect_rejected = |source: &str, file: &str, want: &[(u64, &str)]| {
        let lines = rejected_lines(&env.rejected(source));
        let got: Vec<(u64, String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["line"].as_u64().unwrap_or_else(|| panic!("line: {l}")),
                    l["file"]
                        .as_str()
                        .unwrap_or_else(|| panic!("file: {l}"))
                        .to_string(),
                    l["reason"]
                        .as_str()
                        .unwrap_or_else(|| panic!("reason: {l}"))
                        .to_lowercase(),
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{source}: {lines:?}");
        for ((line, f, reason), (want_line, keyword)) in got.iter().zip(want) {
            assert_eq!(line, want_line, "{source}: {lines:?}");
            assert!(f.ends_with(file), "{source} line {line}: file {f}");
            assert!(
                reason.contains(keyword),
                "{source} line {line}: reason {reason:?} should mention {keyword:?}"
            );
        }
    };
    expect_rejected(
        "exchange",
        "logs/exchange.jsonl",
        &[
            (40, "time"),
            (41, "time"),
            (42, "channel"),
            (43, "confidentiality"),
            (44, "doc_id"),
            (45, "direction"),
            (46, "json"),
            (47, "json"),
            (48, "doc_id"),
        ],
    );
    expect_rejected(
        "signatures",
        "logs/signatures.jsonl",
        &[
            (30, "doc_id"),
            (31, "role"),
            (32, "role"),
            (33, "time"),
            (34, "valid"),
        ],
    );

    // /metrics agrees with the all-time report and the status.
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    let docs = metric_samples(&metrics, "docflow_documents");
    let all = golden("expected-report-all.json");
    for direction in ["outgoing", "incoming"] {
        for class in [
            "electronic_signed",
            "electronic_unsigned",
            "paper",
            "secret_exempt",
        ] {
            let v = sample(
                &docs,
                &[
                    ("direction", direction),
                    ("class", class),
                    ("window", "all"),
                ],
            );
            assert_eq!(
                v,
                all[direction][class].as_f64().unwrap(),
                "docflow_documents{{direction={direction},class={class},window=all}}"
            );
        }
        let ratio = sample(
            &metric_samples(&metrics, "docflow_compliance_ratio"),
            &[("direction", direction), ("window", "all")],
        );
        assert_eq!(ratio, all[direction]["compliance_ratio"].as_f64().unwrap());
    }
    let events = metric_samples(&metrics, "docflow_source_events_total");
    for (source, (a, dup, inv)) in [
        ("exchange", EXCHANGE_COUNTS),
        ("signatures", SIGNATURE_COUNTS),
    ] {
        for (result, n) in [("accepted", a), ("duplicate", dup), ("invalid", inv)] {
            assert_eq!(
                sample(&events, &[("source", source), ("result", result)]),
                n as f64,
                "{source} {result}"
            );
        }
    }
    d.stop();
}

#[test]
fn bad_report_parameters_are_refused_with_400() {
    let env = Env::exchange_and_signatures();
    let d = env.start();
    for q in [
        "period=2026-H3",
        "period=2026-13",
        "period=2026&from=2026-01-01",
        "from=2026-02-01&to=2026-01-01",
        "from=01/02/2026",
        "colour=red",
    ] {
        let (code, body) = d.get(&format!("/api/v1/report?{q}"));
        assert_eq!(code, 400, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert!(v["error"].is_string(), "{q}: a message is given: {body}");
    }
    d.stop();
}
