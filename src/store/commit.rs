//! Writing to the store: every change of a key the proof covers goes through
//! [`Store::apply_tracked`], which reads each key's old value, updates the
//! proof (and a running scrub's partial sums) and writes the changes with
//! the new proof in one atomic sled batch.

use std::collections::BTreeMap;

use super::codec::Writer;
use super::encoding::{
    encode_day, encode_pending, encode_rejected_day, encode_sha_log, encode_source,
};
use super::keys::{
    KEY_COMMIT, KEY_PROBE, PREFIX_PAGE, PREFIX_PAGE_KEY, PREFIX_PENDING, PREFIX_SEEN,
    PREFIX_SHA_LOG, PREFIX_SOURCE,
};
use super::keys::{KEY_SETTINGS, PREFIX_DAY, PREFIX_REJECTED_DAY};
use super::proof::Proof;
use super::verdicts::{encode_verdict, verdict_key};
use super::{
    day_key, edxml_file_key, prefixed, rejected_day_key, sha_partition, Commit, Store, StoreError,
};
use super::{Settings, FORMAT_SETTINGS};
use crate::aggregate::{Aggregates, Slot};
use crate::model::Document;

/// Changes to apply: a key's new value, or `None` to remove it.
pub(crate) type Ops = BTreeMap<Vec<u8>, Option<sled::IVec>>;

/// What the commit lock guards.
pub(crate) struct Committed {
    pub(crate) proof: Proof,
    /// A scrub in progress: keys up to `cursor` (included) are summed in
    /// `partial`, which commits keep up to date for those keys.
    pub(crate) scrub: Option<ScrubCursor>,
}

pub(crate) struct ScrubCursor {
    pub(crate) cursor: Vec<u8>,
    pub(crate) partial: Proof,
}

impl Committed {
    pub(crate) fn new(proof: Proof) -> Committed {
        Committed { proof, scrub: None }
    }
}

impl Store {
    /// Holds the commit lock.
    pub(crate) fn lock_commits(&self) -> std::sync::MutexGuard<'_, Committed> {
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The proof of the last commit.
    pub(crate) fn proof(&self) -> Proof {
        self.lock_commits().proof.clone()
    }

    /// Applies `ops` and the updated proof in one atomic batch.
    pub(crate) fn apply_tracked(&self, ops: Ops) -> Result<(), StoreError> {
        let mut committed = self.lock_commits();
        let mut proof = committed.proof.clone();
        proof.seq += 1;
        let mut scrub_partial = committed.scrub.as_ref().map(|s| s.partial.clone());
        let mut batch = sled::Batch::default();
        for (key, new) in ops {
            let old = if Proof::covers(&key) {
                self.db.get(&key)?
            } else {
                None
            };
            proof.change(&key, old.as_deref(), new.as_deref());
            if let (Some(partial), Some(scrub)) = (scrub_partial.as_mut(), committed.scrub.as_ref())
            {
                if key <= scrub.cursor {
                    partial.change(&key, old.as_deref(), new.as_deref());
                }
            }
            match new {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch.insert(KEY_COMMIT, proof.encode());
        self.db.apply_batch(batch).map_err(StoreError::write)?;
        committed.proof = proof;
        if let (Some(partial), Some(scrub)) = (scrub_partial, committed.scrub.as_mut()) {
            scrub.partial = partial;
        }
        Ok(())
    }

    /// Commits a batch's effects and the sources' new positions in one atomic write.
    pub(crate) fn record_batch_once(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let mut ops = Ops::new();
        for (key, page) in &commit.pages {
            ops.insert(prefixed(PREFIX_PAGE, key.as_bytes()), Some(page.clone()));
        }
        let mut put = |k: Vec<u8>, v: Vec<u8>| {
            ops.insert(k, Some(v.into()));
        };
        for key in &commit.new_pages {
            put(prefixed(PREFIX_PAGE_KEY, key.as_bytes()), Vec::new());
        }
        let seq = self.sha_log_seq;
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
            put(key, encode_sha_log(&pairs));
        }
        for (kind, ids) in commit.seen.iter().enumerate() {
            if !ids.is_empty() {
                let mut key = vec![PREFIX_SEEN, kind as u8];
                key.extend_from_slice(&seq.to_be_bytes());
                put(key, ids.iter().flat_map(|id| id.to_le_bytes()).collect());
            }
        }
        for (sha, p) in &commit.pending_put {
            put(prefixed(PREFIX_PENDING, sha.as_bytes()), encode_pending(p));
        }
        for (name, state) in &commit.sources {
            put(
                prefixed(PREFIX_SOURCE, name.as_bytes()),
                encode_source(state),
            );
        }
        for (source, path) in &commit.edxml_files {
            put(edxml_file_key(source, path), Vec::new());
        }
        for (sha, v) in &commit.verdicts {
            put(verdict_key(sha, v.index), encode_verdict(v));
        }
        for (day, counts) in &commit.days {
            let value = (!counts.is_empty()).then(|| encode_day(counts).into());
            ops.insert(day_key(*day).to_vec(), value);
        }
        for (day, counts) in &commit.rejected_days {
            let value = (*counts != [0, 0]).then(|| encode_rejected_day(*counts).into());
            ops.insert(rejected_day_key(*day).to_vec(), value);
        }
        for sha in &commit.pending_remove {
            ops.insert(prefixed(PREFIX_PENDING, sha.as_bytes()), None);
        }
        self.apply_tracked(ops)?;
        self.sha_log_seq = seq + 1;
        Ok(())
    }

    /// Writes and removes a probe key, durably: whether the store takes writes.
    pub(crate) fn probe_write(&self) -> Result<(), StoreError> {
        self.db
            .insert(KEY_PROBE, &[1u8])
            .map_err(StoreError::write)?;
        self.db.remove(KEY_PROBE).map_err(StoreError::write)?;
        self.db.flush().map_err(StoreError::write)?;
        Ok(())
    }

    /// Writes everything to disk (on shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(StoreError::write)?;
        Ok(())
    }

    /// Recomputes the proof from every stored key and writes it: after an
    /// import or a layout migration, which write keys without tracking them.
    pub(crate) fn seal(&self) -> Result<Proof, StoreError> {
        let mut committed = self.lock_commits();
        let mut proof = super::verify::tally_all(&self.db)?;
        proof.seq = committed.proof.seq + 1;
        self.db
            .insert(KEY_COMMIT, proof.encode())
            .map_err(StoreError::write)?;
        committed.proof = proof.clone();
        Ok(proof)
    }

    /// Records new settings and recounts every day from the documents.
    pub(crate) fn recount(
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
        let mut ops = Ops::new();
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
        self.db.flush().map_err(StoreError::write)?;
        Ok(agg)
    }
}
