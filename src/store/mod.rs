//! The sled store: the only module that knows key layouts. Document groups
//! packed into pages by doc_id, per-day counts, a log of (sha256, doc_id)
//! pairs, signatures waiting for a sha256, source positions and counters.
//! [`Store::record_batch_once`] commits a batch and the positions atomically.

pub mod alerts;
mod check;
pub mod clean;
pub mod codec;
mod commit;
pub mod encoding;
pub mod keys;
pub mod migrate;
pub mod pages;
pub(crate) mod proof;
pub mod snapshot;
pub(crate) mod swap;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aggregate::{Aggregates, Day, DayCounts, Slot};
use crate::model::{Direction, Document};
use codec::{DecodeError, Reader, Writer};
use encoding::*;
use keys::*;

/// Layout version of this binary's store (see [`migrate::MIGRATIONS`]).
pub const STORE_VERSION: u32 = 4;

const FORMAT_SETTINGS: u8 = 1;

/// File next to sled's files saying a docflow store was created here.
pub(crate) const MARKER_FILE: &str = "DOCFLOW_STORE";
const MARKER_TEXT: &str = "A docflow store (sled). Back it up with `docflowd export`; if it is damaged, `docflowd rebuild` re-reads the logs.\n";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is docflowd already running?)")]
    Locked { path: PathBuf },
    #[error("cannot open store {path}: {source}. If it is damaged, rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store {path} has layout version {found}, this docflowd understands up to {STORE_VERSION}: upgrade docflowd, or rebuild the store from the logs with this one: docflowd rebuild -c CONFIG")]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("store {path} holds data but no docflow version key: it is not a docflow store or it is damaged; rebuild it from the logs: docflowd rebuild -c CONFIG")]
    NotDocflow { path: PathBuf },
    #[error("store {path} is damaged: {what}. Refusing to serve numbers from it; rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Damaged { path: PathBuf, what: String },
    #[error("store {path} cannot be read ({what}); rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Unreadable { path: PathBuf, what: String },
    #[error("migrating store {path} from layout version {from}: {source}")]
    Migration {
        path: PathBuf,
        from: u32,
        source: Box<StoreError>,
    },
    #[error("reading the store failed: {0}")]
    Read(#[from] sled::Error),
    #[error("writing the store failed: {0}")]
    Write(sled::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("rejected-events file: {0}")]
    Rejected(std::io::Error),
}

impl StoreError {
    /// Whether the error says the store's contents cannot be trusted (as
    /// opposed to a store that is busy, too new, or out of space).
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged { .. }
            | StoreError::Unreadable { .. }
            | StoreError::NotDocflow { .. }
            | StoreError::Decode(_)
            | StoreError::Read(_) => true,
            StoreError::Open { source, .. } => !matches!(source, sled::Error::Io(_)),
            StoreError::Migration { source, .. } => source.is_damage(),
            _ => false,
        }
    }

    /// What is wrong, without the store's path and the remedy (for messages
    /// that give those themselves).
    pub fn detail(&self) -> String {
        match self {
            StoreError::Damaged { what, .. } | StoreError::Unreadable { what, .. } => what.clone(),
            e => e.to_string(),
        }
    }

    /// Whether the error is the filesystem refusing to grow.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Open { source: sled::Error::Io(e), .. } | StoreError::Write(sled::Error::Io(e)) | StoreError::Read(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull)
    }
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
    /// edXML statuses that arrived before their document, per direction.
    pub pending_status: [crate::model::DocStatus; 2],
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
            crate::model::add_signer(&mut self.signers, s);
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

    /// Adds ids known to be absent (checked with [`SeenIds::contains`]
    /// since the last change), without looking each up again.
    pub fn extend_new(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            debug_assert!(!self.contains(id), "{id:#x} is already in the set");
            self.recent.insert(id);
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
    /// Where an HTTP feed source stands (default for file sources).
    pub feed: FeedPos,
}

/// Where an HTTP feed source stands: the cursor to request next and how many
/// events of the page served at that cursor were already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedPos {
    /// `None` = the feed's beginning (no cursor parameter).
    pub cursor: Option<String>,
    /// Events at the start of the page at `cursor` already read (a feed may
    /// answer `next_cursor: null` and serve the same page grown later).
    pub skip: u64,
    /// Pages committed so far, for status.
    pub pages: u64,
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
    /// Days whose rejected-document counts changed (per direction).
    pub rejected_days: Vec<(Day, [u64; 2])>,
    /// edXML files read by this batch: (source, path).
    pub edxml_files: Vec<(String, String)>,
}

