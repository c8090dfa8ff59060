//! Which doc_ids carry a sha256: a fixed-size filter of every sha256 ever
//! seen, a bounded map of recent ones, and the store's sha256 log for the rest.

use std::collections::HashSet;

use tracing::debug;
use xxhash_rust::xxh3::xxh3_128;

use super::prepared::InFlight;
use crate::store::{FastMap, Store, StoreError};

/// sha256 values remembered per generation of the recent map.
const RECENT_SHAS: usize = 50_000;
/// Bits of the sha256 membership filter (8 MiB).
const SHA_FILTER_BITS: usize = 64 << 20;

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
pub(super) struct ShaIndex {
    filter: Bloom,
    recent: [FastMap<u128, DocIds>; 2],
    /// sha256 values with signatures waiting for a document.
    pub(super) pending: HashSet<String>,
    pub(super) log_scans: u64,
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
    pub(super) fn open(store: &Store) -> Result<ShaIndex, StoreError> {
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

    /// The doc_ids whose documents carry `sha`, in the store's sha256 log
    /// or in the batch in flight's.
    pub(super) fn docs_with(
        &mut self,
        store: &Store,
        sha: &str,
        inflight: Option<&InFlight>,
    ) -> Result<Vec<String>, StoreError> {
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
        for (s, id) in inflight.map_or(&[][..], |f| &f.sha_log[..]) {
            if s == sha && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.is_empty() {
            debug!(sha, "sha256 filter false positive");
        } else {
            for id in &ids {
                self.remember(sha, id);
            }
        }
        Ok(ids)
    }

    pub(super) fn add(&mut self, sha: &str, doc_id: &str) {
        self.filter.insert(sha);
        self.remember(sha, doc_id);
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
        assert_eq!(
            shas.docs_with(&store, &sha, None).unwrap(),
            ["DOC-A", "DOC-B"]
        );
        // Still found after the recent map has rotated once.
        for i in 0..RECENT_SHAS {
            shas.add(&format!("{i:064x}"), "DOC-X");
        }
        assert_eq!(
            shas.docs_with(&store, &sha, None).unwrap(),
            ["DOC-A", "DOC-B"]
        );
        assert_eq!(shas.log_scans, 0);
        assert!(shas
            .docs_with(&store, &"cd".repeat(32), None)
            .unwrap()
            .is_empty());
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
