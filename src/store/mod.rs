//! The sled store: the only module that knows key layouts. Document groups
//! packed into pages by doc_id, per-day counts, a log of (sha256, doc_id)
//! pairs, signatures waiting for a sha256, source positions and counters.
//! [`Store::record_batch_once`] commits a batch and the positions atomically.

pub mod alerts;
pub mod codec;
pub mod encoding;
pub mod pages;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aggregate::{Aggregates, Day, DayCounts, Slot};
use crate::classify::Document;
use crate::parse::normalize::Direction;
use codec::{DecodeError, Reader, Writer};
use encoding::*;

/// Layout version of this binary's store.
pub const STORE_VERSION: u32 = 1;

const KEY_VERSION: &[u8] = b"\x00version";
const KEY_SETTINGS: &[u8] = b"\x00settings";
const PREFIX_PAGE: u8 = b'P';
const PREFIX_PAGE_KEY: u8 = b'I';
const PREFIX_DAY: u8 = b'a';
const PREFIX_SHA_LOG: u8 = b'h';
const PREFIX_PENDING: u8 = b's';
const PREFIX_SOURCE: u8 = b'p';
const PREFIX_SEEN: u8 = b'e';

const FORMAT_SETTINGS: u8 = 1;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is docflowd already running?)")]
    Locked { path: PathBuf },
    #[error("cannot open store {path}: {source}. If it is damaged, move it aside and re-read the logs into a new store")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store {path} has layout version {found}, this docflowd understands up to {STORE_VERSION}: upgrade docflowd, or move the store aside and rebuild it from the logs")]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("store {path} holds data but no docflow version key: it is not a docflow store or it is damaged")]
    NotDocflow { path: PathBuf },
    #[error("store write failed: {0}")]
    Write(#[from] sled::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("rejected-events file: {0}")]
    Rejected(std::io::Error),
}

/// Valid signatures collected under one join key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signatures {
    pub roles: u8,
    pub signers: Vec<String>,
}

/// Everything stored under one `doc_id`: its outgoing and incoming documents,
/// the signatures that name this `doc_id`, the signatures that name a sha256
/// of its documents, and the event ids seen for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocGroup {
    pub signatures: Signatures,
    /// Signatures joined by sha256, per sha256 of this group's documents.
    pub sha_signatures: Vec<(String, Signatures)>,
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

    /// Signatures joined to this group by `sha`.
    pub fn sha_signatures(&self, sha: &str) -> Option<&Signatures> {
        self.sha_signatures
            .iter()
            .find(|(s, _)| s == sha)
            .map(|(_, sig)| sig)
    }

    pub fn sha_signatures_mut(&mut self, sha: &str) -> &mut Signatures {
        let i = match self.sha_signatures.iter().position(|(s, _)| s == sha) {
            Some(i) => i,
            None => {
                self.sha_signatures
                    .push((sha.to_string(), Signatures::default()));
                self.sha_signatures.len() - 1
            }
        };
        &mut self.sha_signatures[i].1
    }
}

impl Signatures {
    pub fn is_empty(&self) -> bool {
        self.roles == 0 && self.signers.is_empty()
    }

    /// Adds the roles and signer names of `other`.
    pub fn merge(&mut self, other: &Signatures) {
        self.roles |= other.roles;
        for s in &other.signers {
            crate::classify::add_signer(&mut self.signers, s);
        }
    }
}

/// Signatures naming a sha256 that no document carries yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingSha {
    pub signatures: Signatures,
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
pub type IdSet = std::collections::HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>;

/// Every event-id hash seen, in about 8 bytes per id (a hash set takes 2 to
/// 4 times that, and twice as much again while it grows): a sorted vector
/// with an index on the top 16 bits, plus a small set of recent ids merged
/// into it from time to time.
#[derive(Debug, Default)]
pub struct SeenIds {
    sorted: Vec<u64>,
    /// `starts[b]` is the first index of `sorted` whose top 16 bits are `>= b`.
    starts: Vec<u32>,
    recent: IdSet,
}

