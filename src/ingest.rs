//! The single writer: takes parsed batches from all sources, drops duplicates,
//! merges events into documents, derives per-day count changes, and commits
//! everything with the sources' positions in one atomic store write.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use tracing::{debug, error, info, warn};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

use crate::aggregate::{apply_to_counts, day_number, Aggregates, Day, DayCounts, Slot};
use crate::model::{
    add_signer, Direction, Document, Event, ExchangeEvent, SignatureEvent, SourceKind, StatusEvent,
};
use crate::parse::time::local_day;
use crate::service::Heartbeat;
use crate::sources::merge::MergeQueue;
use crate::sources::{Item, SourceBatch, SourceHandle};
use crate::store::pages::PageCache;
use crate::store::{
    Commit, DocGroup, IdSet, PendingSha, SeenIds, Signatures, SourceState, Store, StoreError,
};

/// Events committed in one store write at most.
pub const MAX_BATCH_EVENTS: usize = 4096;
/// Memory for decoded pages of documents kept by the writer.
pub const PAGE_CACHE_BYTES: usize = 8 << 20;
/// sha256 values remembered per generation of the recent map.
const RECENT_SHAS: usize = 50_000;
/// Bits of the sha256 membership filter (8 MiB).
const SHA_FILTER_BITS: usize = 64 << 20;

/// Set while store writes fail, across restarts of the pipeline in one
/// process, so a failure is logged at ERROR once, not once per retry.
static STORE_FAILING: AtomicBool = AtomicBool::new(false);

/// Whether the last store write of this process failed.
pub fn store_failing() -> bool {
    STORE_FAILING.load(Ordering::Relaxed)
}

/// Notes that store writes failed before this process image started.
pub fn mark_store_failing() {
    STORE_FAILING.store(true, Ordering::Relaxed);
}

/// Notes that the store accepts writes again.
pub fn store_recovered() {
    if STORE_FAILING.swap(false, Ordering::Relaxed) {
        info!("store writes work again; ingestion resumes from the last commit");
    }
}

/// Test hook of debug builds: `DOCFLOW_TEST_HANG={point}` blocks the thread
/// at `point` for good, as a dead mount or a stuck sled would, so tests can
/// check that shutdown still ends. Release builds have no such hook.
fn hang_for_test(point: &str) {
    if cfg!(debug_assertions) && std::env::var("DOCFLOW_TEST_HANG").as_deref() == Ok(point) {
        warn!(point, "DOCFLOW_TEST_HANG: this thread now hangs on purpose");
        loop {
            std::thread::park();
        }
    }
}

/// State shared with the HTTP API and metrics.
pub struct Shared {
    pub aggregates: RwLock<Aggregates>,
    pub sources: Vec<Arc<SourceHandle>>,
    /// False while the store refuses writes.
    pub store_ok: AtomicBool,
    /// Whether the store passed its checks (documents are served only then).
    pub health: crate::state::StoreHealth,
}

impl Shared {
    /// The state of a daemon (or rebuild) starting with `aggregates` and `sources`.
    pub fn new(aggregates: Aggregates, sources: Vec<Arc<SourceHandle>>) -> Arc<Shared> {
        Arc::new(Shared {
            aggregates: RwLock::new(aggregates),
            sources,
            store_ok: AtomicBool::new(true),
            health: Default::default(),
        })
    }
}

