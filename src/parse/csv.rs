//! CSV records (RFC 4180), read with `csv-core`: quote-aware record
//! boundaries for the tailer, field splitting with a configurable delimiter,
//! and the header that names the fields. `csv-core` parses incrementally and
//! without allocating; what it forgives (text after a closing quote, a quote
//! left open) is refused here, as it always was.

use std::borrow::Cow;

use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

use super::record::{Field, FieldMap, RawRecord};

/// Ends a record handed to [`split_fields`]: 0xFF never occurs in UTF-8, so
/// newlines and carriage returns stay plain data inside a record.
const END_OF_TEXT: u8 = 0xFF;

fn reader(delimiter: u8, terminator: u8) -> Reader {
    ReaderBuilder::new()
        .delimiter(delimiter)
        .terminator(Terminator::Any(terminator))
        .build()
}

/// Where unquoted field bytes go while a record is read.
enum Output<'a> {
    /// Dropped: only the record's length is wanted.
    Discard,
    /// Kept, with the end of each field in `bytes`.
    Keep {
        bytes: &'a mut Vec<u8>,
        ends: &'a mut Vec<usize>,
    },
}

/// Feeds `input` to `rdr` until a record ends: the bytes it took, or `None`
/// when `input` ends first (the record is not complete yet). What was read,
/// complete or not, is left in a kept output.
fn read_record(rdr: &mut Reader, input: &[u8], output: Output) -> Option<usize> {
    let (mut scratch, mut scratch_ends) = ([0u8; 1024], [0usize; 64]);
    let (mut bytes, mut ends) = match output {
        Output::Discard => (None, None),
        Output::Keep { bytes, ends } => {
            bytes.resize(input.len(), 0);
            ends.resize(16, 0);
            (Some(bytes), Some(ends))
        }
    };
    let (mut nin, mut nout, mut nend) = (0, 0, 0);
    let mut ended = false;
    // The first byte alone: csv-core would strip a UTF-8 BOM at its first
    // read, and only the tailer strips one, at the start of a file.
    let mut fed = input.len().min(1);
    while nin < fed && !ended {
        let out: &mut [u8] = match bytes.as_deref_mut() {
            Some(b) => &mut b[nout..],
            None => &mut scratch[nout..],
        };
        let end_slots: &mut [usize] = match ends.as_deref_mut() {
            Some(e) => &mut e[nend..],
            None => &mut scratch_ends[nend..],
        };
        let (res, i, o, e) = rdr.read_record(&input[nin..fed], out, end_slots);
        (nin, nout, nend) = (nin + i, nout + o, nend + e);
        match res {
            ReadRecordResult::Record => ended = true,
            // Only when discarding: a kept output is as long as the input.
            ReadRecordResult::OutputFull => nout = 0,
            ReadRecordResult::OutputEndsFull => match ends.as_deref_mut() {
                Some(e) => e.resize(e.len() * 2, 0),
                None => nend = 0,
            },
            ReadRecordResult::InputEmpty | ReadRecordResult::End => fed = input.len(),
        }
    }
    if let (Some(b), Some(e)) = (bytes, ends) {
        b.truncate(nout);
        e.truncate(nend);
    }
    ended.then_some(nin)
}

/// Length of the first complete record in `buf`, including its line ending;
/// `None` while the record (or a quoted field spanning lines) is unfinished.
pub(crate) fn record_end(buf: &[u8], delimiter: u8) -> Option<usize> {
    match buf.first() {
        None => None,
        // A blank line is a record of its own: csv-core would skip it, and
        // the tailer counts its line.
        Some(b'\n') => Some(1),
        Some(_) => read_record(&mut reader(delimiter, b'\n'), buf, Output::Discard),
    }
}

/// Splits one record (line ending already removed) into its fields.
pub(crate) fn split_fields(record: &str, delimiter: u8) -> Result<Vec<Cow<'_, str>>, String> {
    if record.is_empty() {
        return Ok(vec![Cow::Borrowed("")]);
    }
    let mut input = Vec::with_capacity(record.len() + 1);
    input.extend_from_slice(record.as_bytes());
    input.push(END_OF_TEXT);
    let (mut bytes, mut ends) = (Vec::new(), Vec::new());
    let output = Output::Keep {
        bytes: &mut bytes,
        ends: &mut ends,
    };
    let mut rdr = reader(delimiter, END_OF_TEXT);
    let complete = read_record(&mut rdr, &input, output) == Some(input.len());
    // Problems are reported in the order they appear, as a reader would meet them.
    let fields = as_written(record, delimiter, &bytes, &ends)?;
    if !complete {
        return Err("unterminated quoted field".into());
    }
    Ok(fields)
}

