//! Bytes to events: JSON Lines and CSV records, field mapping, value aliases,
//! time formats, and validation into typed events. Pure: no I/O.

pub(crate) mod csv;
pub(crate) mod edxml;
#[cfg(test)]
mod fuzz_tests;
pub(crate) mod jsonl;
pub(crate) mod normalize;
pub(crate) mod record;
pub(crate) mod time;

use chrono_tz::Tz;

use crate::model::{Event, SourceKind};
use csv::CsvHeader;
use normalize::Aliases;
use record::FieldMap;

/// How a source's input names fields and spells values: the field-name map
/// and the alias tables (`[sources.fields]`, `[sources.aliases.*]`).
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub(crate) fields: FieldMap,
    pub(crate) aliases: Aliases,
}

/// How the records of a log are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// One JSON object per line (and each event of an HTTP feed page).
    Jsonl,
    /// RFC 4180 with a header row.
    Csv { delimiter: u8 },
}

/// What a [`RecordParser`] needs to know about its source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParseSettings<'a> {
    pub(crate) kind: SourceKind,
    pub format: RecordFormat,
    pub(crate) mapping: &'a Mapping,
    /// The agency's zone, for local times.
    pub(crate) timezone: Tz,
}

/// Parses the records of one source into events.
#[derive(Debug, Clone)]
pub(crate) struct RecordParser {
    kind: SourceKind,
    format: RecordFormat,
    mapping: Mapping,
    tz: Tz,
}

impl RecordParser {
    pub(crate) fn new(settings: &ParseSettings) -> RecordParser {
        RecordParser {
            kind: settings.kind,
            format: settings.format,
            mapping: settings.mapping.clone(),
            tz: settings.timezone,
        }
    }

    /// Reads a CSV header row.
    pub(crate) fn header(&self, record: &str) -> Result<CsvHeader, String> {
        match self.format {
            RecordFormat::Csv { delimiter } => {
                CsvHeader::parse(record, delimiter, &self.mapping.fields)
            }
            RecordFormat::Jsonl => Err("a header row in a JSON Lines log".into()),
        }
    }

    /// Parses one complete record (a JSON line, or a CSV record after its header).
    pub fn parse(&self, record: &str, header: Option<&CsvHeader>) -> Result<Event, String> {
        let raw = match (self.format, header) {
            (RecordFormat::Jsonl, _) => jsonl::parse_line(record, &self.mapping.fields)?,
            (RecordFormat::Csv { delimiter }, Some(h)) => h.record(record, delimiter)?,
            (RecordFormat::Csv { .. }, None) => {
                return Err("CSV record before any header row".into())
            }
        };
        record::validate(&raw, self.kind, &self.mapping.aliases, self.tz)
    }
}
