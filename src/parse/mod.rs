//! Bytes to events: JSON Lines and CSV records, field mapping, value aliases,
//! time formats, and validation into typed events. Pure: no I/O.

pub mod csv;
pub mod edxml;
#[cfg(test)]
mod fuzz_tests;
pub mod jsonl;
pub mod normalize;
pub mod record;
pub mod time;

use chrono_tz::Tz;

use crate::config::{Format, SourceConfig};
use crate::model::{Event, SourceKind};
use csv::CsvHeader;
use normalize::Aliases;
use record::FieldMap;

/// Parses the records of one source into events.
#[derive(Debug, Clone)]
pub struct RecordParser {
    pub kind: SourceKind,
    pub format: Format,
    pub delimiter: u8,
    fields: FieldMap,
    aliases: Aliases,
    tz: Tz,
}

impl RecordParser {
    pub fn new(source: &SourceConfig, tz: Tz) -> RecordParser {
        RecordParser {
            kind: source.kind,
            format: source.format,
            delimiter: source.csv_delimiter,
            fields: source.fields.clone(),
            aliases: source.aliases.clone(),
            tz,
        }
    }

    /// Reads a CSV header row.
    pub fn header(&self, record: &str) -> Result<CsvHeader, String> {
        CsvHeader::parse(record, self.delimiter, &self.fields)
    }

    /// Parses one complete record (a JSON line, or a CSV record after its header).
    pub fn parse(&self, record: &str, header: Option<&CsvHeader>) -> Result<Event, String> {
        let raw = match (self.format, header) {
            (Format::Jsonl, _) => jsonl::parse_line(record, &self.fields)?,
            (Format::Csv, Some(h)) => h.record(record, self.delimiter)?,
            (Format::Csv, None) => return Err("CSV record before any header row".into()),
            (Format::Edxml, _) => return Err("edXML messages are read whole, not by record".into()),
        };
        record::validate(&raw, self.kind, &self.aliases, self.tz)
    }
}
