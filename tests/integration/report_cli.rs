//! `docflowd report` (SPEC §5.3): asks the running daemon, or opens the store
//! itself when no daemon holds it; Vietnamese labels by default.

use serde_json::Value;

use crate::common::*;
use crate::corpus::{golden, run_on_corpus};

fn report_cmd(env: &Env, args: &[&str]) -> String {
    let config = env.config.display().to_string();
    let mut all = vec!["report", "-c", config.as_str()];
    all.extend_from_slice(args);
    let out = env.cli(&all);
    assert!(
        out.status.success(),
        "docflowd {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn report_json(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let text = report_cmd(env, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn report_cli_matches_the_api_with_and_without_a_running_daemon() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let h1 = golden("expected-report-2026-H1.json");
    let june = golden("expected-report-from-2026-06-01-to-2026-06-30.json");

    let live = report_json(&env, &["--period", "2026-H1"]);
    assert_eq!(live, d.report("period=2026-H1"));
    assert_eq!(live, h1);
    assert_eq!(
        report_json(&env, &["--from", "2026-06-01", "--to", "2026-06-30"]),
        june
    );
    let table = report_cmd(&env, &["--period", "2026-H1", "--format", "table"]);
    assert!(table.contains("Văn bản đi"), "{table}");
    assert!(table.contains("Văn bản đến"), "{table}");
    d.stop();

    // No daemon: the command opens the store itself.
    assert_eq!(report_json(&env, &["--period", "2026-H1"]), h1);
    assert_eq!(report_json(&env, &[]), golden("expected-report-all.json"));
    let table = report_cmd(&env, &["--period", "2026-H1"]);
    assert!(
        table.contains("Văn bản đi"),
        "default format is the table: {table}"
    );

    // Bad period: non-zero exit with a message.
    let config = env.config.display().to_string();
    let out = env.cli(&["report", "-c", &config, "--period", "2026-H3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("period"));
}
