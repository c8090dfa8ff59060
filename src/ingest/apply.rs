//! Applying a batch: each event merged into its document group, duplicates
//! dropped, signatures joined by doc_id or sha256, and the batch's commit
//! built (pages, per-day count changes, positions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono_tz::Tz;
use tracing::{debug, warn};

use super::prepared::Prepared;
use super::rejected::append_rejected;
use super::{event_hash, Ingestor};
use crate::aggregate::{apply_to_counts, day_number, Day, DayCounts, Slot};
use crate::model::Direction;
use crate::model::{add_signer, Document};
use crate::model::{Event, ExchangeEvent, SignatureEvent, SourceKind, StatusEvent};
use crate::parse::time::local_day;
use crate::sources::{Item, SourceBatch};
use crate::store::{
    Commit, DocGroup, FastMap, IdSet, PendingSha, Signatures, SourceState, StoreError,
};

/// What became of one valid event.
enum Outcome {
    Accepted,
    Duplicate,
}

/// Changes of the current batch besides the pages.
#[derive(Default)]
struct Work {
    /// Where each touched group's documents counted before the batch, and
    /// the key of its page (valid until the batch's pages are taken).
    before: FastMap<String, (Arc<str>, [Option<Slot>; 2])>,
    sha_log: Vec<(String, String)>,
    /// Event-id hashes first seen in this batch, per source kind.
    new_seen: [IdSet; 2],
    pending: HashMap<String, PendingSha>,
    pending_remove: BTreeSet<String>,
    /// Day each touched group's documents counted as rejected on before the
    /// batch (only groups with a rejected document).
    before_rejected: FastMap<String, [Option<Day>; 2]>,
    /// edXML and PDF files read by the batch: (source, path).
    edxml_files: Vec<(String, String)>,
    /// Verified signatures accepted: (sha256, verdict).
    verdicts: Vec<(String, crate::model::SignatureVerdict)>,
    /// Their results, per source index, for the verdict counter.
    verdict_results: Vec<(usize, &'static str)>,
}

impl Ingestor {
    /// Applies a batch to the cached pages and builds its commit.
    pub(super) fn prepare(&mut self, batches: &[SourceBatch]) -> Result<Prepared, StoreError> {
        let mut work = Work::default();
        let t_apply = std::time::Instant::now();
        let states = self.apply_batches(&mut work, batches)?;
        self.stats.apply += t_apply.elapsed();
        let t_slots = std::time::Instant::now();
        let (delta, rejected_delta) = self.count_changes(&work)?;
        self.stats.slots += t_slots.elapsed();
        let t_dirty = std::time::Instant::now();
        let dirty = self.pages.take_dirty();
        self.stats.dirty += t_dirty.elapsed();
        let verdict_results = std::mem::take(&mut work.verdict_results);
        let raw_pages = dirty.pages;
        let mut commit = self.build_commit(work, &states, &delta, &rejected_delta);
        commit.new_pages = dirty.new_pages;
        let mut seqs: Vec<(usize, u64)> = Vec::new();
        for b in batches {
            match seqs.iter_mut().find(|(s, _)| *s == b.source) {
                Some((_, seq)) => *seq = (*seq).max(b.seq),
                None => seqs.push((b.source, b.seq)),
            }
        }
        Ok(Prepared {
            commit,
            raw_pages,
            states,
            seqs,
            delta,
            rejected_delta,
            verdict_results,
        })
    }

