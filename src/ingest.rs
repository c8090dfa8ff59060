//! The single writer: takes parsed batches from all sources, drops duplicates,
//! merges events into documents, derives per-day count changes, and commits
//! everything with the sources' positions in one atomic store write.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use tracing::{debug, error, info, warn};
use xxhash_rust::xxh3::xxh3_64;

use crate::aggregate::{day_number, Aggregates, DayCounts, Slot};
use crate::classify::{add_signer, Document};
use crate::parse::normalize::Direction;
use crate::parse::record::{Event, ExchangeEvent, SignatureEvent, SourceKind};
use crate::parse::time::local_day;
use crate::sources::{Item, SourceBatch, SourceHandle};
use crate::store::{Commit, DocGroup, IdSet, ShaEntry, SourceState, Store, StoreError};

/// Events committed in one store write at most (PERF-NOTES: ~1 k keeps sled batches cheap).
pub const MAX_BATCH_EVENTS: usize = 2048;

/// State shared with the HTTP API and metrics.
pub struct Shared {
    pub aggregates: RwLock<Aggregates>,
    pub sources: Vec<Arc<SourceHandle>>,
    /// False while the store refuses writes.
    pub store_ok: std::sync::atomic::AtomicBool,
}

/// The writer's state.
pub struct Ingestor {
    store: Store,
    tz: Tz,
    required_roles: u8,
    seen: [IdSet; 2],
    rejected_dir: PathBuf,
    shared: Arc<Shared>,
}

/// A document group being changed by the current batch, with where its documents counted before.
struct GroupWork {
    group: DocGroup,
    before: [Option<Slot>; 2],
}

/// Everything a batch changes before it is committed.
#[derive(Default)]
struct Work {
    groups: HashMap<String, GroupWork>,
    shas: HashMap<String, ShaEntry>,
    new_seen: [Vec<u64>; 2],
    batch_seen: [IdSet; 2],
}

fn dir_index(d: Direction) -> usize {
    d.as_byte() as usize
}

