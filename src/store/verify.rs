//! Checking that what the store holds is what it committed: a quick check
//! at every start (the keys the reports and metrics read, O(days +
//! sources)), and a full check (every key summed against the commit proof,
//! every value decoded, pages where look-ups find them; offline also the
//! per-day counts recounted from the documents and the sha256 log matched
//! against them). The full check can run while commits go on: it reads the
//! store in steps under the commit lock, and commits keep its partial sums
//! up to date for the keys it has passed.

use std::time::{Duration, Instant};

use super::commit::ScrubCursor;
use super::keys::KeyKind;
use super::proof::{Proof, COVERED, QUICK};
use super::{Store, StoreError};

/// Keys read per step of a full check.
const STEP_KEYS: usize = 512;

/// Sums every stored key the proof covers.
pub(crate) fn tally_all(db: &sled::Db) -> Result<Proof, StoreError> {
    let mut proof = Proof::default();
    for item in db.iter() {
        let (k, v) = item?;
        proof.change(&k, None, Some(&v));
    }
    Ok(proof)
}

/// How a full check runs.
pub(crate) struct VerifyOptions<'a> {
    /// Time spent holding the commit lock is at most this share of the
    /// check's time (1.0 = no pause between steps).
    pub(crate) lock_share: f64,
    /// Asked between steps: `true` stops the check (it then returns `Ok(None)`).
    pub(crate) stop: &'a (dyn Fn() -> bool + Sync),
    /// Called with the number of keys read so far.
    pub(crate) progress: &'a (dyn Fn(u64) + Sync),
    /// Also recount the documents and match the sha256 log (needs a store
    /// nobody writes: the offline `docflowd verify`).
    pub(crate) deep: Option<DeepCheck>,
}

/// What a deep check needs to recount.
pub(crate) struct DeepCheck {
    pub(crate) slot_of: Box<dyn Fn(&crate::model::Document) -> crate::aggregate::Slot + Sync>,
}

/// What a full check found in a sound store.
#[derive(Debug, Clone, Default)]
pub(crate) struct VerifyReport {
    pub(crate) keys: u64,
    pub(crate) pages: u64,
    /// Document groups (one per doc_id) in the pages.
    pub(crate) groups: u64,
    pub(crate) documents: u64,
    pub elapsed: Duration,
}