impl SeenIds {
    /// Recent ids kept in the hash set before a merge.
    const RECENT: usize = 1 << 16;

    pub fn from_unsorted(mut ids: Vec<u64>) -> SeenIds {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let mut s = SeenIds {
            sorted: ids,
            ..SeenIds::default()
        };
        s.index();
        s
    }

    fn index(&mut self) {
        self.starts.clear();
        self.starts.reserve_exact((1 << 16) + 1);
        let mut i = 0usize;
        for b in 0..=(1u64 << 16) {
            while i < self.sorted.len() && (self.sorted[i] >> 48) < b {
                i += 1;
            }
            self.starts.push(i as u32);
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        if self.recent.contains(&id) {
            return true;
        }
        if self.sorted.is_empty() {
            return false;
        }
        let b = (id >> 48) as usize;
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        self.sorted[lo..hi].binary_search(&id).is_ok()
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn extend(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            if !self.contains(id) {
                self.recent.insert(id);
            }
        }
        if self.recent.len() >= Self::RECENT {
            self.merge();
        }
    }

    /// Moves the recent ids into the sorted vector, merging from the back in place.
    fn merge(&mut self) {
        let mut add: Vec<u64> = self.recent.drain().collect();
        add.sort_unstable();
        let old = self.sorted.len();
        let need = old + add.len();
        if self.sorted.capacity() < need {
            // Grow by an eighth, not double: this vector is the largest thing the writer keeps.
            self.sorted.reserve_exact(add.len().max(old / 8));
        }
        self.sorted.resize(need, 0);
        let (mut i, mut j, mut k) = (old, add.len(), need);
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > add[j - 1] {
                self.sorted[k - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k - 1] = add[j - 1];
                j -= 1;
            }
            k -= 1;
        }
        self.index();
    }
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

/// The document groups of one page, in doc_id order.
pub type Page = Vec<(String, DocGroup)>;

/// Everything one batch changes, written in one atomic step.
#[derive(Debug, Default)]
pub struct Commit {
    /// Encoded pages of document groups, by page key.
    pub pages: Vec<(String, sled::IVec)>,
    /// Keys of pages created by this batch.
    pub new_pages: Vec<String>,
    pub days: Vec<(Day, DayCounts)>,
    /// (sha256, doc_id) pairs first seen in this batch.
    pub sha_log: Vec<(String, String)>,
    /// Event-id hashes first seen in this batch, per source kind (exchange, signature).
    pub seen: [Vec<u64>; 2],
    pub pending_put: Vec<(String, PendingSha)>,
    pub pending_remove: Vec<String>,
    pub sources: Vec<(String, SourceState)>,
}

/// The embedded store; clones share the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    sha_log_seq: u64,
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
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
        // Sequence numbers of commits key the sha256 log and the seen-id lists:
        // continue after the highest in use.
        let mut sha_log_seq = 0;
        let prefixes = (0..SHA_PARTITIONS)
            .map(|p| [PREFIX_SHA_LOG, p])
            .chain([[PREFIX_SEEN, 0], [PREFIX_SEEN, 1]]);
        for prefix in prefixes {
            if let Some(kv) = db.scan_prefix(prefix).next_back() {
                let (k, _) = kv?;
                let b: [u8; 8] = k
                    .get(2..10)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(DecodeError("bad sha log key"))?;
                sha_log_seq = sha_log_seq.max(u64::from_be_bytes(b) + 1);
            }
        }
        Ok(Store {
            db,
            path: path.to_path_buf(),
            sha_log_seq,
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
        slot_of: impl Fn(&Document) -> Slot,
    ) -> Result<Aggregates, StoreError> {
        let mut agg = Aggregates::default();
        for item in self.groups_from(None) {
            let (_, group) = item?;
            for doc in [&group.outgoing, &group.incoming].into_iter().flatten() {
                agg.apply(&slot_of(doc), 1);
            }
        }
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([PREFIX_DAY]) {
            let (k, _) = item?;
            batch.remove(k);
        }
        for day in agg.days() {
            batch.insert(&day_key(day), encode_day(&agg.day_counts(day)));
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
            agg.set_day(day_of_key(&k)?, &decode_day(&v)?);
        }
        Ok(agg)
    }

    /// Durable state of every source that has committed anything.
    pub fn sources(&self) -> Result<BTreeMap<String, SourceState>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.db.scan_prefix([PREFIX_SOURCE]) {
            let (k, v) = item?;
            out.insert(
                String::from_utf8_lossy(&k[1..]).into_owned(),
                decode_source(&v)?,
            );
        }
        Ok(out)
    }

