//! The generator's tests: same seed, same bytes (pinned); the counts, the
//! formats and the class mix the demo and the benchmark rely on.

use std::collections::{HashMap, HashSet};
use std::io;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

use super::csv::push_csv_field;
use super::event::TimeStyle;
use super::jsonl::push_json_str;
use super::noise::NFD_SPELLINGS;
use super::text::{push_time, LOCAL_OFFSET};
use super::*;

const JUNE_2026: i64 = 1_780_000_000;

fn options(seed: u64, exchange_events: usize, realistic_noise: bool) -> GenOptions {
    GenOptions {
        seed,
        start: JUNE_2026,
        end: JUNE_2026 + 180 * 86_400,
        exchange_events,
        realistic_noise,
    }
}

fn run(opts: &GenOptions, format: SignatureFormat) -> (GenStats, String, String) {
    let (mut exchange, mut signatures) = (Vec::new(), Vec::new());
    let stats = generate(opts, &mut exchange, &mut signatures, format).unwrap();
    (
        stats,
        String::from_utf8(exchange).unwrap(),
        String::from_utf8(signatures).unwrap(),
    )
}

fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|t| t.and_utc().timestamp() - LOCAL_OFFSET)
}

/// A minimal normaliser of the README's built-in spellings ("Input", Values): the generator's NFD spellings back to NFC, trimmed, lower case.
fn canonical(field: &str, value: &str) -> Option<&'static str> {
    let nfc = NFD_SPELLINGS
        .iter()
        .find(|(_, nfd)| *nfd == value)
        .map_or(value, |(nfc, _)| nfc);
    let value = nfc.trim().to_lowercase();
    let aliases: &[(&str, &[&str])] = match field {
        "direction" => &[
            (
                "outgoing",
                &["outgoing", "out", "sent", "đi", "di", "văn bản đi"],
            ),
            (
                "incoming",
                &["incoming", "in", "received", "đến", "den", "văn bản đến"],
            ),
        ],
        "channel" => &[
            (
                "electronic",
                &["electronic", "điện tử", "dien tu", "edxml", "online"],
            ),
            ("paper", &["paper", "giấy", "giay", "bản giấy"]),
        ],
        "confidentiality" => &[
            ("normal", &["", "none", "thường", "thuong", "không mật"]),
            ("mat", &["mật", "confidential"]),
            ("toi_mat", &["tối mật", "toi mat", "secret"]),
            ("tuyet_mat", &["tuyệt mật", "tuyet mat", "top secret"]),
        ],
        "role" => &[
            ("person", &["person", "cá nhân", "ca nhan", "individual"]),
            (
                "organization",
                &[
                    "organization",
                    "organisation",
                    "cơ quan",
                    "co quan",
                    "tổ chức",
                    "to chuc",
                ],
            ),
        ],
        _ => unreachable!(),
    };
    aliases
        .iter()
        .find(|(_, spellings)| spellings.contains(&value.as_str()))
        .map(|(canonical, _)| *canonical)
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A JSON line the README's "Input" section accepts: an object with every required field valid.
fn valid_object(line: &str, required: &[&str]) -> Option<Map<String, Value>> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return None;
    };
    parse_time(text(&object, "time")?)?;
    for field in required {
        let value = text(&object, field)?;
        if *field != "doc_id" {
            canonical(field, value)?;
        }
    }
    if let Some(confidentiality) = object.get("confidentiality") {
        canonical("confidentiality", confidentiality.as_str()?)?;
    }
    Some(object)
}

