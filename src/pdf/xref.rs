//! Cross-reference sections (tables and streams) and object lookup as of one
//! revision, with object streams: enough to compare an object before and
//! after an incremental update. Every read is a bounded window.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::objects::{get, name_is, Dict, Obj, Parser};
use super::scan::Scanned;
use super::PdfError;

/// First window read for an xref section or an object.
const SMALL_WINDOW: usize = 64 * 1024;
/// Largest window: a bigger xref table or object is refused.
const LARGE_WINDOW: usize = 8 << 20;
/// Largest stream decoded (xref and object streams).
const MAX_DECODED: u64 = 32 << 20;
/// Most xref sections followed through `/Prev`.
const MAX_SECTIONS: usize = 1024;
/// Most entries in one revision's table.
const MAX_ENTRIES: usize = 2_000_000;

/// Where an object of a revision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Free,
    At(u64),
    InStream(u32, u32),
}

/// A revision's cross-reference table: every object's entry, and its trailer.
pub(crate) struct Table {
    pub(crate) entries: BTreeMap<u32, Entry>,
    pub(crate) trailer: Dict,
}

fn syntax(e: super::objects::SyntaxError) -> PdfError {
    PdfError::Syntax(e.to_string())
}

/// Parses with a small window, then a large one if the small one was too short.
fn with_window<T>(
    file: &Scanned,
    offset: u64,
    mut parse: impl FnMut(&[u8]) -> Result<T, PdfError>,
) -> Result<T, PdfError> {
    let small = file.read_at(offset, SMALL_WINDOW)?;
    match parse(&small) {
        Ok(t) => Ok(t),
        Err(_) if small.len() == SMALL_WINDOW => parse(&file.read_at(offset, LARGE_WINDOW)?),
        Err(e) => Err(e),
    }
}

/// The `startxref` offset of the revision ending at `end`.
pub(crate) fn startxref(file: &Scanned, end: u64) -> Result<u64, PdfError> {
    let from = end.saturating_sub(1024);
    let window = file.read_at(from, (end - from) as usize)?;
    let at = memchr::memmem::rfind(&window, b"startxref")
        .ok_or_else(|| PdfError::Syntax("no startxref before %%EOF".into()))?;
    Parser::new(&window, at + 9)
        .uint()
        .filter(|&o| o < file.len)
        .ok_or_else(|| PdfError::Syntax("bad startxref".into()))
}

/// The table of the revision whose xref starts at `start`, following `/Prev`.
pub(crate) fn table(file: &Scanned, start: u64) -> Result<Table, PdfError> {
    let mut entries = BTreeMap::new();
    let mut trailer = None;
    let mut next = Some(start);
    let mut seen = Vec::new();
    while let Some(offset) = next {
        if seen.contains(&offset) || seen.len() >= MAX_SECTIONS {
            return Err(PdfError::Syntax("xref /Prev loop".into()));
        }
        seen.push(offset);
        let (section, dict) = with_window(file, offset, |w| section(file, w))?;
        for (n, e) in section {
            entries.entry(n).or_insert(e); // the newest section wins
        }
        if entries.len() > MAX_ENTRIES {
            return Err(PdfError::Limit("too many objects"));
        }
        next = get(&dict, "Prev")
            .and_then(Obj::as_int)
            .and_then(|p| u64::try_from(p).ok());
        trailer.get_or_insert(dict);
    }
    Ok(Table {
        entries,
        trailer: trailer.unwrap_or_default(),
    })
}

/// One xref section (table or stream) at the start of `w`, and its trailer.
fn section(file: &Scanned, w: &[u8]) -> Result<(Vec<(u32, Entry)>, Dict), PdfError> {
    let mut p = Parser::new(w, 0);
    if p.keyword(b"xref") {
        return classic_section(&mut p);
    }
    let mut p = Parser::new(w, 0);
    p.object_header().map_err(syntax)?;
    let dict = match p.object().map_err(syntax)? {
        Obj::Dict(d) if name_is(&d, "Type", "XRef") => d,
        _ => return Err(PdfError::Syntax("xref offset points to no xref".into())),
    };
    let data = stream_data(file, w, &mut p, &dict, None)?;
    Ok((stream_section(&dict, &data)?, dict))
}

