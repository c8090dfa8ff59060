//! Byte encodings of the stored values: pages of document groups, per-day
//! counts, source states, the sha256 log and pending signatures.

use super::codec::{DecodeError, Reader, Writer};
use super::{DocGroup, FeedPos, FilePos, PendingSha, Signatures, SourceState};
use crate::aggregate::DayCounts;
use crate::model::{Class, Confidentiality, Direction, DocStatus, Document};

/// Pages: doc_id, then the group's length and bytes, so that a page can be
/// indexed and re-encoded without decoding the groups nobody touched.
const FORMAT_PAGE: u8 = 3;
/// Pages written before 0.2: the same groups without their lengths.
const FORMAT_PAGE_V2: u8 = 2;
/// A stored page compressed with LZ4: this byte, then the page (format 3)
/// as an LZ4 block with its length prepended (u32, little-endian).
const FORMAT_PAGE_LZ4: u8 = 4;
/// Longest page a stored value may decompress to (pages are split at 16 KiB,
/// a single group may exceed that; anything this large is damage).
const MAX_DECOMPRESSED_PAGE: usize = 64 << 20;
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
        business: 0,
        status: DocStatus::default(),
    })
}

/// Group flag: edXML data (business types, statuses) follows the documents.
/// Groups without it are encoded exactly as before it existed.
const GROUP_EDXML: u8 = 0x40;

fn put_status(w: &mut Writer, s: &DocStatus) {
    w.u8(s.code).ivar(s.time).u8(u8::from(s.rejected));
}

fn get_status(r: &mut Reader) -> Result<DocStatus, DecodeError> {
    Ok(DocStatus {
        code: r.u8()?,
        time: r.ivar()?,
        rejected: r.u8()? != 0,
    })
}

fn has_edxml(g: &DocGroup) -> bool {
    g.pending_status.iter().any(|s| !s.is_empty())
        || [&g.outgoing, &g.incoming]
            .into_iter()
            .flatten()
            .any(|d| d.business != 0 || !d.status.is_empty())
}

fn put_group(w: &mut Writer, g: &DocGroup) {
    put_signatures(w, &g.signatures);
    w.uvar(g.sha_signatures.len() as u64);
    for (sha, s) in &g.sha_signatures {
        w.str(sha);
        put_signatures(w, s);
    }
    let edxml = has_edxml(g);
    let flags = u8::from(g.outgoing.is_some())
        | (u8::from(g.incoming.is_some()) << 1)
        | if edxml { GROUP_EDXML } else { 0 };
    w.u8(flags);
    for d in [&g.outgoing, &g.incoming].into_iter().flatten() {
        put_document(w, d);
    }
    if edxml {
        for d in [&g.outgoing, &g.incoming].into_iter().flatten() {
            w.u8(d.business);
            put_status(w, &d.status);
        }
        for s in &g.pending_status {
            put_status(w, s);
        }
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
    let mut outgoing = (flags & 1 != 0)
        .then(|| get_document(r, Direction::Outgoing, doc_id))
        .transpose()?;
    let mut incoming = (flags & 2 != 0)
        .then(|| get_document(r, Direction::Incoming, doc_id))
        .transpose()?;
    let mut pending_status = [DocStatus::default(); 2];
    if flags & GROUP_EDXML != 0 {
        for d in [&mut outgoing, &mut incoming].into_iter().flatten() {
            d.business = r.u8()?;
            d.status = get_status(r)?;
        }
        for s in &mut pending_status {
            *s = get_status(r)?;
        }
    }
    Ok(DocGroup {
        signatures,
        sha_signatures,
        outgoing,
        incoming,
        pending_status,
    })
}

/// Where one group sits in an encoded page: byte ranges of its doc_id and of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) id: std::ops::Range<u32>,
    pub(crate) group: std::ops::Range<u32>,
}

/// One group's bytes, as embedded in a page.
pub(crate) fn encode_group(g: &DocGroup) -> Vec<u8> {
    let mut w = Writer::bare();
    w.buf.reserve(512);
    put_group(&mut w, g);
    w.buf
}

/// Decodes the bytes of one group (a [`RawEntry::group`] range).
pub(crate) fn decode_group(bytes: &[u8], doc_id: &str) -> Result<DocGroup, DecodeError> {
    let mut r = Reader::bare(bytes);
    let g = get_group(&mut r, doc_id)?;
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after a group"));
    }
    Ok(g)
}

/// Builds a page from groups already encoded, returning where each landed.
pub(crate) struct PageBuilder {
    w: Writer,
    entries: Vec<RawEntry>,
}

impl PageBuilder {
    pub(crate) fn new(count: usize, capacity: usize) -> PageBuilder {
        let mut w = Writer::new(FORMAT_PAGE);
        w.buf.reserve(capacity);
        w.uvar(count as u64);
        PageBuilder {
            w,
            entries: Vec::with_capacity(count),
        }
    }

