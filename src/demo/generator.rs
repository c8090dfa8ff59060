//! Deterministic synthetic exchange and signature feeds for `docflowd demo` and the benchmark.
//! Owns the make-believe commune office (units, numbers, subjects, signers) and the noise real exports carry.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};

use chrono::{DateTime, Datelike, Timelike};

/// Seconds east of UTC in Asia/Ho_Chi_Minh, which has no daylight saving time.
const LOCAL_OFFSET: i64 = 7 * 3600;

/// Settings of one synthetic feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Seed of every random choice: the same options give the same bytes.
    pub seed: u64,
    /// Unix seconds of the first document.
    pub start: i64,
    /// Unix seconds of the last document; documents are spread evenly in between, with jitter.
    pub end: i64,
    /// Exchange lines to write in total, bad and duplicate lines included.
    pub exchange_events: usize,
    /// Adds a few bad lines, exact duplicates and NFD text as real exports have (demo: on, benchmark: off).
    pub realistic_noise: bool,
}

/// What `generate` wrote; bad and duplicate lines are included in the per-file line counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Documents started (the last one may have lost recipients to the exchange-line budget).
    pub documents: usize,
    /// Lines in the exchange file.
    pub exchange_events: usize,
    /// Lines in the signature file, the CSV header excluded.
    pub signature_events: usize,
    /// Deliberately invalid lines in both files.
    pub bad_lines: usize,
    /// Exact copies of an earlier line (same `event_id`) in both files.
    pub duplicate_lines: usize,
}

/// Layout of the signature file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// One JSON object per line with the canonical field names.
    Jsonl,
    /// UTF-8 BOM, `;` delimiter, CRLF rows, Vietnamese header (see [`CSV_FIELD_MAP`]), `valid` as `1`/`0`.
    VietnameseCsv,
}

/// Canonical signature field and its Vietnamese CSV header, in column order.
pub const CSV_FIELD_MAP: [(&str, &str); 9] = [
    ("event_id", "Mã sự kiện"),
    ("time", "Thời điểm ký"),
    ("doc_id", "Mã văn bản"),
    ("sha256", "Mã băm SHA-256"),
    ("role", "Vai trò"),
    ("valid", "Hợp lệ"),
    ("signer", "Người ký"),
    ("cert_serial", "Số serial"),
    ("issuer", "Tổ chức cấp"),
];

/// Ready-to-write JSON lines of one document, for the demo's live appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentEvents {
    /// Exchange events (one per recipient for outgoing documents).
    pub exchange: Vec<String>,
    /// Signature events due now (outgoing ones are dated a little before the exchange).
    pub signatures: Vec<String>,
    /// Signatures that arrive hours or days later, with their due unix time.
    pub late_signatures: Vec<(i64, String)>,
}

/// Writes the exchange events (JSONL) and the signature events (JSONL or CSV), each file in time order.
pub fn generate(
    opts: &GenOptions,
    exchange: &mut dyn Write,
    signatures: &mut dyn Write,
    sig_format: SignatureFormat,
) -> io::Result<GenStats> {
    generate_with(
        &mut Generator::new(opts),
        opts,
        exchange,
        signatures,
        sig_format,
    )
}

/// Like [`generate`] (span and count from `opts`), but continues `generator` so its later `next_document` calls keep ids and documents unique.
pub fn generate_with(
    generator: &mut Generator,
    opts: &GenOptions,
    exchange: &mut dyn Write,
    signatures: &mut dyn Write,
    sig_format: SignatureFormat,
) -> io::Result<GenStats> {
    let mut writer = FeedWriter {
        exchange: BufWriter::with_capacity(1 << 16, exchange),
        signatures: BufWriter::with_capacity(1 << 16, signatures),
        sig_format,
        line: String::with_capacity(512),
        stats: GenStats::default(),
    };
    if sig_format == SignatureFormat::VietnameseCsv {
        writer.write_csv_header()?;
    }

    let documents = planned_documents(&generator.shape_rng, generator.noise, opts.exchange_events);
    let end = opts.end.max(opts.start);
    let step = if documents > 1 {
        (end - opts.start) as f64 / (documents - 1) as f64
    } else {
        0.0
    };
    let mut jitter_rng = SplitMix64::new(mix(opts.seed ^ 0x4a49_5454_4552));
    let mut pending: BinaryHeap<Reverse<Queued>> = BinaryHeap::new();
    let mut queued = 0u64;
    let mut budget = opts.exchange_events;
    let mut batch = Vec::with_capacity(16);

    for index in 0..documents {
        if budget == 0 {
            break;
        }
        let time = document_time(opts.start, step, index, documents, &mut jitter_rng);
        // Nothing produced from now on is dated before `time - lead_cap`, so older events are final.
        let horizon = time.saturating_sub(generator.lead_cap);
        while pending.peek().is_some_and(|top| top.0.time < horizon) {
            let Reverse(next) = pending.pop().expect("peeked");
            writer.write(&next.event)?;
        }
        generator.produce(time, &mut batch);
        writer.stats.documents += 1;
        for event in batch.drain(..) {
            if let Event::Exchange(_) = event {
                if budget == 0 {
                    continue;
                }
                budget -= 1;
            }
            pending.push(Reverse(Queued {
                time: event.time(),
                seq: queued,
                event,
            }));
            queued += 1;
        }
    }
    while let Some(Reverse(next)) = pending.pop() {
        writer.write(&next.event)?;
    }
    writer.exchange.flush()?;
    writer.signatures.flush()?;
    Ok(writer.stats)
}

