//! Property tests of the parsers: arbitrary input never panics, and the
//! rules of the README's "Input" section (times, values) hold for generated spellings.
//! `cargo test` runs a few hundred cases; `PROPTEST_CASES=100000 cargo test
//! --lib fuzz_` runs many more.

use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

use super::csv::{record_end, split_fields, CsvHeader};
use super::edxml::read_message;
use super::jsonl::parse_line;
use super::normalize::{normalize_text, normalize_unit, Aliases};
use super::record::{validate, FieldMap};
use super::time::parse_time;
use crate::model::{Channel, Direction, Event, SourceKind};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn config() -> ProptestConfig {
    // Bounded by default so `cargo test` stays fast; PROPTEST_CASES overrides.
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

/// Text mixing ASCII, Vietnamese letters (NFC and NFD), controls and odd code points.
fn messy_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Z0-9 ,;:/\\-_.\"'{}\\[\\]\\\\]{0,8}",
        Just("điện tử".to_string()),
        Just("điện tử".nfd().collect::<String>()),
        Just("Văn bản đi".to_string()),
        Just("TỐI MẬT".nfd().collect::<String>()),
        Just("\u{0}\u{7}\u{1b}\u{7f}".to_string()),
        Just("\u{200b}\u{feff}\u{202e}".to_string()),
        Just("\t\r\n\u{a0}\u{3000}".to_string()),
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..6).prop_map(|v| v.concat())
}

/// A JSON line made of fields with random (often valid) values.
fn json_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        messy_text().prop_map(serde_json::Value::String),
        Just(serde_json::json!("2026-06-14T09:00:00+07:00")),
        Just(serde_json::json!("14/06/2026")),
        Just(serde_json::json!("đi")),
        Just(serde_json::json!("giấy")),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        Just(serde_json::json!(null)),
        Just(serde_json::json!([1, {"a": []}])),
        any::<bool>().prop_map(|b| serde_json::json!(b)),
    ];
    let key = prop_oneof![
        Just("time".to_string()),
        Just("doc_id".to_string()),
        Just("direction".to_string()),
        Just("channel".to_string()),
        Just("confidentiality".to_string()),
        Just("sha256".to_string()),
        Just("event_id".to_string()),
        "[a-z_]{1,6}",
    ];
    prop::collection::btree_map(key, value, 0..8)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()).to_string())
}

/// A complete edXML message with what a mutation can break: references,
/// a comment, a CDATA field and an attachment partly in CDATA.
const EDXML_MESSAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- archived --><edXML xmlns:e="http://www.mic.gov.vn/TBT/QCVN_102_2016"><e:edXMLEnvelope>
<e:edXMLHeader><e:MessageHeader><e:From><e:OrganId>000.00.00.G22</e:OrganId>
<e:OrganName>V&#x103;n ph&#242;ng</e:OrganName></e:From><e:To><e:OrganId>000.00.00.H41</e:OrganId></e:To>
<e:DocumentId>D&amp;1</e:DocumentId><e:Subject><![CDATA[V/v <kết nối>]]></e:Subject></e:MessageHeader>
<e:TraceHeaderList><e:TraceHeader><e:Timestamp>2018/09/28 00:00:00</e:Timestamp></e:TraceHeader>
</e:TraceHeaderList></e:edXMLHeader></e:edXMLEnvelope><AttachmentEncoded><Attachment>
<AttachmentName>a.pdf</AttachmentName><ContentTransferEncoded>aGVs<![CDATA[bG8g
d29y]]>bGQ=</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>
"#;

/// One change to a message; positions wrap around its length.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Delete(usize, usize),
    Insert(usize, String),
    /// `open`, then `unit` repeated `times`, then `close`: up to megabytes.
    Inflate(usize, &'static str, &'static str, usize, &'static str),
    Truncate(usize),
}