fn classic_section(p: &mut Parser) -> Result<(Vec<(u32, Entry)>, Dict), PdfError> {
    let mut out = Vec::new();
    loop {
        if p.keyword(b"trailer") {
            let dict = match p.object().map_err(syntax)? {
                Obj::Dict(d) => d,
                _ => return Err(PdfError::Syntax("trailer is not a dictionary".into())),
            };
            return Ok((out, dict));
        }
        let bad = || PdfError::Syntax("xref subsection".into());
        let first = p.uint().ok_or_else(bad)?;
        let count = p.uint().ok_or_else(bad)?;
        if count as usize > MAX_ENTRIES || out.len() + count as usize > MAX_ENTRIES {
            return Err(PdfError::Limit("too many objects"));
        }
        for i in 0..count {
            let offset = p.uint().ok_or_else(bad)?;
            let _generation = p.uint().ok_or_else(bad)?;
            let entry = match p.word() {
                b"n" => Entry::At(offset),
                b"f" => Entry::Free,
                _ => return Err(bad()),
            };
            let n = u32::try_from(first + i).map_err(|_| bad())?;
            out.push((n, entry));
        }
    }
}

/// The entries of a decoded xref stream (`/W`, `/Index`).
fn stream_section(dict: &Dict, data: &[u8]) -> Result<Vec<(u32, Entry)>, PdfError> {
    let bad = |what: &str| PdfError::Syntax(format!("xref stream: {what}"));
    let widths: Vec<usize> = match get(dict, "W") {
        Some(Obj::Array(a)) if a.len() == 3 => a
            .iter()
            .map(|w| {
                w.as_int()
                    .filter(|w| (0..=8).contains(w))
                    .map(|w| w as usize)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("/W"))?,
        _ => return Err(bad("/W")),
    };
    let size = get(dict, "Size").and_then(Obj::as_int).unwrap_or(0);
    let index: Vec<i64> = match get(dict, "Index") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(Obj::as_int)
            .collect::<Option<_>>()
            .ok_or_else(|| bad("/Index"))?,
        _ => vec![0, size],
    };
    let row = widths.iter().sum::<usize>();
    if row == 0 {
        return Err(bad("empty rows"));
    }
    let field = |bytes: &[u8]| bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let mut rows = data.chunks_exact(row);
    let mut out = Vec::new();
    for pair in index.chunks(2) {
        let [first, count] = pair else {
            return Err(bad("/Index"));
        };
        if *first < 0 || *count < 0 || *count as usize > MAX_ENTRIES {
            return Err(bad("/Index"));
        }
        for i in 0..*count {
            let Some(r) = rows.next() else {
                return Err(bad("short data"));
            };
            let (t, rest) = r.split_at(widths[0]);
            let (f2, f3) = rest.split_at(widths[1]);
            let kind = if widths[0] == 0 { 1 } else { field(t) };
            let entry = match kind {
                0 => Entry::Free,
                1 => Entry::At(field(f2)),
                2 => Entry::InStream(
                    u32::try_from(field(f2)).map_err(|_| bad("stream number"))?,
                    u32::try_from(field(f3)).map_err(|_| bad("index"))?,
                ),
                _ => continue, // reserved types are null objects
            };
            let n = u32::try_from(first + i).map_err(|_| bad("object number"))?;
            out.push((n, entry));
        }
    }
    Ok(out)
}

/// The decoded data of the stream whose dictionary the parser just read.
/// `table` resolves an indirect `/Length`.
fn stream_data(
    file: &Scanned,
    w: &[u8],
    p: &mut Parser,
    dict: &Dict,
    table: Option<(&Table, &mut Objects)>,
) -> Result<Vec<u8>, PdfError> {
    if !p.keyword(b"stream") {
        return Err(PdfError::Syntax("stream keyword".into()));
    }
    let mut start = p.pos;
    if w.get(start) == Some(&b'\r') {
        start += 1;
    }
    if w.get(start) == Some(&b'\n') {
        start += 1;
    }
    let length = match (get(dict, "Length"), table) {
        (Some(Obj::Int(n)), _) => *n,
        (Some(Obj::Ref(n, _)), Some((t, objects))) => objects
            .get(file, t, *n)?
            .and_then(|l| l.obj.as_int())
            .unwrap_or(-1),
        _ => -1,
    };
    let length = usize::try_from(length).map_err(|_| PdfError::Syntax("stream /Length".into()))?;
    let raw = w
        .get(start..start.saturating_add(length))
        .ok_or_else(|| PdfError::Syntax("stream longer than its window".into()))?;
    decode(dict, raw)
}

