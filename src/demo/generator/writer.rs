//! Writing the two files: events reordered by time, each rendered in its
//! file's format, and the counts of what was written.

use std::cmp::Ordering;
use std::io::{self, BufWriter, Write};

use super::event::{Event, Line};
use super::{csv, GenStats, SignatureFormat};

/// The two files being written, in their formats, with the counts so far.
pub(super) struct FeedWriter<'a> {
    exchange: BufWriter<&'a mut dyn Write>,
    signatures: BufWriter<&'a mut dyn Write>,
    sig_format: SignatureFormat,
    line: String,
    pub(super) stats: GenStats,
}

impl<'a> FeedWriter<'a> {
    pub(super) fn new(
        exchange: &'a mut dyn Write,
        signatures: &'a mut dyn Write,
        sig_format: SignatureFormat,
    ) -> Self {
        FeedWriter {
            exchange: BufWriter::with_capacity(1 << 16, exchange),
            signatures: BufWriter::with_capacity(1 << 16, signatures),
            sig_format,
            line: String::with_capacity(512),
            stats: GenStats::default(),
        }
    }

    pub(super) fn write_csv_header(&mut self) -> io::Result<()> {
        self.line.clear();
        csv::push_header(&mut self.line);
        self.signatures.write_all(self.line.as_bytes())
    }

    pub(super) fn write(&mut self, event: &Event) -> io::Result<()> {
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

    /// Flushes both files and returns the counts.
    pub(super) fn finish(mut self) -> io::Result<GenStats> {
        self.exchange.flush()?;
        self.signatures.flush()?;
        Ok(self.stats)
    }
}

/// An event waiting in `generate`'s reorder buffer, ordered by time then arrival.
pub(super) struct Queued {
    pub(super) time: i64,
    pub(super) seq: u64,
    pub(super) event: Event,
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
