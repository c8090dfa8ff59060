//! The sled store: the only module that knows key layouts. Documents grouped by
//! `doc_id`, signatures by sha256, per-day counts, seen event ids, source
//! positions; [`Store::record_batch_once`] commits a batch and positions atomically.

pub mod codec;

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};

use crate::aggregate::{Aggregates, Day, DayCounts};
use crate::classify::{Class, Document};
use crate::parse::normalize::{Confidentiality, Direction};
use crate::parse::record::SourceKind;
use codec::{DecodeError, Reader, Writer};

/// Layout version of this binary's store.
pub const STORE_VERSION: u32 = 1;

const KEY_VERSION: &[u8] = b"\x00version";
const KEY_SETTINGS: &[u8] = b"\x00settings";
const PREFIX_GROUP: u8 = b'd';
const PREFIX_SHA: u8 = b's';
const PREFIX_DAY: u8 = b'a';
const PREFIX_SEEN: u8 = b'e';
const PREFIX_SOURCE: u8 = b'p';

const FORMAT_GROUP: u8 = 1;
const FORMAT_SHA: u8 = 1;
const FORMAT_DAY: u8 = 1;
const FORMAT_SOURCE: u8 = 1;
const FORMAT_SETTINGS: u8 = 1;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is docflowd already running?)")]
    Locked { path: PathBuf },
    #[error("cannot open store {path}: {source}. If it is damaged, move it aside and run `docflowd rebuild` to re-read the logs")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store {path} has layout version {found}, this docflowd understands up to {STORE_VERSION}: upgrade docflowd, or move the store aside and rebuild it from the logs")]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("store {path} holds data but no docflow version key: it is not a docflow store or it is damaged")]
    NotDocflow { path: PathBuf },
    #[error("store write failed: {0}")]
    Write(#[from] sled::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Valid signatures collected under one join key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signatures {
    pub roles: u8,
    pub signers: Vec<String>,
}

/// Everything stored under one `doc_id`: its outgoing and incoming documents and
/// the signatures that name this `doc_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocGroup {
    pub signatures: Signatures,
    pub outgoing: Option<Document>,
    pub incoming: Option<Document>,
}

impl DocGroup {
    pub fn doc(&self, d: Direction) -> &Option<Document> {
        match d {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    pub fn doc_mut(&mut self, d: Direction) -> &mut Option<Document> {
        match d {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }
}

/// Signatures that name a sha256, and the doc_ids whose events carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShaEntry {
    pub signatures: Signatures,
    pub doc_ids: Vec<String>,
}

/// Where a file source stands in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePos {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (always at a record boundary).
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    /// Length and hash of the file's first bytes, to recognise it after a copy or truncation.
    pub head_len: u32,
    pub head_hash: u64,
    /// Inode of a live file this one is a copy of (0 = none): not read while that file lives.
    pub shadow_of: u64,
}

/// Durable state of one source: its position and event counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    pub accepted: u64,
    pub duplicate: u64,
    pub invalid: u64,
    pub last_event_time: Option<i64>,
    /// Length of `rejected/{source}.jsonl` after the last committed batch.
    pub rejected_len: u64,
    pub files: Vec<FilePos>,
    /// Files let go (rotated away or truncated), remembered to recognise copies.
    pub retired: Vec<FilePos>,
}

/// Settings that decide classes and days; a change means recounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub timezone: String,
    pub required_roles: u8,
}

/// Hasher for sets of already-hashed ids.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A set of 64-bit event-id hashes.
pub type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// Everything one batch changes, written in one atomic step.
#[derive(Debug, Default)]
pub struct Commit {
    pub groups: Vec<(String, DocGroup)>,
    pub shas: Vec<(String, ShaEntry)>,
    pub days: Vec<(Day, DayCounts)>,
    /// Newly seen event-id hashes per source kind, packed into one value each.
    pub seen: Vec<(SourceKind, Vec<u64>)>,
    pub sources: Vec<(String, SourceState)>,
}

/// The embedded store; clones share the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    seen_seq: u64,
}

