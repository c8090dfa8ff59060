use super::*;
use crate::aggregate::{Aggregates, Slot};
use crate::model::Direction;
use crate::sources::SourceHandle;
use crate::store::SourceState;

const T0: i64 = 1_781_400_000; // 2026-06-14

fn config(dir: &Path) -> Config {
    let text = format!(
        r#"
[agency]
code = "H40.27.01"
name = "UBND xã Hương Bình"
[storage]
path = "{d}/store"
[[sources]]
name = "exchange"
kind = "exchange"
format = "jsonl"
path = "{d}/exchange*.jsonl"
[alerts]
[alerts.smtp]
url = "smtp://127.0.0.1:9"
from = "docflow@example.gov.vn"
to = ["vanphong@example.gov.vn"]
[[alerts.rules]]
name = "outgoing-all"
direction = "outgoing"
window = "all"
below = 1.0
for = "1h"
min_documents = 5
repeat_interval = "24h"
[[alerts.rules]]
name = "exchange-stale"
stale_source = "exchange"
after = "2h"
"#,
        d = dir.display()
    );
    Config::parse(&dir.join("docflow.toml"), &text).unwrap()
}

fn shared(config: &Config, signed: u64, unsigned: u64) -> Arc<Shared> {
    let mut agg = Aggregates::default();
    for (class, n) in [
        (Class::ElectronicSigned, signed),
        (Class::ElectronicUnsigned, unsigned),
    ] {
        let slot = Slot {
            day: 700_000,
            unit: "Văn phòng".into(),
            direction: Direction::Outgoing,
            class,
        };
        agg.apply(&slot, n as i64);
    }
    let handle = SourceHandle::new(config.sources[0].clone(), SourceState::default());
    handle.progress().idle_after = Some(0);
    Shared::new(agg, vec![Arc::new(handle)], Arc::default())
}

fn outbox(a: &Alerting) -> Vec<(String, String)> {
    a.lock()
        .outbox
        .values()
        .map(|e| (e.mail.rule.clone(), e.mail.state.clone()))
        .collect()
}

use std::path::Path;

/// The config of the tests, a new store for it, and the alerting on it
/// with `signed` and `unsigned` documents counted.
fn alerting(dir: &Path, signed: u64, unsigned: u64) -> (Config, Arc<Shared>, Arc<Alerting>) {
    let config = config(dir);
    std::fs::create_dir_all(&config.storage.path).unwrap();
    let store = Store::open(&config.storage.path, 1 << 20).unwrap();
    let shared = shared(&config, signed, unsigned);
    let a = Alerting::open(&config, store, shared.clone())
        .unwrap()
        .unwrap();
    (config, shared, a)
}

#[test]
fn evaluator_persists_state_and_mail_together_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    std::fs::create_dir_all(&config.storage.path).unwrap();
    {
        let store = Store::open(&config.storage.path, 1 << 20).unwrap();
        let a = Alerting::open(&config, store, shared(&config, 5, 5))
            .unwrap()
            .unwrap();
        a.evaluate(T0).unwrap();
        assert!(outbox(&a).is_empty(), "pending during `for`");
        a.evaluate(T0 + 3599).unwrap();
        assert!(outbox(&a).is_empty());
        a.evaluate(T0 + 3600).unwrap();
        assert_eq!(outbox(&a), [("outgoing-all".into(), "firing".into())]);
    }
    // "Restart": a new evaluator on the reopened store.
    let store = Store::open(&config.storage.path, 1 << 20).unwrap();
    let a = Alerting::open(&config, store.clone(), shared(&config, 5, 5))
        .unwrap()
        .unwrap();
    assert_eq!(outbox(&a).len(), 1, "the undelivered mail is still queued");
    a.evaluate(T0 + 4000).unwrap();
    assert_eq!(outbox(&a).len(), 1, "no second firing mail after a restart");
    assert_eq!(a.status().rules[0].state(), "firing");
    drop(a);

    // Late signatures: 10 of 10 signed → exactly one resolved mail.
    let a = Alerting::open(&config, store, shared(&config, 10, 0))
        .unwrap()
        .unwrap();
    a.evaluate(T0 + 4100).unwrap();
    a.evaluate(T0 + 4200).unwrap();
    let mails = outbox(&a);
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.0 == "outgoing-all")
            .collect::<Vec<_>>(),
        [
            &("outgoing-all".into(), "firing".into()),
            &("outgoing-all".into(), "resolved".into())
        ]
    );
}