fn edxml_edit() -> impl Strategy<Value = Edit> {
    let fragment = prop::sample::select(vec![
        "<![CDATA[",
        "]]>",
        "]",
        "<!--",
        "-->",
        "&amp;",
        "&#x1EA1;",
        "&",
        "<",
        ">",
        "<To>",
        "</To>",
        "<Attachment><ContentTransferEncoded>",
        "</ContentTransferEncoded>",
        "<?pi ",
        "?>",
        "<!DOCTYPE x>",
        "\u{feff}",
        "ạ",
        "<a>",
        "</a>",
        "=\"",
    ]);
    let big = prop::sample::select(vec![
        ("<!--", "x", "-->"),
        ("<![CDATA[", "YWJj", "]]>"),
        ("<![CDATA[", "]", "]]>"),
        ("<?pi ", "x", "?>"),
        ("", " ", ""),
        ("<a b=\"", "x", "\"/>"),
        ("", "<To><OrganId>X</OrganId></To>", ""),
    ]);
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        3 => (any::<usize>(), 0usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        3 => (any::<usize>(), prop_oneof![fragment.clone().prop_map(String::from), any::<String>()])
            .prop_map(|(p, s)| Edit::Insert(p, s)),
        2 => (any::<usize>(), fragment, 1usize..1500)
            .prop_map(|(p, unit, n)| Edit::Inflate(p, "", unit, n, "")),
        1 => (any::<usize>(), big, (1usize << 20)..(5 << 20))
            .prop_map(|(p, (open, unit, close), bytes)| {
                Edit::Inflate(p, open, unit, bytes / unit.len(), close)
            }),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for edit in edits {
        let at = |p: usize, len: usize| p % (len + 1);
        match edit {
            Edit::Set(p, v) if !b.is_empty() => {
                let i = p % b.len();
                b[i] = *v;
            }
            Edit::Set(..) => {}
            Edit::Delete(p, n) => {
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Insert(p, s) => {
                let i = at(*p, b.len());
                b.splice(i..i, s.bytes());
            }
            Edit::Inflate(p, open, unit, times, close) => {
                let i = at(*p, b.len());
                let piece = format!("{open}{}{close}", unit.repeat(*times));
                b.splice(i..i, piece.bytes());
            }
            Edit::Truncate(p) => b.truncate(at(*p, b.len())),
        }
    }
    b
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_edxml_mutations_never_panic_and_memory_stays_bounded(
        edits in prop::collection::vec(edxml_edit(), 1..5),
        capacity in 4usize..100,
    ) {
        let bytes = apply(EDXML_MESSAGE, &edits);
        let read = |capacity: usize| {
            read_message(std::io::BufReader::with_capacity(capacity, &bytes[..]), u64::MAX)
        };
        let (whole, peak) = crate::test_alloc::peak_heap(|| read(64 * 1024));
        // Whatever the input (up to 5 MiB here), reading it holds a few MiB at
        // most: a piece of markup (≤ 1 MiB, in a buffer of up to 2 MiB) and a
        // name quoted by its error.
        prop_assert!(peak < 4 << 20, "{} bytes held for {} bytes of input", peak, bytes.len());
        if bytes.len() < 64 * 1024 {
            // Chunk boundaries (inside `<![CDATA[`, `]]>`, references...) change nothing.
            prop_assert_eq!(&read(capacity), &whole);
        }
        if let Ok(msg) = whole {
            let _ = msg.to_event("000.00.00.G22", TZ);
        }
    }

    #[test]
    fn fuzz_jsonl_lines_of_any_bytes_never_panic(line in messy_text()) {
        let map = FieldMap::new(SourceKind::Exchange, &[]);
        if let Ok(raw) = parse_line(&line, &map) {
            let _ = validate(&raw, SourceKind::Exchange, &Aliases::builtin(), TZ);
        }
        let map = FieldMap::new(SourceKind::Signature, &[]);
        if let Ok(raw) = parse_line(&line, &map) {
            let _ = validate(&raw, SourceKind::Signature, &Aliases::builtin(), TZ);
        }
    }

    #[test]
    fn fuzz_jsonl_objects_validate_or_explain(line in json_line()) {
        let map = FieldMap::new(SourceKind::Exchange, &[]);
        let raw = parse_line(&line, &map);
        prop_assert!(raw.is_ok(), "a JSON object must parse: {line} -> {raw:?}", raw = raw.err());
        match validate(&raw.unwrap(), SourceKind::Exchange, &Aliases::builtin(), TZ) {
            Ok(Event::Exchange(e)) => {
                prop_assert!(!e.doc_id.trim().is_empty(), "{line}");
            }
            Ok(other) => prop_assert!(false, "exchange source gave {other:?}"),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn fuzz_csv_records_of_any_text_never_panic(text in messy_text(), delim in prop::sample::select(vec![b',', b';', b'\t', b'|'])) {
        let _ = record_end(text.as_bytes(), delim);
        let _ = split_fields(&text, delim);
        let map = FieldMap::new(SourceKind::Exchange, &[]);
        let header = CsvHeader::parse("time,doc_id,direction,channel,unit", delim, &map);
        if let Ok(h) = header {
            if let Ok(raw) = h.record(&text, delim) {
                let _ = validate(&raw, SourceKind::Exchange, &Aliases::builtin(), TZ);
            }
        }
        let _ = CsvHeader::parse(&text, delim, &map);
    }

    #[test]
    fn fuzz_csv_quoted_fields_round_trip(fields in prop::collection::vec(messy_text(), 1..6)) {
        // RFC 4180 quoting of any text (delimiters, quotes, newlines) reads back unchanged.
        let line = fields
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(",");
        let got = split_fields(&line, b',');
        prop_assert!(got.is_ok(), "{line:?}: {got:?}");
        let got: Vec<String> = got.unwrap().into_iter().map(|c| c.into_owned()).collect();
        prop_assert_eq!(got, fields);
        let mut record = line.clone().into_bytes();
        record.extend_from_slice(b"\nnext");
        prop_assert_eq!(record_end(&record, b','), Some(line.len() + 1));
    }

    #[test]
    fn fuzz_times_of_any_text_never_panic(s in messy_text()) {
        let _ = parse_time(&s, TZ);
    }

    #[test]
    fn fuzz_valid_times_in_every_format_agree(
        // Asia/Ho_Chi_Minh is UTC+7 since 13 June 1975 (UTC+8 before).
        y in 1976i32..2100, mo in 1u32..=12, d in 1u32..=28,
        h in 0u32..24, mi in 0u32..60, se in 0u32..60,
    ) {
        // Every accepted spelling of one local time gives the same instant.
        let iso = parse_time(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}+07:00"), TZ);
        prop_assert!(iso.is_ok(), "{iso:?}");
        let iso = iso.unwrap();
        let local = parse_time(&format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}"), TZ).unwrap();
        let day_first = parse_time(&format!("{d:02}/{mo:02}/{y:04} {h:02}:{mi:02}:{se:02}"), TZ).unwrap();
        let utc = parse_time(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z"), TZ).unwrap();
        prop_assert_eq!(iso, local);
        prop_assert_eq!(iso, day_first);
        prop_assert_eq!(utc - iso, 7 * 3600);
        let no_seconds = parse_time(&format!("{d:02}/{mo:02}/{y:04} {h:02}:{mi:02}"), TZ).unwrap();
        prop_assert_eq!(iso - i64::from(se), no_seconds);
    }

    #[test]
    fn fuzz_normalising_any_text_never_panics_and_is_idempotent(s in messy_text()) {
        let n = normalize_text(&s);
        prop_assert_eq!(normalize_text(&n), n.clone());
        prop_assert!(!n.starts_with(char::is_whitespace) && !n.ends_with(char::is_whitespace));
        let u = normalize_unit(&s);
        prop_assert_eq!(normalize_unit(&u), u);
        let a = Aliases::builtin();
        let _ = (a.direction(&s), a.channel(&s), a.confidentiality(&s), a.role(&s));
    }

    #[test]
    fn fuzz_aliases_match_in_any_case_spacing_and_normal_form(
        upper in prop::collection::vec(any::<bool>(), 16),
        pad_left in "[ \t]{0,3}", pad_right in "[ \t\u{a0}]{0,3}",
        nfd in any::<bool>(), double_space in any::<bool>(),
    ) {
        let a = Aliases::builtin();
        let cases: [(&str, Option<Direction>, Option<Channel>); 4] = [
            ("văn bản đi", Some(Direction::Outgoing), None),
            ("văn bản đến", Some(Direction::Incoming), None),
            ("điện tử", None, Some(Channel::Electronic)),
            ("bản giấy", None, Some(Channel::Paper)),
        ];
        for (text, direction, channel) in cases {
            let mut s: String = text
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    if upper[i % upper.len()] { c.to_uppercase().collect::<Vec<_>>() } else { vec![c] }
                })
                .collect();
            if double_space {
                s = s.replace(' ', "  ");
            }
            if nfd {
                s = s.nfd().collect();
            }
            let s = format!("{pad_left}{s}{pad_right}");
            prop_assert_eq!(a.direction(&s), direction, "{:?}", s);
            prop_assert_eq!(a.channel(&s), channel, "{:?}", s);
        }
    }

    #[test]
    fn fuzz_unknown_confidentiality_is_never_normal(s in "[a-z ]{1,12}") {
        // README "Input": an unknown value must never be counted as normal.
        let a = Aliases::builtin();
        let known = ["normal", "none", "thuong", "mat", "confidential",
            "toi_mat", "toi mat", "secret", "tuyet_mat", "tuyet mat", "top secret"];
        let n = normalize_text(&s);
        if !n.is_empty() && !known.contains(&n.as_str()) {
            prop_assert_eq!(a.confidentiality(&s), None, "{:?}", s);
        }
    }
}
