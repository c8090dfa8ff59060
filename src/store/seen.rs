//! The event ids seen so far, as 64-bit hashes in about 6 bytes each.

/// Hasher for sets of already-hashed ids.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

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
pub(crate) type IdSet = std::collections::HashSet<u64, std::hash::BuildHasherDefault<IdHasher>>;

/// Every event-id hash seen, in about 6 bytes per id: one sorted bucket per
/// top 16 bits, holding the other 48 bits of each id, plus a small set of
/// recent ids merged into the buckets from time to time. A hash set would take
/// 2 to 4 times that; one sorted vector would take 8 bytes and, while it grows,
/// a second copy of itself — at 5 M documents (10 M ids) the largest thing in
/// the process.
#[derive(Debug)]
pub(crate) struct SeenIds {
    buckets: Vec<Vec<Low>>,
    recent: IdSet,
}

/// The low 48 bits of an id; its bucket gives the top 16.
type Low = [u8; 6];

fn split(id: u64) -> (usize, Low) {
    let b = id.to_le_bytes();
    ((id >> 48) as usize, [b[0], b[1], b[2], b[3], b[4], b[5]])
}

fn low48(low: &Low) -> u64 {
    u64::from_le_bytes([low[0], low[1], low[2], low[3], low[4], low[5], 0, 0])
}

impl Default for SeenIds {
    fn default() -> Self {
        SeenIds {
            buckets: vec![Vec::new(); 1 << 16],
            recent: IdSet::default(),
        }
    }
}

impl SeenIds {
    /// Recent ids kept in the hash set before a merge.
    const RECENT: usize = 1 << 16;

    pub(crate) fn from_unsorted(ids: impl IntoIterator<Item = u64>) -> SeenIds {
        let mut s = SeenIds::default();
        for id in ids {
            let (b, low) = split(id);
            s.buckets[b].push(low);
        }
        for bucket in &mut s.buckets {
            bucket.sort_unstable_by_key(low48);
            bucket.dedup();
            bucket.shrink_to_fit();
        }
        s
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        if self.recent.contains(&id) {
            return true;
        }
        let (b, low) = split(id);
        self.buckets[b]
            .binary_search_by_key(&low48(&low), low48)
            .is_ok()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum::<usize>() + self.recent.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    pub(crate) fn extend(&mut self, ids: impl IntoIterator<Item = u64>) {
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
    pub(crate) fn extend_new(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            debug_assert!(!self.contains(id), "{id:#x} is already in the set");
            self.recent.insert(id);
        }
        if self.recent.len() >= Self::RECENT {
            self.merge();
        }
    }

    /// Moves the recent ids into their buckets, each merged from the back in place.
    fn merge(&mut self) {
        let mut add: Vec<u64> = self.recent.drain().collect();
        add.sort_unstable();
        for run in add.chunk_by(|a, b| a >> 48 == b >> 48) {
            let bucket = &mut self.buckets[(run[0] >> 48) as usize];
            let old = bucket.len();
            let need = old + run.len();
            if bucket.capacity() < need {
                // An eighth more than needed: a bucket grows by about one id per merge.
                bucket.reserve_exact(run.len() + need / 8);
            }
            bucket.resize(need, [0; 6]);
            let (mut i, mut j, mut k) = (old, run.len(), need);
            while j > 0 {
                let (_, low) = split(run[j - 1]);
                if i > 0 && low48(&bucket[i - 1]) > low48(&low) {
                    bucket[k - 1] = bucket[i - 1];
                    i -= 1;
                } else {
                    bucket[k - 1] = low;
                    j -= 1;
                }
                k -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut seen = SeenIds::from_unsorted(loaded.iter().rev().copied());
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
        assert!(
            seen.buckets.iter().map(Vec::len).sum::<usize>() > 200_000,
            "recent ids were merged"
        );
        for id in &ids {
            assert!(seen.contains(*id), "{id:#x} forgotten");
        }
        for _ in 0..100_000 {
            let id = next();
            assert_eq!(seen.contains(id), model.contains(&id), "{id:#x}");
        }
        assert!(!SeenIds::default().contains(7));
    }
}