#[test]
fn no_reminder_queues_behind_an_undelivered_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, a) = alerting(dir.path(), 5, 5);
    // Three days below the threshold while the mail server is down.
    for h in 0..72 {
        a.evaluate(T0 + h * 3600).unwrap();
    }
    let ratio: Vec<_> = outbox(&a)
        .into_iter()
        .filter(|m| m.0 == "outgoing-all")
        .collect();
    assert_eq!(ratio, [("outgoing-all".into(), "firing".into())]);
}

#[test]
fn min_documents_keeps_a_tiny_denominator_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, a) = alerting(dir.path(), 1, 3);
    for t in 0..10 {
        a.evaluate(T0 + t * 3600).unwrap();
    }
    assert!(!outbox(&a).iter().any(|m| m.0 == "outgoing-all"));
}

#[test]
fn a_source_without_new_events_fires_and_resolves_when_events_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (_, shared, a) = alerting(dir.path(), 10, 0);
    let stale = |a: &Alerting| {
        outbox(a)
            .into_iter()
            .filter(|m| m.0 == "exchange-stale")
            .map(|m| m.1)
            .collect::<Vec<_>>()
    };
    a.evaluate(T0).unwrap();
    a.evaluate(T0 + 7199).unwrap();
    assert!(stale(&a).is_empty());
    a.evaluate(T0 + 7200).unwrap();
    assert_eq!(stale(&a), ["firing"]);
    shared.sources[0].progress().state.accepted += 1;
    a.evaluate(T0 + 7300).unwrap();
    assert_eq!(stale(&a), ["firing", "resolved"]);
}

#[test]
fn ratio_rules_wait_for_the_sources_to_catch_up_but_not_forever() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    std::fs::create_dir_all(&config.storage.path).unwrap();
    let store = Store::open(&config.storage.path, 1 << 20).unwrap();
    let shared = shared(&config, 0, 10);
    shared.sources[0].progress().idle_after = None; // still reading a backlog
    let a = Alerting::open(&config, store, shared).unwrap().unwrap();
    a.evaluate(T0).unwrap();
    a.evaluate(T0 + 599).unwrap();
    assert_eq!(a.status().rules[0].state(), "inactive");
    a.evaluate(T0 + 600).unwrap();
    assert_eq!(a.status().rules[0].state(), "pending");
}

#[test]
fn status_json_keeps_its_keys_in_order_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, a) = alerting(dir.path(), 5, 5);
    a.evaluate(T0).unwrap();
    let status = a.status();
    let json = serde_json::to_string(&status).unwrap();
    let counts = r#"{"firing":{"failed":0,"sent":0},"resolved":{"failed":0,"sent":0}}"#;
    assert_eq!(
        json,
        format!(
            concat!(
                r#"{{"outbox":[],"rules":[{{"below":1.0,"compliance_ratio":0.5,"condition_holds":true,"#,
                r#""direction":"outgoing","documents":10,"kind":"ratio","last_notification":null,"#,
                r#""name":"outgoing-all","notifications":{counts},"outbox":0,"#,
                r#""since":"2026-06-14T08:20:00+07:00","state":"pending","window":"all"}},"#,
                r#"{{"after_seconds":7200,"condition_holds":false,"idle_seconds":0.0,"kind":"stale","#,
                r#""last_notification":null,"name":"exchange-stale","notifications":{counts},"#,
                r#""outbox":0,"since":null,"source":"exchange","state":"inactive"}}],"sent":[]}}"#
            ),
            counts = counts
        )
    );
    assert_eq!(serde_json::from_str::<AlertsStatus>(&json).unwrap(), status);
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    assert_eq!(backoff_ms(1), 1_000);
    assert_eq!(backoff_ms(2), 2_000);
    assert_eq!(backoff_ms(5), 16_000);
    assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
}