/// The fields csv-core read, checked against the record as written: a quoted
/// field must be followed by the delimiter or the end of the record. Only
/// complete fields are checked (`ends`), so a record cut short passes here.
fn as_written<'a>(
    record: &'a str,
    delimiter: u8,
    bytes: &[u8],
    ends: &[usize],
) -> Result<Vec<Cow<'a, str>>, String> {
    let raw = record.as_bytes();
    let mut fields = Vec::with_capacity(ends.len());
    let (mut at, mut start) = (0, 0);
    for &end in ends {
        let value = &bytes[start..end];
        start = end;
        if raw.get(at) == Some(&b'"') {
            let mut quoted = Vec::with_capacity(value.len() + 2);
            quoted.push(b'"');
            for &b in value {
                quoted.push(b);
                if b == b'"' {
                    quoted.push(b'"');
                }
            }
            quoted.push(b'"');
            if !raw[at..].starts_with(&quoted) {
                return Err("text after a closing quote".into());
            }
            fields.push(Cow::Owned(String::from_utf8_lossy(value).into_owned()));
            at += quoted.len();
        } else {
            // Unquoted: csv-core copied the bytes as they are.
            fields.push(Cow::Borrowed(&record[at..at + value.len()]));
            at += value.len();
        }
        match raw.get(at) {
            None => {}
            Some(&d) if d == delimiter => at += 1,
            Some(_) => return Err("text after a closing quote".into()),
        }
    }
    Ok(fields)
}

/// Removes a trailing `\n` or `\r\n`.
pub(crate) fn trim_line_end(record: &str) -> &str {
    let r = record.strip_suffix('\n').unwrap_or(record);
    r.strip_suffix('\r').unwrap_or(r)
}

/// The header row of a CSV file: which column holds which canonical field.
#[derive(Debug, Clone)]
pub(crate) struct CsvHeader {
    columns: Vec<Option<Field>>,
}

impl CsvHeader {
    /// Reads the header row (BOM already removed).
    pub fn parse(record: &str, delimiter: u8, fields: &FieldMap) -> Result<CsvHeader, String> {
        let names = split_fields(trim_line_end(record), delimiter)
            .map_err(|e| format!("bad header row: {e}"))?;
        Ok(CsvHeader {
            columns: names.iter().map(|n| fields.lookup(n)).collect(),
        })
    }

    /// Reads one data record into canonical fields.
    pub(crate) fn record<'a>(
        &self,
        record: &'a str,
        delimiter: u8,
    ) -> Result<RawRecord<'a>, String> {
        let values = split_fields(trim_line_end(record), delimiter)?;
        if values.len() != self.columns.len() {
            return Err(format!(
                "expected {} fields as in the header, found {}",
                self.columns.len(),
                values.len()
            ));
        }
        let mut raw = RawRecord::default();
        for (column, value) in self.columns.iter().zip(values) {
            if let Some(field) = column {
                raw.set(*field, value);
            }
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceKind;

    #[test]
    fn record_end_respects_quoted_newlines_and_partial_records() {
        assert_eq!(record_end(b"a,b\nc", b','), Some(4));
        assert_eq!(record_end(b"a,\"b\nc\"\nd", b','), Some(8));
        assert_eq!(
            record_end(b"a,\"b\nc", b','),
            None,
            "open quote: not complete"
        );
        assert_eq!(record_end(b"a,b", b','), None, "no line end yet");
        assert_eq!(record_end(b"a;\"x\"\"\n\";z\n", b';'), Some(11));
        assert_eq!(
            record_end(b"ab\"c\nnext\n", b','),
            Some(5),
            "a quote inside an unquoted field is literal"
        );
    }

    #[test]
    fn fields_split_with_rfc4180_quoting() {
        let f = split_fields(
            r#"a;"b;c";"say ""hi""";;"multi
line""#,
            b';',
        )
        .unwrap();
        assert_eq!(f, vec!["a", "b;c", "say \"hi\"", "", "multi\nline"]);
        assert!(split_fields(r#"a,"open"#, b',').is_err());
        assert!(split_fields(r#""x"y,z"#, b',').is_err());
    }

    #[test]
    fn header_maps_vietnamese_names_and_counts_fields() {
        let map = FieldMap::new(
            SourceKind::Signature,
            &[
                (Field::DocId, "Mã văn bản".into()),
                (Field::Role, "Vai trò".into()),
            ],
        );
        let h = CsvHeader::parse("Mã văn bản;Vai trò;Ghi chú\r\n", b';', &map).unwrap();
        assert_eq!(h.columns, vec![Some(Field::DocId), Some(Field::Role), None]);
        assert!(h.record("A;person;x\r\n", b';').is_ok());
        assert!(h.record("A;person\n", b';').is_err());
    }
}