/// Streaming source of synthetic documents; `generate` is built on it.
#[derive(Debug, Clone)]
pub struct Generator {
    shape_rng: SplitMix64,
    rng: SplitMix64,
    sha_key: u64,
    noise: bool,
    /// Longest time an event of a document precedes the document's time (its signatures).
    lead_cap: i64,
    next_document: u64,
    next_exchange_id: u64,
    next_signature_id: u64,
    numbering_year: i32,
    outgoing_numbers: [u32; DOC_TYPES.len()],
    batch: Vec<Event>,
    line: String,
}

impl Generator {
    /// Starts a stream from `opts` (seed, noise, and the document density that bounds in-document offsets).
    pub fn new(opts: &GenOptions) -> Self {
        let expected_documents = (opts.exchange_events as f64 / MEAN_EXCHANGE_LINES).max(1.0);
        let step = (opts.end - opts.start).max(0) as f64 / expected_documents;
        Generator {
            shape_rng: SplitMix64::new(shape_seed(opts.seed)),
            rng: SplitMix64::new(mix(opts.seed ^ 0x4445_5441_494c)),
            sha_key: mix(opts.seed ^ 0x5348_4132_3536),
            noise: opts.realistic_noise,
            lead_cap: (step * 20.0).clamp(60.0, 7200.0) as i64,
            next_document: 1,
            next_exchange_id: 1,
            next_signature_id: 1,
            numbering_year: i32::MIN,
            outgoing_numbers: [0; DOC_TYPES.len()],
            batch: Vec::with_capacity(16),
            line: String::with_capacity(512),
        }
    }

    /// Produces the next document, first exchanged at unix time `time`, as JSON lines.
    pub fn next_document(&mut self, time: i64) -> DocumentEvents {
        let mut batch = std::mem::take(&mut self.batch);
        self.produce(time, &mut batch);
        let mut result = DocumentEvents::default();
        for event in batch.drain(..) {
            self.line.clear();
            event.render_json(&mut self.line);
            let line = self.line.clone();
            match event {
                Event::Exchange(_) => result.exchange.push(line),
                Event::Signature(sig) if sig.late => result.late_signatures.push((sig.time, line)),
                Event::Signature(_) => result.signatures.push(line),
            }
        }
        self.batch = batch;
        result
    }

