use super::*;

use crate::store::keys::KEY_META;
use crate::store::{Commit, PendingSha, SourceState};

const AGENCY: &str = "H40.27.01";

fn rules() -> ImportRules {
    ImportRules {
        agency: AGENCY.into(),
        max_bytes: DEFAULT_MAX_IMPORT_BYTES,
    }
}

fn header() -> serde_json::Map<String, Value> {
    let mut h = serde_json::Map::new();
    h.insert("agency".into(), json!(AGENCY));
    h
}

fn filled(path: &std::path::Path) -> Store {
    let mut s = Store::open(path, 1 << 20).unwrap();
    let mut pages = crate::store::pages::PageCache::open(&s, 1 << 20).unwrap();
    for id in ["D1", "D2", "D3"] {
        pages
            .get_mut(&s, id)
            .unwrap()
            .signatures
            .signers
            .push(format!("signer of {id}"));
    }
    let dirty = pages.take_dirty();
    s.record_batch_once(&Commit {
        pages: dirty.compressed(),
        new_pages: dirty.new_pages,
        sha_log: vec![("aa".into(), "D1".into())],
        pending_put: vec![("bb".into(), PendingSha::default())],
        seen: [vec![1, 2], vec![3]],
        sources: vec![(
            "exchange".into(),
            SourceState {
                accepted: 2,
                ..Default::default()
            },
        )],
        rejected_days: vec![(739_000, [1, 0])],
        edxml_files: vec![("truc".into(), "/in/a.edxml".into())],
        ..Commit::default()
    })
    .unwrap();
    s.put_raw(&[(b"Arule".to_vec(), b"firing".to_vec())])
        .unwrap();
    s
}

fn contents(s: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.db.iter()
        .map(|kv| kv.unwrap())
        .filter(|(k, _)| k.as_ref() != KEY_META)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn exported(s: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    s.export(header(), &mut out).unwrap();
    out
}

#[test]
fn export_then_import_gives_the_same_store_without_alert_state() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let source = filled(a.path());
    let out = exported(&source);
    let mut target = Store::open(b.path(), 1 << 20).unwrap();
    let summary = target.import(out.as_slice(), &rules()).unwrap();
    assert_eq!(summary["source_state"], 1);
    assert_eq!(summary["alert_state_dropped"], 1);
    assert!(!summary.contains_key("alert_state"));
    drop(target);
    let target = Store::open(b.path(), 1 << 20).unwrap();
    let without_alerts: Vec<_> = contents(&source)
        .into_iter()
        .filter(|(k, _)| k[0] != b'A')
        .collect();
    assert_eq!(contents(&target), without_alerts);
    // A second import into the now filled store is refused.
    let mut target = target;
    assert!(matches!(
        target.import(out.as_slice(), &rules()),
        Err(SnapshotError::NotEmpty(_))
    ));
}

#[test]
fn a_spooled_export_equals_a_direct_one_and_is_not_changed_by_later_commits() {
    let a = tempfile::tempdir().unwrap();
    let mut s = filled(a.path());
    let spool = s.spool(a.path(), &|| false).unwrap();
    // A commit after the spool is taken is not in it.
    s.record_batch_once(&Commit {
        sources: vec![("later".into(), SourceState::default())],
        ..Commit::default()
    })
    .unwrap();
    let mut spooled = Vec::new();
    spool.export(header(), &mut spooled).unwrap();
    let text = String::from_utf8(spooled).unwrap();
    assert!(
        !text.contains(&hex::encode(b"plater")),
        "the later commit leaked in"
    );
    let records = |t: &str| t.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    let direct = String::from_utf8(exported(&s)).unwrap();
    assert_eq!(records(&text).len() + 1, records(&direct).len());
}

fn import_text(text: &[u8]) -> Result<Summary, SnapshotError> {
    let dir = tempfile::tempdir().unwrap();
    let mut target = Store::open(dir.path(), 1 << 20).unwrap();
    target.import(text, &rules())
}

#[test]
fn a_cut_foreign_or_forged_snapshot_is_refused_and_never_opens_as_data() {
    let a = tempfile::tempdir().unwrap();
    let text = String::from_utf8(exported(&filled(a.path()))).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let end = lines.len() - 1;
    let with_line = |l: String| {
        let mut v = lines.clone();
        v.insert(1, &l);
        let count = format!("{{\"type\":\"end\",\"records\":{}}}", end);
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        let last = v.len() - 1;
        v[last] = count;
        v.iter().map(|l| format!("{l}\n")).collect::<String>()
    };
    let line = |key: &[u8], value: &[u8]| {
        json!({"type": "x", "key": hex::encode(key), "value": hex::encode(value)}).to_string()
    };
    let foreign = text.replacen(AGENCY, "H40.99.99", 1);
    let cases: Vec<(String, &str)> = vec![
        (join(&lines[..end]), "truncated"),
        (text[..text.len() - 5].to_string(), "truncated"),
        ("{\"docflow_snapshot\":99,\"store_version\":1}\n".into(), "format"),
        (
            format!("{{\"docflow_snapshot\":1,\"agency\":\"{AGENCY}\",\"store_version\":99}}\n{{\"type\":\"end\",\"records\":0}}\n"),
            "upgrade",
        ),
        (String::new(), "empty"),
        (foreign, "H40.99.99"),
        (with_line(line(b"Z1", b"")), "never writes"),
        (with_line(line(KEY_VERSION, &1u32.to_le_bytes())), "reserved"),
        (with_line(line(b"pexchange", b"\x07garbage")), "source_state"),
        (with_line(line(b"a123", &[1, 0])), "day_counts key"),
        (with_line(line(b"Pzz", b"\x03\x05")), "document_page"),
        (with_line(line(b"e\x05\0\0\0\0\0\0\0\x09", &[0; 8])), "seen"),
        (with_line(line(b"xno-separator", b"")), "edXML"),
    ];
    for (input, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut target = Store::open(dir.path(), 1 << 20).unwrap();
        let e = target
            .import(input.as_bytes(), &rules())
            .expect_err(what)
            .to_string();
        assert!(e.contains(what), "{what}: {e}");
        drop(target);
        if what == "truncated" {
            let e = Store::open(dir.path(), 1 << 20)
                .err()
                .expect("half import refused");
            assert!(e.to_string().contains("import"), "{e}");
        }
    }
}

