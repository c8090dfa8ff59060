//! The signing service's CSV export: UTF-8 BOM, `;` delimiter, CRLF rows,
//! Vietnamese headers, `valid` as `1`/`0`.

use super::event::{BadLine, Line, Link, SignatureEvent};
use super::text::{push_hex, push_padded, push_time, truncate_at_char};

/// Canonical signature field and its Vietnamese CSV header, in column order.
pub(crate) const CSV_FIELD_MAP: [(&str, &str); 9] = [
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

/// Writes the header row (BOM, Vietnamese names, CRLF) into `buf`.
pub(super) fn push_header(buf: &mut String) {
    buf.push('\u{feff}');
    for (i, (_, header)) in CSV_FIELD_MAP.iter().enumerate() {
        if i > 0 {
            buf.push(';');
        }
        push_csv_field(buf, header);
    }
    buf.push_str("\r\n");
}

impl SignatureEvent {
    /// Writes the line as one `;`-delimited row (without its CRLF).
    pub(super) fn render_csv(&self, buf: &mut String) {
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

/// Writes one RFC 4180 field for a `;`-delimited file.
pub(super) fn push_csv_field(buf: &mut String, s: &str) {
    if s.contains([';', '"', '\n', '\r']) {
        buf.push('"');
        buf.push_str(&s.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(s);
    }
}
