//! The text of an edXML element, streamed from the input: entity references
//! resolved across chunk boundaries, header fields collected up to a cap,
//! attachments base64-decoded and hashed as they pass.

use std::io::BufRead;

use quick_xml::Reader;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::input::Input;
use super::spool::PdfSpool;
use super::{io_error, EdxmlError, MAX_FIELD_BYTES};

/// Decodes base64 in pieces and hashes the bytes (and spools them, for a
/// PDF to verify).
pub(super) struct Base64Hasher {
    hasher: Sha256,
    spool: Option<PdfSpool>,
    quad: [u8; 4],
    filled: usize,
    padding: usize,
    bytes: u64,
    valid: bool,
}

impl Base64Hasher {
    pub(super) fn new(spool: Option<PdfSpool>) -> Base64Hasher {
        Base64Hasher {
            hasher: Sha256::new(),
            spool,
            quad: [0; 4],
            filled: 0,
            padding: 0,
            bytes: 0,
            valid: true,
        }
    }

    /// Decoding table: 0–63 for base64 digits, `SKIP` for white space, `PAD`, `BAD`.
    const TABLE: [u8; 256] = {
        let mut t = [Self::BAD; 256];
        let digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut i = 0;
        while i < 64 {
            t[digits[i] as usize] = i as u8;
            i += 1;
        }
        t[b' ' as usize] = Self::SKIP;
        t[b'\t' as usize] = Self::SKIP;
        t[b'\r' as usize] = Self::SKIP;
        t[b'\n' as usize] = Self::SKIP;
        t[b'=' as usize] = Self::PAD;
        t
    };
    const SKIP: u8 = 0xfd;
    const PAD: u8 = 0xfe;
    const BAD: u8 = 0xff;

    pub(super) fn feed(&mut self, data: &[u8]) {
        if !self.valid {
            return;
        }
        let mut out = [0u8; 3 * 1024];
        let mut len = 0;
        for &c in data {
            let v = Self::TABLE[c as usize];
            if v < 64 {
                if self.padding > 0 {
                    self.valid = false; // data after padding
                    break;
                }
                self.quad[self.filled] = v;
            } else if v == Self::SKIP {
                continue;
            } else if v == Self::PAD && self.filled >= 2 {
                self.padding += 1;
                self.quad[self.filled] = 0;
            } else {
                // Stop here, but count what came before, whatever the chunking.
                self.valid = false;
                break;
            }
            self.filled += 1;
            if self.filled == 4 {
                let q = self.quad;
                let n = (u32::from(q[0]) << 18)
                    | (u32::from(q[1]) << 12)
                    | (u32::from(q[2]) << 6)
                    | u32::from(q[3]);
                let keep = 3 - self.padding.min(2);
                out[len] = (n >> 16) as u8;
                out[len + 1] = (n >> 8) as u8;
                out[len + 2] = n as u8;
                len += keep;
                self.filled = 0;
                if len + 3 > out.len() {
                    self.emit(&out[..len]);
                    len = 0;
                }
            }
        }
        self.emit(&out[..len]);
    }

    fn emit(&mut self, decoded: &[u8]) {
        self.hasher.update(decoded);
        self.bytes += decoded.len() as u64;
        if let Some(s) = &mut self.spool {
            s.write(decoded);
        }
    }

    pub(super) fn invalidate(&mut self) {
        self.valid = false;
    }

    #[cfg(test)]
    pub(super) fn finish(self) -> (u64, Option<String>) {
        let (bytes, sha, _) = self.finish_spooled();
        (bytes, sha)
    }

    /// Size, sha256 and the spooled PDF (`None` when not a PDF, not
    /// spooled, or not valid base64: an attachment without a sha256 joins nothing).
    pub(super) fn finish_spooled(
        self,
    ) -> (u64, Option<String>, Option<Result<NamedTempFile, String>>) {
        if !self.valid || self.filled != 0 {
            return (self.bytes, None, None);
        }
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.bytes, Some(hex), self.spool.and_then(PdfSpool::finish))
    }
}

/// The text of the field being read, with entity references resolved.
#[derive(Default)]
pub(super) struct TextCollector {
    pub(super) bytes: Vec<u8>,
    /// Inside `&...;`: the name read so far.
    pub(super) entity: Option<Vec<u8>>,
}