/// Applies `/Filter` (FlateDecode or none) and a PNG `/Predictor`, bounded.
fn decode(dict: &Dict, raw: &[u8]) -> Result<Vec<u8>, PdfError> {
    let filter = match get(dict, "Filter") {
        None => None,
        Some(Obj::Name(n)) => Some(n.as_slice()),
        Some(Obj::Array(a)) if a.len() == 1 => a[0].as_name(),
        Some(Obj::Array(a)) if a.is_empty() => None,
        _ => return Err(PdfError::Unsupported("stream filter chain")),
    };
    let data = match filter {
        None => raw.to_vec(),
        Some(b"FlateDecode") => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(raw)
                .take(MAX_DECODED + 1)
                .read_to_end(&mut out)
                .map_err(|e| PdfError::Syntax(format!("FlateDecode: {e}")))?;
            if out.len() as u64 > MAX_DECODED {
                return Err(PdfError::Limit("decoded stream too large"));
            }
            out
        }
        Some(_) => return Err(PdfError::Unsupported("stream filter")),
    };
    let parms = match get(dict, "DecodeParms") {
        Some(Obj::Dict(d)) => Some(d),
        Some(Obj::Array(a)) => a.first().and_then(Obj::as_dict),
        _ => None,
    };
    let predictor = parms
        .and_then(|d| get(d, "Predictor"))
        .and_then(Obj::as_int)
        .unwrap_or(1);
    if predictor < 10 {
        return Ok(data);
    }
    let columns = parms
        .and_then(|d| get(d, "Columns"))
        .and_then(Obj::as_int)
        .unwrap_or(1);
    let columns = usize::try_from(columns)
        .ok()
        .filter(|c| (1..=1 << 16).contains(c))
        .ok_or(PdfError::Unsupported("predictor columns"))?;
    unpredict_png(&data, columns)
}

/// Undoes PNG row filters (None, Sub, Up, Average, Paeth) on one-byte pixels.
fn unpredict_png(data: &[u8], columns: usize) -> Result<Vec<u8>, PdfError> {
    let mut out = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; columns];
    for row in data.chunks(columns + 1) {
        let (kind, bytes) = row
            .split_first()
            .ok_or(PdfError::Unsupported("predictor"))?;
        let mut cur = vec![0u8; columns];
        for (i, &b) in bytes.iter().enumerate() {
            let left = if i > 0 { cur[i - 1] } else { 0 };
            let up = prev[i];
            let up_left = if i > 0 { prev[i - 1] } else { 0 };
            cur[i] = match kind {
                0 => b,
                1 => b.wrapping_add(left),
                2 => b.wrapping_add(up),
                3 => b.wrapping_add(((u16::from(left) + u16::from(up)) / 2) as u8),
                4 => b.wrapping_add(paeth(left, up, up_left)),
                _ => return Err(PdfError::Unsupported("PNG predictor type")),
            };
        }
        out.extend_from_slice(&cur[..bytes.len()]);
        prev = cur;
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// An object as loaded, and whether a stream follows its dictionary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loaded {
    pub(crate) obj: Obj,
    pub(crate) stream: bool,
}

/// Objects loaded from one file, with its decoded object streams cached.
#[derive(Default)]
pub(crate) struct Objects {
    streams: HashMap<u64, std::rc::Rc<ObjStream>>,
}

/// A decoded object stream: object numbers with their offsets, and the data.
struct ObjStream {
    index: Vec<(u32, usize)>,
    data: Vec<u8>,
}