    /// Keys of all pages of document groups.
    pub fn page_keys(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .scan_prefix([PREFIX_PAGE_KEY])
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[1..]).into_owned()))
            .collect()
    }

    /// The encoded page with this key.
    pub fn page(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.db.get(prefixed(PREFIX_PAGE, key.as_bytes()))?)
    }

    /// Document groups in doc_id order, from `start` (inclusive) on.
    pub fn groups_from(
        &self,
        start: Option<&str>,
    ) -> impl Iterator<Item = Result<(String, DocGroup), StoreError>> + '_ {
        let first_page = match start {
            None => Ok(String::new()),
            Some(s) => self.page_keys().map(|keys| {
                keys.into_iter()
                    .filter(|k| k.as_str() <= s)
                    .max()
                    .unwrap_or_default()
            }),
        };
        let start = start.unwrap_or("").to_string();
        let pages: Box<dyn Iterator<Item = Result<Page, StoreError>>> = match first_page {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok(first) => Box::new(
                self.db
                    .range(prefixed(PREFIX_PAGE, first.as_bytes())..vec![PREFIX_PAGE + 1])
                    .map(|item| -> Result<_, StoreError> { Ok(decode_page(&item?.1)?) }),
            ),
        };
        pages.flat_map(move |page| -> Vec<Result<(String, DocGroup), StoreError>> {
            match page {
                Err(e) => vec![Err(e)],
                Ok(groups) => groups
                    .into_iter()
                    .filter(|(id, _)| *id >= start)
                    .map(Ok)
                    .collect(),
            }
        })
    }

    /// Visits every (sha256, doc_id) pair logged, in the partition of `sha`
    /// (or all of them), oldest first within a partition.
    pub fn scan_sha_log(
        &self,
        sha: Option<&str>,
        mut visit: impl FnMut(String, String),
    ) -> Result<(), StoreError> {
        let prefix = match sha {
            Some(sha) => vec![PREFIX_SHA_LOG, sha_partition(sha)],
            None => vec![PREFIX_SHA_LOG],
        };
        for item in self.db.scan_prefix(prefix) {
            for (sha, doc_id) in decode_sha_log(&item?.1)? {
                visit(sha, doc_id);
            }
        }
        Ok(())
    }

    /// The sha256 values with signatures waiting for a document.
    /// Every event-id hash seen so far by sources of `kind`.
    pub fn seen_ids(&self, kind: crate::parse::record::SourceKind) -> Result<SeenIds, StoreError> {
        let mut ids = Vec::new();
        for item in self.db.scan_prefix([PREFIX_SEEN, kind.as_byte()]) {
            let (_, v) = item?;
            ids.extend(
                v.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
            );
        }
        Ok(SeenIds::from_unsorted(ids))
    }

    pub fn pending_shas(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .scan_prefix([PREFIX_PENDING])
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[1..]).into_owned()))
            .collect()
    }

    pub fn pending(&self, sha: &str) -> Result<Option<PendingSha>, StoreError> {
        Ok(self
            .db
            .get(prefixed(PREFIX_PENDING, sha.as_bytes()))?
            .map(|v| decode_pending(&v))
            .transpose()?)
    }

    /// Commits a batch's effects and the sources' new positions in one atomic write.
    pub fn record_batch_once(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, page) in &commit.pages {
            batch.insert(prefixed(PREFIX_PAGE, key.as_bytes()), page.clone());
        }
        for key in &commit.new_pages {
            batch.insert(prefixed(PREFIX_PAGE_KEY, key.as_bytes()), &[]);
        }
        for (day, counts) in &commit.days {
            if counts.is_empty() {
                batch.remove(&day_key(*day));
            } else {
                batch.insert(&day_key(*day), encode_day(counts));
            }
        }
        let mut seq = self.sha_log_seq;
        if !commit.sha_log.is_empty() {
            let mut partitions: BTreeMap<u8, Vec<(String, String)>> = BTreeMap::new();
            for (sha, doc_id) in &commit.sha_log {
                partitions
                    .entry(sha_partition(sha))
                    .or_default()
                    .push((sha.clone(), doc_id.clone()));
            }
            for (partition, pairs) in partitions {
                let mut key = vec![PREFIX_SHA_LOG, partition];
                key.extend_from_slice(&seq.to_be_bytes());
                batch.insert(key, encode_sha_log(&pairs));
            }
        }
        seq += 1;
        for (kind, ids) in commit.seen.iter().enumerate() {
            if !ids.is_empty() {
                let mut key = vec![PREFIX_SEEN, kind as u8];
                key.extend_from_slice(&self.sha_log_seq.to_be_bytes());
                let mut v = Vec::with_capacity(ids.len() * 8);
                for id in ids {
                    v.extend_from_slice(&id.to_le_bytes());
                }
                batch.insert(key, v);
            }
        }
        for (sha, p) in &commit.pending_put {
            batch.insert(prefixed(PREFIX_PENDING, sha.as_bytes()), encode_pending(p));
        }
        for sha in &commit.pending_remove {
            batch.remove(prefixed(PREFIX_PENDING, sha.as_bytes()));
        }
        for (name, state) in &commit.sources {
            batch.insert(
                prefixed(PREFIX_SOURCE, name.as_bytes()),
                encode_source(state),
            );
        }
        self.db.apply_batch(batch)?;
        self.sha_log_seq = seq;
        Ok(())
    }

    /// Writes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    #[cfg(test)]
    fn insert_raw(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).unwrap();
    }
}