    fn produce(&mut self, time: i64, out: &mut Vec<Event>) {
        let shape = Shape::draw(&mut self.shape_rng, self.noise);
        let seq = self.next_document;
        self.next_document += 1;
        let doc = DocRef {
            seq,
            outgoing: shape.outgoing,
            sha_seed: mix(self.sha_key ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        };
        let lead_cap = self.lead_cap;
        let local = DateTime::from_timestamp(time + LOCAL_OFFSET, 0).unwrap_or_default();
        if local.year() != self.numbering_year {
            // A feed that starts mid-year continues that year's numbering rather than starting at 1.
            let resumed = self.numbering_year == i32::MIN;
            self.numbering_year = local.year();
            self.outgoing_numbers = DOC_TYPES.map(|t| {
                if resumed {
                    local.ordinal() * t.weight / 50
                } else {
                    0
                }
            });
        }

        let rng = &mut self.rng;
        let type_index = rng.weighted_index(&DOC_TYPES.map(|t| t.weight));
        let doc_type = &DOC_TYPES[type_index];
        let subject = rng.pick(doc_type.subjects);
        let unit = if rng.chance(0.10) {
            if rng.chance(0.3) {
                Some(("", "VP"))
            } else {
                None
            }
        } else {
            Some(rng.weighted(&UNITS))
        };
        let electronic = match shape.class {
            Class::Paper => false,
            Class::Secret => rng.chance(0.15),
            _ => true,
        };
        let channel = if electronic {
            rng.weighted(&CHANNEL_ELECTRONIC)
        } else {
            rng.weighted(&CHANNEL_PAPER)
        };
        let confidentiality = if shape.class == Class::Secret {
            Some(rng.weighted(&CONFIDENTIALITY_SECRET))
        } else {
            rng.weighted(&CONFIDENTIALITY_NORMAL)
        };
        let direction = if shape.outgoing {
            rng.weighted(&DIRECTION_OUTGOING)
        } else {
            rng.weighted(&DIRECTION_INCOMING)
        };

        // Outgoing copies go to distinct recipients; a second incoming copy is a re-delivery by the same sender.
        let mut counterparts = [COUNTERPARTS[0].0; 4];
        let mut chosen = 0;
        while chosen < if shape.outgoing { shape.copies } else { 1 } {
            let candidate = rng.weighted(&COUNTERPARTS.map(|(name, _, w)| (name, w)));
            if !counterparts[..chosen].contains(&candidate) {
                counterparts[chosen] = candidate;
                chosen += 1;
            }
        }
        if !shape.outgoing {
            counterparts = [counterparts[0]; 4];
        }
        let number = if shape.outgoing {
            self.outgoing_numbers[type_index] += 1;
            let issuer = if doc_type.abbr == "TB" && rng.chance(0.4) {
                "VP"
            } else {
                "UBND"
            };
            DocNumber {
                n: self.outgoing_numbers[type_index],
                abbr: doc_type.abbr,
                issuer,
                office: unit.map_or("VP", |(_, code)| code),
            }
        } else {
            let code = COUNTERPARTS
                .iter()
                .find(|(name, _, _)| *name == counterparts[0])
                .map_or("UBND", |(_, code, _)| code);
            DocNumber {
                n: rng.range(1, 1500) as u32,
                abbr: doc_type.abbr,
                issuer: code,
                office: "VP",
            }
        };

        let mut exchange_time = time;
        for (copy, noise) in shape.noise.iter().enumerate().take(shape.copies) {
            if copy > 0 {
                exchange_time += if shape.outgoing {
                    rng.range(5, (lead_cap / 8).clamp(5, 300))
                } else {
                    rng.range(60, lead_cap)
                };
            }
            let mut event = ExchangeEvent {
                id: self.next_exchange_id,
                time: exchange_time,
                style: rng.weighted(&TIME_STYLES),
                doc,
                direction,
                channel,
                confidentiality,
                unit: unit.map(|(name, _)| name),
                number,
                doc_type: doc_type.name,
                subject,
                counterpart: counterparts[copy],
                line: Line::Valid,
            };
            self.next_exchange_id += 1;
            if self.noise && rng.chance(0.02) {
                event.direction = nfd_variant(event.direction);
                event.channel = nfd_variant(event.channel);
                event.unit = event.unit.map(nfd_variant);
            }
            out.push(Event::Exchange(event));
            if noise.duplicate {
                let mut duplicate = event;
                duplicate.line = Line::Duplicate;
                out.push(Event::Exchange(duplicate));
            }
            if noise.bad {
                let mut bad = event;
                bad.id = self.next_exchange_id;
                self.next_exchange_id += 1;
                bad.line = Line::Bad(match rng.weighted_index(&[30, 20, 20, 15, 15]) {
                    0 => BadLine::Date(rng.pick(&BAD_DATES)),
                    1 => BadLine::Channel(rng.pick(&UNKNOWN_CHANNELS)),
                    2 => BadLine::DocId(rng.pick(&[None, Some(""), Some("   ")])),
                    3 => BadLine::Truncated,
                    _ => BadLine::Array,
                });
                out.push(Event::Exchange(bad));
            }
        }

        let (person, organization) = if shape.outgoing {
            (rng.pick(&LEADERS), AGENCY_NAME)
        } else {
            (rng.pick(&EXTERNAL_SIGNERS), counterparts[0])
        };
        let signing_time = |rng: &mut SplitMix64, role: Role| {
            if !shape.outgoing {
                time + rng.range(1, 60)
            } else if role == Role::Person {
                time - rng.range(lead_cap / 2, lead_cap)
            } else {
                time - rng.range(1, lead_cap / 2)
            }
        };
        let mut signatures: [Option<(Role, i64, bool, bool)>; 3] = [None; 3];
        let mut sign = |role, at, valid, late| {
            let slot = signatures
                .iter_mut()
                .find(|s| s.is_none())
                .expect("3 slots");
            *slot = Some((role, at, valid, late));
        };
        let electronic_signed =
            shape.class == Class::Signed || (shape.class == Class::Secret && electronic);
        if electronic_signed {
            if rng.chance(0.015) {
                let role = rng.pick(&[Role::Person, Role::Organization]);
                sign(role, time - lead_cap, false, false);
            }
            sign(Role::Person, signing_time(rng, Role::Person), true, false);
            sign(
                Role::Organization,
                signing_time(rng, Role::Organization),
                true,
                false,
            );
        } else if shape.class == Class::MissingSignature || shape.class == Class::LateSignature {
            let (present, absent) = if rng.chance(0.5) {
                (Role::Person, Role::Organization)
            } else {
                (Role::Organization, Role::Person)
            };
            sign(present, signing_time(rng, present), true, false);
            if shape.class == Class::LateSignature {
                sign(absent, time + rng.range(2 * 3600, 72 * 3600), true, true);
            } else if rng.chance(0.3) {
                sign(absent, signing_time(rng, absent), false, false);
            }
        } else if shape.class == Class::Paper && rng.chance(0.05) {
            sign(Role::Person, signing_time(rng, Role::Person), true, false);
        }

        for (role, at, valid, late) in signatures.into_iter().flatten() {
            let name = if role == Role::Person {
                person
            } else {
                organization
            };
            let spellings = if role == Role::Person {
                &ROLE_PERSON
            } else {
                &ROLE_ORGANIZATION
            };
            let mut event = SignatureEvent {
                id: self.next_signature_id,
                time: at,
                style: rng.weighted(&TIME_STYLES),
                doc,
                link: rng.weighted(&[(Link::Both, 80), (Link::Sha, 15), (Link::DocId, 5)]),
                role: rng.weighted(spellings),
                valid: if !valid {
                    Some(false)
                } else if rng.chance(0.1) {
                    None
                } else {
                    Some(true)
                },
                signer: Signer {
                    name,
                    organization,
                    distinguished: rng.chance(0.05),
                },
                late,
                line: Line::Valid,
            };
            self.next_signature_id += 1;
            if self.noise && rng.chance(0.02) {
                event.role = nfd_variant(event.role);
            }
            out.push(Event::Signature(event));
            if self.noise && rng.chance(0.002) {
                let mut duplicate = event;
                duplicate.line = Line::Duplicate;
                out.push(Event::Signature(duplicate));
            }
            if self.noise && rng.chance(0.001) {
                let mut bad = event;
                bad.id = self.next_signature_id;
                self.next_signature_id += 1;
                bad.line = Line::Bad(match rng.weighted_index(&[40, 30, 30]) {
                    0 => BadLine::Date(rng.pick(&BAD_DATES)),
                    1 => BadLine::Role,
                    _ => BadLine::Truncated,
                });
                out.push(Event::Signature(bad));
            }
        }
    }
}

/// Mean exchange lines per document, used to size in-document offsets from the options.
const MEAN_EXCHANGE_LINES: f64 = 1.73;

/// Counts the documents `generate` starts before the exchange-line budget is spent.
fn planned_documents(shape_rng: &SplitMix64, noise: bool, exchange_events: usize) -> usize {
    let mut rng = shape_rng.clone();
    let (mut lines, mut documents) = (0, 0);
    while lines < exchange_events {
        lines += Shape::draw(&mut rng, noise).exchange_lines();
        documents += 1;
    }
    documents
}

fn shape_seed(seed: u64) -> u64 {
    mix(seed ^ 0x5348_4150_4553)
}

/// Time of document `index`: evenly spread, jittered by under half a step so times never go backwards.
fn document_time(
    start: i64,
    step: f64,
    index: usize,
    documents: usize,
    rng: &mut SplitMix64,
) -> i64 {
    let jitter = if index == 0 || index + 1 == documents {
        0.0
    } else {
        (rng.unit() - 0.5) * 0.8 * step
    };
    start + (index as f64 * step + jitter).round() as i64
}

struct FeedWriter<'a> {
    exchange: BufWriter<&'a mut dyn Write>,
    signatures: BufWriter<&'a mut dyn Write>,
    sig_format: SignatureFormat,
    line: String,
    stats: GenStats,
}