fn is_sha256(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits one `;`-delimited RFC 4180 row.
fn csv_fields(row: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (';', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[test]
fn same_seed_gives_identical_bytes() {
    for format in [SignatureFormat::Jsonl, SignatureFormat::VietnameseCsv] {
        let first = run(&options(7, 5_000, true), format);
        assert_eq!(first, run(&options(7, 5_000, true), format));
        assert_ne!(first.1, run(&options(8, 5_000, true), format).1);
    }
    let mut a = Generator::new(&options(3, 100, true));
    let mut b = Generator::new(&options(3, 100, true));
    for i in 0..200 {
        assert_eq!(
            a.next_document(JUNE_2026 + i * 600),
            b.next_document(JUNE_2026 + i * 600)
        );
    }
}

/// sha256 of the exchange and signature files, as hex.
fn digests(opts: &GenOptions, format: SignatureFormat) -> [String; 2] {
    use sha2::{Digest, Sha256};
    let (_, exchange, signatures) = run(opts, format);
    [exchange, signatures].map(|file| hex::encode(Sha256::digest(file.as_bytes())))
}

/// The benchmark and the tests compare corpora across versions: any change
/// to the bytes written for a seed must be deliberate (update the digests).
#[test]
fn output_bytes_are_pinned() {
    assert_eq!(
        digests(&options(42, 20_000, true), SignatureFormat::Jsonl),
        [
            "12c4551d678344d6d35229b5be1f125d54791ec4a2ff41b84bab29d21a1788a0",
            "7b5835e16610620c186b6be85c779656df1b8d95a3db239809b533addf585a4b"
        ]
    );
    assert_eq!(
        digests(&options(7, 5_000, true), SignatureFormat::VietnameseCsv),
        [
            "5395fab3c94f38f981e031482b61715a108aa77937103c3e6cf38ef5e65b825b",
            "432a5836a6f26b2d2bfbbe7242d0923faf6a321af186b6afe6566bb9af3a9a25"
        ]
    );
    let mut generator = Generator::new(&options(3, 100, true));
    let live: Vec<String> = (0..300)
        .flat_map(|i| {
            let events = generator.next_document(JUNE_2026 + i * 600);
            let late = events
                .late_signatures
                .into_iter()
                .map(|(due, l)| format!("{due} {l}"));
            events
                .exchange
                .into_iter()
                .chain(events.signatures)
                .chain(late)
        })
        .collect();
    use sha2::{Digest, Sha256};
    assert_eq!(
        hex::encode(Sha256::digest(live.join("\n"))),
        "ded22f2dc9280e3d2b06beeb0671d5d0f77fe9a3f5dc01cab083efb0fb725018"
    );
}

#[test]
fn stats_match_the_lines_written() {
    for noise in [false, true] {
        let (stats, exchange, signatures) = run(&options(11, 8_000, noise), SignatureFormat::Jsonl);
        assert_eq!(stats.exchange_events, 8_000);
        assert_eq!(exchange.lines().count(), stats.exchange_events);
        assert_eq!(signatures.lines().count(), stats.signature_events);
        assert!(exchange.ends_with('\n') && signatures.ends_with('\n'));
        let doc_ids: HashSet<String> = exchange
            .lines()
            .filter_map(|l| valid_object(l, &["doc_id"]))
            .map(|o| text(&o, "doc_id").unwrap().to_owned())
            .collect();
        assert!(doc_ids.len() <= stats.documents && stats.documents <= doc_ids.len() + 1);

        let (csv_stats, _, csv) = run(&options(11, 8_000, noise), SignatureFormat::VietnameseCsv);
        assert_eq!(
            csv.split("\r\n").filter(|r| !r.is_empty()).count(),
            csv_stats.signature_events + 1
        );
        assert_eq!(csv_stats.signature_events, stats.signature_events);
    }
}

#[test]
fn json_lines_are_valid_objects_except_the_bad_ones() {
    let (stats, exchange, signatures) = run(&options(5, 10_000, true), SignatureFormat::Jsonl);
    let exchange_fields = ["doc_id", "direction", "channel"];
    let mut invalid = 0;
    let mut seen_ids = HashMap::new();
    let mut duplicates = 0;
    for line in exchange.lines() {
        let Some(object) = valid_object(line, &exchange_fields) else {
            invalid += 1;
            continue;
        };
        assert!(text(&object, "event_id").unwrap().starts_with("ex-"));
        assert!(is_sha256(text(&object, "sha256").unwrap()));
        for field in ["doc_number", "doc_type", "subject", "counterpart"] {
            assert!(text(&object, field).is_some(), "{field} in {line}");
        }
        if let Some(previous) = seen_ids.insert(text(&object, "event_id").unwrap().to_owned(), line)
        {
            assert_eq!(previous, line, "a duplicate is an exact copy");
            duplicates += 1;
        }
    }
    for line in signatures.lines() {
        let Some(object) = valid_object(line, &["role"]) else {
            invalid += 1;
            continue;
        };
        assert!(text(&object, "doc_id").is_some() || text(&object, "sha256").is_some());
        assert!(object.get("valid").is_none_or(Value::is_boolean));
        if let Some(previous) = seen_ids.insert(text(&object, "event_id").unwrap().to_owned(), line)
        {
            assert_eq!(previous, line, "a duplicate is an exact copy");
            duplicates += 1;
        }
    }
    assert_eq!(invalid, stats.bad_lines);
    assert_eq!(duplicates, stats.duplicate_lines);
    let all_lines = (stats.exchange_events + stats.signature_events) as f64;
    assert!(stats.bad_lines > 0 && (stats.bad_lines as f64) < all_lines * 0.006);
    assert!(stats.duplicate_lines > 0);
    let nfd = exchange.lines().filter(|l| l.contains('\u{302}')).count();
    assert!(nfd > 0, "some NFD text");
}

#[test]
fn noise_off_writes_no_bad_lines_and_no_duplicate_ids() {
    let (stats, exchange, signatures) = run(&options(9, 10_000, false), SignatureFormat::Jsonl);
    assert_eq!((stats.bad_lines, stats.duplicate_lines), (0, 0));
    let mut ids = HashSet::new();
    for line in exchange.lines() {
        let object = valid_object(line, &["doc_id", "direction", "channel"]).expect(line);
        assert!(ids.insert(text(&object, "event_id").unwrap().to_owned()));
    }
    for line in signatures.lines() {
        let object = valid_object(line, &["role"]).expect(line);
        assert!(ids.insert(text(&object, "event_id").unwrap().to_owned()));
    }
    assert!(!exchange.contains('\u{302}') && !signatures.contains('\u{302}'));
}

#[test]
fn files_are_in_time_order_within_the_requested_span() {
    let opts = options(13, 8_000, true);
    let (_, exchange, signatures) = run(&opts, SignatureFormat::Jsonl);
    let times = |file: &str| -> Vec<i64> {
        file.lines()
            .filter_map(|l| valid_object(l, &[]))
            .map(|o| parse_time(text(&o, "time").unwrap()).unwrap())
            .collect()
    };
    let exchange_times = times(&exchange);
    assert!(exchange_times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(exchange_times[0], opts.start);
    assert!(*exchange_times.last().unwrap() <= opts.end + 3 * 3600);
    assert!(times(&signatures).windows(2).all(|w| w[0] <= w[1]));
    let rfc3339_local = exchange.matches("+07:00\"").count() as f64;
    assert!(rfc3339_local > 0.9 * exchange_times.len() as f64);
    let styles: Vec<String> = exchange
        .lines()
        .filter_map(|l| valid_object(l, &[]))
        .map(|o| text(&o, "time").unwrap().to_owned())
        .collect();
    assert!(styles.iter().any(|t| t.ends_with('Z')));
    assert!(styles.iter().any(|t| t.contains('/')));
    assert!(styles.iter().any(|t| t.contains(' ') && !t.contains('/')));
}

#[test]
fn class_mix_is_roughly_as_specified() {
    #[derive(Default)]
    struct Document {
        electronic: bool,
        secret: bool,
        shas: HashSet<String>,
    }
    let mut generator = Generator::new(&options(21, 17_300, false));
    let (mut documents, mut signatures, mut late) = (HashMap::new(), Vec::new(), Vec::new());
    let mut outgoing_copies = HashMap::<String, usize>::new();
    for i in 0..10_000 {
        let events = generator.next_document(JUNE_2026 + i * 1_500);
        assert!(!events.exchange.is_empty());
        for line in &events.exchange {
            let object = valid_object(line, &["doc_id", "direction", "channel"]).unwrap();
            let doc_id = text(&object, "doc_id").unwrap().to_owned();
            if canonical("direction", text(&object, "direction").unwrap()) == Some("outgoing") {
                *outgoing_copies.entry(doc_id.clone()).or_default() += 1;
            }
            let document: &mut Document = documents.entry(doc_id).or_default();
            document.electronic |=
                canonical("channel", text(&object, "channel").unwrap()) == Some("electronic");
            document.secret |= object.get("confidentiality").is_some_and(|c| {
                canonical("confidentiality", c.as_str().unwrap()) != Some("normal")
            });
            document
                .shas
                .insert(text(&object, "sha256").unwrap().to_owned());
        }
        signatures.extend(
            events
                .signatures
                .iter()
                .map(|l| valid_object(l, &["role"]).unwrap()),
        );
        late.extend(events.late_signatures.iter().map(|(due, l)| {
            let object = valid_object(l, &["role"]).unwrap();
            assert_eq!(parse_time(text(&object, "time").unwrap()), Some(*due));
            assert!(*due >= JUNE_2026 + i * 1_500 + 2 * 3600);
            object
        }));
    }
    assert_eq!(documents.len(), 10_000);
    assert!(outgoing_copies.values().all(|n| (1..=4).contains(n)));

    let shares = |signatures: &[Map<String, Value>]| -> [f64; 4] {
        let mut roles: HashMap<&str, HashSet<&str>> = HashMap::new();
        for signature in signatures
            .iter()
            .filter(|s| s.get("valid") != Some(&Value::Bool(false)))
        {
            let role = canonical("role", text(signature, "role").unwrap()).unwrap();
            for key in ["doc_id", "sha256"] {
                if let Some(value) = text(signature, key) {
                    roles.entry(value).or_default().insert(role);
                }
            }
        }
        let mut counts = [0usize; 4];
        for (doc_id, document) in &documents {
            let mut seen: HashSet<&str> = roles.get(doc_id.as_str()).cloned().unwrap_or_default();
            for sha in &document.shas {
                seen.extend(roles.get(sha.as_str()).into_iter().flatten());
            }
            let class = if document.secret {
                0
            } else if document.electronic
                && seen.contains("person")
                && seen.contains("organization")
            {
                1
            } else if document.electronic {
                2
            } else {
                3
            };
            counts[class] += 1;
        }
        counts.map(|n| n as f64 / documents.len() as f64)
    };
    let near = |actual: f64, expected: f64| (actual - expected).abs() < 0.015;
    let before = shares(&signatures);
    assert!(near(before[0], 0.03) && near(before[1], 0.80), "{before:?}");
    assert!(near(before[2], 0.11) && near(before[3], 0.06), "{before:?}");
    signatures.extend(late);
    let after = shares(&signatures);
    assert!(near(after[1], 0.83) && near(after[2], 0.08), "{after:?}");
}

#[test]
fn csv_has_bom_vietnamese_header_and_rfc4180_rows() {
    let (stats, _, csv) = run(&options(17, 8_000, false), SignatureFormat::VietnameseCsv);
    let header = "\u{feff}Mã sự kiện;Thời điểm ký;Mã văn bản;Mã băm SHA-256;Vai trò;Hợp lệ;Người ký;Số serial;Tổ chức cấp\r\n";
    assert!(csv.starts_with(header));
    let rows: Vec<Vec<String>> = csv[header.len()..]
        .split_terminator("\r\n")
        .map(csv_fields)
        .collect();
    assert_eq!(rows.len(), stats.signature_events);
    let mut quoted = 0;
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
        assert!(row[0].starts_with("sg-") && parse_time(&row[1]).is_some());
        assert!(!row[2].is_empty() || is_sha256(&row[3]));
        assert!(canonical("role", &row[4]).is_some() && (row[5] == "1" || row[5] == "0"));
        assert_eq!(row[7].len(), 32);
        quoted += usize::from(row[6].contains(';'));
    }
    assert!(quoted > 0, "some signer fields need quoting");
    let names: Vec<&str> = CSV_FIELD_MAP
        .iter()
        .map(|(canonical, _)| *canonical)
        .collect();
    assert_eq!(
        names,
        [
            "event_id",
            "time",
            "doc_id",
            "sha256",
            "role",
            "valid",
            "signer",
            "cert_serial",
            "issuer"
        ]
    );
}

#[test]
fn documents_keep_one_sha256_across_recipients() {
    let mut generator = Generator::new(&options(2, 1_000, false));
    for i in 0..500 {
        let events = generator.next_document(JUNE_2026 + i * 60);
        let shas: HashSet<String> = events
            .exchange
            .iter()
            .map(|l| {
                valid_object(l, &[]).unwrap()["sha256"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(shas.len(), 1);
        assert!(events.exchange.iter().all(|l| l.contains("\"time\":\"")));
    }
}

#[test]
fn a_continued_generator_keeps_ids_and_documents_unique() {
    let opts = options(4, 3_000, true);
    let mut generator = Generator::new(&opts);
    let (mut exchange, mut signatures) = (Vec::new(), Vec::new());
    let stats = generate_with(
        &mut generator,
        &opts,
        &mut exchange,
        &mut signatures,
        SignatureFormat::Jsonl,
    )
    .unwrap();
    assert_eq!(
        exchange,
        run(&opts, SignatureFormat::Jsonl).1.into_bytes(),
        "same bytes as generate"
    );
    let backfill = String::from_utf8([exchange, signatures].concat()).unwrap();
    let ids = |line: &str| -> Vec<String> {
        let object = valid_object(line, &[]).unwrap();
        ["event_id", "doc_id"]
            .iter()
            .filter_map(|f| text(&object, f).map(str::to_owned))
            .collect()
    };
    let used: HashSet<String> = backfill
        .lines()
        .filter(|l| valid_object(l, &[]).is_some())
        .flat_map(ids)
        .collect();
    assert!(used.len() > stats.documents);
    for i in 0..200 {
        let events = generator.next_document(opts.end + 600 + i * 30);
        let lines = events.exchange.iter().chain(&events.signatures);
        for line in lines.chain(events.late_signatures.iter().map(|(_, l)| l)) {
            if valid_object(line, &[]).is_some() {
                assert!(ids(line).iter().all(|id| !used.contains(id)), "{line}");
            }
        }
    }
}

#[test]
fn json_strings_are_escaped() {
    let mut buf = String::new();
    push_json_str(&mut buf, "a\"b\\c\nd\u{1}é");
    assert_eq!(
        serde_json::from_str::<String>(&buf).unwrap(),
        "a\"b\\c\nd\u{1}é"
    );
    let mut field = String::new();
    push_csv_field(&mut field, "CN=An; O=\"X\"");
    assert_eq!(field, "\"CN=An; O=\"\"X\"\"\"");
}

#[test]
fn times_use_local_and_utc_offsets() {
    let t = DateTime::parse_from_rfc3339("2026-06-14T17:30:05Z")
        .unwrap()
        .timestamp();
    let render = |style| {
        let mut buf = String::new();
        push_time(&mut buf, t, style);
        buf
    };
    assert_eq!(render(TimeStyle::Local), "2026-06-15T00:30:05+07:00");
    assert_eq!(render(TimeStyle::Utc), "2026-06-14T17:30:05Z");
    assert_eq!(render(TimeStyle::Naive), "2026-06-15 00:30:05");
    assert_eq!(render(TimeStyle::DayFirst), "15/06/2026 00:30:05");
    assert_eq!(parse_time(&render(TimeStyle::NaiveT)), Some(t));
}

#[test]
#[ignore = "benchmark-sized; run with --release --ignored"]
fn one_million_events_are_fast() {
    let started = std::time::Instant::now();
    let (mut exchange, mut signatures) = (io::sink(), io::sink());
    let stats = generate(
        &options(1, 1_000_000, false),
        &mut exchange,
        &mut signatures,
        SignatureFormat::Jsonl,
    )
    .unwrap();
    assert_eq!(stats.exchange_events, 1_000_000);
    eprintln!("{stats:?} in {:?}", started.elapsed());
}