/// Resolves a predefined entity or a character reference.
fn resolve_entity(name: &[u8]) -> Result<char, EdxmlError> {
    let s = String::from_utf8_lossy(name);
    let c = match s.as_ref() {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        n => {
            if let Some(hex) = n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
            } else if let Some(dec) = n.strip_prefix('#') {
                dec.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                None
            }
        }
    };
    c.filter(|&c| c != '\0')
        .ok_or_else(|| EdxmlError::UnknownEntity(s.into_owned()))
}

/// A run of raw text: plain bytes, or the name of a reference `&name;`.
enum Piece<'a> {
    Plain(&'a [u8]),
    Ref(&'a [u8]),
}

/// Splits raw text into plain runs and references; `entity` carries a
/// reference cut by a chunk boundary.
fn split_refs(
    data: &[u8],
    entity: &mut Option<Vec<u8>>,
    mut visit: impl FnMut(Piece) -> Result<(), EdxmlError>,
) -> Result<(), EdxmlError> {
    let mut start = 0;
    for (i, &c) in data.iter().enumerate() {
        if let Some(name) = entity.as_mut() {
            if c == b';' {
                let name = entity.take().expect("inside a reference");
                visit(Piece::Ref(&name))?;
                start = i + 1;
            } else if name.len() >= 16 {
                return Err(EdxmlError::UnknownEntity(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            } else {
                name.push(c);
            }
        } else if c == b'&' {
            visit(Piece::Plain(&data[start..i]))?;
            *entity = Some(Vec::new());
        }
    }
    if entity.is_none() {
        visit(Piece::Plain(&data[start.min(data.len())..]))?;
    }
    Ok(())
}

/// Where the text of the element being read goes.
pub(super) enum Sink<'a> {
    Discard,
    /// A header field: text with references resolved, up to [`MAX_FIELD_BYTES`];
    /// the element's name is for the error.
    Field(&'a mut TextCollector, &'a str),
    /// An attachment's base64 content; the reference being read, if cut by a chunk.
    Attachment(&'a mut Base64Hasher, &'a mut Option<Vec<u8>>),
}

impl Sink<'_> {
    /// Feeds character data, where `&name;` is a reference.
    fn text(&mut self, chunk: &[u8]) -> Result<(), EdxmlError> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Field(field, element) => {
                let bytes = &mut field.bytes;
                split_refs(chunk, &mut field.entity, |piece| {
                    match piece {
                        Piece::Plain(p) => bytes.extend_from_slice(p),
                        Piece::Ref(name) => {
                            let c = resolve_entity(name)?;
                            let mut b = [0u8; 4];
                            bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                        }
                    }
                    Ok(())
                })?;
                check_field(field, element)
            }
            Sink::Attachment(hasher, entity) => {
                if entity.is_none() && !chunk.contains(&b'&') {
                    hasher.feed(chunk);
                    return Ok(());
                }
                split_refs(chunk, entity, |piece| {
                    match piece {
                        Piece::Plain(p) => hasher.feed(p),
                        // Line breaks written as character references are fine in base64.
                        Piece::Ref(name) => match resolve_entity(name) {
                            Ok(c) if c.is_ascii_whitespace() => {}
                            _ => hasher.invalidate(),
                        },
                    }
                    Ok(())
                })
            }
        }
    }

    /// Feeds the content of a CDATA section, taken as it is.
    fn raw(&mut self, chunk: &[u8]) -> Result<(), EdxmlError> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Field(field, element) => {
                field.bytes.extend_from_slice(chunk);
                check_field(field, element)
            }
            Sink::Attachment(hasher, _) => {
                hasher.feed(chunk);
                Ok(())
            }
        }
    }

    /// Markup starts: a reference still open there was never closed by `;`.
    fn markup(&mut self) -> Result<(), EdxmlError> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Field(field, _) => match field.entity.take() {
                Some(name) => Err(EdxmlError::UnknownEntity(
                    String::from_utf8_lossy(&name).into_owned(),
                )),
                None => Ok(()),
            },
            Sink::Attachment(hasher, entity) => {
                if entity.take().is_some() {
                    hasher.invalidate();
                }
                Ok(())
            }
        }
    }
}