/// The embedded store; clones share the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    sha_log_seq: u64,
    /// The proof of the last commit, and a scrub's progress. Its lock is the
    /// commit lock: held by each commit, by an export's copy and by each
    /// step of a scrub, so none of them sees half a batch.
    committed: std::sync::Arc<std::sync::Mutex<commit::Committed>>,
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

impl Store {
    /// Opens (or creates) the store, checks its layout version and migrates
    /// an older layout.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Store, StoreError> {
        Ok(Store::open_migrating(path, cache_capacity)?.0)
    }

    /// Whether `path` holds a store already (docflowd's marker, or sled's
    /// data file with data in it): such a store must open with its data,
    /// never as a fresh one. An empty data file without the marker is what
    /// a creation that failed (e.g. on a full disk) leaves.
    pub fn exists(path: &Path) -> bool {
        path.join(MARKER_FILE).exists()
            || std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0)
    }

    /// Like [`Store::open`], also returning the migration steps applied.
    pub fn open_migrating(
        path: &Path,
        cache_capacity: u64,
    ) -> Result<(Store, Vec<migrate::StepReport>), StoreError> {
        swap::finish_interrupted(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source: source.into(),
        })?;
        let existed = Store::exists(path);
        // sled panics on some damaged files instead of returning an error.
        let open = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sled::Config::new()
                    .path(path)
                    .cache_capacity(cache_capacity)
                    .flush_every_ms(Some(500))
                    .open()
            }))
            .map_err(|panic| StoreError::Unreadable {
                path: path.to_path_buf(),
                what: format!("sled panicked while opening it: {}", panic_text(&panic)),
            })
        };
        let mut opened = open()?;
        // sled's background threads may hold a just-closed store's lock for
        // a moment: only a lock held for a second means another process.
        let lock_deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while matches!(&opened, Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock"))
            && std::time::Instant::now() < lock_deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
            opened = open()?;
        }
        if matches!(opened, Err(sled::Error::Corruption { .. }))
            && remove_unfinished_snapshots(path)
        {
            // An open on a full disk leaves an empty `snap.*.generating`
            // file that sled 0.34 then reads as corruption: it is an
            // unfinished snapshot and sled rebuilds it from its log.
            opened = open()?;
        }
        let db = opened.map_err(|source| {
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
        let unreadable = |e: StoreError| match e {
            StoreError::Decode(d) => StoreError::Unreadable {
                path: path.to_path_buf(),
                what: d.to_string(),
            },
            e => e,
        };
        let mut reports = Vec::new();
        match db.get(KEY_VERSION)? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .map_err(|_| DecodeError("bad version key"))
                    .map_err(|e| unreadable(e.into()))?;
                if found > STORE_VERSION {
                    return Err(StoreError::NewerVersion {
                        path: path.to_path_buf(),
                        found,
                    });
                }
                if found < STORE_VERSION {
                    reports = migrate::migrate(&db, found, STORE_VERSION).map_err(|e| {
                        StoreError::Migration {
                            path: path.to_path_buf(),
                            from: found,
                            source: Box::new(e),
                        }
                    })?;
                    for r in &reports {
                        tracing::info!(store = %path.display(), from = r.from, to = r.to, counts = ?r.counts, what = r.what, "store layout migrated");
                    }
                }
            }
            None if db.is_empty() && existed => {
                return Err(StoreError::Damaged {
                    path: path.to_path_buf(),
                    what: "it exists but reads as empty (sled recovered nothing)".into(),
                })
            }
            None if db.is_empty() => {
                let mut batch = sled::Batch::default();
                batch.insert(KEY_VERSION, &STORE_VERSION.to_le_bytes());
                batch.insert(KEY_META, migrate::encode_meta(&migrate::new_meta()));
                batch.insert(KEY_COMMIT, proof::Proof::default().encode());
                db.apply_batch(batch).map_err(StoreError::Write)?;
                db.flush().map_err(StoreError::Write)?;
            }
            None => {
                return Err(StoreError::NotDocflow {
                    path: path.to_path_buf(),
                })
            }
        }
        if !path.join(MARKER_FILE).exists() {
            // Written once the version is durable: from now on an empty or
            // unreadable store here is damage, not a first start.
            std::fs::write(path.join(MARKER_FILE), MARKER_TEXT).map_err(|source| {
                StoreError::Open {
                    path: path.to_path_buf(),
                    source: source.into(),
                }
            })?;
        }
        if db.contains_key(KEY_IMPORTING)? {
            return Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                what: "an import into it did not finish; delete the directory and import again, or rebuild".into(),
            });
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
                    .ok_or(DecodeError("bad sha log key"))
                    .map_err(|e| unreadable(e.into()))?;
                sha_log_seq = sha_log_seq.max(u64::from_be_bytes(b) + 1);
            }
        }
        let proof = match db.get(KEY_COMMIT)? {
            Some(v) => proof::Proof::decode(&v).map_err(|e| unreadable(e.into()))?,
            None => {
                return Err(StoreError::Damaged {
                    path: path.to_path_buf(),
                    what: "its commit record is missing".into(),
                })
            }
        };
        Ok((
            Store {
                db,
                path: path.to_path_buf(),
                sha_log_seq,
                committed: std::sync::Arc::new(std::sync::Mutex::new(commit::Committed::new(
                    proof,
                ))),
            },
            reports,
        ))
    }

    /// Creator and migration history of the store.
    pub fn meta(&self) -> Result<Option<migrate::Meta>, StoreError> {
        Ok(self
            .db
            .get(KEY_META)?
            .map(|v| migrate::decode_meta(&v))
            .transpose()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings the counts were made with, if any.
    pub fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let Some(v) = self.db.get(KEY_SETTINGS)? else {
            return Ok(None);
        };
        Ok(Some(decode_settings(&v)?))
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
                let slot = slot_of(doc);
                if doc.status.rejected {
                    agg.apply_rejected(slot.day, doc.direction, 1);
                }
                agg.apply(&slot, 1);
            }
        }
        let mut ops = commit::Ops::new();
        for prefix in [PREFIX_DAY, PREFIX_REJECTED_DAY] {
            for item in self.db.scan_prefix([prefix]) {
                ops.insert(item?.0.to_vec(), None);
            }
        }
        for day in agg.days() {
            ops.insert(
                day_key(day).to_vec(),
                Some(encode_day(&agg.day_counts(day)).into()),
            );
        }
        for day in agg.rejected_days() {
            let counts = encode_rejected_day(agg.rejected_day(day));
            ops.insert(rejected_day_key(day).to_vec(), Some(counts.into()));
        }
        let mut w = Writer::new(FORMAT_SETTINGS);
        w.str(&settings.timezone).u8(settings.required_roles);
        ops.insert(KEY_SETTINGS.to_vec(), Some(w.buf.into()));
        self.apply_tracked(ops)?;
        self.db.flush().map_err(StoreError::Write)?;
        Ok(agg)
    }

    /// All per-day counts.
    pub fn aggregates(&self) -> Result<Aggregates, StoreError> {
        let mut agg = Aggregates::default();
        for item in self.db.scan_prefix([PREFIX_DAY]) {
            let (k, v) = item?;
            agg.set_day(day_of_key(&k)?, &decode_day(&v)?);
        }
        for item in self.db.scan_prefix([PREFIX_REJECTED_DAY]) {
            let (k, v) = item?;
            agg.set_rejected_day(day_of_key(&k)?, decode_rejected_day(&v)?);
        }
        Ok(agg)
    }

    /// Paths of the edXML files `source` has already read.
    pub fn edxml_files(
        &self,
        source: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let prefix = edxml_file_key(source, "");
        self.db
            .scan_prefix(&prefix)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned()))
            .collect()
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
    pub fn seen_ids(&self, kind: crate::model::SourceKind) -> Result<SeenIds, StoreError> {
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

    #[cfg(test)]
    fn insert_raw(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).unwrap();
    }
}

