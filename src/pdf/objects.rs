//! PDF objects parsed from a byte slice with bounded depth and size: what the
//! xref reader and the difference check need, never a whole document.

use std::collections::BTreeMap;

/// Deepest nesting of arrays and dictionaries accepted (hostile files nest deeper).
const MAX_DEPTH: usize = 32;
/// Most items in one parsed object, all levels together.
const MAX_ITEMS: usize = 100_000;

/// A PDF object. Strings keep their raw bytes; streams keep only their dictionary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32, u16),
}

/// A dictionary, keys without the slash.
pub(crate) type Dict = BTreeMap<Vec<u8>, Obj>;

/// Why bytes are not a PDF object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PDF syntax error at byte {at}: {what}")]
pub(crate) struct SyntaxError {
    pub(crate) at: usize,
    pub(crate) what: &'static str,
}

impl Obj {
    pub(crate) fn as_dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }
}

/// The value of `/key` in a dictionary.
pub(crate) fn get<'d>(d: &'d Dict, key: &str) -> Option<&'d Obj> {
    d.get(key.as_bytes())
}

/// Whether a dictionary's `/key` is the name `value`.
pub(crate) fn name_is(d: &Dict, key: &str, value: &str) -> bool {
    get(d, key).and_then(Obj::as_name) == Some(value.as_bytes())
}