impl Ingestor {
    pub fn new(
        store: Store,
        tz: Tz,
        required_roles: u8,
        rejected_dir: PathBuf,
        shared: Arc<Shared>,
    ) -> Result<Ingestor, StoreError> {
        let seen = [
            store.seen_ids(SourceKind::Exchange)?,
            store.seen_ids(SourceKind::Signature)?,
        ];
        Ok(Ingestor {
            store,
            tz,
            required_roles,
            seen,
            rejected_dir,
            shared,
        })
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

    /// Receives batches until every source has stopped, committing as it goes.
    pub fn run(mut self, rx: Receiver<SourceBatch>) -> Store {
        loop {
            let first = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(b) => b,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batches = vec![first];
            let mut events: usize = batches[0].items.len();
            while events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(b) => {
                        events += b.items.len();
                        batches.push(b);
                    }
                    Err(_) => break,
                }
            }
            self.commit_with_retry(batches);
        }
        if let Err(e) = self.store.flush() {
            error!(error = %e, "store flush at shutdown failed");
        }
        self.store
    }

    fn commit_with_retry(&mut self, batches: Vec<SourceBatch>) {
        let mut delay = Duration::from_millis(500);
        let mut failing = false;
        let mut prepared: Option<Prepared> = None;
        loop {
            let attempt = match prepared.take() {
                Some(p) => Ok(p),
                None => self.prepare(&batches),
            };
            let error = match attempt {
                Err(e) => e,
                Ok(p) => match self.store.record_batch_once(&p.commit) {
                    Ok(()) => {
                        self.publish(p, &batches);
                        if failing {
                            info!("store writes work again; ingestion resumed");
                            self.shared.store_ok.store(true, Ordering::Relaxed);
                        }
                        return;
                    }
                    Err(e) => {
                        prepared = Some(p);
                        e
                    }
                },
            };
            if !failing {
                error!(error = %error, "store write failed; batch not committed, positions not advanced; retrying");
                self.shared.store_ok.store(false, Ordering::Relaxed);
                failing = true;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Computes a batch's commit without changing any in-memory state.
    fn prepare(&mut self, batches: &[SourceBatch]) -> Result<Prepared, StoreError> {
        let mut work = Work::default();
        let mut states: Vec<(usize, SourceState)> = Vec::new();
        let mut rejected: HashMap<usize, Vec<u8>> = HashMap::new();
        for batch in batches {
            let handle = &self.shared.sources[batch.source];
            let idx = match states.iter().position(|(i, _)| *i == batch.source) {
                Some(i) => i,
                None => {
                    states.push((batch.source, handle.committed_state()));
                    states.len() - 1
                }
            };
            let kind = handle.config.kind;
            let k = kind.as_byte() as usize;
            for item in &batch.items {
                let state = &mut states[idx].1;
                match item {
                    Item::Invalid(r) => {
                        state.invalid += 1;
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
                        if let Some(id) = ev.event_id() {
                            let h = xxh3_64(id.as_bytes());
                            if self.seen[k].contains(&h) || !work.batch_seen[k].insert(h) {
                                state.duplicate += 1;
                                debug!(source = %handle.config.name, event_id = id, "duplicate event");
                                continue;
                            }
                            work.new_seen[k].push(h);
                        }
                        state.accepted += 1;
                        state.last_event_time = Some(
                            state
                                .last_event_time
                                .map_or(ev.time(), |t| t.max(ev.time())),
                        );
                        let applied = match ev {
                            Event::Exchange(e) => self.apply_exchange(&mut work, e),
                            Event::Signature(s) => self.apply_signature(&mut work, s),
                        };
                        applied?;
                    }
                }
            }
            let state = &mut states[idx].1;
            state.files = batch.files.clone();
            state.retired = batch.retired.clone();
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
                    .map_err(|e| StoreError::Write(sled::Error::Io(e)))?;
        }
        let mut delta: HashMap<Slot, i64> = HashMap::new();
        let mut commit = Commit::default();
        for (doc_id, gw) in work.groups {
            for d in Direction::ALL {
                let after = gw
                    .group
                    .doc(d)
                    .as_ref()
                    .map(|doc| Self::slot(doc, self.tz, self.required_roles));
                if gw.before[dir_index(d)] != after {
                    if let Some(b) = &gw.before[dir_index(d)] {
                        *delta.entry(b.clone()).or_default() -= 1;
                    }
                    if let Some(a) = after {
                        *delta.entry(a).or_default() += 1;
                    }
                }
            }
            commit.groups.push((doc_id, gw.group));
        }
        commit.shas = work.shas.into_iter().collect();
        delta.retain(|_, n| *n != 0);
        let mut next = Aggregates::default();
        {
            let agg = self.shared.aggregates.read().expect("aggregates lock");
            for slot in delta.keys() {
                next.days
                    .entry(slot.day)
                    .or_insert_with(|| agg.days.get(&slot.day).cloned().unwrap_or_default());
            }
        }
        for (slot, n) in &delta {
            next.apply(slot, *n);
        }
        let touched: std::collections::BTreeSet<_> = delta.keys().map(|s| s.day).collect();
        commit.days = touched
            .into_iter()
            .map(|d| (d, next.days.get(&d).cloned().unwrap_or_else(DayCounts::new)))
            .collect();
        commit.seen = vec![
            (SourceKind::Exchange, std::mem::take(&mut work.new_seen[0])),
            (SourceKind::Signature, std::mem::take(&mut work.new_seen[1])),
        ];
        commit.sources = states
            .iter()
            .map(|(i, s)| (self.shared.sources[*i].config.name.clone(), s.clone()))
            .collect();
        Ok(Prepared {
            commit,
            states,
            delta,
        })
    }

    /// After a successful commit: the in-memory mirrors follow the store.
    fn publish(&mut self, p: Prepared, batches: &[SourceBatch]) {
        for (kind, ids) in &p.commit.seen {
            self.seen[kind.as_byte() as usize].extend(ids.iter().copied());
        }
        {
            let mut agg = self.shared.aggregates.write().expect("aggregates lock");
            for (slot, n) in &p.delta {
                agg.apply(slot, *n);
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

    fn load_group<'w>(
        &self,
        work: &'w mut Work,
        doc_id: &str,
    ) -> Result<&'w mut GroupWork, StoreError> {
        if !work.groups.contains_key(doc_id) {
            let group = self.store.group_with_ids(doc_id)?.unwrap_or_default();
            let before = [
                group
                    .outgoing
                    .as_ref()
                    .map(|d| Self::slot(d, self.tz, self.required_roles)),
                group
                    .incoming
                    .as_ref()
                    .map(|d| Self::slot(d, self.tz, self.required_roles)),
            ];
            work.groups
                .insert(doc_id.to_string(), GroupWork { group, before });
        }
        Ok(work.groups.get_mut(doc_id).expect("just inserted"))
    }

    fn load_sha<'w>(
        &self,
        shas: &'w mut HashMap<String, ShaEntry>,
        sha: &str,
    ) -> Result<&'w mut ShaEntry, StoreError> {
        if !shas.contains_key(sha) {
            let entry = self.store.sha_entry(sha)?.unwrap_or_default();
            shas.insert(sha.to_string(), entry);
        }
        Ok(shas.get_mut(sha).expect("just inserted"))
    }

    fn apply_exchange(&self, work: &mut Work, e: &ExchangeEvent) -> Result<(), StoreError> {
        let gw = self.load_group(work, &e.doc_id)?;
        let group_sigs = gw.group.signatures.clone();
        let slot = gw.group.doc_mut(e.direction);
        let new_sha = match slot {
            Some(doc) => doc.merge_event(e),
            None => {
                let mut doc = Document::from_event(e);
                doc.add_signatures(group_sigs.roles, &group_sigs.signers);
                let sha = doc.shas.first().cloned();
                *slot = Some(doc);
                sha
            }
        };
        if let Some(sha) = new_sha {
            let entry = self.load_sha(&mut work.shas, &sha)?;
            if !entry.doc_ids.contains(&e.doc_id) {
                entry.doc_ids.push(e.doc_id.clone());
            }
            let sigs = entry.signatures.clone();
            let gw = work.groups.get_mut(&e.doc_id).expect("loaded above");
            if let Some(doc) = gw.group.doc_mut(e.direction) {
                doc.add_signatures(sigs.roles, &sigs.signers);
            }
        }
        Ok(())
    }

    fn apply_signature(&self, work: &mut Work, s: &SignatureEvent) -> Result<(), StoreError> {
        if !s.valid {
            return Ok(()); // adds nothing, revokes nothing
        }
        let bit = s.role.bit();
        let signers: Vec<String> = if s.signer.is_empty() {
            vec![]
        } else {
            vec![s.signer.clone()]
        };
        if let Some(doc_id) = &s.doc_id {
            let gw = self.load_group(work, doc_id)?;
            gw.group.signatures.roles |= bit;
            add_signer(&mut gw.group.signatures.signers, &s.signer);
            for d in Direction::ALL {
                if let Some(doc) = gw.group.doc_mut(d) {
                    doc.add_signatures(bit, &signers);
                }
            }
        }
        if let Some(sha) = &s.sha256 {
            let entry = self.load_sha(&mut work.shas, sha)?;
            entry.signatures.roles |= bit;
            add_signer(&mut entry.signatures.signers, &s.signer);
            let doc_ids = entry.doc_ids.clone();
            for doc_id in doc_ids {
                let gw = self.load_group(work, &doc_id)?;
                for d in Direction::ALL {
                    if let Some(doc) = gw.group.doc_mut(d) {
                        if doc.shas.binary_search(sha).is_ok() {
                            doc.add_signatures(bit, &signers);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A batch ready to commit.
struct Prepared {
    commit: Commit,
    states: Vec<(usize, SourceState)>,
    delta: HashMap<Slot, i64>,
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
