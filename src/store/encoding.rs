//! Byte encodings of the stored values: pages of document groups, per-day
//! counts, source states, the sha256 log and pending signatures.

use super::codec::{DecodeError, Reader, Writer};
use super::{DocGroup, FilePos, PendingSha, Signatures, SourceState};
use crate::aggregate::DayCounts;
use crate::classify::{Class, Document};
use crate::parse::normalize::{Confidentiality, Direction};

/// Pages: doc_id, then the group's length and bytes, so that a page can be
/// indexed and re-encoded without decoding the groups nobody touched.
const FORMAT_PAGE: u8 = 3;
/// Pages written before 0.2: the same groups without their lengths.
const FORMAT_PAGE_V2: u8 = 2;
const FORMAT_DAY: u8 = 1;
const FORMAT_SOURCE: u8 = 1;
const FORMAT_SHA_LOG: u8 = 1;
const FORMAT_PENDING: u8 = 1;

fn put_signatures(w: &mut Writer, s: &Signatures) {
    w.u8(s.roles).uvar(s.signers.len() as u64);
    for n in &s.signers {
        w.str(n);
    }
}

fn get_signatures(r: &mut Reader) -> Result<Signatures, DecodeError> {
    let roles = r.u8()?;
    let n = r.count()?;
    let signers = (0..n).map(|_| r.str()).collect::<Result<_, _>>()?;
    Ok(Signatures { roles, signers })
}

fn put_strings(w: &mut Writer, v: &[String]) {
    w.uvar(v.len() as u64);
    for s in v {
        w.str(s);
    }
}

fn get_strings(r: &mut Reader) -> Result<Vec<String>, DecodeError> {
    let n = r.count()?;
    (0..n).map(|_| r.str()).collect()
}

fn put_document(w: &mut Writer, d: &Document) {
    w.ivar(d.time)
        .u8(u8::from(d.electronic))
        .u8(d.confidentiality.as_byte())
        .u8(d.roles)
        .uvar(u64::from(d.events))
        .str(&d.unit)
        .str(&d.doc_number)
        .str(&d.doc_type)
        .str(&d.subject)
        .str(&d.counterpart);
    put_strings(w, &d.shas);
    put_strings(w, &d.signers);
}

fn get_document(
    r: &mut Reader,
    direction: Direction,
    doc_id: &str,
) -> Result<Document, DecodeError> {
    Ok(Document {
        direction,
        doc_id: doc_id.to_string(),
        time: r.ivar()?,
        electronic: r.u8()? != 0,
        confidentiality: Confidentiality::from_byte(r.u8()?)
            .ok_or(DecodeError("bad confidentiality"))?,
        roles: r.u8()?,
        events: r.uvar()? as u32,
        unit: r.str()?,
        doc_number: r.str()?,
        doc_type: r.str()?,
        subject: r.str()?,
        counterpart: r.str()?,
        shas: get_strings(r)?,
        signers: get_strings(r)?,
    })
}

fn put_group(w: &mut Writer, g: &DocGroup) {
    put_signatures(w, &g.signatures);
    w.uvar(g.sha_signatures.len() as u64);
    for (sha, s) in &g.sha_signatures {
        w.str(sha);
        put_signatures(w, s);
    }
    let flags = u8::from(g.outgoing.is_some()) | (u8::from(g.incoming.is_some()) << 1);
    w.u8(flags);
    for d in [&g.outgoing, &g.incoming].into_iter().flatten() {
        put_document(w, d);
    }
}

fn get_group(r: &mut Reader, doc_id: &str) -> Result<DocGroup, DecodeError> {
    let signatures = get_signatures(r)?;
    let n = r.count()?;
    let mut sha_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        let sha = r.str()?;
        sha_signatures.push((sha, get_signatures(r)?));
    }
    let flags = r.u8()?;
    let outgoing = (flags & 1 != 0)
        .then(|| get_document(r, Direction::Outgoing, doc_id))
        .transpose()?;
    let incoming = (flags & 2 != 0)
        .then(|| get_document(r, Direction::Incoming, doc_id))
        .transpose()?;
    Ok(DocGroup {
        signatures,
        sha_signatures,
        outgoing,
        incoming,
    })
}