impl FeedWriter<'_> {
    fn write_csv_header(&mut self) -> io::Result<()> {
        self.line.clear();
        self.line.push('\u{feff}');
        for (i, (_, header)) in CSV_FIELD_MAP.iter().enumerate() {
            if i > 0 {
                self.line.push(';');
            }
            push_csv_field(&mut self.line, header);
        }
        self.line.push_str("\r\n");
        self.signatures.write_all(self.line.as_bytes())
    }

    fn write(&mut self, event: &Event) -> io::Result<()> {
        self.line.clear();
        let line = match event {
            Event::Exchange(ex) => {
                ex.render_json(&mut self.line);
                self.line.push('\n');
                self.stats.exchange_events += 1;
                self.exchange.write_all(self.line.as_bytes())?;
                ex.line
            }
            Event::Signature(sig) => {
                if self.sig_format == SignatureFormat::Jsonl {
                    sig.render_json(&mut self.line);
                    self.line.push('\n');
                } else {
                    sig.render_csv(&mut self.line);
                    self.line.push_str("\r\n");
                }
                self.stats.signature_events += 1;
                self.signatures.write_all(self.line.as_bytes())?;
                sig.line
            }
        };
        match line {
            Line::Valid => {}
            Line::Duplicate => self.stats.duplicate_lines += 1,
            Line::Bad(_) => self.stats.bad_lines += 1,
        }
        Ok(())
    }
}

/// An event waiting in `generate`'s reorder buffer, ordered by time then arrival.
struct Queued {
    time: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Signed,
    MissingSignature,
    LateSignature,
    Paper,
    Secret,
}

const CLASS_MIX: [(Class, u32); 5] = [
    (Class::Signed, 800),
    (Class::MissingSignature, 80),
    (Class::LateSignature, 30),
    (Class::Paper, 60),
    (Class::Secret, 30),
];

#[derive(Debug, Clone, Copy, Default)]
struct LineNoise {
    duplicate: bool,
    bad: bool,
}

/// The choices that decide how many exchange lines a document takes, drawn from their own stream.
#[derive(Debug, Clone, Copy)]
struct Shape {
    outgoing: bool,
    class: Class,
    copies: usize,
    noise: [LineNoise; 4],
}

impl Shape {
    fn draw(rng: &mut SplitMix64, noise: bool) -> Self {
        let outgoing = rng.chance(0.45);
        let class = rng.weighted(&CLASS_MIX);
        let copies = if outgoing {
            rng.weighted(&[(1, 35), (2, 30), (3, 20), (4, 15)])
        } else if rng.chance(0.1) {
            2
        } else {
            1
        };
        let mut line_noise = [LineNoise::default(); 4];
        if noise {
            for line in line_noise.iter_mut().take(copies) {
                line.duplicate = rng.chance(0.002);
                line.bad = rng.chance(0.003);
            }
        }
        Shape {
            outgoing,
            class,
            copies,
            noise: line_noise,
        }
    }