impl Store {
    fn damaged(&self, what: impl Into<String>) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// The quick check of every start: settings, per-day counts and source
    /// states are those of the last commit.
    pub(crate) fn check_quick(&self) -> Result<(), StoreError> {
        let committed = self.proof();
        let mut found = Proof::default();
        for prefix in [
            super::keys::PREFIX_DAY,
            super::keys::PREFIX_REJECTED_DAY,
            super::keys::PREFIX_SOURCE,
        ] {
            for item in self.db.scan_prefix([prefix]) {
                let (k, v) = item?;
                found.change(&k, None, Some(&v));
            }
        }
        if let Some(v) = self.db.get(super::keys::KEY_SETTINGS)? {
            found.change(super::keys::KEY_SETTINGS, None, Some(&v));
        }
        let differences = committed.differences(&found, &QUICK);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(self.damaged(differences.join("; ")))
        }
    }

    /// The full check; `Ok(None)` when stopped early.
    pub(crate) fn verify(
        &self,
        options: &VerifyOptions,
    ) -> Result<Option<VerifyReport>, StoreError> {
        let started = Instant::now();
        let result = self.verify_steps(options, started);
        self.lock_commits().scrub = None;
        let mut report = match result? {
            None => return Ok(None),
            Some(r) => r,
        };
        (report.pages, report.groups) = self.check_pages()?;
        if let Some(deep) = &options.deep {
            report.documents = self.check_counts(deep)?;
            self.check_sha_log()?;
        }
        report.elapsed = started.elapsed();
        Ok(Some(report))
    }

    fn verify_steps(
        &self,
        options: &VerifyOptions,
        started: Instant,
    ) -> Result<Option<VerifyReport>, StoreError> {
        self.lock_commits().scrub = Some(ScrubCursor {
            cursor: Vec::new(),
            partial: Proof::default(),
        });
        let mut report = VerifyReport::default();
        let mut after: Option<Vec<u8>> = None;
        let mut locked = Duration::ZERO;
        loop {
            if (options.stop)() {
                return Ok(None);
            }
            let step = Instant::now();
            let mut guard = self.lock_commits();
            let committed = &mut *guard;
            let range = match &after {
                None => self.db.range::<&[u8], _>(..),
                Some(k) => self.db.range::<&[u8], _>((
                    std::ops::Bound::Excluded(k.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
            };
            let mut read = 0;
            let scrub = committed.scrub.as_mut().expect("registered above");
            for item in range.take(STEP_KEYS) {
                let (k, v) = item?;
                read += 1;
                check_value(&k, &v).map_err(|what| self.damaged(what))?;
                scrub.partial.change(&k, None, Some(&v));
                scrub.cursor = k.to_vec();
            }
            report.keys += read as u64;
            if read < STEP_KEYS {
                let differences = committed.proof.differences(&scrub.partial, &COVERED);
                if !differences.is_empty() {
                    return Err(self.damaged(differences.join("; ")));
                }
                return Ok(Some(report));
            }
            after = Some(scrub.cursor.clone());
            drop(guard);
            (options.progress)(report.keys);
            let spent = step.elapsed();
            locked += spent;
            if options.lock_share < 1.0 {
                // Pause so that the lock is held at most `lock_share` of the time.
                let target = locked.as_secs_f64() / options.lock_share.max(0.01);
                let pause = target - started.elapsed().as_secs_f64();
                if pause > 0.0 {
                    std::thread::sleep(Duration::from_secs_f64(pause.min(1.0)));
                }
            }
        }
    }

    /// Recounts the documents into per-day counts and compares them with the
    /// stored ones; the number of documents.
    fn check_counts(&self, deep: &DeepCheck) -> Result<u64, StoreError> {
        let mut counted = crate::aggregate::Aggregates::default();
        let mut documents = 0u64;
        for item in self.groups_from(None) {
            let (_, group) = item?;
            for doc in [&group.outgoing, &group.incoming].into_iter().flatten() {
                let slot = (deep.slot_of)(doc);
                if doc.status.rejected {
                    counted.apply_rejected(slot.day, doc.direction, 1);
                }
                counted.apply(&slot, 1);
                documents += 1;
            }
        }
        let stored = self.aggregates()?;
        let days: std::collections::BTreeSet<_> = counted.days().chain(stored.days()).collect();
        for day in days {
            if counted.day_counts(day) != stored.day_counts(day) {
                return Err(self.damaged(format!(
                    "the per-day counts of {} differ from the documents stored",
                    crate::aggregate::date_of(day)
                )));
            }
        }
        let rejected: std::collections::BTreeSet<_> = counted
            .rejected_days()
            .chain(stored.rejected_days())
            .collect();
        for day in rejected {
            if counted.rejected_day(day) != stored.rejected_day(day) {
                return Err(self.damaged(format!(
                    "the rejected-document counts of {} differ from the documents stored",
                    crate::aggregate::date_of(day)
                )));
            }
        }
        Ok(documents)
    }

    /// Every (sha256, doc_id) a document carries is in the sha256 log, and
    /// the log names no document that does not carry it. The log's pairs
    /// are kept as 16-byte hashes in a sorted vector (16 MB a million).
    fn check_sha_log(&self) -> Result<(), StoreError> {
        let key =
            |sha: &str, id: &str| xxhash_rust::xxh3::xxh3_128(format!("{sha}\0{id}").as_bytes());
        let mut logged = Vec::new();
        self.scan_sha_log(None, |sha, id| logged.push(key(&sha, &id)))?;
        logged.sort_unstable();
        logged.dedup();
        let mut carried = vec![false; logged.len()];
        for item in self.groups_from(None) {
            let (id, group) = item?;
            for doc in [&group.outgoing, &group.incoming].into_iter().flatten() {
                for sha in &doc.shas {
                    let Ok(i) = logged.binary_search(&key(sha, &id)) else {
                        return Err(self.damaged(format!(
                            "document {id:?} carries a sha256 missing from the sha256 log"
                        )));
                    };
                    carried[i] = true;
                }
            }
        }
        let orphans = carried.iter().filter(|c| !**c).count();
        if orphans > 0 {
            return Err(self.damaged(format!(
                "the sha256 log names {orphans} (sha256, document) pairs no stored document carries"
            )));
        }
        Ok(())
    }
}

/// Checks that a stored value decodes (alert records are the alerts' own).
fn check_value(key: &[u8], value: &[u8]) -> Result<(), String> {
    let Some(kind) = KeyKind::of(key) else {
        return Err(format!(
            "a key docflow never writes: {:?}",
            String::from_utf8_lossy(key)
        ));
    };
    if kind.is_internal() || matches!(kind, KeyKind::AlertState | KeyKind::AlertOutbox) {
        return Ok(());
    }
    super::snapshot::check_record(key, value)
        .map(drop)
        .map_err(|e| format!("{}: {e}", kind.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Commit, SourceState};

    fn commit(s: &mut Store, n: u64) {
        let mut pages = crate::store::pages::PageCache::open(s, 1 << 20).unwrap();
        pages
            .get_mut(s, &format!("D{n:04}"))
            .unwrap()
            .signatures
            .signers
            .push(format!("signer {n}"));
        let dirty = pages.take_dirty();
        s.record_batch_once(&Commit {
            pages: dirty.compressed(),
            new_pages: dirty.new_pages,
            seen: [vec![n], vec![]],
            sources: vec![(
                "exchange".into(),
                SourceState {
                    accepted: n,
                    ..Default::default()
                },
            )],
            days: vec![(
                739_000 + n as i32,
                [(
                    (
                        "Văn phòng".to_string(),
                        crate::model::Direction::Outgoing,
                        crate::model::Class::Paper,
                    ),
                    n,
                )]
                .into(),
            )],
            ..Commit::default()
        })
        .unwrap();
    }

    fn options() -> VerifyOptions<'static> {
        VerifyOptions {
            lock_share: 1.0,
            stop: &|| false,
            progress: &|_| {},
            deep: None,
        }
    }

    fn sound(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 1 << 20).unwrap();
        for i in 1..=n {
            commit(&mut s, i);
        }
        (dir, s)
    }

    #[test]
    fn a_sound_store_passes_both_checks_after_reopening() {
        let (dir, s) = sound(20);
        s.flush().unwrap();
        drop(s);
        let s = Store::open(dir.path(), 1 << 20).unwrap();
        s.check_quick().unwrap();
        let report = s.verify(&options()).unwrap().unwrap();
        assert!(report.keys > 40, "{report:?}");
        assert_eq!(s.proof().seq, 20);
    }

    #[test]
    fn a_stale_source_position_is_found_by_the_quick_check() {
        // What a lost sled segment does: an older value comes back.
        let (_dir, s) = sound(5);
        let older = super::super::encoding::encode_source(&SourceState {
            accepted: 3,
            ..Default::default()
        });
        s.insert_raw(b"pexchange", &older);
        let e = s.check_quick().unwrap_err().to_string();
        assert!(
            e.contains("source_state") && e.contains("docflowd rebuild"),
            "{e}"
        );
    }

    #[test]
    fn a_lost_page_or_seen_list_is_found_by_the_full_check_not_the_quick_one() {
        let (_dir, s) = sound(5);
        let seen: Vec<_> =
            s.db.scan_prefix([super::super::keys::PREFIX_SEEN])
                .keys()
                .map(|k| k.unwrap())
                .collect();
        s.db.remove(&seen[2]).unwrap();
        s.check_quick()
            .expect("the quick check reads only what reports read");
        let e = s.verify(&options()).unwrap_err().to_string();
        assert!(
            e.contains("seen_event_ids") && e.contains("4 keys where commit 5 left 5"),
            "{e}"
        );
    }

    #[test]
    fn a_full_check_running_beside_commits_sees_a_sound_store() {
        let (_dir, s) = sound(200);
        let mut writer = s.clone();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut n = 1000;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    commit(&mut writer, n);
                    n += 1;
                }
            });
            for _ in 0..3 {
                let report = s
                    .verify(&VerifyOptions {
                        lock_share: 0.5,
                        ..options()
                    })
                    .expect("no damage reported while commits go on")
                    .unwrap();
                assert!(report.keys > 400);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
