//! CSV records (RFC 4180): quote-aware record boundaries for the tailer, field
//! splitting with a configurable delimiter, and the header that names the fields.

use std::borrow::Cow;

use super::record::{Field, FieldMap, RawRecord};

/// Where a quote-aware scan of CSV bytes stands between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum QuoteState {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    /// Just saw a quote inside a quoted field: either `""` or the closing quote.
    QuoteInQuoted,
}

/// Length of the first complete record in `buf`, including its line ending;
/// `None` while the record (or a quoted field spanning lines) is unfinished.
pub fn record_end(buf: &[u8], delimiter: u8) -> Option<usize> {
    let mut state = QuoteState::FieldStart;
    for (i, &b) in buf.iter().enumerate() {
        state = match (state, b) {
            (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => QuoteState::Quoted,
            (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
            (_, b'\n') => return Some(i + 1),
            (QuoteState::FieldStart, b'"') => QuoteState::Quoted,
            (_, d) if d == delimiter => QuoteState::FieldStart,
            _ => QuoteState::Unquoted,
        };
    }
    None
}

/// Splits one record (line ending already removed) into its fields.
pub fn split_fields(record: &str, delimiter: u8) -> Result<Vec<Cow<'_, str>>, String> {
    let delim = delimiter as char;
    let mut fields = Vec::new();
    let mut rest = record;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".into()),
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => value.push(c),
                }
            };
            fields.push(Cow::Owned(value));
            let after = &quoted[end..];
            if after.is_empty() {
                return Ok(fields);
            }
            match after.strip_prefix(delim) {
                Some(r) => rest = r,
                None => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.find(delim) {
                Some(i) => {
                    fields.push(Cow::Borrowed(&rest[..i]));
                    rest = &rest[i + 1..];
                }
                None => {
                    fields.push(Cow::Borrowed(rest));
                    return Ok(fields);
                }
            }
        }
    }
}

/// Removes a trailing `\n` or `\r\n`.
pub fn trim_line_end(record: &str) -> &str {
    let r = record.strip_suffix('\n').unwrap_or(record);
    r.strip_suffix('\r').unwrap_or(r)
}

/// The header row of a CSV file: which column holds which canonical field.
#[derive(Debug, Clone)]
pub struct CsvHeader {
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
    pub fn record<'a>(&self, record: &'a str, delimiter: u8) -> Result<RawRecord<'a>, String> {
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