    /// Applies every event of the batches; the sources' new states, with the
    /// rejected events appended to their files.
    fn apply_batches(
        &mut self,
        work: &mut Work,
        batches: &[SourceBatch],
    ) -> Result<Vec<(usize, SourceState)>, StoreError> {
        let mut states: Vec<(usize, SourceState)> = Vec::new();
        let mut rejected: HashMap<usize, Vec<u8>> = HashMap::new();
        for batch in batches {
            let handle = self.shared.sources[batch.source].clone();
            let idx = match states.iter().position(|(i, _)| *i == batch.source) {
                Some(i) => i,
                None => {
                    // The batch in flight, if it has this source, is where it stands.
                    let base = self
                        .inflight
                        .as_ref()
                        .and_then(|f| f.states.iter().find(|(i, _)| *i == batch.source))
                        .map_or_else(|| handle.committed_state(), |(_, s)| s.clone());
                    states.push((batch.source, base));
                    states.len() - 1
                }
            };
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
                        // By the event's kind, not the source's: an edXML (exchange)
                        // source also gives the signature events of its PDF attachments,
                        // which must dedupe against the same PDF read by a PDF source.
                        let kind = match ev {
                            Event::Signature(_) => SourceKind::Signature,
                            Event::Exchange(_) | Event::EdxmlExchange(..) | Event::Status(_) => {
                                SourceKind::Exchange
                            }
                        };
                        let hash = ev.event_id().map(|id| event_hash(kind, id));
                        let outcome = match ev {
                            Event::Exchange(e) => self.apply_exchange(work, e, hash, 0)?,
                            Event::EdxmlExchange(e, business, more) => {
                                let outcome = self.apply_exchange(work, e, hash, 1 << business)?;
                                if matches!(outcome, Outcome::Accepted) {
                                    for sha in more {
                                        self.add_sha(work, e, sha)?;
                                    }
                                }
                                outcome
                            }
                            Event::Signature(s) => self.apply_signature(work, s, hash)?,
                            Event::Status(s) => self.apply_status(work, s)?,
                        };
                        let state = &mut states[idx].1;
                        match outcome {
                            Outcome::Duplicate => {
                                state.duplicate += 1;
                                debug!(source = %handle.config.name, event_id = ev.event_id(), "duplicate event");
                            }
                            Outcome::Accepted => {
                                if let Event::Signature(SignatureEvent {
                                    verdict: Some(v), ..
                                }) = ev
                                {
                                    work.verdict_results.push((batch.source, v.result()));
                                }
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
            if matches!(
                handle.config.input,
                crate::config::Input::EdxmlDir(_) | crate::config::Input::PdfDir(_)
            ) {
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
        Ok(states)
    }

    /// How the touched documents' counts change: per slot, and per rejected day.
    #[allow(clippy::type_complexity)]
    fn count_changes(
        &mut self,
        work: &Work,
    ) -> Result<(HashMap<Slot, i64>, HashMap<(Day, Direction), i64>), StoreError> {
        let mut delta: HashMap<Slot, i64> = HashMap::new();
        let mut rejected_delta: HashMap<(Day, Direction), i64> = HashMap::new();
        for (doc_id, (page, before)) in &work.before {
            let group = self.pages.get_in(&self.store, page, doc_id)?;
            for d in Direction::ALL {
                let after = group
                    .and_then(|g| g.doc(d).as_ref())
                    .map(|doc| Slot::of(doc, self.tz, self.required_roles));
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
            let rejected_before = work.before_rejected.get(doc_id);
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
        Ok((delta, rejected_delta))
    }

    /// The batch's atomic write but its pages: per-day counts, logs and positions.
    fn build_commit(
        &self,
        mut work: Work,
        states: &[(usize, SourceState)],
        delta: &HashMap<Slot, i64>,
        rejected_delta: &HashMap<(Day, Direction), i64>,
    ) -> Commit {
        let mut commit = Commit::default();
        let agg = self.shared.aggregates.read().expect("aggregates lock");
        // A day the batch in flight changed counts what it wrote.
        let inflight = self.inflight.as_ref();
        let mut days: BTreeMap<Day, DayCounts> = BTreeMap::new();
        for (slot, n) in delta {
            let counts = days.entry(slot.day).or_insert_with(|| {
                inflight
                    .and_then(|f| f.days.iter().find(|(d, _)| *d == slot.day))
                    .map_or_else(|| agg.day_counts(slot.day), |(_, c)| c.clone())
            });
            apply_to_counts(counts, slot, *n);
        }
        commit.days = days.into_iter().collect();
        let mut rejected_days: BTreeMap<Day, [u64; 2]> = BTreeMap::new();
        for ((day, d), n) in rejected_delta {
            let counts = rejected_days.entry(*day).or_insert_with(|| {
                inflight
                    .and_then(|f| f.rejected_days.iter().find(|(x, _)| x == day))
                    .map_or_else(|| agg.rejected_day(*day), |(_, c)| *c)
            });
            let c = &mut counts[d.as_byte() as usize];
            *c = c.saturating_add_signed(*n);
        }
        commit.rejected_days = rejected_days.into_iter().collect();
        drop(agg);
        commit.edxml_files = std::mem::take(&mut work.edxml_files);
        commit.verdicts = std::mem::take(&mut work.verdicts);
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
        commit
    }

    /// Once a batch is prepared, the next one must see its event ids as seen
    /// (it is committed before the next, or the writer stops).
    pub(super) fn note_prepared(&mut self, p: &Prepared) {
        for (set, new) in self.seen.iter_mut().zip(&p.commit.seen) {
            // first_sighting checked each of them against the set.
            set.extend_new(new.iter().copied());
        }
    }

    /// The group of `doc_id` for changing; remembers where its documents counted before.
    fn touch(&mut self, work: &mut Work, doc_id: &str) -> Result<&mut DocGroup, StoreError> {
        let (tz, roles) = (self.tz, self.required_roles);
        let (page, group) = self.pages.get_mut_keyed(&self.store, doc_id)?;
        if !work.before.contains_key(doc_id) {
            let slots =
                Direction::ALL.map(|d| group.doc(d).as_ref().map(|doc| Slot::of(doc, tz, roles)));
            work.before.insert(doc_id.to_string(), (page, slots));
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
            let inflight = self.inflight.as_ref().and_then(|f| {
                if f.pending_remove.iter().any(|s| s == sha) {
                    Some(None)
                } else {
                    f.pending_put
                        .iter()
                        .find(|(s, _)| s == sha)
                        .map(|(_, p)| Some(p.clone()))
                }
            });
            let stored = match inflight {
                Some(p) => p,
                None if self.shas.pending.contains(sha) => self.store.pending(sha)?,
                None => None,
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

    /// The document of `e` also has the file `sha` (another attachment of
    /// its edXML message).
    fn add_sha(&mut self, work: &mut Work, e: &ExchangeEvent, sha: &str) -> Result<(), StoreError> {
        let g = self.touch(work, &e.doc_id)?;
        let added = g
            .doc_mut(e.direction)
            .as_mut()
            .is_some_and(|doc| doc.add_sha(sha));
        if added {
            self.link_sha(work, &e.doc_id, e.direction, sha)?;
        }
        Ok(())
    }

    /// A document gained `sha`: it takes the signatures already joined by it.
    fn link_sha(
        &mut self,
        work: &mut Work,
        doc_id: &str,
        direction: Direction,
        sha: &str,
    ) -> Result<(), StoreError> {
        let others = self
            .shas
            .docs_with(&self.store, sha, self.inflight.as_ref())?;
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
            Some(sha) => self
                .shas
                .docs_with(&self.store, sha, self.inflight.as_ref())?,
            None => Vec::new(),
        };
        if let Some(h) = hash {
            if !self.first_sighting(work, SourceKind::Signature, h) {
                return Ok(Outcome::Duplicate);
            }
        }
        if let (Some(v), Some(sha)) = (&s.verdict, &s.sha256) {
            work.verdicts.push((sha.clone(), (**v).clone()));
        }
        if !s.valid {
            return Ok(Outcome::Accepted); // adds nothing, revokes nothing
        }
        let signature = Signatures {
            // A verified signature no role rule matched satisfies no requirement.
            roles: s.role.map_or(0, crate::model::Role::bit),
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
