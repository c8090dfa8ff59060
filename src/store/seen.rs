//! The event ids seen so far, as 64-bit hashes in about 8 bytes each.

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

/// Every event-id hash seen, in about 8 bytes per id (a hash set takes 2 to
/// 4 times that, and twice as much again while it grows): a sorted vector
/// with an index on the top 16 bits, plus a small set of recent ids merged
/// into it from time to time.
#[derive(Debug, Default)]
pub(crate) struct SeenIds {
    sorted: Vec<u64>,
    /// `starts[b]` is the first index of `sorted` whose top 16 bits are `>= b`.
    starts: Vec<u32>,
    recent: IdSet,
}

impl SeenIds {
    /// Recent ids kept in the hash set before a merge.
    const RECENT: usize = 1 << 16;

    pub(crate) fn from_unsorted(mut ids: Vec<u64>) -> SeenIds {
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

    pub(crate) fn contains(&self, id: u64) -> bool {
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

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
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
}