/// A fixed-size Bloom filter: memory does not grow with what it holds.
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const HASHES: u64 = 5;

    fn new(bits: usize) -> Bloom {
        Bloom {
            bits: vec![0; bits.div_ceil(64)],
        }
    }

    fn positions(&self, item: &str) -> impl Iterator<Item = usize> + '_ {
        let h = xxh3_128(item.as_bytes());
        let (a, b) = (h as u64, (h >> 64) as u64 | 1);
        let n = (self.bits.len() * 64) as u64;
        (0..Self::HASHES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % n) as usize)
    }

    fn insert(&mut self, item: &str) {
        let pos: Vec<usize> = self.positions(item).collect();
        for p in pos {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn contains(&self, item: &str) -> bool {
        self.positions(item)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// Which doc_ids carry a sha256: a filter of every sha256 ever seen, a
/// bounded map of recent ones, and the store's sha256 log for the rest.
struct ShaIndex {
    filter: Bloom,
    recent: [FastMap<u128, DocIds>; 2],
    /// sha256 values with signatures waiting for a document.
    pending: HashSet<String>,
    log_scans: u64,
}

/// The doc_ids of one sha256: nearly always one, kept without a vector.
enum DocIds {
    One(Box<str>),
    Many(Vec<Box<str>>),
}

impl DocIds {
    fn contains(&self, id: &str) -> bool {
        match self {
            DocIds::One(one) => **one == *id,
            DocIds::Many(ids) => ids.iter().any(|i| **i == *id),
        }
    }

    fn push(&mut self, id: &str) {
        match self {
            DocIds::One(one) => *self = DocIds::Many(vec![std::mem::take(one), id.into()]),
            DocIds::Many(ids) => ids.push(id.into()),
        }
    }

    fn to_vec(&self) -> Vec<String> {
        match self {
            DocIds::One(one) => vec![one.to_string()],
            DocIds::Many(ids) => ids.iter().map(|i| i.to_string()).collect(),
        }
    }
}

impl ShaIndex {
    fn open(store: &Store) -> Result<ShaIndex, StoreError> {
        let mut index = ShaIndex {
            filter: Bloom::new(SHA_FILTER_BITS),
            recent: Default::default(),
            pending: store.pending_shas()?.into_iter().collect(),
            log_scans: 0,
        };
        store.scan_sha_log(None, |sha, doc_id| {
            index.filter.insert(&sha);
            index.remember(&sha, &doc_id);
        })?;
        Ok(index)
    }

    fn remember(&mut self, sha: &str, doc_id: &str) {
        let key = xxh3_128(sha.as_bytes());
        if let Some(ids) = self.recent[0].get_mut(&key) {
            if !ids.contains(doc_id) {
                ids.push(doc_id);
            }
            return;
        }
        let mut ids = self.recent[1]
            .remove(&key)
            .unwrap_or_else(|| DocIds::One(doc_id.into()));
        if !ids.contains(doc_id) {
            ids.push(doc_id);
        }
        if self.recent[0].len() >= RECENT_SHAS {
            self.recent[1] = std::mem::take(&mut self.recent[0]);
        }
        self.recent[0].insert(key, ids);
    }

    /// The doc_ids whose documents carry `sha`.
    fn docs_with(&mut self, store: &Store, sha: &str) -> Result<Vec<String>, StoreError> {
        if !self.filter.contains(sha) {
            return Ok(Vec::new());
        }
        let key = xxh3_128(sha.as_bytes());
        for generation in &self.recent {
            if let Some(ids) = generation.get(&key) {
                return Ok(ids.to_vec());
            }
        }
        self.log_scans += 1;
        let mut ids = Vec::new();
        store.scan_sha_log(Some(sha), |s, id| {
            if s == sha && !ids.contains(&id) {
                ids.push(id);
            }
        })?;
        if ids.is_empty() {
            debug!(sha, "sha256 filter false positive");
        } else {
            for id in &ids {
                self.remember(sha, id);
            }
        }
        Ok(ids)
    }

    fn add(&mut self, sha: &str, doc_id: &str) {
        self.filter.insert(sha);
        self.remember(sha, doc_id);
    }
}

/// What became of one valid event.
enum Outcome {
    Accepted,
    Duplicate,
}

/// A hash map with a fast non-cryptographic hasher.
pub type FastMap<K, V> = HashMap<K, V, xxhash_rust::xxh3::Xxh3Builder>;

/// Changes of the current batch besides the pages.
#[derive(Default)]
struct Work {
    /// Where each touched group's documents counted before the batch.
    before: FastMap<String, [Option<Slot>; 2]>,
    sha_log: Vec<(String, String)>,
    /// Event-id hashes first seen in this batch, per source kind.
    new_seen: [IdSet; 2],
    pending: HashMap<String, PendingSha>,
    pending_remove: BTreeSet<String>,
    /// Day each touched group's documents counted as rejected on before the
    /// batch (only groups with a rejected document).
    before_rejected: FastMap<String, [Option<Day>; 2]>,
    /// edXML files read by the batch: (source, path).
    edxml_files: Vec<(String, String)>,
}

/// A batch ready to commit.
struct Prepared {
    commit: Commit,
    states: Vec<(usize, SourceState)>,
    delta: HashMap<Slot, i64>,
    rejected_delta: HashMap<(Day, Direction), i64>,
}

/// Where the writer's time went, logged at shutdown.
#[derive(Debug, Default)]
struct WriterStats {
    commits: u64,
    pages_written: u64,
    page_bytes: u64,
    prepare: Duration,
    write: Duration,
    apply: Duration,
    slots: Duration,
    dirty: Duration,
    evict: Duration,
}

/// The writer's state.
pub struct Ingestor {
    stats: WriterStats,
    /// Hashes of every event id seen, per source kind (8 bytes per event id).
    seen: [SeenIds; 2],
    store: Store,
    pages: PageCache,
    shas: ShaIndex,
    tz: Tz,
    required_roles: u8,
    rejected_dir: PathBuf,
    shared: Arc<Shared>,
    /// Fired when a store write fails: sled refuses every later write, so
    /// the store must be reopened (see [`crate::daemon::run_supervised`]).
    store_failed: Option<tokio_util::sync::CancellationToken>,
    /// Beats at each turn of the loop; the systemd watchdog watches it.
    heartbeat: Arc<Heartbeat>,
}

/// Hash of an event id within its source kind.
fn event_hash(kind: SourceKind, id: &str) -> u64 {
    xxh3_64_with_seed(id.as_bytes(), u64::from(kind.as_byte()) + 1)
}

impl Ingestor {
    pub fn new(
        store: Store,
        tz: Tz,
        required_roles: u8,
        rejected_dir: PathBuf,
        shared: Arc<Shared>,
    ) -> Result<Ingestor, StoreError> {
        Ok(Ingestor {
            stats: WriterStats::default(),
            seen: [
                store.seen_ids(SourceKind::Exchange)?,
                store.seen_ids(SourceKind::Signature)?,
            ],
            pages: PageCache::open(&store, PAGE_CACHE_BYTES)?,
            shas: ShaIndex::open(&store)?,
            store,
            tz,
            required_roles,
            rejected_dir,
            shared,
            store_failed: None,
            heartbeat: Arc::default(),
        })
    }

    /// The heartbeat this writer beats at each turn of its loop.
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        self.heartbeat.clone()
    }

    /// Beats `heartbeat` (the process's, which the watchdog reads) instead of its own.
    pub fn with_heartbeat(mut self, heartbeat: Arc<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Stops the writer at the first failed store write and fires `token`,
    /// instead of retrying in place.
    pub fn stop_on_store_failure(mut self, token: tokio_util::sync::CancellationToken) -> Self {
        self.store_failed = Some(token);
        self
    }

    /// Where a document counts.
    pub fn slot(doc: &Document, tz: Tz, required_roles: u8) -> Slot {
        Slot {
            day: day_number(local_day(doc.time, tz)),
            unit: doc.unit.clone(),
            direction: doc.direction,
            class: doc.class(required_roles),
        }
    }

    /// Takes batches until every source has stopped, committing as it goes.
    pub fn run(mut self, queue: &MergeQueue) -> Store {
        let mut failed = false;
        while let Some(batches) = queue.pop(MAX_BATCH_EVENTS, Duration::from_millis(500)) {
            self.heartbeat.beat();
            if !batches.is_empty() && !self.commit_with_retry(batches) {
                failed = true;
                break;
            }
        }
        info!(
            commits = self.stats.commits,
            pages_written = self.stats.pages_written,
            page_bytes = self.stats.page_bytes,
            prepare_ms = self.stats.prepare.as_millis() as u64,
            write_ms = self.stats.write.as_millis() as u64,
            apply_ms = self.stats.apply.as_millis() as u64,
            slots_ms = self.stats.slots.as_millis() as u64,
            dirty_ms = self.stats.dirty.as_millis() as u64,
            evict_ms = self.stats.evict.as_millis() as u64,
            "writer totals"
        );
        if self.shas.log_scans > 0 {
            info!(
                scans = self.shas.log_scans,
                "sha256 joins that needed a scan of the sha256 log"
            );
        }
        if failed {
            return self.store;
        }
        hang_for_test("writer-stop");
        if let Err(e) = self.store.flush() {
            error!(error = %e, "store flush at shutdown failed");
        }
        self.store
    }

    /// Commits the batches, retrying with backoff; false if the store failed
    /// and the writer must stop (only with [`Ingestor::stop_on_store_failure`]).
    fn commit_with_retry(&mut self, batches: Vec<SourceBatch>) -> bool {
        let mut delay = Duration::from_millis(500);
        let mut failing = false;
        let mut prepared: Option<Prepared> = None;
        loop {
            let started = std::time::Instant::now();
            let attempt = match prepared.take() {
                Some(p) => Ok(p),
                None => self.prepare(&batches),
            };
            self.stats.prepare += started.elapsed();
            let started = std::time::Instant::now();
            let error = match attempt {
                Err(e) => {
                    // The pages may hold half of this batch: start again from the store.
                    if let Err(e2) = self.pages.reset(&self.store) {
                        error!(error = %e2, "cannot reload pages");
                    }
                    e
                }
                Ok(p) => match self.store.record_batch_once(&p.commit) {
                    Ok(()) => {
                        self.stats.write += started.elapsed();
                        self.stats.commits += 1;
                        self.stats.pages_written += p.commit.pages.len() as u64;
                        self.stats.page_bytes += p
                            .commit
                            .pages
                            .iter()
                            .map(|(_, v)| v.len() as u64)
                            .sum::<u64>();
                        self.publish(p, &batches);
                        let t = std::time::Instant::now();
                        self.pages.evict();
                        self.stats.evict += t.elapsed();
                        if failing || STORE_FAILING.swap(false, Ordering::Relaxed) {
                            info!("store writes work again; ingestion resumed");
                            self.shared.store_ok.store(true, Ordering::Relaxed);
                        }
                        return true;
                    }
                    Err(e) => {
                        prepared = Some(p);
                        e
                    }
                },
            };
            if error.is_damage() {
                // A read that fails or does not decode: the store is damaged,
                // and retrying reads the same damage.
                self.shared.health.report_damage(&error.detail());
                return false;
            }
            let sled_failed = matches!(error, StoreError::Write(_));
            if !failing {
                self.shared.store_ok.store(false, Ordering::Relaxed);
                failing = true;
                if STORE_FAILING.swap(true, Ordering::Relaxed) {
                    warn!(error = %error, "store write still failing; batch not committed, positions not advanced");
                } else {
                    error!(error = %error, "store write failed (disk full?); batch not committed, positions not advanced; retrying");
                }
            }
            if sled_failed {
                if let Some(token) = &self.store_failed {
                    // sled 0.34 keeps the first I/O error and fails every later
                    // write: reopening is the only retry that can succeed.
                    token.cancel();
                    return false;
                }
            }
            // Waiting to retry is alive, not stuck (a restart would not fix a
            // full disk): keep the watchdog's heartbeat going.
            let until = std::time::Instant::now() + delay;
            while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                self.heartbeat.beat();
                std::thread::sleep(left.min(Duration::from_secs(1)));
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Applies a batch to the cached pages and builds its commit.
    fn prepare(&mut self, batches: &[SourceBatch]) -> Result<Prepared, StoreError> {
        let mut work = Work::default();
        let mut states: Vec<(usize, SourceState)> = Vec::new();
        let mut rejected: HashMap<usize, Vec<u8>> = HashMap::new();
        let t_apply = std::time::Instant::now();
        for batch in batches {
            let handle = self.shared.sources[batch.source].clone();
            let idx = match states.iter().position(|(i, _)| *i == batch.source) {
                Some(i) => i,
                None => {
                    states.push((batch.source, handle.committed_state()));
                    states.len() - 1
                }
            };
            let kind = handle.config.kind;
            for item in &batch.items {
                match item {
                    Item::Invalid(r) => {
                        states[idx].1.invalid += 1;
                        warn!(source = %handle.config.name, file = %r.file, line = r.line, reason = %r.reason, "rejected event");
                        let line = serde_json::json!({
                            "source": handle.config.name,
                            "file": r.file,
                            "line": r.line,
                            "reason": r.reason,
                            "record": r.raw,
                        });
                        let buf = rejected.entry(batch.source).or_default();
                        buf.extend_from_slice(line.to_string().as_bytes());
                        buf.push(b'\n');
                    }
                    Item::Event(ev) => {
                        let hash = ev.event_id().map(|id| event_hash(kind, id));
                        let outcome = match ev {
                            Event::Exchange(e) => self.apply_exchange(&mut work, e, hash, 0)?,
                            Event::EdxmlExchange(e, business) => {
                                self.apply_exchange(&mut work, e, hash, 1 << business)?
                            }
                            Event::Signature(s) => self.apply_signature(&mut work, s, hash)?,
                            Event::Status(s) => self.apply_status(&mut work, s)?,
                        };
                        let state = &mut states[idx].1;
                        match outcome {
                            Outcome::Duplicate => {
                                state.duplicate += 1;
                                debug!(source = %handle.config.name, event_id = ev.event_id(), "duplicate event");
                            }
                            Outcome::Accepted => {
                                state.accepted += 1;
                                state.last_event_time = Some(
                                    state
                                        .last_event_time
                                        .map_or(ev.time(), |t| t.max(ev.time())),
                                );
                            }
                        }
                    }
                }
            }
            if let crate::config::Input::EdxmlDir(_) = handle.config.input {
                for f in &batch.files {
                    work.edxml_files
                        .push((handle.config.name.clone(), f.path.clone()));
                }
            }
            let state = &mut states[idx].1;
            state.files.clone_from(&batch.files);
            state.retired.clone_from(&batch.retired);
            if let Some(feed) = &batch.feed {
                state.feed.clone_from(feed);
            }
        }
        // Rejected events are appended before the commit; the committed length
        // lets a restart cut off lines of a batch that was never committed.
        for (source, bytes) in &rejected {
            let (_, state) = states
                .iter_mut()
                .find(|(i, _)| i == source)
                .expect("state of a batch source");
            let name = &self.shared.sources[*source].config.name;
            state.rejected_len =
                append_rejected(&self.rejected_dir, name, state.rejected_len, bytes)
                    .map_err(StoreError::Rejected)?;
        }
        self.stats.apply += t_apply.elapsed();
        let t_slots = std::time::Instant::now();
        let mut delta: HashMap<Slot, i64> = HashMap::new();
        let mut rejected_delta: HashMap<(Day, Direction), i64> = HashMap::new();
        for (doc_id, before) in work.before {
            let group = self.pages.get(&self.store, &doc_id)?;
            for d in Direction::ALL {
                let after = group
                    .and_then(|g| g.doc(d).as_ref())
                    .map(|doc| Self::slot(doc, self.tz, self.required_roles));
                let before = &before[d.as_byte() as usize];
                if *before != after {
                    if let Some(b) = before {
                        *delta.entry(b.clone()).or_default() -= 1;
                    }
                    if let Some(a) = after {
                        *delta.entry(a).or_default() += 1;
                    }
                }
            }
            let rejected_before = work.before_rejected.get(&doc_id);
            for d in Direction::ALL {
                let before = rejected_before.and_then(|r| r[d.as_byte() as usize]);
                let after = group
                    .and_then(|g| g.doc(d).as_ref())
                    .and_then(|doc| rejected_day(doc, self.tz));
                if before != after {
                    if let Some(b) = before {
                        *rejected_delta.entry((b, d)).or_default() -= 1;
                    }
                    if let Some(a) = after {
                        *rejected_delta.entry((a, d)).or_default() += 1;
                    }
                }
            }
        }
        delta.retain(|_, n| *n != 0);
        rejected_delta.retain(|_, n| *n != 0);
        self.stats.slots += t_slots.elapsed();
        let t_dirty = std::time::Instant::now();
        let mut commit = Commit::default();
        let dirty = self.pages.take_dirty();
        self.stats.dirty += t_dirty.elapsed();
        commit.pages = dirty.pages;
        commit.new_pages = dirty.new_pages;
        let mut days: BTreeMap<Day, DayCounts> = BTreeMap::new();
        {
            let agg = self.shared.aggregates.read().expect("aggregates lock");
            for (slot, n) in &delta {
                let counts = days
                    .entry(slot.day)
                    .or_insert_with(|| agg.day_counts(slot.day));
                apply_to_counts(counts, slot, *n);
            }
        }
        commit.days = days.into_iter().collect();
        {
            let agg = self.shared.aggregates.read().expect("aggregates lock");
            let mut rejected_days: BTreeMap<Day, [u64; 2]> = BTreeMap::new();
            for ((day, d), n) in &rejected_delta {
                let counts = rejected_days
                    .entry(*day)
                    .or_insert_with(|| agg.rejected_day(*day));
                let c = &mut counts[d.as_byte() as usize];
                *c = c.saturating_add_signed(*n);
            }
            commit.rejected_days = rejected_days.into_iter().collect();
        }
        commit.edxml_files = std::mem::take(&mut work.edxml_files);
        commit.sha_log = work.sha_log;
        commit.seen = [
            work.new_seen[0].iter().copied().collect(),
            work.new_seen[1].iter().copied().collect(),
        ];
        commit.pending_remove = work.pending_remove.iter().cloned().collect();
        commit.pending_put = work
            .pending
            .into_iter()
            .filter(|(sha, _)| !work.pending_remove.contains(sha))
            .collect();
        commit.sources = states
            .iter()
            .map(|(i, s)| (self.shared.sources[*i].config.name.clone(), s.clone()))
            .collect();
        Ok(Prepared {
            commit,
            states,
            delta,
            rejected_delta,
        })
    }

    /// After a successful commit: the in-memory mirrors follow the store.
    fn publish(&mut self, p: Prepared, batches: &[SourceBatch]) {
        for (set, new) in self.seen.iter_mut().zip(&p.commit.seen) {
            // first_sighting checked each of them against the set.
            set.extend_new(new.iter().copied());
        }
        {
            let mut agg = self.shared.aggregates.write().expect("aggregates lock");
            for (slot, n) in &p.delta {
                agg.apply(slot, *n);
            }
            for ((day, d), n) in &p.rejected_delta {
                agg.apply_rejected(*day, *d, *n);
            }
        }
        for (i, state) in p.states {
            let seq = batches
                .iter()
                .filter(|b| b.source == i)
                .map(|b| b.seq)
                .max()
                .unwrap_or(0);
            self.shared.sources[i].committed(state, seq);
        }
    }

    /// The group of `doc_id` for changing; remembers where its documents counted before.
    fn touch(&mut self, work: &mut Work, doc_id: &str) -> Result<&mut DocGroup, StoreError> {
        let (tz, roles) = (self.tz, self.required_roles);
        let group = self.pages.get_mut(&self.store, doc_id)?;
        if !work.before.contains_key(doc_id) {
            let slots =
                Direction::ALL.map(|d| group.doc(d).as_ref().map(|doc| Self::slot(doc, tz, roles)));
            work.before.insert(doc_id.to_string(), slots);
            let rejected =
                Direction::ALL.map(|d| group.doc(d).as_ref().and_then(|doc| rejected_day(doc, tz)));
            if rejected != [None, None] {
                work.before_rejected.insert(doc_id.to_string(), rejected);
            }
        }
        Ok(group)
    }

    /// Whether an event id is new for its source kind; records it if so.
    fn first_sighting(&mut self, work: &mut Work, kind: SourceKind, hash: u64) -> bool {
        let k = kind.as_byte() as usize;
        if self.seen[k].contains(hash) || !work.new_seen[k].insert(hash) {
            return false;
        }
        true
    }

    fn pending_entry<'w>(
        &self,
        work: &'w mut Work,
        sha: &str,
    ) -> Result<&'w mut PendingSha, StoreError> {
        if !work.pending.contains_key(sha) {
            let stored = if self.shas.pending.contains(sha) {
                self.store.pending(sha)?
            } else {
                None
            };
            work.pending
                .insert(sha.to_string(), stored.unwrap_or_default());
        }
        Ok(work.pending.get_mut(sha).expect("just inserted"))
    }

    /// A status message: kept on its document, or parked in the group until it comes.
    fn apply_status(&mut self, work: &mut Work, s: &StatusEvent) -> Result<Outcome, StoreError> {
        let status = crate::model::DocStatus::from_code(s.code, s.time);
        let g = self.touch(work, &s.doc_id)?;
        match g.doc_mut(s.direction) {
            Some(doc) => doc.status.merge(&status),
            None => g.pending_status[s.direction.as_byte() as usize].merge(&status),
        }
        Ok(Outcome::Accepted)
    }

    /// `business` is a bit mask of edXML business types (0 for other formats).
    fn apply_exchange(
        &mut self,
        work: &mut Work,
        e: &ExchangeEvent,
        hash: Option<u64>,
        business: u8,
    ) -> Result<Outcome, StoreError> {
        if let Some(h) = hash {
            if !self.first_sighting(work, SourceKind::Exchange, h) {
                return Ok(Outcome::Duplicate);
            }
        }
        let g = self.touch(work, &e.doc_id)?;
        let new_sha = match g.doc_mut(e.direction) {
            Some(doc) => {
                doc.business |= business;
                doc.merge_event(e)
            }
            None => {
                let parked = std::mem::take(&mut g.pending_status[e.direction.as_byte() as usize]);
                let mut doc = Document::from_event(e);
                doc.business |= business;
                doc.status.merge(&parked);
                doc.add_signatures(g.signatures.roles, &g.signatures.signers);
                let sha = doc.shas.first().cloned();
                *g.doc_mut(e.direction) = Some(doc);
                sha
            }
        };
        if let Some(sha) = new_sha {
            self.link_sha(work, &e.doc_id, e.direction, &sha)?;
        }
        Ok(Outcome::Accepted)
    }

    /// A document gained `sha`: it takes the signatures already joined by it.
    fn link_sha(
        &mut self,
        work: &mut Work,
        doc_id: &str,
        direction: Direction,
        sha: &str,
    ) -> Result<(), StoreError> {
        let others = self.shas.docs_with(&self.store, sha)?;
        let mut joined = Signatures::default();
        for other in &others {
            if let Some(s) = self
                .pages
                .get(&self.store, other)?
                .and_then(|g| g.sha_signatures(sha))
            {
                joined.merge(s);
            }
        }
        if self.shas.pending.contains(sha) || work.pending.contains_key(sha) {
            let p = std::mem::take(self.pending_entry(work, sha)?);
            joined.merge(&p.signatures);
            work.pending_remove.insert(sha.to_string());
            self.shas.pending.remove(sha);
        }
        let g = self.touch(work, doc_id)?;
        if !joined.is_empty() {
            g.sha_signatures_mut(sha).merge(&joined);
            if let Some(doc) = g.doc_mut(direction) {
                doc.add_signatures(joined.roles, &joined.signers);
            }
        }
        if !others.iter().any(|o| o == doc_id) {
            work.sha_log.push((sha.to_string(), doc_id.to_string()));
        }
        self.shas.add(sha, doc_id);
        Ok(())
    }

    fn apply_signature(
        &mut self,
        work: &mut Work,
        s: &SignatureEvent,
        hash: Option<u64>,
    ) -> Result<Outcome, StoreError> {
        let sha_docs = match &s.sha256 {
            Some(sha) => self.shas.docs_with(&self.store, sha)?,
            None => Vec::new(),
        };
        if let Some(h) = hash {
            if !self.first_sighting(work, SourceKind::Signature, h) {
                return Ok(Outcome::Duplicate);
            }
        }
        if !s.valid {
            return Ok(Outcome::Accepted); // adds nothing, revokes nothing
        }
        let signature = Signatures {
            roles: s.role.bit(),
            signers: if s.signer.is_empty() {
                vec![]
            } else {
                vec![s.signer.clone()]
            },
        };
        if let Some(doc_id) = &s.doc_id {
            let g = self.touch(work, doc_id)?;
            g.signatures.roles |= signature.roles;
            add_signer(&mut g.signatures.signers, &s.signer);
            for d in Direction::ALL {
                if let Some(doc) = g.doc_mut(d) {
                    doc.add_signatures(signature.roles, &signature.signers);
                }
            }
        }
        if let Some(sha) = &s.sha256 {
            if sha_docs.is_empty() {
                match &s.doc_id {
                    // Parked in the named group, which the sha256 index then lists:
                    // a document with this sha256 will find it there.
                    Some(doc_id) => {
                        self.touch(work, doc_id)?
                            .sha_signatures_mut(sha)
                            .merge(&signature);
                        work.sha_log.push((sha.clone(), doc_id.clone()));
                        self.shas.add(sha, doc_id);
                    }
                    None => {
                        self.pending_entry(work, sha)?.signatures.merge(&signature);
                        self.shas.pending.insert(sha.clone());
                    }
                }
            }
            for doc_id in &sha_docs {
                let g = self.touch(work, doc_id)?;
                g.sha_signatures_mut(sha).merge(&signature);
                for d in Direction::ALL {
                    if let Some(doc) = g.doc_mut(d) {
                        if doc.shas.binary_search(sha).is_ok() {
                            doc.add_signatures(signature.roles, &signature.signers);
                        }
                    }
                }
            }
        }
        Ok(Outcome::Accepted)
    }
}

/// The day a document counts as rejected by a receiver on, if it was.
fn rejected_day(doc: &Document, tz: Tz) -> Option<Day> {
    doc.status
        .rejected
        .then(|| day_number(local_day(doc.time, tz)))
}

/// Appends rejected lines at the committed length (cutting off lines of an
/// uncommitted batch); returns the new length.
fn append_rejected(
    dir: &std::path::Path,
    source: &str,
    committed_len: u64,
    bytes: &[u8],
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{source}.jsonl"));
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    let len = f.metadata()?.len();
    if len > committed_len {
        f.set_len(committed_len)?;
    }
    f.write_all(bytes)?;
    Ok(len.min(committed_len) + bytes.len() as u64)
}

/// Cuts a rejected file back to its committed length (at start-up).
pub fn trim_rejected(
    dir: &std::path::Path,
    source: &str,
    committed_len: u64,
) -> std::io::Result<()> {
    let path = dir.join(format!("{source}.jsonl"));
    match OpenOptions::new().write(true).open(&path) {
        Ok(f) => {
            if f.metadata()?.len() > committed_len {
                f.set_len(committed_len)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha256_shared_by_two_documents_finds_both_while_recent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let mut shas = ShaIndex::open(&store).unwrap();
        let sha = "ab".repeat(32);
        shas.add(&sha, "DOC-A");
        shas.add(&sha, "DOC-B");
        shas.add(&sha, "DOC-A");
        assert_eq!(shas.docs_with(&store, &sha).unwrap(), ["DOC-A", "DOC-B"]);
        // Still found after the recent map has rotated once.
        for i in 0..RECENT_SHAS {
            shas.add(&format!("{i:064x}"), "DOC-X");
        }
        assert_eq!(shas.docs_with(&store, &sha).unwrap(), ["DOC-A", "DOC-B"]);
        assert_eq!(shas.log_scans, 0);
        assert!(shas.docs_with(&store, &"cd".repeat(32)).unwrap().is_empty());
    }

    #[test]
    fn the_filter_has_no_false_negatives() {
        let mut b = Bloom::new(1 << 16);
        for i in 0..2000 {
            b.insert(&format!("sha-{i}"));
        }
        assert!((0..2000).all(|i| b.contains(&format!("sha-{i}"))));
        let false_positives = (0..2000)
            .filter(|i| b.contains(&format!("other-{i}")))
            .count();
        assert!(false_positives < 20, "{false_positives}");
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use crate::aggregate::Summary;
    use crate::config::Config;
    use crate::model::{Channel, Confidentiality, Role};
    use crate::sources::SourceHandle;

    const CONFIG: &str = r#"
[agency]
code = "T"
[storage]
path = "/unused"
[[sources]]
name = "ex"
kind = "exchange"
format = "jsonl"
path = "/unused/ex*.jsonl"
[[sources]]
name = "sg"
kind = "signature"
format = "jsonl"
path = "/unused/sg*.jsonl"
"#;

    fn exchange(id: &str, doc: &str, channel: Channel, sha: Option<&str>, time: i64) -> Event {
        Event::Exchange(ExchangeEvent {
            event_id: Some(id.into()),
            time,
            doc_id: doc.into(),
            direction: Direction::Outgoing,
            channel,
            confidentiality: Confidentiality::Normal,
            unit: "Văn phòng".into(),
            doc_number: String::new(),
            doc_type: String::new(),
            subject: String::new(),
            counterpart: String::new(),
            sha256: sha.map(str::to_string),
        })
    }

    fn signature(id: &str, doc: Option<&str>, sha: Option<&str>, role: Role, valid: bool) -> Event {
        Event::Signature(SignatureEvent {
            event_id: Some(id.into()),
            time: 1_780_000_000,
            doc_id: doc.map(str::to_string),
            sha256: sha.map(str::to_string),
            role,
            valid,
            signer: String::new(),
        })
    }

    /// Ingests `events` one batch each (in the given order, through a
    /// restart half-way) and returns the all-time summary and event counts.
    fn ingest(events: &[Event]) -> (Summary, u64, u64) {
        let (summary, accepted, duplicate, _) = ingest_counting_rejected(events);
        (summary, accepted, duplicate)
    }

    /// [`ingest`], also returning the documents rejected by a receiver (outgoing, incoming).
    fn ingest_counting_rejected(events: &[Event]) -> (Summary, u64, u64, [u64; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(std::path::Path::new("/t/d.toml"), CONFIG).unwrap();
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let halves = events.split_at(events.len() / 2);
        let mut states: Vec<SourceState> = vec![SourceState::default(); 2];
        let mut summary = Summary::default();
        let mut rejected = [0, 0];
        for part in [halves.0, halves.1] {
            // sled's background threads let go of the previous handle shortly after it is dropped.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let store = loop {
                match Store::open(&dir.path().join("store"), 1 << 20) {
                    Ok(s) => break s,
                    Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            let aggregates = store.aggregates().unwrap();
            let handles: Vec<_> = config
                .sources
                .iter()
                .zip(&states)
                .map(|(c, s)| Arc::new(SourceHandle::new(c.clone(), s.clone())))
                .collect();
            let shared = Shared::new(aggregates, handles);
            let mut ingestor =
                Ingestor::new(store, tz, 3, dir.path().join("rejected"), shared.clone()).unwrap();
            for (seq, ev) in part.iter().enumerate() {
                let source = usize::from(matches!(ev, Event::Signature(_)));
                ingestor.commit_with_retry(vec![SourceBatch {
                    source,
                    seq: seq as u64 + 1,
                    items: vec![Item::Event(ev.clone())],
                    files: vec![],
                    retired: vec![],
                    feed: None,
                }]);
            }
            let queue = MergeQueue::new(2);
            queue.close(0);
            queue.close(1);
            ingestor.run(&queue).flush().unwrap();
            states = shared.sources.iter().map(|h| h.committed_state()).collect();
            summary = shared.aggregates.read().unwrap().summary(None, None);
            rejected = shared.aggregates.read().unwrap().rejected(None, None);
        }
        let accepted = states.iter().map(|s| s.accepted).sum();
        let duplicate = states.iter().map(|s| s.duplicate).sum();
        (summary, accepted, duplicate, rejected)
    }

    fn corpus() -> Vec<Event> {
        vec![
            // A: signed by a person through its sha256 and by the agency through its doc_id.
            exchange("e1", "A", Channel::Electronic, Some("s-a"), 100),
            exchange("e2", "A", Channel::Electronic, Some("s-a"), 50),
            signature("g1", None, Some("s-a"), Role::Person, true),
            signature("g2", Some("A"), None, Role::Organization, true),
            // B: paper, even with signatures.
            exchange("e3", "B", Channel::Paper, None, 100),
            signature("g3", Some("B"), None, Role::Person, true),
            // C: an invalid signature adds nothing.
            exchange("e4", "C", Channel::Electronic, Some("s-c"), 100),
            signature("g4", Some("C"), None, Role::Person, true),
            signature("g5", None, Some("s-c"), Role::Organization, false),
            // D: the signatures name another doc_id but D's sha256.
            exchange("e5", "D", Channel::Electronic, Some("s-d"), 100),
            signature("g6", Some("OTHER"), Some("s-d"), Role::Person, true),
            signature("g7", Some("OTHER"), Some("s-d"), Role::Organization, true),
            // Duplicates of both kinds change nothing.
            exchange("e3", "B", Channel::Paper, None, 100),
            signature("g5", None, Some("s-c"), Role::Organization, false),
        ]
    }

    #[test]
    fn the_result_does_not_depend_on_arrival_order_or_restarts() {
        let events = corpus();
        let (expected, accepted, duplicate) = ingest(&events);
        let out = expected.total.outgoing;
        assert_eq!(
            (out.electronic_signed, out.electronic_unsigned, out.paper),
            (2, 1, 1),
            "{out:?}"
        );
        assert_eq!((accepted, duplicate), (12, 2));
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..12 {
            let mut shuffled = events.clone();
            if round == 0 {
                shuffled.reverse();
            } else {
                for i in (1..shuffled.len()).rev() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
                }
            }
            let ordered = shuffled;
            let (got, _, _) = ingest(&ordered);
            assert_eq!(got.total, expected.total, "round {round}");
        }
    }

    fn edxml(id: &str, doc: &str, direction: Direction, business: u8, time: i64) -> Event {
        let Event::Exchange(mut e) = exchange(id, doc, Channel::Electronic, None, time) else {
            unreachable!()
        };
        e.event_id = None;
        e.direction = direction;
        Event::EdxmlExchange(e, business)
    }

    fn status(doc: &str, direction: Direction, code: u8, time: i64) -> Event {
        Event::Status(StatusEvent {
            time,
            doc_id: doc.into(),
            direction,
            code,
        })
    }

    #[test]
    fn statuses_and_revocations_do_not_depend_on_arrival_order() {
        let day = 86_400;
        let events = vec![
            edxml("x1", "R", Direction::Outgoing, 0, 1_780_000_000),
            edxml("x2", "R", Direction::Outgoing, 1, 1_780_000_000 + 3 * day),
            status("R", Direction::Outgoing, 1, 1_780_000_100),
            status("R", Direction::Outgoing, 2, 1_780_000_200),
            status("R", Direction::Outgoing, 3, 1_780_000_300),
            edxml("x3", "S", Direction::Incoming, 0, 1_780_000_000),
            status("S", Direction::Incoming, 2, 1_780_000_500),
            // A status for the outgoing direction of S, which never comes: counts nothing.
            status("S", Direction::Outgoing, 2, 1_780_000_500),
            edxml("x4", "T", Direction::Outgoing, 2, 1_780_000_000),
            status("T", Direction::Outgoing, 4, 1_780_000_500),
        ];
        let (expected, accepted, _, rejected) = ingest_counting_rejected(&events);
        assert_eq!(accepted, 10);
        // A revoked document stays counted.
        assert_eq!(expected.total.outgoing.total(), 2);
        assert_eq!(expected.total.incoming.total(), 1);
        assert_eq!(rejected, [1, 1]);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..8 {
            let mut shuffled = events.clone();
            for i in (1..shuffled.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            let (got, _, _, got_rejected) = ingest_counting_rejected(&shuffled);
            assert_eq!(got.total, expected.total, "round {round}");
            assert_eq!(got_rejected, rejected, "round {round}");
        }
    }
}