    fn exchange_lines(&self) -> usize {
        let extra: usize = self.noise[..self.copies]
            .iter()
            .map(|n| usize::from(n.duplicate) + usize::from(n.bad))
            .sum();
        self.copies + extra
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Person,
    Organization,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeStyle {
    Local,
    Utc,
    Naive,
    NaiveT,
    DayFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Valid,
    Duplicate,
    Bad(BadLine),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadLine {
    Date(&'static str),
    Channel(&'static str),
    /// `None` leaves the field out.
    DocId(Option<&'static str>),
    Role,
    Truncated,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Both,
    Sha,
    DocId,
}

#[derive(Debug, Clone, Copy)]
struct DocRef {
    seq: u64,
    outgoing: bool,
    sha_seed: u64,
}

impl DocRef {
    fn push_doc_id(&self, buf: &mut String) {
        buf.push_str(if self.outgoing {
            "H40.27.01-DI-"
        } else {
            "H40.27.01-DEN-"
        });
        push_padded(buf, self.seq, 7);
    }

    fn push_sha256(&self, buf: &mut String) {
        let mut rng = SplitMix64::new(self.sha_seed);
        for _ in 0..4 {
            push_hex(buf, rng.next_u64(), b"0123456789abcdef");
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct DocNumber {
    n: u32,
    abbr: &'static str,
    issuer: &'static str,
    office: &'static str,
}

impl DocNumber {
    /// Writes "Số, ký hiệu": `245/KH-UBND`, or `245/UBND-VP` for a công văn.
    fn push(&self, buf: &mut String) {
        push_padded(buf, u64::from(self.n), 1);
        buf.push('/');
        if self.abbr.is_empty() {
            buf.push_str(self.issuer);
            buf.push('-');
            buf.push_str(self.office);
        } else {
            buf.push_str(self.abbr);
            buf.push('-');
            buf.push_str(self.issuer);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Signer {
    name: &'static str,
    organization: &'static str,
    /// Written as a certificate subject (`CN=…; O=…; C=VN`), which puts `;` in CSV fields.
    distinguished: bool,
}

impl Signer {
    fn text(&self) -> std::borrow::Cow<'static, str> {
        if self.distinguished {
            format!("CN={}; O={}; C=VN", self.name, self.organization).into()
        } else {
            self.name.into()
        }
    }

    /// One certificate per signer: the serial and the issuing CA follow from the name.
    fn certificate(&self) -> (u64, u64, &'static str) {
        let hash = fnv1a(self.name);
        let mut rng = SplitMix64::new(hash);
        let issuer = ISSUERS[rng.weighted_index(&ISSUERS.map(|(_, w)| w))].0;
        (rng.next_u64(), rng.next_u64(), issuer)
    }
}

#[derive(Debug, Clone, Copy)]
struct ExchangeEvent {
    id: u64,
    time: i64,
    style: TimeStyle,
    doc: DocRef,
    direction: &'static str,
    channel: &'static str,
    confidentiality: Option<&'static str>,
    unit: Option<&'static str>,
    number: DocNumber,
    doc_type: &'static str,
    subject: &'static str,
    counterpart: &'static str,
    line: Line,
}

impl ExchangeEvent {
    fn render_json(&self, buf: &mut String) {
        let start = buf.len();
        buf.push_str("{\"event_id\":\"ex-");
        push_padded(buf, self.id, 9);
        buf.push_str("\",\"time\":");
        push_json_time(buf, self.time, self.style, self.line);
        match self.line {
            Line::Bad(BadLine::DocId(None)) => {}
            Line::Bad(BadLine::DocId(Some(value))) => {
                buf.push_str(",\"doc_id\":");
                push_json_str(buf, value);
            }
            _ => {
                buf.push_str(",\"doc_id\":\"");
                self.doc.push_doc_id(buf);
                buf.push('"');
            }
        }
        buf.push_str(",\"direction\":");
        push_json_str(buf, self.direction);
        buf.push_str(",\"channel\":");
        match self.line {
            Line::Bad(BadLine::Channel(value)) => push_json_str(buf, value),
            _ => push_json_str(buf, self.channel),
        }
        if let Some(confidentiality) = self.confidentiality {
            buf.push_str(",\"confidentiality\":");
            push_json_str(buf, confidentiality);
        }
        if let Some(unit) = self.unit {
            buf.push_str(",\"unit\":");
            push_json_str(buf, unit);
        }
        buf.push_str(",\"doc_number\":\"");
        self.number.push(buf);
        buf.push_str("\",\"doc_type\":");
        push_json_str(buf, self.doc_type);
        buf.push_str(",\"subject\":");
        push_json_str(buf, self.subject);
        buf.push_str(",\"counterpart\":");
        push_json_str(buf, self.counterpart);
        buf.push_str(",\"sha256\":\"");
        self.doc.push_sha256(buf);
        buf.push_str("\"}");
        finish_bad_json(buf, start, self.line);
    }
}

#[derive(Debug, Clone, Copy)]
struct SignatureEvent {
    id: u64,
    time: i64,
    style: TimeStyle,
    doc: DocRef,
    link: Link,
    role: &'static str,
    /// `None` leaves the field out (JSON default `true`).
    valid: Option<bool>,
    signer: Signer,
    late: bool,
    line: Line,
}

impl SignatureEvent {
    fn role(&self) -> &'static str {
        if self.line == Line::Bad(BadLine::Role) {
            ""
        } else {
            self.role
        }
    }

    fn render_json(&self, buf: &mut String) {
        let start = buf.len();
        buf.push_str("{\"event_id\":\"sg-");
        push_padded(buf, self.id, 9);
        buf.push_str("\",\"time\":");
        push_json_time(buf, self.time, self.style, self.line);
        if self.link != Link::Sha {
            buf.push_str(",\"doc_id\":\"");
            self.doc.push_doc_id(buf);
            buf.push('"');
        }
        if self.link != Link::DocId {
            buf.push_str(",\"sha256\":\"");
            self.doc.push_sha256(buf);
            buf.push('"');
        }
        buf.push_str(",\"role\":");
        push_json_str(buf, self.role());
        match self.valid {
            Some(true) => buf.push_str(",\"valid\":true"),
            Some(false) => buf.push_str(",\"valid\":false"),
            None => {}
        }
        let (serial_high, serial_low, issuer) = self.signer.certificate();
        buf.push_str(",\"signer\":");
        push_json_str(buf, &self.signer.text());
        buf.push_str(",\"cert_serial\":\"");
        push_hex(buf, serial_high, b"0123456789ABCDEF");
        push_hex(buf, serial_low, b"0123456789ABCDEF");
        buf.push_str("\",\"issuer\":");
        push_json_str(buf, issuer);
        buf.push('}');
        finish_bad_json(buf, start, self.line);
    }

    fn render_csv(&self, buf: &mut String) {
        let start = buf.len();
        buf.push_str("sg-");
        push_padded(buf, self.id, 9);
        buf.push(';');
        match self.line {
            Line::Bad(BadLine::Date(value)) => push_csv_field(buf, value),
            _ => push_time(buf, self.time, self.style),
        }
        buf.push(';');
        if self.link != Link::Sha {
            self.doc.push_doc_id(buf);
        }
        buf.push(';');
        if self.link != Link::DocId {
            self.doc.push_sha256(buf);
        }
        buf.push(';');
        push_csv_field(buf, self.role());
        buf.push_str(if self.valid == Some(false) {
            ";0;"
        } else {
            ";1;"
        });
        let (serial_high, serial_low, issuer) = self.signer.certificate();
        push_csv_field(buf, &self.signer.text());
        buf.push(';');
        push_hex(buf, serial_high, b"0123456789ABCDEF");
        push_hex(buf, serial_low, b"0123456789ABCDEF");
        buf.push(';');
        push_csv_field(buf, issuer);
        if self.line == Line::Bad(BadLine::Truncated) {
            truncate_at_char(buf, start + (buf.len() - start) * 3 / 5);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Exchange(ExchangeEvent),
    Signature(SignatureEvent),
}

impl Event {
    fn time(&self) -> i64 {
        match self {
            Event::Exchange(ex) => ex.time,
            Event::Signature(sig) => sig.time,
        }
    }

    fn render_json(&self, buf: &mut String) {
        match self {
            Event::Exchange(ex) => ex.render_json(buf),
            Event::Signature(sig) => sig.render_json(buf),
        }
    }
}

fn push_json_time(buf: &mut String, time: i64, style: TimeStyle, line: Line) {
    if let Line::Bad(BadLine::Date(value)) = line {
        push_json_str(buf, value);
    } else {
        buf.push('"');
        push_time(buf, time, style);
        buf.push('"');
    }
}

/// Turns a complete JSON object at `buf[start..]` into its truncated or array form.
fn finish_bad_json(buf: &mut String, start: usize, line: Line) {
    match line {
        Line::Bad(BadLine::Truncated) => truncate_at_char(buf, start + (buf.len() - start) * 3 / 5),
        Line::Bad(BadLine::Array) => {
            buf.insert(start, '[');
            buf.push(']');
        }
        _ => {}
    }
}

fn truncate_at_char(buf: &mut String, mut at: usize) {
    while !buf.is_char_boundary(at) {
        at -= 1;
    }
    buf.truncate(at);
}

/// Local (UTC+7) or UTC calendar fields of a unix time.
fn civil(time: i64) -> (i32, u32, u32, u32, u32, u32) {
    let t = DateTime::from_timestamp(time, 0).unwrap_or_default();
    (
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

fn push_time(buf: &mut String, time: i64, style: TimeStyle) {
    let utc = style == TimeStyle::Utc;
    let (year, month, day, hour, minute, second) =
        civil(if utc { time } else { time + LOCAL_OFFSET });
    let year = u64::try_from(year).unwrap_or(0);
    if style == TimeStyle::DayFirst {
        push_padded(buf, day.into(), 2);
        buf.push('/');
        push_padded(buf, month.into(), 2);
        buf.push('/');
        push_padded(buf, year, 4);
        buf.push(' ');
    } else {
        push_padded(buf, year, 4);
        buf.push('-');
        push_padded(buf, month.into(), 2);
        buf.push('-');
        push_padded(buf, day.into(), 2);
        buf.push(if style == TimeStyle::Naive { ' ' } else { 'T' });
    }
    push_padded(buf, hour.into(), 2);
    buf.push(':');
    push_padded(buf, minute.into(), 2);
    buf.push(':');
    push_padded(buf, second.into(), 2);
    match style {
        TimeStyle::Local => buf.push_str("+07:00"),
        TimeStyle::Utc => buf.push('Z'),
        _ => {}
    }
}

fn push_padded(buf: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let len = (digits.len() - i).max(width).clamp(1, digits.len());
    buf.push_str(std::str::from_utf8(&digits[digits.len() - len..]).expect("ASCII digits"));
}

fn push_hex(buf: &mut String, n: u64, alphabet: &[u8; 16]) {
    for shift in (0..16).rev() {
        buf.push(char::from(alphabet[((n >> (shift * 4)) & 0xf) as usize]));
    }
}

fn push_json_str(buf: &mut String, s: &str) {
    buf.push('"');
    let mut plain_from = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        buf.push_str(&s[plain_from..i]);
        if escaped.is_empty() {
            buf.push_str("\\u00");
            buf.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            buf.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        } else {
            buf.push_str(escaped);
        }
        plain_from = i + 1;
    }
    buf.push_str(&s[plain_from..]);
    buf.push('"');
}

/// Writes one RFC 4180 field for a `;`-delimited file.
fn push_csv_field(buf: &mut String, s: &str) {
    if s.contains([';', '"', '\n', '\r']) {
        buf.push('"');
        buf.push_str(&s.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(s);
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64's finaliser: a cheap, well-mixed bijection on `u64`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast and identical on every platform, which is all a fixture needs.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (just `lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn weighted_index(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut roll = self.below(u64::from(total)) as u32;
        for (i, &weight) in weights.iter().enumerate() {
            if roll < weight {
                return i;
            }
            roll -= weight;
        }
        weights.len() - 1
    }

    fn weighted<T: Copy, const N: usize>(&mut self, items: &[(T, u32); N]) -> T {
        items[self.weighted_index(&items.map(|(_, w)| w))].0
    }
}

const AGENCY_NAME: &str = "UBND xã Hương Bình";

/// Internal units with the code used in công văn numbers.
const UNITS: [((&str, &str), u32); 4] = [
    (("Văn phòng HĐND và UBND", "VP"), 35),
    (("Phòng Kinh tế", "KT"), 22),
    (("Phòng Văn hóa - Xã hội", "VHXH"), 20),
    (("Trung tâm Phục vụ hành chính công", "TTPVHCC"), 13),
];

/// Counterparts with the code they put in their own document numbers.
const COUNTERPARTS: [(&str, &str, u32); 14] = [
    ("Sở Nội vụ tỉnh", "SNV", 16),
    ("UBND tỉnh", "UBND", 12),
    ("UBND huyện", "UBND", 14),
    ("Văn phòng UBND tỉnh", "VPUBND", 8),
    ("Sở Tài chính tỉnh", "STC", 6),
    ("Sở Khoa học và Công nghệ tỉnh", "SKHCN", 6),
    ("Sở Văn hóa, Thể thao và Du lịch tỉnh", "SVHTTDL", 4),
    ("Bảo hiểm xã hội tỉnh", "BHXH", 4),
    ("Công an xã", "CAX", 8),
    ("Ban Chỉ huy Quân sự xã", "BCHQS", 5),
    ("Đảng ủy xã Hương Bình", "ĐU", 6),
    ("Ủy ban MTTQ Việt Nam xã Hương Bình", "MTTQ", 5),
    ("Trạm Y tế xã", "TYT", 3),
    ("Trường Tiểu học Hương Bình", "THHB", 3),
];

struct DocType {
    name: &'static str,
    /// Empty for a công văn, whose number reads `245/UBND-VP`.
    abbr: &'static str,
    weight: u32,
    subjects: &'static [&'static str],
}

const DOC_TYPES: [DocType; 6] = [
    DocType {
        name: "Công văn",
        abbr: "",
        weight: 35,
        subjects: &[
            "V/v triển khai thực hiện Quyết định số 534/QĐ-TTg của Thủ tướng Chính phủ",
            "V/v đôn đốc cập nhật dữ liệu dân cư trên ứng dụng VNeID",
            "V/v góp ý dự thảo Quy chế làm việc của UBND xã",
            "V/v cử cán bộ tham dự tập huấn chuyển đổi số",
            "V/v tăng cường công tác phòng, chống thiên tai mùa mưa bão",
            "V/v rà soát, thống kê hộ nghèo, hộ cận nghèo năm 2026",
        ],
    },
    DocType {
        name: "Quyết định",
        abbr: "QĐ",
        weight: 15,
        subjects: &[
            "Về việc ban hành Quy chế công tác văn thư, lưu trữ của UBND xã Hương Bình",
            "Về việc thành lập Tổ công nghệ số cộng đồng",
            "Về việc phê duyệt danh sách hộ gia đình được hỗ trợ nhà ở",
            "Về việc kiện toàn Ban Chỉ đạo phong trào \"Toàn dân đoàn kết xây dựng đời sống văn hóa\"",
        ],
    },
    DocType {
        name: "Kế hoạch",
        abbr: "KH",
        weight: 12,
        subjects: &[
            "Kế hoạch chuyển đổi số xã Hương Bình năm 2026",
            "Kế hoạch tổ chức \"Tết trồng cây đời đời nhớ ơn Bác Hồ\"",
            "Kế hoạch cải cách hành chính năm 2026",
            "Kế hoạch phòng, chống dịch bệnh trên gia súc, gia cầm",
        ],
    },
    DocType {
        name: "Báo cáo",
        abbr: "BC",
        weight: 18,
        subjects: &[
            "Báo cáo kết quả thực hiện nhiệm vụ 6 tháng đầu năm 2026",
            "Báo cáo tình hình gửi, nhận văn bản điện tử có ký số",
            "Báo cáo công tác cải cách hành chính quý II năm 2026",
            "Báo cáo kết quả giải quyết thủ tục hành chính trên môi trường điện tử",
        ],
    },
    DocType {
        name: "Thông báo",
        abbr: "TB",
        weight: 12,
        subjects: &[
            "Thông báo lịch tiếp công dân tháng 6/2026",
            "Thông báo kết luận của Chủ tịch UBND xã tại cuộc họp giao ban",
            "Thông báo tạm ngừng cung cấp điện để bảo dưỡng lưới điện",
        ],
    },
    DocType {
        name: "Tờ trình",
        abbr: "TTr",
        weight: 8,
        subjects: &[
            "Tờ trình đề nghị phê duyệt dự toán kinh phí chuyển đổi số",
            "Tờ trình đề nghị khen thưởng tập thể, cá nhân có thành tích xuất sắc",
            "Tờ trình về việc điều chỉnh kế hoạch đầu tư công năm 2026",
        ],
    },
];

const LEADERS: [&str; 4] = [
    "Nguyễn Văn An",
    "Trần Thị Bích Ngọc",
    "Lê Hoàng Minh",
    "Phạm Thị Thu Hà",
];

const EXTERNAL_SIGNERS: [&str; 6] = [
    "Hoàng Quốc Việt",
    "Đỗ Thị Lan Anh",
    "Vũ Đức Thắng",
    "Bùi Thị Hồng Nhung",
    "Ngô Văn Dũng",
    "Đặng Minh Tuấn",
];

const ISSUERS: [(&str, u32); 3] = [
    ("Ban Cơ yếu Chính phủ", 70),
    ("VNPT-CA", 18),
    ("Viettel-CA", 12),
];

// Spellings from SPEC §2.5, weighted towards the canonical ones.
const DIRECTION_OUTGOING: [(&str, u32); 3] = [("outgoing", 60), ("đi", 30), ("văn bản đi", 10)];
const DIRECTION_INCOMING: [(&str, u32); 3] = [("incoming", 55), ("văn bản đến", 25), ("đến", 20)];
const CHANNEL_ELECTRONIC: [(&str, u32); 3] = [("electronic", 55), ("điện tử", 25), ("edxml", 20)];
const CHANNEL_PAPER: [(&str, u32); 3] = [("paper", 40), ("giấy", 50), ("bản giấy", 10)];
const CONFIDENTIALITY_NORMAL: [(Option<&str>, u32); 3] =
    [(None, 70), (Some("thường"), 25), (Some("không mật"), 5)];
const CONFIDENTIALITY_SECRET: [(&str, u32); 6] = [
    ("Mật", 40),
    ("mật", 15),
    ("Tối mật", 15),
    ("tối mật", 15),
    ("Tuyệt mật", 10),
    ("tuyệt mật", 5),
];
const ROLE_PERSON: [(&str, u32); 3] = [("person", 60), ("cá nhân", 30), ("individual", 10)];
const ROLE_ORGANIZATION: [(&str, u32); 3] =
    [("organization", 60), ("cơ quan", 30), ("tổ chức", 10)];
const TIME_STYLES: [(TimeStyle, u32); 5] = [
    (TimeStyle::Local, 930),
    (TimeStyle::Utc, 25),
    (TimeStyle::Naive, 15),
    (TimeStyle::NaiveT, 10),
    (TimeStyle::DayFirst, 20),
];

const BAD_DATES: [&str; 6] = [
    "31/02/2026 09:00:00",
    "2026-13-01 08:00:00",
    "hôm qua",
    "",
    "14-06-2026 9h30",
    "2026/06/14",
];
const UNKNOWN_CHANNELS: [&str; 3] = ["fax", "email", "bưu điện"];

/// NFC values and their NFD spelling, as Windows tools export them.
const NFD_SPELLINGS: [(&str, &str); 10] = [
    ("văn bản đến", "va\u{306}n ba\u{309}n đe\u{302}\u{301}n"),
    ("đến", "đe\u{302}\u{301}n"),
    ("điện tử", "đie\u{323}\u{302}n tu\u{31b}\u{309}"),
    ("giấy", "gia\u{302}\u{301}y"),
    ("Phòng Kinh tế", "Pho\u{300}ng Kinh te\u{302}\u{301}"),
    (
        "Phòng Văn hóa - Xã hội",
        "Pho\u{300}ng Va\u{306}n ho\u{301}a - Xa\u{303} ho\u{323}\u{302}i",
    ),
    (
        "Văn phòng HĐND và UBND",
        "Va\u{306}n pho\u{300}ng HĐND va\u{300} UBND",
    ),
    (
        "Trung tâm Phục vụ hành chính công",
        "Trung ta\u{302}m Phu\u{323}c vu\u{323} ha\u{300}nh chi\u{301}nh co\u{302}ng",
    ),
    ("cá nhân", "ca\u{301} nha\u{302}n"),
    ("cơ quan", "co\u{31b} quan"),
];

fn nfd_variant(value: &'static str) -> &'static str {
    NFD_SPELLINGS
        .iter()
        .find(|(nfc, _)| *nfc == value)
        .map_or(value, |(_, nfd)| nfd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;
    use serde_json::{Map, Value};
    use std::collections::{HashMap, HashSet};

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

    /// A minimal SPEC §2.5 normaliser: the generator's NFD spellings back to NFC, trimmed, lower case.
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

    /// A JSON line that meets SPEC §3: an object with every required field valid.
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
            let (stats, exchange, signatures) =
                run(&options(11, 8_000, noise), SignatureFormat::Jsonl);
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

            let (csv_stats, _, csv) =
                run(&options(11, 8_000, noise), SignatureFormat::VietnameseCsv);
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
            if let Some(previous) =
                seen_ids.insert(text(&object, "event_id").unwrap().to_owned(), line)
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
            if let Some(previous) =
                seen_ids.insert(text(&object, "event_id").unwrap().to_owned(), line)
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
                let mut seen: HashSet<&str> =
                    roles.get(doc_id.as_str()).cloned().unwrap_or_default();
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
}