/// Tells when every handle on a store is gone (sled then has closed it).
pub struct StoreWatch(std::sync::Weak<std::sync::Mutex<commit::Committed>>);

impl StoreWatch {
    pub fn closed(&self) -> bool {
        self.0.upgrade().is_none()
    }
}

impl Store {
    /// A watch that says when this store and all its clones are dropped.
    pub fn watch(&self) -> StoreWatch {
        StoreWatch(std::sync::Arc::downgrade(&self.committed))
    }
}

fn decode_settings(v: &[u8]) -> Result<Settings, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SETTINGS)?;
    Ok(Settings {
        timezone: r.str()?,
        required_roles: r.u8()?,
    })
}

/// Removes sled's unfinished snapshot files (`snap.*.generating`); whether
/// there were any.
fn remove_unfinished_snapshots(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::warn!(file = %entry.path().display(), "removed an unfinished sled snapshot left by a failed write");
            removed = true;
        }
    }
    removed
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
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

fn rejected_day_key(day: Day) -> [u8; 5] {
    let mut k = day_key(day);
    k[0] = PREFIX_REJECTED_DAY;
    k
}

fn edxml_file_key(source: &str, path: &str) -> Vec<u8> {
    let mut k = prefixed(PREFIX_EDXML_FILE, source.as_bytes());
    k.push(0);
    k.extend_from_slice(path.as_bytes());
    k
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
    use crate::model::{Channel, Confidentiality, ExchangeEvent};

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
        let fresh: Vec<u64> = (0..70_000)
            .map(|_| next())
            .filter(|id| !model.contains(id))
            .collect();
        seen.extend_new(fresh.iter().copied());
        model.extend(fresh.iter().copied());
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
            pending_status: Default::default(),
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
            feed: FeedPos::default(),
        };
        assert_eq!(decode_source(&encode_source(&s)).unwrap(), s);
        let http = SourceState {
            accepted: 1,
            feed: FeedPos {
                cursor: Some("c-42".into()),
                skip: 3,
                pages: 9,
            },
            ..SourceState::default()
        };
        assert_eq!(decode_source(&encode_source(&http)).unwrap(), http);
        for day in [i32::MIN, -1, 0, 739_000, i32::MAX] {
            assert_eq!(day_of_key(&day_key(day)).unwrap(), day);
        }
        assert!(day_key(-1) < day_key(0), "day keys sort in day order");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A page (format 2) of one plain group, as written before edXML data existed.
    const PLAIN_PAGE_V2: &str = "02010b31322f51c4902d55424e4400000002809dbfa20d010003010b56c4836e207068c3b26e670b31322f51c4902d55424e440f517579e1babf7420c491e1bb8b6e682056e1bb81207669e1bb87632063687579e1bb836e20c491e1bb95692073e1bb910b55424e442074e1bb896e68014061626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162010f4e677579e1bb856e2056c4836e2041";
    /// Its group bytes: after the format, count and the 11-byte doc_id.
    const PLAIN_GROUP_OFFSET: usize = 2 * (3 + 11);

    #[test]
    fn edxml_data_rides_behind_a_flag_and_plain_groups_keep_their_bytes() {
        use crate::model::DocStatus;
        let id = "12/QĐ-UBND".to_string();
        let plain = DocGroup {
            incoming: Some(doc()),
            ..DocGroup::default()
        };
        // Old data decodes unchanged, with no edXML data.
        let decoded = decode_page(&unhex(PLAIN_PAGE_V2)).unwrap();
        assert_eq!(decoded, vec![(id.clone(), plain.clone())]);
        assert!(decoded[0].1.incoming.as_ref().unwrap().status.is_empty());
        // A group without edXML data is still encoded exactly as before.
        assert_eq!(
            hex(&encode_group(&plain)),
            PLAIN_PAGE_V2[PLAIN_GROUP_OFFSET..]
        );
        let mut edxml = plain.clone();
        let d = edxml.incoming.as_mut().unwrap();
        d.business = 0b10;
        d.status = DocStatus::from_code(2, 1_781_000_100);
        edxml.pending_status[0] = DocStatus::from_code(1, 5);
        let bytes = encode_page(&[(id.clone(), edxml.clone())]);
        assert_eq!(
            decode_page(&bytes).unwrap(),
            vec![(id.clone(), edxml.clone())]
        );
        assert_eq!(decode_group(&encode_group(&edxml), &id).unwrap(), edxml);
    }

    #[test]
    fn rejected_counts_and_edxml_files_are_committed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path(), 1 << 20).unwrap();
            s.record_batch_once(&Commit {
                rejected_days: vec![(739_000, [2, 1]), (739_001, [0, 1])],
                edxml_files: vec![
                    ("truc".into(), "/in/a.edxml".into()),
                    ("truc".into(), "/in/b.edxml".into()),
                    ("truc2".into(), "/in/c.edxml".into()),
                ],
                ..Commit::default()
            })
            .unwrap();
            // A day back to zero is removed.
            s.record_batch_once(&Commit {
                rejected_days: vec![(739_001, [0, 0])],
                ..Commit::default()
            })
            .unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        let agg = s.aggregates().unwrap();
        assert_eq!(agg.rejected(None, None), [2, 1]);
        assert_eq!(agg.rejected_days().collect::<Vec<_>>(), vec![739_000]);
        let files = s.edxml_files("truc").unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.contains("/in/a.edxml") && files.contains("/in/b.edxml"));
        assert_eq!(s.edxml_files("truc2").unwrap().len(), 1);
        assert!(
            s.edxml_files("tru").unwrap().is_empty(),
            "names do not prefix each other"
        );
    }

    #[test]
    fn a_source_state_written_before_feed_positions_still_decodes() {
        // Layout 1 as written by earlier versions: format byte, counters,
        // last event time, rejected length, no files, no retired files.
        let old = [1u8, 5, 1, 2, 1, 5, 99, 0, 0];
        let s = decode_source(&old).unwrap();
        assert_eq!(s.accepted, 5);
        assert_eq!(s.last_event_time, Some(-3));
        assert_eq!(s.rejected_len, 99);
        assert_eq!(s.feed, FeedPos::default());
        // A file source's state is still written in exactly that layout.
        assert_eq!(encode_source(&s), old);
        // An unknown trailing section is an error, not a silent misread.
        let mut newer = old.to_vec();
        newer.push(77);
        assert!(decode_source(&newer).is_err());
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
        let newer = format!("layout version {}", STORE_VERSION + 1);
        assert!(
            e.contains(&newer) && e.contains("upgrade") && e.contains("docflowd rebuild"),
            "{e}"
        );
    }

    fn store_with_one_commit(path: &Path) {
        let mut s = Store::open(path, 1 << 20).unwrap();
        s.record_batch_once(&Commit {
            sources: vec![(
                "x".into(),
                SourceState {
                    accepted: 3,
                    ..Default::default()
                },
            )],
            ..Commit::default()
        })
        .unwrap();
        s.flush().unwrap();
    }

    #[test]
    fn a_store_whose_files_are_garbage_is_refused_not_opened_empty() {
        let dir = tempfile::tempdir().unwrap();
        store_with_one_commit(dir.path());
        let db = dir.path().join("db");
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        std::fs::write(&db, vec![0x5a; len]).unwrap();
        let e = Store::open(dir.path(), 1 << 20).err().expect("refused");
        let text = e.to_string();
        assert!(
            text.contains(&dir.path().display().to_string()) && text.contains("docflowd rebuild"),
            "{text}"
        );
        // Truncated to nothing: the same.
        std::fs::write(&db, b"").unwrap();
        assert!(Store::open(dir.path(), 1 << 20).is_err());
    }

    #[test]
    fn no_store_yet_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rejected")).unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(s.sources().unwrap().is_empty());
        assert_eq!(
            s.meta().unwrap().unwrap().created_by,
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn an_empty_data_file_left_by_a_failed_creation_is_a_fresh_start() {
        // A creation on a full disk leaves sled's files empty and no marker.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        std::fs::write(dir.path().join("conf"), b"").unwrap();
        assert!(!Store::exists(dir.path()));
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(s.sources().unwrap().is_empty());
        drop(s);
        assert!(Store::exists(dir.path()), "created: marked as a store");
    }

    #[test]
    fn an_unfinished_snapshot_left_by_a_full_disk_does_not_block_opening() {
        // sled 0.34, opened on a full disk, leaves an empty snap.*.generating
        // file and then reads it as corruption at every later open.
        let dir = tempfile::tempdir().unwrap();
        store_with_one_commit(dir.path());
        std::fs::write(dir.path().join("snap.00000000FFFFFFFF.generating"), b"").unwrap();
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.sources().unwrap()["x"].accepted, 3);
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
            s.seen_ids(crate::model::SourceKind::Signature)
                .unwrap()
                .len(),
            4
        );
        assert!(s
            .seen_ids(crate::model::SourceKind::Exchange)
            .unwrap()
            .is_empty());
        assert_eq!(s.sources().unwrap()["x"].accepted, 3);
        assert_eq!(s.sha_log_seq, 4, "one sequence number per commit");
        let mut found = Vec::new();
        s.scan_sha_log(Some("aa"), |_, id| found.push(id)).unwrap();
        assert_eq!(found, vec!["D1".to_string(), "D2".to_string()]);
    }
}