impl Store {
    /// Opens (or creates) the store and checks its layout version.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|source| {
                let locked = matches!(&source, sled::Error::Io(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("lock"));
                if locked {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                } else {
                    StoreError::Open {
                        path: path.to_path_buf(),
                        source,
                    }
                }
            })?;
        match db.get(KEY_VERSION)? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .map_err(|_| DecodeError("bad version key"))?;
                if found > STORE_VERSION {
                    return Err(StoreError::NewerVersion {
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
            None if db.is_empty() => {
                db.insert(KEY_VERSION, &STORE_VERSION.to_le_bytes())?;
                db.flush()?;
            }
            None => {
                return Err(StoreError::NotDocflow {
                    path: path.to_path_buf(),
                })
            }
        }
        let seen_seq = match db.scan_prefix([PREFIX_SEEN]).next_back() {
            Some(kv) => {
                let (k, _) = kv?;
                seen_seq_of(&k)? + 1
            }
            None => 0,
        };
        Ok(Store {
            db,
            path: path.to_path_buf(),
            seen_seq,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings the counts were made with, if any.
    pub fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let Some(v) = self.db.get(KEY_SETTINGS)? else {
            return Ok(None);
        };
        let mut r = Reader::new(&v, FORMAT_SETTINGS)?;
        Ok(Some(Settings {
            timezone: r.str()?,
            required_roles: r.u8()?,
        }))
    }

    /// Records new settings and recounts every day from the documents.
    pub fn recount(
        &self,
        settings: &Settings,
        slot_of: impl Fn(&Document) -> (Day, Class),
    ) -> Result<Aggregates, StoreError> {
        let mut agg = Aggregates::default();
        for item in self.db.scan_prefix([PREFIX_GROUP]) {
            let (_, v) = item?;
            let group = decode_group(&v)?;
            for doc in [&group.outgoing, &group.incoming].into_iter().flatten() {
                let (day, class) = slot_of(doc);
                agg.apply(
                    &crate::aggregate::Slot {
                        day,
                        unit: doc.unit.clone(),
                        direction: doc.direction,
                        class,
                    },
                    1,
                );
            }
        }
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([PREFIX_DAY]) {
            let (k, _) = item?;
            batch.remove(k);
        }
        for (day, counts) in &agg.days {
            batch.insert(&day_key(*day), encode_day(counts));
        }
        let mut w = Writer::new(FORMAT_SETTINGS);
        w.str(&settings.timezone).u8(settings.required_roles);
        batch.insert(KEY_SETTINGS, w.buf);
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(agg)
    }

    /// All per-day counts.
    pub fn aggregates(&self) -> Result<Aggregates, StoreError> {
        let mut agg = Aggregates::default();
        for item in self.db.scan_prefix([PREFIX_DAY]) {
            let (k, v) = item?;
            agg.days.insert(day_of_key(&k)?, decode_day(&v)?);
        }
        Ok(agg)
    }

    /// Durable state of every source that has committed anything.
    pub fn sources(&self) -> Result<BTreeMap<String, SourceState>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.db.scan_prefix([PREFIX_SOURCE]) {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            out.insert(name, decode_source(&v)?);
        }
        Ok(out)
    }

    /// Every event-id hash seen so far by sources of `kind`.
    pub fn seen_ids(&self, kind: SourceKind) -> Result<IdSet, StoreError> {
        let mut set = IdSet::default();
        for item in self.db.scan_prefix([PREFIX_SEEN, kind.as_byte()]) {
            let (_, v) = item?;
            for chunk in v.chunks_exact(8) {
                set.insert(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
        }
        Ok(set)
    }

    pub fn group(&self, doc_id: &str) -> Result<Option<DocGroup>, StoreError> {
        self.db
            .get(group_key(doc_id))?
            .map(|v| decode_group(&v))
            .transpose()
            .map_err(Into::into)
    }

    pub fn sha_entry(&self, sha: &str) -> Result<Option<ShaEntry>, StoreError> {
        self.db
            .get(sha_key(sha))?
            .map(|v| decode_sha(&v))
            .transpose()
            .map_err(Into::into)
    }

    /// Document groups in doc_id order, starting after `after`.
    pub fn groups_after(
        &self,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<(String, DocGroup), StoreError>> + '_ {
        let start = match after {
            Some(a) => {
                let mut k = group_key(a);
                k.push(0);
                k
            }
            None => vec![PREFIX_GROUP],
        };
        self.db.range(start..vec![PREFIX_GROUP + 1]).map(
            |item| -> Result<(String, DocGroup), StoreError> {
                let (k, v) = item?;
                Ok((
                    String::from_utf8_lossy(&k[1..]).into_owned(),
                    decode_group(&v)?,
                ))
            },
        )
    }

    /// Commits a batch's effects and the sources' new positions in one atomic write.
    pub fn record_batch_once(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (doc_id, group) in &commit.groups {
            batch.insert(group_key(doc_id), encode_group(group));
        }
        for (sha, entry) in &commit.shas {
            batch.insert(sha_key(sha), encode_sha(entry));
        }
        for (day, counts) in &commit.days {
            if counts.is_empty() {
                batch.remove(&day_key(*day));
            } else {
                batch.insert(&day_key(*day), encode_day(counts));
            }
        }
        let mut seq = self.seen_seq;
        for (kind, ids) in &commit.seen {
            if ids.is_empty() {
                continue;
            }
            let mut key = vec![PREFIX_SEEN, kind.as_byte()];
            key.extend_from_slice(&seq.to_be_bytes());
            seq += 1;
            let mut v = Vec::with_capacity(ids.len() * 8);
            for id in ids {
                v.extend_from_slice(&id.to_le_bytes());
            }
            batch.insert(key, v);
        }
        for (name, state) in &commit.sources {
            let mut key = vec![PREFIX_SOURCE];
            key.extend_from_slice(name.as_bytes());
            batch.insert(key, encode_source(state));
        }
        self.db.apply_batch(batch)?;
        self.seen_seq = seq;
        Ok(())
    }

    /// Writes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

fn group_key(doc_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(doc_id.len() + 1);
    k.push(PREFIX_GROUP);
    k.extend_from_slice(doc_id.as_bytes());
    k
}

fn sha_key(sha: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(sha.len() + 1);
    k.push(PREFIX_SHA);
    k.extend_from_slice(sha.as_bytes());
    k
}

fn day_key(day: Day) -> [u8; 5] {
    let biased = (i64::from(day) - i64::from(i32::MIN)) as u32;
    let b = biased.to_be_bytes();
    [PREFIX_DAY, b[0], b[1], b[2], b[3]]
}

fn day_of_key(k: &[u8]) -> Result<Day, DecodeError> {
    let b: [u8; 4] = k
        .get(1..5)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError("bad day key"))?;
    Ok((i64::from(u32::from_be_bytes(b)) + i64::from(i32::MIN)) as Day)
}

fn seen_seq_of(k: &[u8]) -> Result<u64, DecodeError> {
    let b: [u8; 8] = k
        .get(2..10)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError("bad seen key"))?;
    Ok(u64::from_be_bytes(b))
}

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
        .str(&d.counterpart)
        .uvar(d.shas.len() as u64);
    for s in &d.shas {
        w.str(s);
    }
    w.uvar(d.signers.len() as u64);
    for s in &d.signers {
        w.str(s);
    }
}

fn get_document(
    r: &mut Reader,
    direction: Direction,
    doc_id: &str,
) -> Result<Document, DecodeError> {
    let time = r.ivar()?;
    let electronic = r.u8()? != 0;
    let confidentiality =
        Confidentiality::from_byte(r.u8()?).ok_or(DecodeError("bad confidentiality"))?;
    let roles = r.u8()?;
    let events = r.uvar()? as u32;
    let unit = r.str()?;
    let doc_number = r.str()?;
    let doc_type = r.str()?;
    let subject = r.str()?;
    let counterpart = r.str()?;
    let n = r.count()?;
    let shas = (0..n).map(|_| r.str()).collect::<Result<_, _>>()?;
    let n = r.count()?;
    let signers = (0..n).map(|_| r.str()).collect::<Result<_, _>>()?;
    Ok(Document {
        direction,
        doc_id: doc_id.to_string(),
        time,
        electronic,
        confidentiality,
        unit,
        doc_number,
        doc_type,
        subject,
        counterpart,
        shas,
        roles,
        signers,
        events,
    })
}

/// Encodes a document group (the doc_id is the key, not repeated).
pub fn encode_group(g: &DocGroup) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_GROUP);
    put_signatures(&mut w, &g.signatures);
    let flags = u8::from(g.outgoing.is_some()) | (u8::from(g.incoming.is_some()) << 1);
    w.u8(flags);
    for d in [&g.outgoing, &g.incoming].into_iter().flatten() {
        put_document(&mut w, d);
    }
    w.buf
}

