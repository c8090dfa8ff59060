//! Exactly-once counting across SIGTERM, restarts and `kill -9` (SPEC §7),
//! signature order independence, and graceful shutdown.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::corpus::{assert_golden_reports, run_on_corpus, EXCHANGE_COUNTS, SIGNATURE_COUNTS};

/// Everything a run's outcome is judged by.
#[derive(Debug, PartialEq)]
struct Outcome {
    report: Value,
    exchange: (u64, u64, u64),
    signatures: (u64, u64, u64),
    /// (line, reason) of each rejected event, per source.
    rejected: Vec<Vec<(u64, String)>>,
}

fn outcome(env: &Env, d: &Daemon) -> Outcome {
    let status = d.wait_caught_up();
    let rejected = ["exchange", "signatures"]
        .iter()
        .map(|s| {
            rejected_lines(&env.rejected(s))
                .iter()
                .map(|l| {
                    (
                        l["line"].as_u64().unwrap_or(0),
                        l["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .collect();
    Outcome {
        report: d.report(""),
        exchange: counts(&status, "exchange"),
        signatures: counts(&status, "signatures"),
        rejected,
    }
}

#[test]
fn restart_does_not_double_count() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    assert_golden_reports(d.addr);
    d.stop();

    // Restarting on unchanged files changes nothing.
    let d = env.start();
    let s = d.wait_caught_up();
    assert_eq!(counts(&s, "exchange"), EXCHANGE_COUNTS);
    assert_eq!(counts(&s, "signatures"), SIGNATURE_COUNTS);
    assert_golden_reports(d.addr);
    d.stop();

    // Lines appended while stopped are read once, after the saved position.
    env.append("exchange.jsonl", &exchange_lines("NEW", 1..=3));
    env.append("exchange.jsonl", "{\"event_id\":\"ex-o03\",\"time\":\"01/01/2026\",\"doc_id\":\"GHOST-2\",\"direction\":\"đi\",\"channel\":\"giấy\"}\n");
    env.append("exchange.jsonl", "not json\n");
    env.append(
        "signatures.jsonl",
        "{\"event_id\":\"sg-o07-p\",\"time\":\"21/02/2026\",\"doc_id\":\"O07\",\"role\":\"person\"}\n\
         {\"event_id\":\"sg-o07-o\",\"time\":\"21/02/2026\",\"doc_id\":\"O07\",\"role\":\"organization\"}\n",
    );
    let d = env.start();
    let restarted = outcome(&env, &d);
    d.stop();
    assert_eq!(restarted.exchange, (40, 3, 10));
    assert_eq!(restarted.signatures, (30, 2, 5));
    assert_eq!(restarted.report["outgoing"]["total"], 18);
    assert_eq!(restarted.report["outgoing"]["electronic_signed"], 7);
    assert_eq!(restarted.report["outgoing"]["electronic_unsigned"], 5);

    // A single clean run on the final files gives the same numbers.
    let clean_env = Env::exchange_and_signatures();
    for name in ["exchange.jsonl", "signatures.jsonl"] {
        install(&env.log(name), &clean_env.log(name));
    }
    let d = clean_env.start();
    let clean = outcome(&clean_env, &d);
    d.stop();
    assert_eq!(restarted, clean);
}

#[test]
fn kill_9_during_ingestion_then_restart_gives_exact_counts() {
    // The uninterrupted reference run.
    let reference_env = Env::exchange_and_signatures();
    let g = link_generated(&reference_env);
    let total = g.exchange_lines + g.signature_lines;
    let long = Duration::from_secs(600);
    let d = reference_env.start();
    d.wait_status(long, "caught_up", |s| s["caught_up"] == true);
    let reference = outcome(&reference_env, &d);
    d.stop();
    assert!(
        reference.exchange.0 > 0 && reference.exchange.2 > 0,
        "{reference:?}"
    );
    assert!(
        reference.exchange.1 > 0,
        "the noisy corpus has duplicates: {reference:?}"
    );

    // Three SIGKILLs at different moments of ingestion.
    let env = Env::exchange_and_signatures();
    link_generated(&env);
    for percent in [20, 50, 80] {
        let d = env.start();
        let s = d.wait_status(long, &format!("{percent} % read"), |s| {
            lines_read(s) * 100 > total * percent
        });
        d.crash();
        assert!(
            lines_read(&s) < total && s["caught_up"] == false,
            "killed after ingestion finished; use a larger DOCFLOW_IT_EVENTS: {s}"
        );
    }
    let d = env.start();
    d.wait_status(long, "caught_up", |s| s["caught_up"] == true);
    let crashed = outcome(&env, &d);
    d.stop();
    assert_eq!(crashed, reference);
    for (i, source) in ["exchange", "signatures"].iter().enumerate() {
        let invalid = if i == 0 {
            crashed.exchange.2
        } else {
            crashed.signatures.2
        };
        let lines = std::fs::read_to_string(env.rejected(source)).unwrap_or_default();
        assert_eq!(
            lines.lines().count() as u64,
            invalid,
            "rejected/{source}.jsonl"
        );
    }
}

#[test]
fn kill_9_while_a_batch_is_committed_and_the_next_is_prepared_gives_exact_counts() {
    let reference_env = Env::exchange_and_signatures();
    link_generated(&reference_env);
    let long = Duration::from_secs(600);
    let d = reference_env.start();
    d.wait_status(long, "caught_up", |s| s["caught_up"] == true);
    let reference = outcome(&reference_env, &d);
    d.stop();

    // The committer hangs before writing its 5th batch (a debug-build test
    // hook); the writer has prepared the 6th meanwhile, appending its
    // rejected lines, and waits. Both batches are lost to the kill.
    let env = Env::exchange_and_signatures();
    link_generated(&env);
    let d = env.start_with_env(&[("DOCFLOW_TEST_HANG", "commit-5")], |addr| {
        matches!(http_get(addr, "/healthz"), Ok((200, _)))
    });
    wait_for(Duration::from_secs(120), "the committer to hang", || {
        d.stderr_text()
            .contains("this thread now hangs on purpose")
            .then_some(())
    });
    let before = d.status();
    // The writer goes on preparing the next batch and then waits for the
    // hung commit: the committed positions no longer move.
    std::thread::sleep(Duration::from_millis(500));
    let s = d.status();
    assert_eq!(
        s["sources"], before["sources"],
        "positions moved past a hung commit"
    );
    assert!(s["caught_up"] == false, "{s}");
    d.crash();

    let d = env.start();
    d.wait_status(long, "caught_up", |s| s["caught_up"] == true);
    let crashed = outcome(&env, &d);
    d.stop();
    assert_eq!(crashed, reference);
    let lines = std::fs::read_to_string(env.rejected("exchange")).unwrap_or_default();
    assert_eq!(
        lines.lines().count() as u64,
        crashed.exchange.2,
        "rejected/exchange.jsonl"
    );
}

#[test]
fn signatures_before_exchange_events_still_sign_the_document() {
    let sha = "5f".repeat(32);
    let signatures_first = format!(
        "{{\"event_id\":\"s1\",\"time\":\"01/05/2026\",\"doc_id\":\"A\",\"role\":\"cá nhân\"}}\n\
         {{\"event_id\":\"s2\",\"time\":\"01/05/2026\",\"doc_id\":\"A\",\"role\":\"cơ quan\"}}\n\
         {{\"event_id\":\"s3\",\"time\":\"01/05/2026\",\"sha256\":\"{sha}\",\"role\":\"person\"}}\n\
         {{\"event_id\":\"s4\",\"time\":\"01/05/2026\",\"sha256\":\"{sha}\",\"role\":\"organization\"}}\n\
         {{\"event_id\":\"s5\",\"time\":\"01/05/2026\",\"doc_id\":\"C\",\"role\":\"person\"}}\n"
    );
    let exchange = format!(
        "{}{}{}\
         {{\"event_id\":\"eB\",\"time\":\"2026-05-02T09:00:00+07:00\",\"doc_id\":\"B\",\"direction\":\"đến\",\"channel\":\"điện tử\",\"sha256\":\"{}\"}}\n",
        exchange_line("eA", "A", "2026-05-02T09:00:00+07:00", "điện tử"),
        exchange_line("eC", "C", "2026-05-02T09:00:00+07:00", "điện tử"),
        exchange_line("eD", "D", "2026-05-02T09:00:00+07:00", "điện tử"),
        sha.to_uppercase(),
    );
    let signatures_later = "{\"event_id\":\"s6\",\"time\":\"03/05/2026\",\"doc_id\":\"C\",\"role\":\"organization\"}\n\
         {\"event_id\":\"s7\",\"time\":\"03/05/2026\",\"doc_id\":\"D\",\"role\":\"individual\"}\n\
         {\"event_id\":\"s8\",\"time\":\"03/05/2026\",\"doc_id\":\"D\",\"role\":\"to chuc\"}\n";

    // Signatures, restart, exchange events, stop, more signatures, restart.
    let env = Env::exchange_and_signatures();
    env.append("signatures.jsonl", &signatures_first);
    let d = env.start();
    d.wait_caught_up();
    d.stop();
    let d = env.start();
    env.append("exchange.jsonl", &exchange);
    d.wait_caught_up();
    let unsigned = d.json("/api/v1/documents?class=electronic_unsigned");
    let mut ids: Vec<&str> = unsigned["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["C", "D"], "A and B are signed by earlier signatures");
    d.stop();
    env.append("signatures.jsonl", signatures_later);
    let d = env.start();
    d.wait_caught_up();
    let signed = d.json("/api/v1/documents?class=electronic_signed");
    assert_eq!(signed["documents"].as_array().unwrap().len(), 4, "{signed}");
    let one_order = d.report("");
    d.stop();

    // The opposite order, in one run: same report.
    let env2 = Env::exchange_and_signatures();
    env2.append("exchange.jsonl", &exchange);
    let d = env2.start();
    d.wait_caught_up();
    env2.append("signatures.jsonl", signatures_later);
    env2.append("signatures.jsonl", &signatures_first);
    d.wait_caught_up();
    assert_eq!(d.report(""), one_order);
    assert_eq!(one_order["outgoing"]["electronic_signed"], 3, "{one_order}");
    assert_eq!(one_order["incoming"]["electronic_signed"], 1, "{one_order}");
    d.stop();
}

#[test]
fn graceful_shutdown_exits_0_within_a_few_seconds_of_sigterm() {
    // Idle.
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let took = d.stop();
    assert!(took < Duration::from_secs(5), "idle shutdown took {took:?}");

    // In the middle of ingestion; the restart then finishes with every line read once.
    let env = Env::exchange_and_signatures();
    let g = link_generated(&env);
    let total = g.exchange_lines + g.signature_lines;
    let d = env.start();
    d.wait_status(Duration::from_secs(600), "10 % read", |s| {
        lines_read(s) * 10 > total
    });
    let took = d.stop();
    assert!(took < Duration::from_secs(5), "busy shutdown took {took:?}");
    let d = env.start();
    let s = d.wait_status(Duration::from_secs(600), "caught_up", |s| {
        s["caught_up"] == true
    });
    let nonblank = ["exchange.jsonl", "signatures.jsonl"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(g.dir.join(n))
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count() as u64
        })
        .sum::<u64>();
    assert_eq!(lines_read(&s), nonblank, "every line counted once: {s}");
    d.stop();
}

/// (total, electronic_signed, electronic_unsigned) of outgoing documents on one local day.
fn outgoing_on(d: &Daemon, day: &str) -> (u64, u64, u64) {
    let r = &d.report(&format!("from={day}&to={day}"))["outgoing"];
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    (n("total"), n("electronic_signed"), n("electronic_unsigned"))
}

/// Replaces `from` by `to` in the config (the daemon reads it at its next start).
fn edit_config(env: &Env, from: &str, to: &str) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains(from), "{from} not in the config:\n{text}");
    std::fs::write(&env.config, text.replacen(from, to, 1)).unwrap();
}

/// README ("Guarantees and design"): "Changing `agency.timezone` or
/// `required_signature_roles` recounts all documents at the next start."
#[test]
fn changing_timezone_or_required_roles_recounts_every_document_at_the_next_start() {
    let env = Env::exchange_and_signatures();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace(
            "[storage]",
            "[classify]\nrequired_signature_roles = [\"person\", \"organization\"]\n\n[storage]",
        ),
    )
    .unwrap();
    // A: signed by a person only, at 03:00 on 1 June in Hà Nội (20:00 UTC on 31 May).
    // B: signed by both roles on 15 May.
    env.append(
        "exchange.jsonl",
        &[
            exchange_line("ex-a", "A", "2026-05-31T20:00:00Z", "điện tử"),
            exchange_line("ex-b", "B", "2026-05-15T09:00:00+07:00", "điện tử"),
        ]
        .concat(),
    );
    env.append(
        "signatures.jsonl",
        "{\"event_id\":\"sg-a\",\"time\":\"2026-05-31T20:00:00Z\",\"doc_id\":\"A\",\"role\":\"person\"}\n\
         {\"event_id\":\"sg-b1\",\"time\":\"2026-05-15T09:00:00+07:00\",\"doc_id\":\"B\",\"role\":\"person\"}\n\
         {\"event_id\":\"sg-b2\",\"time\":\"2026-05-15T09:00:00+07:00\",\"doc_id\":\"B\",\"role\":\"cơ quan\"}\n",
    );
    let d = env.start();
    d.wait_status(CATCH_UP, "5 events", |s| {
        s["caught_up"] == true && counts(s, "exchange").0 == 2 && counts(s, "signatures").0 == 3
    });
    assert_eq!(outgoing_on(&d, "2026-05-31"), (0, 0, 0));
    assert_eq!(
        outgoing_on(&d, "2026-06-01"),
        (1, 0, 1),
        "A lacks the organization"
    );
    assert_eq!(outgoing_on(&d, "2026-05-15"), (1, 1, 0));
    d.stop();

    // Only the person's signature is required now: A is signed, on the same day.
    edit_config(
        &env,
        "required_signature_roles = [\"person\", \"organization\"]",
        "required_signature_roles = [\"person\"]",
    );
    let d = env.start();
    d.wait_caught_up();
    assert_eq!(
        outgoing_on(&d, "2026-06-01"),
        (1, 1, 0),
        "recounted with the new roles"
    );
    assert_eq!(outgoing_on(&d, "2026-05-15"), (1, 1, 0));
    d.stop();

    // The agency's days now end at UTC midnight: A belongs to 31 May.
    edit_config(
        &env,
        "timezone = \"Asia/Ho_Chi_Minh\"",
        "timezone = \"UTC\"",
    );
    let d = env.start();
    d.wait_caught_up();
    assert_eq!(
        outgoing_on(&d, "2026-06-01"),
        (0, 0, 0),
        "A moved out of 1 June"
    );
    assert_eq!(
        outgoing_on(&d, "2026-05-31"),
        (1, 1, 0),
        "recounted in UTC days"
    );
    assert_eq!(outgoing_on(&d, "2026-05-15"), (1, 1, 0));
    assert_eq!(
        d.stderr_text().matches("recounting documents").count(),
        2,
        "one recount per change, none at the first start"
    );
    d.stop();
}

/// README ("Guarantees and design", "Backup and recovery"): a store written
/// by a newer docflowd is refused with a message saying what to do.
#[test]
fn run_on_a_store_of_a_newer_layout_exits_1_naming_the_store_and_the_remedy() {
    let env = Env::exchange_and_signatures();
    env.append("exchange.jsonl", &exchange_lines("N", 1..=3));
    let d = env.start();
    d.wait_caught_up();
    d.stop();
    // What a newer docflowd leaves: the same store, a higher layout version.
    const VERSION_KEY: &[u8] = b"\x00version";
    let read_version = |db: &sled::Db| {
        let v = db.get(VERSION_KEY).unwrap().expect("a layout version");
        u32::from_le_bytes(v.as_ref().try_into().unwrap())
    };
    let newer = {
        let db = sled::open(env.store()).unwrap();
        let newer = read_version(&db) + 1;
        db.insert(VERSION_KEY, &newer.to_le_bytes()).unwrap();
        db.flush().unwrap();
        newer
    };
    let (code, said) = env.run_refused(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{said}");
    let store = env.store().display().to_string();
    for words in [
        format!("docflowd: store {store} has layout version {newer}"),
        format!("understands up to {}", newer - 1),
        "upgrade docflowd".to_string(),
        "docflowd rebuild -c".to_string(),
    ] {
        assert!(said.contains(&words), "no {words:?} in:\n{said}");
    }
    // Refused, not touched: the newer docflowd can still open it.
    let db = sled::open(env.store()).unwrap();
    assert_eq!(read_version(&db), newer);
}
