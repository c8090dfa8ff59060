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

/// Every event-id hash seen, in about 6 bytes per id, plus a small set of
/// recent ids merged in from time to time. A hash set would take 2 to 4 times
/// that; one sorted vector of whole ids takes 8 bytes and, each time it grows,
/// a second copy of itself for the realloc — at 5 M documents (10 M ids) the
/// largest thing in the process. So the ids are sorted into 256 shards by
/// their top 8 bits, each holding the low 48 bits of its ids with an index on
/// the 8 bits between; a shard grows by 1/256 of the set at a time.
#[derive(Debug)]
pub(crate) struct SeenIds {
    shards: Vec<Shard>,
    recent: IdSet,
}

/// The ids whose top 8 bits are the shard's number.
#[derive(Debug, Default)]
struct Shard {
    /// Low 48 bits, sorted by bits 48..56 and then by these bits.
    lows: Vec<Low>,
    /// `starts[b]` is the first index of `lows` whose bits 48..56 are `>= b`.
    starts: Vec<u32>,
}

type Low = [u8; 6];

const SUB: usize = 256;

fn low(id: u64) -> Low {
    let b = id.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn low48(low: &Low) -> u64 {
    u64::from_le_bytes([low[0], low[1], low[2], low[3], low[4], low[5], 0, 0])
}

fn shard_of(id: u64) -> usize {
    (id >> 56) as usize
}

fn sub_of(id: u64) -> usize {
    ((id >> 48) & 0xFF) as usize
}

impl Shard {
    /// A shard of ids sharing their top 8 bits, sorted.
    fn from_sorted(ids: &[u64]) -> Shard {
        let mut starts = vec![0u32; SUB + 1];
        for &id in ids {
            starts[sub_of(id) + 1] += 1;
        }
        for b in 0..SUB {
            starts[b + 1] += starts[b];
        }
        Shard {
            lows: ids.iter().map(|&id| low(id)).collect(),
            starts,
        }
    }

    fn contains(&self, id: u64) -> bool {
        let b = sub_of(id);
        let Some(range) = self.starts.get(b..=b + 1) else {
            return false; // an empty shard has no index
        };
        self.lows[range[0] as usize..range[1] as usize]
            .binary_search_by_key(&(id & LOW_MASK), low48)
            .is_ok()
    }

    /// Merges sorted ids (none already here) in place, from the back.
    fn merge(&mut self, add: &[u64]) {
        if self.starts.is_empty() {
            *self = Shard::from_sorted(add);
            return;
        }
        let old = self.lows.len();
        let need = old + add.len();
        if self.lows.capacity() < need {
            // An eighth more than needed: a shard takes ~256 ids per merge.
            self.lows.reserve_exact(add.len() + need / 8);
        }
        self.lows.resize(need, [0; 6]);
        let key = |sub: usize, low: &Low| ((sub as u64) << 48) | low48(low);
        let (mut i, mut j, mut k) = (old, add.len(), need);
        // `sub` is the sub-bucket of the old entry `i - 1`.
        let mut sub = SUB - 1;
        while j > 0 {
            while i > 0 && sub > 0 && self.starts[sub] as usize > i - 1 {
                sub -= 1;
            }
            let new = add[j - 1] & SHARD_MASK;
            if i > 0 && key(sub, &self.lows[i - 1]) > new {
                self.lows[k - 1] = self.lows[i - 1];
                i -= 1;
            } else {
                self.lows[k - 1] = low(add[j - 1]);
                j -= 1;
            }
            k -= 1;
        }
        let mut before = [0u32; SUB + 1];
        for &id in add {
            before[sub_of(id) + 1] += 1;
        }
        for b in 0..SUB {
            before[b + 1] += before[b];
            self.starts[b + 1] += before[b + 1];
        }
    }
}

/// The bits an id keeps in its shard: all but the top 8.
const SHARD_MASK: u64 = (1 << 56) - 1;
/// The bits an id keeps in its entry.
const LOW_MASK: u64 = (1 << 48) - 1;

impl Default for SeenIds {
    fn default() -> Self {
        SeenIds {
            shards: (0..256).map(|_| Shard::default()).collect(),
            recent: IdSet::default(),
        }
    }
}

impl SeenIds {
    /// Recent ids kept in the hash set before a merge.
    const RECENT: usize = 1 << 16;

    pub(crate) fn from_unsorted(ids: impl IntoIterator<Item = u64>) -> SeenIds {
        let mut by_shard: Vec<Vec<u64>> = vec![Vec::new(); 256];
        for id in ids {
            by_shard[shard_of(id)].push(id);
        }
        let mut s = SeenIds::default();
        for (shard, mut ids) in s.shards.iter_mut().zip(by_shard) {
            ids.sort_unstable();
            ids.dedup();
            *shard = Shard::from_sorted(&ids);
        }
        s
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.recent.contains(&id) || self.shards[shard_of(id)].contains(id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lows.len()).sum::<usize>() + self.recent.len()
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

    /// Moves the recent ids into their shards.
    fn merge(&mut self) {
        let mut add: Vec<u64> = self.recent.drain().collect();
        add.sort_unstable();
        for run in add.chunk_by(|a, b| shard_of(*a) == shard_of(*b)) {
            self.shards[shard_of(run[0])].merge(run);
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
            seen.shards.iter().map(|s| s.lows.len()).sum::<usize>() > 200_000,
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