impl Objects {
    /// Object `n` as of the revision `table` describes; `None` if free or absent.
    pub(crate) fn get(
        &mut self,
        file: &Scanned,
        table: &Table,
        n: u32,
    ) -> Result<Option<Loaded>, PdfError> {
        match table.entries.get(&n) {
            None | Some(Entry::Free) => Ok(None),
            Some(Entry::At(offset)) => {
                let offset = *offset;
                with_window(file, offset, |w| {
                    let mut p = Parser::new(w, 0);
                    let (num, _) = p.object_header().map_err(syntax)?;
                    if num != n {
                        return Err(PdfError::Syntax(format!(
                            "xref entry of {n} points to {num}"
                        )));
                    }
                    let obj = p.object().map_err(syntax)?;
                    // Stream data is not compared: a changed stream counts as changed.
                    let stream = p.keyword(b"stream");
                    Ok(Some(Loaded { obj, stream }))
                })
            }
            Some(Entry::InStream(stream, idx)) => {
                let Some(Entry::At(at)) = table.entries.get(stream).copied() else {
                    return Err(PdfError::Syntax("object stream not in the xref".into()));
                };
                let s = self.object_stream(file, table, at)?;
                let Some(&(num, off)) = s.index.get(*idx as usize) else {
                    return Ok(None);
                };
                if num != n {
                    return Ok(None);
                }
                let obj = Parser::new(&s.data, off).object().map_err(syntax)?;
                Ok(Some(Loaded { obj, stream: false }))
            }
        }
    }

    fn object_stream(
        &mut self,
        file: &Scanned,
        table: &Table,
        at: u64,
    ) -> Result<std::rc::Rc<ObjStream>, PdfError> {
        if let Some(s) = self.streams.get(&at) {
            return Ok(s.clone());
        }
        let stream = with_window(file, at, |w| {
            let mut p = Parser::new(w, 0);
            p.object_header().map_err(syntax)?;
            let dict = match p.object().map_err(syntax)? {
                Obj::Dict(d) if name_is(&d, "Type", "ObjStm") => d,
                _ => return Err(PdfError::Syntax("not an object stream".into())),
            };
            let data = stream_data(
                file,
                w,
                &mut p,
                &dict,
                Some((table, &mut Objects::default())),
            )?;
            let count = get(&dict, "N").and_then(Obj::as_int).unwrap_or(0);
            let first = get(&dict, "First").and_then(Obj::as_int).unwrap_or(0);
            let (Ok(count), Ok(first)) = (usize::try_from(count), usize::try_from(first)) else {
                return Err(PdfError::Syntax("object stream header".into()));
            };
            let mut hp = Parser::new(&data, 0);
            let mut index = Vec::with_capacity(count.min(100_000));
            for _ in 0..count {
                let (Some(n), Some(off)) = (hp.uint(), hp.uint()) else {
                    return Err(PdfError::Syntax("object stream header".into()));
                };
                let n = u32::try_from(n).map_err(|_| PdfError::Syntax("object number".into()))?;
                index.push((n, first.saturating_add(off as usize)));
            }
            Ok(ObjStream { index, data })
        })?;
        let stream = std::rc::Rc::new(stream);
        self.streams.insert(at, stream.clone());
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_up_rows_are_undone() {
        // Two rows of 3 columns, the second filtered with Up.
        let data = [0, 1, 2, 3, 2, 1, 1, 1];
        assert_eq!(unpredict_png(&data, 3).unwrap(), [1, 2, 3, 2, 3, 4]);
    }

    #[test]
    fn xref_stream_rows_give_entries() {
        let mut dict = Dict::new();
        dict.insert(
            b"W".to_vec(),
            Obj::Array(vec![Obj::Int(1), Obj::Int(2), Obj::Int(1)]),
        );
        dict.insert(
            b"Index".to_vec(),
            Obj::Array(vec![Obj::Int(4), Obj::Int(3)]),
        );
        let data = [0, 0, 0, 0, 1, 1, 0, 0, 2, 0, 9, 2];
        let entries = stream_section(&dict, &data).unwrap();
        assert_eq!(
            entries,
            [
                (4, Entry::Free),
                (5, Entry::At(256)),
                (6, Entry::InStream(9, 2))
            ]
        );
    }
}
