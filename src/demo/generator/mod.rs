//! Deterministic synthetic exchange and signature feeds for `docflowd demo` and the benchmark.
//! Owns the make-believe commune office (units, numbers, subjects, signers) and the noise real exports carry.
//!
//! - [`shape`]: how many lines a document takes, drawn ahead so the line budget is exact;
//! - [`document`]: one document's draws (kind, number, copies, signatures), on [`Generator`];
//! - [`population`]: the office's units, counterparts, document types and spellings;
//! - [`noise`]: NFD text, duplicates and bad lines;
//! - [`event`]: what a line says; [`jsonl`] and [`csv`] write it; [`text`] formats times and numbers;
//! - [`writer`]: the two files, in time order; [`rng`]: the seeded random streams.

mod csv;
mod document;
mod event;
mod jsonl;
mod noise;
mod population;
mod rng;
mod shape;
#[cfg(test)]
mod tests;
mod text;
mod writer;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

pub(crate) use csv::CSV_FIELD_MAP;
use event::Event;
use population::DOC_TYPES;
use rng::{mix, SplitMix64};
use shape::Shape;
use writer::{FeedWriter, Queued};

/// Settings of one synthetic feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenOptions {
    /// Seed of every random choice: the same options give the same bytes.
    pub(crate) seed: u64,
    /// Unix seconds of the first document.
    pub(crate) start: i64,
    /// Unix seconds of the last document; documents are spread evenly in between, with jitter.
    pub(crate) end: i64,
    /// Exchange lines to write in total, bad and duplicate lines included.
    pub(crate) exchange_events: usize,
    /// Adds a few bad lines, exact duplicates and NFD text as real exports have (demo: on, benchmark: off).
    pub(crate) realistic_noise: bool,
}

/// What `generate` wrote; bad and duplicate lines are included in the per-file line counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GenStats {
    /// Documents started (the last one may have lost recipients to the exchange-line budget).
    pub(crate) documents: usize,
    /// Lines in the exchange file.
    pub(crate) exchange_events: usize,
    /// Lines in the signature file, the CSV header excluded.
    pub(crate) signature_events: usize,
    /// Deliberately invalid lines in both files.
    pub(crate) bad_lines: usize,
    /// Exact copies of an earlier line (same `event_id`) in both files.
    pub(crate) duplicate_lines: usize,
}

/// Layout of the signature file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureFormat {
    /// One JSON object per line with the canonical field names.
    Jsonl,
    /// UTF-8 BOM, `;` delimiter, CRLF rows, Vietnamese header (see [`CSV_FIELD_MAP`]), `valid` as `1`/`0`.
    VietnameseCsv,
}

/// Ready-to-write JSON lines of one document, for the demo's live appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DocumentEvents {
    /// Exchange events (one per recipient for outgoing documents).
    pub(crate) exchange: Vec<String>,
    /// Signature events due now (outgoing ones are dated a little before the exchange).
    pub(crate) signatures: Vec<String>,
    /// Signatures that arrive hours or days later, with their due unix time.
    pub(crate) late_signatures: Vec<(i64, String)>,
}

/// Writes the exchange events (JSONL) and the signature events (JSONL or CSV), each file in time order.
pub(crate) fn generate(
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
pub(crate) fn generate_with(
    generator: &mut Generator,
    opts: &GenOptions,
    exchange: &mut dyn Write,
    signatures: &mut dyn Write,
    sig_format: SignatureFormat,
) -> io::Result<GenStats> {
    let mut writer = FeedWriter::new(exchange, signatures, sig_format);
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
    writer.finish()
}

/// Streaming source of synthetic documents; `generate` is built on it.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
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
    pub(crate) fn new(opts: &GenOptions) -> Self {
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
    pub(crate) fn next_document(&mut self, time: i64) -> DocumentEvents {
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
