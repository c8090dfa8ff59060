//! The JSON Lines format of both logs: one object per line with the
//! canonical field names, and the bad lines (cut off, an array) noise adds.

use super::event::{BadLine, Event, ExchangeEvent, Line, Link, SignatureEvent, TimeStyle};
use super::text::{push_hex, push_padded, push_time, truncate_at_char};

impl Event {
    /// Writes the line as one JSON object (without its newline).
    pub(super) fn render_json(&self, buf: &mut String) {
        match self {
            Event::Exchange(ex) => ex.render_json(buf),
            Event::Signature(sig) => sig.render_json(buf),
        }
    }
}

impl ExchangeEvent {
    /// Writes the line as one JSON object, or its bad form.
    pub(super) fn render_json(&self, buf: &mut String) {
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

impl SignatureEvent {
    /// Writes the line as one JSON object, or its bad form.
    pub(super) fn render_json(&self, buf: &mut String) {
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

pub(super) fn push_json_str(buf: &mut String, s: &str) {
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