fn decode_group_with_id(v: &[u8], doc_id: &str) -> Result<DocGroup, DecodeError> {
    let mut r = Reader::new(v, FORMAT_GROUP)?;
    let signatures = get_signatures(&mut r)?;
    let flags = r.u8()?;
    let outgoing = if flags & 1 != 0 {
        Some(get_document(&mut r, Direction::Outgoing, doc_id)?)
    } else {
        None
    };
    let incoming = if flags & 2 != 0 {
        Some(get_document(&mut r, Direction::Incoming, doc_id)?)
    } else {
        None
    };
    Ok(DocGroup {
        signatures,
        outgoing,
        incoming,
    })
}

fn decode_group(v: &[u8]) -> Result<DocGroup, DecodeError> {
    // The doc_id lives in the key; callers that need it fill it in (see `fill_ids`).
    decode_group_with_id(v, "")
}

fn fill_ids(mut g: DocGroup, doc_id: &str) -> DocGroup {
    for d in [&mut g.outgoing, &mut g.incoming].into_iter().flatten() {
        d.doc_id = doc_id.to_string();
    }
    g
}

fn encode_sha(e: &ShaEntry) -> Vec<u8> {
    let mut w = Writer::new(FORMAT_SHA);
    put_signatures(&mut w, &e.signatures);
    w.uvar(e.doc_ids.len() as u64);
    for id in &e.doc_ids {
        w.str(id);
    }
    w.buf
}