#[test]
fn a_page_that_is_not_where_look_ups_search_is_refused() {
    // A page keyed "D5" holding "D1" would never be found by a look-up.
    let a = tempfile::tempdir().unwrap();
    let text = String::from_utf8(exported(&filled(a.path()))).unwrap();
    let moved = text.replace(
        &format!("\"key\":\"{}\"", hex::encode(b"P")),
        &format!("\"key\":\"{}\"", hex::encode(b"PD5")),
    );
    let moved = moved.replace(
        &format!("\"key\":\"{}\"", hex::encode(b"I")),
        &format!("\"key\":\"{}\"", hex::encode(b"ID5")),
    );
    assert_ne!(moved, text, "the fixture has a page keyed \"\"");
    let e = import_text(moved.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("out of place"), "{e}");
}

#[test]
fn lines_and_totals_over_their_caps_are_refused_without_reading_on() {
    let long = format!(
        "{{\"docflow_snapshot\":1,\"agency\":\"{AGENCY}\",\"store_version\":3,\"pad\":\"{}\"}}\n",
        "x".repeat(MAX_LINE_BYTES)
    );
    let e = import_text(long.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("longer than"), "{e}");
    let a = tempfile::tempdir().unwrap();
    let text = exported(&filled(a.path()));
    let b = tempfile::tempdir().unwrap();
    let mut target = Store::open(b.path(), 1 << 20).unwrap();
    let small = ImportRules {
        max_bytes: text.len() as u64 - 1,
        ..rules()
    };
    let e = target.import(text.as_slice(), &small).unwrap_err();
    assert!(matches!(e, SnapshotError::TooLarge(_)), "{e}");
    let exact = ImportRules {
        max_bytes: text.len() as u64,
        ..rules()
    };
    let c = tempfile::tempdir().unwrap();
    let mut target = Store::open(c.path(), 1 << 20).unwrap();
    target
        .import(text.as_slice(), &exact)
        .expect("a snapshot of exactly the cap is taken");
}

mod mutated {
    use super::*;
    use proptest::prelude::*;

    fn valid() -> &'static [u8] {
        static TEXT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| {
            let a = tempfile::tempdir().unwrap();
            exported(&filled(a.path()))
        })
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip { at: usize, bit: u8 },
        Cut { at: usize },
        DropLine { line: usize },
        DupLine { line: usize },
        Insert { at: usize, bytes: Vec<u8> },
    }

    fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
        let mut t = text.to_vec();
        let lines = || {
            text.split_inclusive(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        match m {
            Mutation::Flip { at, bit } => {
                let i = at % t.len();
                t[i] ^= 1 << (bit % 8);
            }
            Mutation::Cut { at } => t.truncate(at % t.len()),
            Mutation::DropLine { line } => {
                let mut ls = lines();
                let i = line % ls.len();
                ls.remove(i);
                t = ls.concat();
            }
            Mutation::DupLine { line } => {
                let mut ls = lines();
                let i = line % ls.len();
                let l = ls[i].clone();
                ls.insert(i, l);
                t = ls.concat();
            }
            Mutation::Insert { at, bytes } => {
                let i = at % t.len();
                t.splice(i..i, bytes.iter().copied());
            }
        }
        t
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
            any::<usize>().prop_map(|at| Mutation::Cut { at }),
            any::<usize>().prop_map(|line| Mutation::DropLine { line }),
            any::<usize>().prop_map(|line| Mutation::DupLine { line }),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..40)
            )
                .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever is done to a snapshot, import never panics; it either
        /// refuses (and the store never opens as data) or gives a store
        /// whose every record decodes and whose pages are all findable.
        #[test]
        fn fuzz_mutated_snapshots_import_whole_or_not_at_all(ms in proptest::collection::vec(mutation(), 1..4)) {
            let mut text = valid().to_vec();
            for m in &ms {
                if !text.is_empty() {
                    text = apply(&text, m);
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let mut target = Store::open(dir.path(), 1 << 20).unwrap();
            let result = target.import(text.as_slice(), &rules());
            drop(target);
            let reopened = Store::open(dir.path(), 1 << 20);
            match result {
                Err(_) => prop_assert!(
                    reopened.is_err() || reopened.unwrap().is_empty().unwrap(),
                    "a refused import left data that opens"
                ),
                Ok(_) => {
                    let s = reopened.expect("an accepted import opens");
                    for (k, v) in contents(&s) {
                        let kind = KeyKind::of(&k).expect("known key");
                        prop_assert!(kind.is_internal() || check_record(&k, &v).unwrap(), "{k:?}");
                        prop_assert!(kind != KeyKind::AlertState && kind != KeyKind::AlertOutbox);
                    }
                    s.check_pages().expect("pages findable");
                }
            }
        }

        #[test]
        fn fuzz_random_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert!(import_text(&bytes).is_err());
        }
    }
}
