//! `/api/v1/documents` (SPEC §5.1): how a clerk finds the non-compliant documents.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::*;
use crate::corpus::run_on_corpus;

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every document of a query, following `next_cursor`; also returns the number of pages.
fn all_pages(d: &Daemon, query: &str) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("/api/v1/documents?{query}"),
            Some(c) => format!("/api/v1/documents?{query}&cursor={}", percent_encode(c)),
        };
        let page = d.json(&path);
        pages += 1;
        assert!(pages < 100, "paging does not end");
        for doc in page["documents"].as_array().expect("documents array") {
            out.push((
                doc["direction"].as_str().unwrap().to_string(),
                doc["doc_id"].as_str().unwrap().to_string(),
            ));
        }
        match &page["next_cursor"] {
            Value::Null => return (out, pages),
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor: {other}"),
        }
    }
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(d, i)| (d.to_string(), i.to_string()))
        .collect()
}

fn exactly_once(docs: &[(String, String)]) -> BTreeSet<(String, String)> {
    let unique: BTreeSet<_> = docs.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        docs.len(),
        "a document listed twice: {docs:?}"
    );
    unique
}

#[test]
fn documents_api_lists_the_non_compliant_documents() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);

    let unsigned = set(&[
        ("outgoing", "O06"),
        ("outgoing", "O07"),
        ("outgoing", "O10"),
        ("incoming", "I04"),
        ("incoming", "I08"),
        ("incoming", "I10"),
    ]);
    let (docs, pages) = all_pages(&d, "class=electronic_unsigned");
    assert_eq!(pages, 1);
    assert_eq!(exactly_once(&docs), unsigned);
    let (docs, pages) = all_pages(&d, "class=electronic_unsigned&limit=2");
    assert_eq!(exactly_once(&docs), unsigned);
    assert_eq!(pages, 3, "6 documents, 2 per page");

    // Every document, a page of 2 at a time, exactly once.
    let (docs, _) = all_pages(&d, "limit=2");
    let all = exactly_once(&docs);
    assert_eq!(all.len(), 25, "{all:?}");
    assert!(!all
        .iter()
        .any(|(_, id)| id.starts_with("GHOST") || id.starts_with("BAD")));

    // Filters.
    let (docs, _) = all_pages(&d, "class=secret_exempt&direction=incoming&limit=1");
    assert_eq!(
        exactly_once(&docs),
        set(&[("incoming", "I05"), ("incoming", "I06")])
    );
    let (docs, _) = all_pages(
        &d,
        &format!("class=paper&unit={}", percent_encode("Phòng Kinh tế")),
    );
    assert_eq!(
        exactly_once(&docs),
        set(&[
            ("outgoing", "O04"),
            ("outgoing", "O05"),
            ("incoming", "I03"),
            ("incoming", "I09")
        ])
    );
    // Local days: O04 (16:59:59Z) is 14 June, O05 (17:30Z) is 15 June.
    let (docs, _) = all_pages(&d, "from=2026-06-14&to=2026-06-14");
    assert_eq!(
        exactly_once(&docs),
        set(&[
            ("outgoing", "O02"),
            ("outgoing", "O04"),
            ("outgoing", "O09"),
            ("incoming", "I08")
        ])
    );

    // What a document carries.
    let page = d.json("/api/v1/documents?direction=outgoing&limit=1000");
    let find = |id: &str| {
        page["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["doc_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    let o01 = find("O01");
    assert_eq!(o01["exchange_events"], 5, "{o01}");
    assert_eq!(o01["doc_number"], "245/KH-UBND");
    assert_eq!(o01["class"], "electronic_signed");
    assert_eq!(o01["channel"], "electronic");
    assert_eq!(o01["date"], "2026-03-10");
    let o09 = find("O09");
    let mut roles: Vec<&str> = o09["signature_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["organization", "person"], "joined by sha256: {o09}");
    assert_eq!(find("O05")["date"], "2026-06-15");
    assert_eq!(find("O13")["confidentiality"], "toi_mat");
    assert_eq!(
        find("O02")["unit"],
        "Văn phòng",
        "NFD unit is NFC-normalised"
    );
    let o10 = find("O10");
    assert_eq!(
        o10["signature_roles"],
        serde_json::json!(["person"]),
        "{o10}"
    );

    // Bad parameters.
    for q in [
        "class=bogus",
        "direction=sideways",
        "limit=0",
        "limit=abc",
        "limit=100000",
        "cursor=zz",
        "from=2026-13-01",
        "to=14/06/2026",
        "colour=red",
    ] {
        let (code, body) = d.get(&format!("/api/v1/documents?{q}"));
        assert_eq!(code, 400, "{q}: {body}");
    }
    d.stop();
}