    /// Appends one group; `doc_id` must sort after the previous one.
    pub(crate) fn push(&mut self, doc_id: &[u8], group: &[u8]) {
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

    pub(crate) fn finish(self) -> (Vec<u8>, Vec<RawEntry>) {
        (self.w.buf, self.entries)
    }
}

/// The value stored for an encoded page: compressed, as pages of text
/// compress 2-4 times and sled pays for every byte written.
pub(crate) fn compress_page(page: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + lz4_flex::block::get_maximum_output_size(page.len()));
    out.push(FORMAT_PAGE_LZ4);
    out.extend_from_slice(&(page.len() as u32).to_le_bytes());
    out.resize(out.capacity(), 0);
    let n = lz4_flex::block::compress_into(page, &mut out[5..])
        .expect("the buffer has the maximum output size");
    out.truncate(5 + n);
    out
}

/// The encoded page of a stored value (compressed or not), for [`index_page`].
pub(crate) fn stored_page(v: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    match v.split_first() {
        Some((&FORMAT_PAGE_LZ4, rest)) => {
            let (len, block) = rest
                .split_first_chunk::<4>()
                .ok_or(DecodeError("truncated compressed page"))?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_DECOMPRESSED_PAGE {
                return Err(DecodeError("compressed page too large"));
            }
            let page = lz4_flex::block::decompress(block, len)
                .map_err(|_| DecodeError("bad compressed page"))?;
            if page.first() == Some(&FORMAT_PAGE_LZ4) {
                return Err(DecodeError("compressed page inside a compressed page"));
            }
            Ok(std::borrow::Cow::Owned(page))
        }
        _ => Ok(std::borrow::Cow::Borrowed(v)),
    }
}

/// Finds the groups of an encoded page without decoding them.
pub(crate) fn index_page(v: &[u8]) -> Result<Vec<RawEntry>, DecodeError> {
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
#[cfg(test)]
pub(crate) fn encode_page<G: std::borrow::Borrow<DocGroup>>(groups: &[(String, G)]) -> Vec<u8> {
    let mut b = PageBuilder::new(groups.len(), 0);
    for (doc_id, g) in groups {
        b.push(doc_id.as_bytes(), &encode_group(g.borrow()));
    }
    b.finish().0
}

/// Decodes every group of a stored page (any page format, compressed or not).
pub(crate) fn decode_page(v: &[u8]) -> Result<Vec<(String, DocGroup)>, DecodeError> {
    let v = &*stored_page(v)?;
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

pub(crate) fn encode_day(counts: &DayCounts) -> Vec<u8> {
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

pub(crate) fn decode_day(v: &[u8]) -> Result<DayCounts, DecodeError> {
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

pub(crate) fn encode_source(s: &SourceState) -> Vec<u8> {
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
    // Optional trailing sections (tag byte, then fields): states written
    // before a section existed simply end here and still decode.
    if s.feed != FeedPos::default() {
        w.u8(SECTION_FEED)
            .u8(u8::from(s.feed.cursor.is_some()))
            .str(s.feed.cursor.as_deref().unwrap_or(""))
            .uvar(s.feed.skip)
            .uvar(s.feed.pages);
    }
    w.buf
}

/// Tag of the HTTP feed section of a source state.
const SECTION_FEED: u8 = 1;

pub(crate) fn decode_source(v: &[u8]) -> Result<SourceState, DecodeError> {
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
    let mut feed = FeedPos::default();
    while !r.at_end() {
        match r.u8()? {
            SECTION_FEED => {
                let has_cursor = r.u8()? != 0;
                let cursor = r.str()?;
                feed = FeedPos {
                    cursor: has_cursor.then_some(cursor),
                    skip: r.uvar()?,
                    pages: r.uvar()?,
                };
            }
            _ => return Err(DecodeError("unknown source state section")),
        }
    }
    Ok(SourceState {
        accepted,
        duplicate,
        invalid,
        last_event_time: has_time.then_some(time),
        rejected_len,
        files,
        retired,
        feed,
    })
}

/// Encodes (sha256, doc_id) pairs of one commit.
pub(crate) fn encode_sha_log(pairs: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_SHA_LOG);
    w.uvar(pairs.len() as u64);
    for (sha, doc_id) in pairs {
        w.str(sha).str(doc_id);
    }
    w.buf
}

pub(crate) fn decode_sha_log(v: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SHA_LOG)?;
    let n = r.count()?;
    (0..n).map(|_| Ok((r.str()?, r.str()?))).collect()
}

pub(crate) fn encode_pending(p: &PendingSha) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_PENDING);
    put_signatures(&mut w, &p.signatures);
    w.buf
}

pub(crate) fn decode_pending(v: &[u8]) -> Result<PendingSha, DecodeError> {
    let mut r = Reader::new(v, FORMAT_PENDING)?;
    Ok(PendingSha {
        signatures: get_signatures(&mut r)?,
    })
}

const FORMAT_REJECTED_DAY: u8 = 1;

/// Encodes one day's rejected-document counts (outgoing, incoming).
pub(crate) fn encode_rejected_day(counts: [u64; 2]) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_REJECTED_DAY);
    w.uvar(counts[0]).uvar(counts[1]);
    w.buf
}

pub(crate) fn decode_rejected_day(v: &[u8]) -> Result<[u64; 2], DecodeError> {
    let mut r = Reader::new(v, FORMAT_REJECTED_DAY)?;
    Ok([r.uvar()?, r.uvar()?])
}
