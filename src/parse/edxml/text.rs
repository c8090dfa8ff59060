//! The text of an edXML element, streamed from the input: entity references
//! resolved across chunk boundaries, header fields collected up to a cap,
//! attachments base64-decoded and hashed as they pass.

use std::io::BufRead;

use quick_xml::Reader;
use sha2::{Digest, Sha256};

use super::{EdxmlError, MAX_FIELD_BYTES};

/// What a text node feeds.
pub(super) enum Sink {
    Discard,
    Field,
    Attachment,
}

/// Decodes base64 in pieces and hashes the bytes.
pub(super) struct Base64Hasher {
    hasher: Sha256,
    quad: [u8; 4],
    filled: usize,
    padding: usize,
    bytes: u64,
    valid: bool,
}

impl Base64Hasher {
    pub(super) fn new() -> Base64Hasher {
        Base64Hasher {
            hasher: Sha256::new(),
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
                    return;
                }
                self.quad[self.filled] = v;
            } else if v == Self::SKIP {
                continue;
            } else if v == Self::PAD && self.filled >= 2 {
                self.padding += 1;
                self.quad[self.filled] = 0;
            } else {
                self.valid = false;
                return;
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
                    self.hasher.update(&out[..len]);
                    self.bytes += len as u64;
                    len = 0;
                }
            }
        }
        self.hasher.update(&out[..len]);
        self.bytes += len as u64;
    }

    pub(super) fn invalidate(&mut self) {
        self.valid = false;
    }

    pub(super) fn finish(self) -> (u64, Option<String>) {
        if !self.valid || self.filled != 0 {
            return (self.bytes, None);
        }
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.bytes, Some(hex))
    }
}

/// The text of the field being read, with entity references resolved.
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

/// Reads text up to the next markup straight from the input, feeding `sink`.
pub(super) fn stream_text<R: BufRead>(
    reader: &mut Reader<R>,
    sink: &mut Sink,
    field: &mut TextCollector,
    attachment: &mut Option<Base64Hasher>,
    element: &str,
) -> Result<(), EdxmlError> {
    let mut stream = reader.stream();
    loop {
        let buf = stream
            .fill_buf()
            .map_err(|e| EdxmlError::Io(e.to_string()))?;
        if buf.is_empty() {
            return Ok(()); // the reader reports the truncation
        }
        let end = buf.iter().position(|&b| b == b'<');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        match sink {
            Sink::Discard => {}
            Sink::Field => {
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
                if field.bytes.len() > MAX_FIELD_BYTES {
                    return Err(EdxmlError::FieldTooLong(element.to_string()));
                }
            }
            Sink::Attachment => {
                if let Some(h) = attachment.as_mut() {
                    if field.entity.is_none() && !chunk.contains(&b'&') {
                        h.feed(chunk);
                        let n = chunk.len();
                        stream.consume(n);
                        if end.is_some() {
                            return Ok(());
                        }
                        continue;
                    }
                    let mut invalid = false;
                    split_refs(chunk, &mut field.entity, |piece| {
                        match piece {
                            Piece::Plain(p) => h.feed(p),
                            // Line breaks written as character references are fine in base64.
                            Piece::Ref(name) => match resolve_entity(name) {
                                Ok(c) if c.is_ascii_whitespace() => {}
                                _ => invalid = true,
                            },
                        }
                        Ok(())
                    })?;
                    if invalid {
                        h.invalidate();
                    }
                }
            }
        }
        let n = chunk.len();
        stream.consume(n);
        if end.is_some() {
            return Ok(());
        }
    }
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
            let mut h = Base64Hasher::new();
            h.feed(&text.as_bytes()[..split]);
            h.feed(&text.as_bytes()[split..]);
            assert_eq!(
                h.finish(),
                (11, Some(expected.to_string())),
                "split at {split}"
            );
        }
        let mut bad = Base64Hasher::new();
        bad.feed(b"${__StringFromFile(test.txt,,,)}");
        assert_eq!(bad.finish().1, None);
        let mut short = Base64Hasher::new();
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