/// Where one group sits in an encoded page: byte ranges of its doc_id and of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: std::ops::Range<u32>,
    pub group: std::ops::Range<u32>,
}

/// One group's bytes, as embedded in a page.
pub fn encode_group(g: &DocGroup) -> Vec<u8> {
    let mut w = Writer::bare();
    w.buf.reserve(512);
    put_group(&mut w, g);
    w.buf
}

/// Decodes the bytes of one group (a [`RawEntry::group`] range).
pub fn decode_group(bytes: &[u8], doc_id: &str) -> Result<DocGroup, DecodeError> {
    let mut r = Reader::bare(bytes);
    let g = get_group(&mut r, doc_id)?;
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after a group"));
    }
    Ok(g)
}

/// Builds a page from groups already encoded, returning where each landed.
pub struct PageBuilder {
    w: Writer,
    entries: Vec<RawEntry>,
}

impl PageBuilder {
    pub fn new(count: usize, capacity: usize) -> PageBuilder {
        let mut w = Writer::new(FORMAT_PAGE);
        w.buf.reserve(capacity);
        w.uvar(count as u64);
        PageBuilder {
            w,
            entries: Vec::with_capacity(count),
        }
    }

    /// Appends one group; `doc_id` must sort after the previous one.
    pub fn push(&mut self, doc_id: &[u8], group: &[u8]) {
        self.w.uvar(doc_id.len() as u64);
        let id_start = self.w.buf.len() as u32;
        self.w.raw(doc_id);
        let id = id_start..self.w.buf.len() as u32;
        self.w.uvar(group.len() as u64);
        let g_start = self.w.buf.len() as u32;
        self.w.raw(group);
        self.entries.push(RawEntry {
            id,
            group: g_start..self.w.buf.len() as u32,
        });
    }

    pub fn len(&self) -> usize {
        self.w.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn finish(self) -> (Vec<u8>, Vec<RawEntry>) {
        (self.w.buf, self.entries)
    }
}

/// Finds the groups of an encoded page without decoding them.
pub fn index_page(v: &[u8]) -> Result<Vec<RawEntry>, DecodeError> {
    let total = v.len();
    let legacy = v.first() == Some(&FORMAT_PAGE_V2);
    let mut r = Reader::new(v, if legacy { FORMAT_PAGE_V2 } else { FORMAT_PAGE })?;
    let pos = |r: &Reader| (total - r.remaining()) as u32;
    let n = r.count()?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let id_bytes = r.str_bytes()?;
        let id_end = pos(&r);
        let id = id_end - id_bytes.len() as u32..id_end;
        let group = if legacy {
            let start = pos(&r);
            let doc_id = std::str::from_utf8(id_bytes).map_err(|_| DecodeError("bad UTF-8"))?;
            get_group(&mut r, doc_id)?;
            start..pos(&r)
        } else {
            let len = r.count()?;
            let start = pos(&r);
            r.bytes(len)?;
            start..pos(&r)
        };
        entries.push(RawEntry { id, group });
    }
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after a page"));
    }
    Ok(entries)
}

/// Encodes a page: document groups in doc_id order.
pub fn encode_page<G: std::borrow::Borrow<DocGroup>>(groups: &[(String, G)]) -> Vec<u8> {
    let mut b = PageBuilder::new(groups.len(), 0);
    for (doc_id, g) in groups {
        b.push(doc_id.as_bytes(), &encode_group(g.borrow()));
    }
    b.finish().0
}

/// Decodes every group of a page (either page format).
pub fn decode_page(v: &[u8]) -> Result<Vec<(String, DocGroup)>, DecodeError> {
    index_page(v)?
        .into_iter()
        .map(|e| {
            let id = std::str::from_utf8(&v[e.id.start as usize..e.id.end as usize])
                .map_err(|_| DecodeError("bad UTF-8"))?;
            let g = decode_group(&v[e.group.start as usize..e.group.end as usize], id)?;
            Ok((id.to_string(), g))
        })
        .collect()
}