/// Partitions of the sha256 log: a lookup reads one of them.
const SHA_PARTITIONS: u8 = 64;

fn sha_partition(sha: &str) -> u8 {
    (xxhash_rust::xxh3::xxh3_64(sha.as_bytes()) % u64::from(SHA_PARTITIONS)) as u8
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::normalize::{Channel, Confidentiality};
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
    fn seen_ids_answer_like_a_set_across_merges() {
        use std::collections::HashSet;
        // Ids from a simple generator, plus extremes and ids sharing their top bits.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ids: Vec<u64> = (0..200_000).map(|_| next()).collect();
        ids.extend([0, 1, u64::MAX, u64::MAX - 1, 0xFFFF_0000_0000_0000]);
        let (loaded, added) = ids.split_at(50_000);
        let mut seen = SeenIds::from_unsorted(loaded.iter().rev().copied().collect());
        let mut model: HashSet<u64> = loaded.iter().copied().collect();
        for chunk in added.chunks(4_000) {
            seen.extend(chunk.iter().copied().chain(chunk.iter().take(10).copied()));
            model.extend(chunk.iter().copied());
        }
        assert_eq!(seen.len(), model.len(), "each id counted once");
        assert!(seen.sorted.len() > 50_000, "recent ids were merged");
        for id in &ids {
            assert!(seen.contains(*id), "{id:#x} forgotten");
        }
        for _ in 0..100_000 {
            let id = next();
            assert_eq!(seen.contains(id), model.contains(&id), "{id:#x}");
        }
        assert!(!SeenIds::default().contains(7));
    }

    #[test]
    fn pages_of_the_previous_format_still_decode_and_index() {
        use super::codec::Writer;
        use super::encoding::{decode_group, encode_group, index_page};
        let groups: Vec<(String, DocGroup)> = ["A-1", "A-2", "B-7"]
            .iter()
            .map(|id| {
                let mut d = doc();
                d.doc_id = id.to_string();
                let mut g = DocGroup {
                    incoming: Some(d),
                    ..DocGroup::default()
                };
                g.signatures.signers.push(format!("signer of {id}"));
                (id.to_string(), g)
            })
            .collect();
        // Format 2: doc_id then the group, without the group's length.
        let mut w = Writer::new(2);
        w.uvar(groups.len() as u64);
        for (id, g) in &groups {
            w.str(id).raw(&encode_group(g));
        }
        let legacy = w.buf;
        assert_eq!(decode_page(&legacy).unwrap(), groups);
        let index = index_page(&legacy).unwrap();
        for ((id, g), e) in groups.iter().zip(&index) {
            let range = |r: &std::ops::Range<u32>| r.start as usize..r.end as usize;
            assert_eq!(&legacy[range(&e.id)], id.as_bytes());
            assert_eq!(&decode_group(&legacy[range(&e.group)], id).unwrap(), g);
        }
        // A page cut short is an error, not a panic.
        assert!(index_page(&legacy[..legacy.len() - 3]).is_err());
        let current = encode_page(&groups);
        assert!(index_page(&current[..current.len() - 1]).is_err());
    }

    #[test]
    fn values_round_trip_through_the_encodings() {
        let g = DocGroup {
            signatures: Signatures {
                roles: 2,
                signers: vec!["UBND xã".into()],
            },
            sha_signatures: vec![(
                "ab".repeat(32),
                Signatures {
                    roles: 1,
                    signers: vec![],
                },
            )],
            outgoing: None,
            incoming: Some(doc()),
        };
        let page = vec![("12/QĐ-UBND".to_string(), g)];
        assert_eq!(decode_page(&encode_page(&page)).unwrap(), page);
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
            s.insert_raw(KEY_VERSION, &(STORE_VERSION + 1).to_le_bytes());
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
            commit.sha_log.push(("aa".into(), "D1".into()));
            commit
                .pending_put
                .push(("bb".into(), PendingSha::default()));
            commit.seen[1] = vec![7, 8];
            commit.sources.push((
                "x".into(),
                SourceState {
                    accepted: 3,
                    ..Default::default()
                },
            ));
            s.record_batch_once(&commit).unwrap();
            commit.sha_log[0].1 = "D2".into();
            s.record_batch_once(&commit).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let mut pairs = Vec::new();
        s.scan_sha_log(None, |sha, id| pairs.push((sha, id)))
            .unwrap();
        assert_eq!(
            pairs,
            vec![("aa".into(), "D1".into()), ("aa".into(), "D2".into())]
        );
        assert_eq!(s.pending_shas().unwrap(), vec!["bb".to_string()]);
        assert!(s.pending("bb").unwrap().is_some());
        // A commit after reopening never overwrites an earlier commit's ids.
        let mut s = s;
        let only_seen = Commit {
            seen: [vec![], vec![9]],
            ..Commit::default()
        };
        s.record_batch_once(&only_seen).unwrap();
        drop(s);
        let mut s = Store::open(dir.path(), 1 << 20).unwrap();
        s.record_batch_once(&Commit {
            seen: [vec![], vec![10]],
            ..Commit::default()
        })
        .unwrap();
        assert_eq!(
            s.seen_ids(crate::parse::record::SourceKind::Signature)
                .unwrap()
                .len(),
            4
        );
        assert!(s
            .seen_ids(crate::parse::record::SourceKind::Exchange)
            .unwrap()
            .is_empty());
        assert_eq!(s.sources().unwrap()["x"].accepted, 3);
        assert_eq!(s.sha_log_seq, 4, "one sequence number per commit");
        let mut found = Vec::new();
        s.scan_sha_log(Some("aa"), |_, id| found.push(id)).unwrap();
        assert_eq!(found, vec!["D1".to_string(), "D2".to_string()]);
    }
}