fn check_field(field: &TextCollector, element: &str) -> Result<(), EdxmlError> {
    if field.bytes.len() > MAX_FIELD_BYTES {
        return Err(EdxmlError::FieldTooLong(element.to_string()));
    }
    Ok(())
}

const CDATA_OPEN: &[u8] = b"<![CDATA[";
const CDATA_CLOSE: &[u8] = b"]]>";

/// Streams an element's text into `sink` up to the next markup; a CDATA
/// section is text too and is streamed the same way, never buffered whole.
pub(super) fn stream_text<R: BufRead>(
    reader: &mut Reader<Input<R>>,
    mut sink: Sink,
) -> Result<(), EdxmlError> {
    loop {
        let mut stream = reader.stream();
        let buf = stream.fill_buf().map_err(|e| io_error(&e))?;
        if buf.is_empty() {
            return Ok(()); // the reader reports the truncation
        }
        let end = buf.iter().position(|&b| b == b'<');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        sink.text(chunk)?;
        let n = chunk.len();
        stream.consume(n);
        if end.is_none() {
            continue;
        }
        sink.markup()?;
        let next = reader
            .get_mut()
            .peek(CDATA_OPEN.len())
            .map_err(|e| io_error(&e))?;
        if !next.starts_with(CDATA_OPEN) {
            return Ok(());
        }
        reader.stream().consume(CDATA_OPEN.len());
        stream_cdata(reader, &mut sink)?;
    }
}

/// Streams a CDATA section's content (after its `<![CDATA[`) into `sink`,
/// then consumes its `]]>`, which may be split across chunks.
fn stream_cdata<R: BufRead>(
    reader: &mut Reader<Input<R>>,
    sink: &mut Sink,
) -> Result<(), EdxmlError> {
    loop {
        let buf = reader
            .get_mut()
            .peek(CDATA_CLOSE.len())
            .map_err(|e| io_error(&e))?;
        if buf.len() < CDATA_CLOSE.len() {
            let left = buf.len() as u64;
            return Err(EdxmlError::Truncated(reader.buffer_position() + left));
        }
        let (content, used) = match find_cdata_close(buf) {
            Some(i) => (i, i + CDATA_CLOSE.len()),
            None => {
                // Hold back a `]` or `]]` at the end: the start of a `]]>` cut by the chunk.
                let held = buf.iter().rev().take(2).take_while(|&&b| b == b']').count();
                (buf.len() - held, buf.len() - held)
            }
        };
        sink.raw(&buf[..content])?;
        reader.stream().consume(used);
        if used > content {
            return Ok(());
        }
    }
}

fn find_cdata_close(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b']') {
        let at = from + i;
        if buf[at..].starts_with(CDATA_CLOSE) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_decoded_and_hashed_in_pieces() {
        // sha256("hello world")
        let expected = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let text = "aGVsbG8g\r\nd29y bGQ=";
        for split in 0..text.len() {
            let mut h = Base64Hasher::new(None);
            h.feed(&text.as_bytes()[..split]);
            h.feed(&text.as_bytes()[split..]);
            assert_eq!(
                h.finish(),
                (11, Some(expected.to_string())),
                "split at {split}"
            );
        }
        let mut bad = Base64Hasher::new(None);
        bad.feed(b"${__StringFromFile(test.txt,,,)}");
        assert_eq!(bad.finish().1, None);
        let mut short = Base64Hasher::new(None);
        short.feed(b"aGVsbG8");
        assert_eq!(short.finish().1, None, "an incomplete quad is not valid");
    }

    #[test]
    fn references_are_resolved_across_chunks() {
        let mut out = Vec::new();
        let mut entity = None;
        for part in [&b"a &am"[..], b"p; &#x1EA1;b"] {
            split_refs(part, &mut entity, |piece| {
                match piece {
                    Piece::Plain(p) => out.extend_from_slice(p),
                    Piece::Ref(n) => {
                        out.extend_from_slice(resolve_entity(n)?.to_string().as_bytes())
                    }
                }
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "a & ạb");
        assert!(resolve_entity(b"xxe").is_err());
    }
}