pub fn encode_day(counts: &DayCounts) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_DAY);
    w.uvar(counts.len() as u64);
    for ((unit, direction, class), n) in counts {
        w.str(unit)
            .u8(direction.as_byte())
            .u8(class.as_byte())
            .uvar(*n);
    }
    w.buf
}

pub fn decode_day(v: &[u8]) -> Result<DayCounts, DecodeError> {
    let mut r = Reader::new(v, FORMAT_DAY)?;
    let n = r.count()?;
    let mut counts = DayCounts::new();
    for _ in 0..n {
        let unit = r.str()?;
        let direction = Direction::from_byte(r.u8()?).ok_or(DecodeError("bad direction"))?;
        let class = Class::from_byte(r.u8()?).ok_or(DecodeError("bad class"))?;
        counts.insert((unit, direction, class), r.uvar()?);
    }
    Ok(counts)
}

fn put_file(w: &mut Writer, f: &FilePos) {
    w.str(&f.path)
        .uvar(f.dev)
        .uvar(f.ino)
        .uvar(f.offset)
        .uvar(f.line)
        .uvar(u64::from(f.head_len))
        .u64_fixed(f.head_hash)
        .uvar(f.shadow_of);
}

fn get_file(r: &mut Reader) -> Result<FilePos, DecodeError> {
    Ok(FilePos {
        path: r.str()?,
        dev: r.uvar()?,
        ino: r.uvar()?,
        offset: r.uvar()?,
        line: r.uvar()?,
        head_len: r.uvar()? as u32,
        head_hash: r.u64_fixed()?,
        shadow_of: r.uvar()?,
    })
}

pub fn encode_source(s: &SourceState) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_SOURCE);
    w.uvar(s.accepted)
        .uvar(s.duplicate)
        .uvar(s.invalid)
        .u8(u8::from(s.last_event_time.is_some()))
        .ivar(s.last_event_time.unwrap_or(0))
        .uvar(s.rejected_len)
        .uvar(s.files.len() as u64);
    for f in &s.files {
        put_file(&mut w, f);
    }
    w.uvar(s.retired.len() as u64);
    for f in &s.retired {
        put_file(&mut w, f);
    }
    w.buf
}

pub fn decode_source(v: &[u8]) -> Result<SourceState, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SOURCE)?;
    let accepted = r.uvar()?;
    let duplicate = r.uvar()?;
    let invalid = r.uvar()?;
    let has_time = r.u8()? != 0;
    let time = r.ivar()?;
    let rejected_len = r.uvar()?;
    let n = r.count()?;
    let files = (0..n).map(|_| get_file(&mut r)).collect::<Result<_, _>>()?;
    let n = r.count()?;
    let retired = (0..n).map(|_| get_file(&mut r)).collect::<Result<_, _>>()?;
    Ok(SourceState {
        accepted,
        duplicate,
        invalid,
        last_event_time: has_time.then_some(time),
        rejected_len,
        files,
        retired,
    })
}

/// Encodes (sha256, doc_id) pairs of one commit.
pub fn encode_sha_log(pairs: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_SHA_LOG);
    w.uvar(pairs.len() as u64);
    for (sha, doc_id) in pairs {
        w.str(sha).str(doc_id);
    }
    w.buf
}

pub fn decode_sha_log(v: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SHA_LOG)?;
    let n = r.count()?;
    (0..n).map(|_| Ok((r.str()?, r.str()?))).collect()
}

pub fn encode_pending(p: &PendingSha) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_PENDING);
    put_signatures(&mut w, &p.signatures);
    w.buf
}

pub fn decode_pending(v: &[u8]) -> Result<PendingSha, DecodeError> {
    let mut r = Reader::new(v, FORMAT_PENDING)?;
    Ok(PendingSha {
        signatures: get_signatures(&mut r)?,
    })
}