pub(crate) fn is_white(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// A cursor over bytes that parses PDF tokens and objects.
pub(crate) struct Parser<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    items: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Parser<'a> {
        Parser { buf, pos, items: 0 }
    }

    fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { at: self.pos, what }
    }

    /// Skips white space and comments.
    pub(crate) fn skip_white(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(&c) = self.buf.get(self.pos) {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// A regular token (number or keyword), after white space.
    pub(crate) fn word(&mut self) -> &'a [u8] {
        self.skip_white();
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if is_white(b) || is_delim(b) {
                break;
            }
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// Consumes `keyword` if it comes next.
    pub(crate) fn keyword(&mut self, keyword: &[u8]) -> bool {
        let save = self.pos;
        if self.word() == keyword {
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// An unsigned integer token.
    pub(crate) fn uint(&mut self) -> Option<u64> {
        let w = self.word();
        if w.is_empty() || w.len() > 19 || !w.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(w).ok()?.parse().ok()
    }

    /// `n g obj`: the object header at the cursor.
    pub(crate) fn object_header(&mut self) -> Result<(u32, u16), SyntaxError> {
        let n = self.uint().ok_or_else(|| self.err("object number"))?;
        let g = self.uint().ok_or_else(|| self.err("generation"))?;
        if !self.keyword(b"obj") {
            return Err(self.err("`obj` keyword"));
        }
        Ok((
            u32::try_from(n).map_err(|_| self.err("object number"))?,
            u16::try_from(g).map_err(|_| self.err("generation"))?,
        ))
    }

    /// One object at the cursor.
    pub(crate) fn object(&mut self) -> Result<Obj, SyntaxError> {
        self.object_at(0)
    }

    fn object_at(&mut self, depth: usize) -> Result<Obj, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(self.err("object too large"));
        }
        self.skip_white();
        let Some(&b) = self.buf.get(self.pos) else {
            return Err(self.err("unexpected end"));
        };
        match b {
            b'/' => {
                self.pos += 1;
                Ok(Obj::Name(self.name_bytes()))
            }
            b'(' => self.literal_string().map(Obj::Str),
            b'<' if self.buf.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                self.dict(depth).map(Obj::Dict)
            }
            b'<' => self.hex_string().map(Obj::Str),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_white();
                    match self.buf.get(self.pos) {
                        None => return Err(self.err("unterminated array")),
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Obj::Array(items));
                        }
                        Some(_) => items.push(self.object_at(depth + 1)?),
                    }
                }
            }
            _ => self.number_or_keyword(),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Dict, SyntaxError> {
        let mut d = Dict::new();
        loop {
            self.skip_white();
            match self.buf.get(self.pos) {
                None => return Err(self.err("unterminated dictionary")),
                Some(b'>') if self.buf.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    return Ok(d);
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name_bytes();
                    let value = self.object_at(depth + 1)?;
                    d.insert(key, value);
                }
                Some(_) => return Err(self.err("dictionary key")),
            }
        }
    }

    fn name_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(&b) = self.buf.get(self.pos) {
            if is_white(b) || is_delim(b) {
                break;
            }
            self.pos += 1;
            if b == b'#' {
                let hex = self.buf.get(self.pos..self.pos + 2);
                if let Some(v) = hex.and_then(|h| hex::decode(h).ok()) {
                    out.push(v[0]);
                    self.pos += 2;
                    continue;
                }
            }
            out.push(b);
        }
        out
    }

    fn literal_string(&mut self) -> Result<Vec<u8>, SyntaxError> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut open = 1usize;
        while let Some(&b) = self.buf.get(self.pos) {
            self.pos += 1;
            match b {
                b'\\' => {
                    if let Some(&e) = self.buf.get(self.pos) {
                        self.pos += 1;
                        out.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'f' => 12,
                            other => other,
                        });
                    }
                }
                b'(' => {
                    open += 1;
                    out.push(b);
                }
                b')' => {
                    open -= 1;
                    if open == 0 {
                        return Ok(out);
                    }
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn hex_string(&mut self) -> Result<Vec<u8>, SyntaxError> {
        self.pos += 1;
        let mut digits = Vec::new();
        while let Some(&b) = self.buf.get(self.pos) {
            self.pos += 1;
            if b == b'>' {
                if digits.len() % 2 == 1 {
                    digits.push(b'0');
                }
                return hex::decode(&digits).map_err(|_| self.err("hex string"));
            }
            if !is_white(b) {
                digits.push(b);
            }
        }
        Err(self.err("unterminated hex string"))
    }

    fn number_or_keyword(&mut self) -> Result<Obj, SyntaxError> {
        let start = self.pos;
        let w = self.word();
        match w {
            b"null" => return Ok(Obj::Null),
            b"true" => return Ok(Obj::Bool(true)),
            b"false" => return Ok(Obj::Bool(false)),
            b"" => return Err(self.err("unexpected delimiter")),
            _ => {}
        }
        let text = std::str::from_utf8(w).map_err(|_| self.err("bad token"))?;
        if let Ok(n) = text.parse::<i64>() {
            // `n g R`: a reference, if two more tokens say so.
            let save = self.pos;
            if n >= 0 {
                if let Some(g) = self.uint() {
                    if self.keyword(b"R") {
                        if let (Ok(n), Ok(g)) = (u32::try_from(n), u16::try_from(g)) {
                            return Ok(Obj::Ref(n, g));
                        }
                    }
                }
            }
            self.pos = save;
            return Ok(Obj::Int(n));
        }
        text.parse::<f64>().map(Obj::Real).map_err(|_| SyntaxError {
            at: start,
            what: "unknown token",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Obj, SyntaxError> {
        Parser::new(s, 0).object()
    }

    #[test]
    fn dictionaries_arrays_references_and_strings() {
        let o = parse(b"<< /Type /Page /Kids [1 0 R 2 0 R] /N 12 /R -1.5 /S (a\\)b) /H <41 42> /E#20x null >>")
            .unwrap();
        let d = o.as_dict().unwrap();
        assert!(name_is(d, "Type", "Page"));
        assert_eq!(
            get(d, "Kids"),
            Some(&Obj::Array(vec![Obj::Ref(1, 0), Obj::Ref(2, 0)]))
        );
        assert_eq!(get(d, "N"), Some(&Obj::Int(12)));
        assert_eq!(get(d, "R"), Some(&Obj::Real(-1.5)));
        assert_eq!(get(d, "S"), Some(&Obj::Str(b"a)b".to_vec())));
        assert_eq!(get(d, "H"), Some(&Obj::Str(b"AB".to_vec())));
        assert_eq!(get(d, "E x"), Some(&Obj::Null));
    }

    #[test]
    fn deep_nesting_and_truncation_are_errors_not_panics() {
        let deep = [b"[".repeat(10_000), b"]".repeat(10_000)].concat();
        assert!(parse(&deep).is_err());
        let deep_dict = b"<< /A ".repeat(1000);
        assert!(parse(&deep_dict).is_err());
        for cut in [&b"<< /A [1 2"[..], b"(abc", b"<41", b"<< /A", b""] {
            assert!(parse(cut).is_err(), "{:?}", cut);
        }
    }

    #[test]
    fn an_object_header_names_number_and_generation() {
        let mut p = Parser::new(b"  12 0 obj << >> endobj", 0);
        assert_eq!(p.object_header().unwrap(), (12, 0));
        assert_eq!(p.object().unwrap(), Obj::Dict(Dict::new()));
        assert!(p.keyword(b"endobj"));
    }
}