fn decode_sha(v: &[u8]) -> Result<ShaEntry, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SHA)?;
    let signatures = get_signatures(&mut r)?;
    let n = r.count()?;
    let doc_ids = (0..n).map(|_| r.str()).collect::<Result<_, _>>()?;
    Ok(ShaEntry {
        signatures,
        doc_ids,
    })
}

fn encode_day(counts: &DayCounts) -> Vec<u8> {
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

fn decode_day(v: &[u8]) -> Result<DayCounts, DecodeError> {
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

fn encode_source(s: &SourceState) -> Vec<u8> {
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

fn decode_source(v: &[u8]) -> Result<SourceState, DecodeError> {
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

impl Store {
    /// A group with the doc_id filled into its documents.
    pub fn group_with_ids(&self, doc_id: &str) -> Result<Option<DocGroup>, StoreError> {
        Ok(self.group(doc_id)?.map(|g| fill_ids(g, doc_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::normalize::Channel;
    use crate::parse::record::ExchangeEvent;

    fn doc() -> Document {
        let mut d = Document::from_event(&ExchangeEvent {
            event_id: None,
            time: 1_781_000_000,
            doc_id: "12/QĐ-UBND".into(),
            direction: Direction::Incoming,
            channel: Channel::Electronic,
            confidentiality: Confidentiality::Normal,
            unit: "Văn phòng".into(),
            doc_number: "12/QĐ-UBND".into(),
            doc_type: "Quyết định".into(),
            subject: "Về việc chuyển đổi số".into(),
            counterpart: "UBND tỉnh".into(),
            sha256: Some("ab".repeat(32)),
        });
        d.add_signatures(3, &["Nguyễn Văn A".into()]);
        d
    }

    #[test]
    fn values_round_trip_through_the_codec() {
        let g = DocGroup {
            signatures: Signatures {
                roles: 2,
                signers: vec!["UBND xã".into()],
            },
            outgoing: None,
            incoming: Some(doc()),
        };
        let back = fill_ids(decode_group(&encode_group(&g)).unwrap(), "12/QĐ-UBND");
        assert_eq!(back, g);
        let s = SourceState {
            accepted: 5,
            duplicate: 1,
            invalid: 2,
            last_event_time: Some(-3),
            rejected_len: 99,
            files: vec![FilePos {
                path: "/x".into(),
                dev: 1,
                ino: 2,
                offset: 3,
                line: 4,
                head_len: 5,
                head_hash: u64::MAX,
                shadow_of: 7,
            }],
            retired: vec![],
        };
        assert_eq!(decode_source(&encode_source(&s)).unwrap(), s);
        for day in [i32::MIN, -1, 0, 739_000, i32::MAX] {
            assert_eq!(day_of_key(&day_key(day)).unwrap(), day);
        }
        assert!(day_key(-1) < day_key(0), "day keys sort in day order");
    }

    #[test]
    fn a_store_of_a_newer_layout_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 1 << 20).unwrap();
            s.db.insert(KEY_VERSION, &(STORE_VERSION + 1).to_le_bytes())
                .unwrap();
            s.flush().unwrap();
        }
        let e = Store::open(dir.path(), 1 << 20).err().unwrap().to_string();
        assert!(
            e.contains("layout version 2") && e.contains("upgrade"),
            "{e}"
        );
    }

    #[test]
    fn a_commit_is_read_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path(), 1 << 20).unwrap();
            let mut commit = Commit::default();
            commit.seen.push((SourceKind::Exchange, vec![1, 2, 3]));
            commit.sources.push((
                "x".into(),
                SourceState {
                    accepted: 3,
                    ..Default::default()
                },
            ));
            s.record_batch_once(&commit).unwrap();
            s.record_batch_once(&commit).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.seen_ids(SourceKind::Exchange).unwrap().len(), 3);
        assert!(s.seen_ids(SourceKind::Signature).unwrap().is_empty());
        assert_eq!(s.sources().unwrap()["x"].accepted, 3);
        assert_eq!(s.seen_seq, 2);
    }
}
