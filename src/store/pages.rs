//! The writer's view of the documents: groups packed into pages of
//! consecutive doc_ids, decoded pages cached in memory (bounded), dirty pages
//! encoded for the next atomic commit. Packing is what makes ingest fast:
//! sled pays per insert, and one page holds many documents.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::encoding::{decode_page, encode_page};
use super::{DocGroup, Store, StoreError};

/// A page is split when its encoding grows past this.
pub const MAX_PAGE_BYTES: usize = 16 * 1024;
/// Decoded pages take about this many times their encoded size in memory.
const MEMORY_FACTOR: usize = 3;

struct Cached {
    /// Boxed so that inserting into the middle of a page moves small entries.
    groups: Vec<(String, Box<DocGroup>)>,
    encoded_len: usize,
    used: u64,
}

/// Pages of document groups, as the writer sees them.
pub struct PageCache {
    keys: BTreeSet<String>,
    cache: crate::ingest::FastMap<String, Cached>,
    dirty: BTreeSet<String>,
    new_pages: Vec<String>,
    limit_bytes: usize,
    tick: u64,
}

/// Dirty pages ready to be written.
pub struct DirtyPages {
    pub pages: Vec<(String, Vec<u8>)>,
    /// Keys of pages created since the last commit.
    pub new_pages: Vec<String>,
}

impl PageCache {
    /// Loads the page index; `limit_bytes` bounds the decoded pages kept.
    pub fn open(store: &Store, limit_bytes: usize) -> Result<PageCache, StoreError> {
        Ok(PageCache {
            keys: store.page_keys()?.into_iter().collect(),
            cache: Default::default(),
            dirty: BTreeSet::new(),
            new_pages: Vec::new(),
            limit_bytes,
            tick: 0,
        })
    }

    /// Key of the page that holds (or would hold) `doc_id`.
    fn key_for(&self, doc_id: &str) -> String {
        self.keys
            .range::<str, _>((Bound::Unbounded, Bound::Included(doc_id)))
            .next_back()
            .cloned()
            .unwrap_or_default()
    }

    fn load(&mut self, store: &Store, key: &str) -> Result<&mut Cached, StoreError> {
        self.tick += 1;
        let tick = self.tick;
        if !self.cache.contains_key(key) {
            let (groups, encoded_len) = match store.page(key)? {
                Some(bytes) => (
                    decode_page(&bytes)?
                        .into_iter()
                        .map(|(id, g)| (id, Box::new(g)))
                        .collect(),
                    bytes.len(),
                ),
                None => {
                    if self.keys.insert(key.to_string()) {
                        self.new_pages.push(key.to_string());
                    }
                    (Vec::new(), 0)
                }
            };
            self.cache.insert(
                key.to_string(),
                Cached {
                    groups,
                    encoded_len,
                    used: tick,
                },
            );
        }
        let c = self.cache.get_mut(key).expect("just loaded");
        c.used = tick;
        Ok(c)
    }

    /// The group of `doc_id`, if any.
    pub fn get(&mut self, store: &Store, doc_id: &str) -> Result<Option<&DocGroup>, StoreError> {
        let key = self.key_for(doc_id);
        let page = self.load(store, &key)?;
        Ok(
            match page
                .groups
                .binary_search_by(|(id, _)| id.as_str().cmp(doc_id))
            {
                Ok(i) => Some(&page.groups[i].1),
                Err(_) => None,
            },
        )
    }

    /// The group of `doc_id` for changing, created empty if missing.
    pub fn get_mut(&mut self, store: &Store, doc_id: &str) -> Result<&mut DocGroup, StoreError> {
        let key = self.key_for(doc_id);
        self.dirty.insert(key.clone());
        let page = self.load(store, &key)?;
        let i = match page
            .groups
            .binary_search_by(|(id, _)| id.as_str().cmp(doc_id))
        {
            Ok(i) => i,
            Err(i) => {
                page.groups.insert(i, (doc_id.to_string(), Box::default()));
                i
            }
        };
        Ok(&mut page.groups[i].1)
    }

    /// Encodes the dirty pages (splitting those grown too large) for a commit.
    pub fn take_dirty(&mut self) -> DirtyPages {
        let mut pages = Vec::new();
        let mut queue: Vec<String> = std::mem::take(&mut self.dirty).into_iter().collect();
        while let Some(key) = queue.pop() {
            let Some(c) = self.cache.get_mut(&key) else {
                continue;
            };
            // Groups emptied of everything are dropped.
            c.groups.retain(|(_, g)| **g != DocGroup::default());
            let encoded = encode_page(&c.groups);
            if encoded.len() > MAX_PAGE_BYTES && c.groups.len() >= 2 {
                let upper = c.groups.split_off(c.groups.len() / 2);
                let upper_key = upper[0].0.clone();
                self.keys.insert(upper_key.clone());
                self.new_pages.push(upper_key.clone());
                self.cache.insert(
                    upper_key.clone(),
                    Cached {
                        groups: upper,
                        encoded_len: 0,
                        used: self.tick,
                    },
                );
                queue.push(key);
                queue.push(upper_key);
                continue;
            }
            c.encoded_len = encoded.len();
            pages.push((key, encoded));
        }
        DirtyPages {
            pages,
            new_pages: std::mem::take(&mut self.new_pages),
        }
    }

    /// Drops the least recently used clean pages beyond the memory limit.
    pub fn evict(&mut self) {
        let used: usize = self
            .cache
            .values()
            .map(|c| c.encoded_len * MEMORY_FACTOR)
            .sum();
        if used <= self.limit_bytes {
            return;
        }
        let mut clean: Vec<(u64, String, usize)> = self
            .cache
            .iter()
            .filter(|(k, _)| !self.dirty.contains(*k))
            .map(|(k, c)| (c.used, k.clone(), c.encoded_len * MEMORY_FACTOR))
            .collect();
        clean.sort_unstable();
        let mut excess = used - self.limit_bytes * 4 / 5;
        for (_, key, size) in clean {
            if excess == 0 {
                break;
            }
            self.cache.remove(&key);
            excess = excess.saturating_sub(size);
        }
    }

    /// Forgets every cached page (after a failed batch left them half-changed).
    pub fn reset(&mut self, store: &Store) -> Result<(), StoreError> {
        *self = PageCache::open(store, self.limit_bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Commit;

    #[test]
    fn pages_split_and_every_group_is_found_again_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        let mut pages = PageCache::open(&store, 1 << 20).unwrap();
        // Doc ids arrive out of order, and the pages grow past their limit.
        for i in 0..2000u32 {
            let id = format!("DOC-{:05}", (i * 7919) % 2000);
            let g = pages.get_mut(&store, &id).unwrap();
            g.sha_signatures
                .push((format!("sha-{i}"), Default::default()));
            g.signatures.signers.push("x".repeat(40));
        }
        let dirty = pages.take_dirty();
        assert!(dirty.pages.len() > 4, "pages were split");
        assert!(dirty.pages.iter().all(|(_, v)| v.len() <= MAX_PAGE_BYTES));
        let commit = Commit {
            pages: dirty.pages,
            new_pages: dirty.new_pages,
            ..Commit::default()
        };
        store.record_batch_once(&commit).unwrap();
        let mut reopened = PageCache::open(&store, 1 << 20).unwrap();
        for i in 0..2000u32 {
            let id = format!("DOC-{i:05}");
            assert!(reopened.get(&store, &id).unwrap().is_some(), "{id} lost");
        }
        assert!(reopened.get(&store, "DOC-99999").unwrap().is_none());
        let listed: Vec<String> = store
            .groups_from(Some("DOC-01990"))
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(listed.len(), 10);
        assert_eq!(listed[0], "DOC-01990");
    }
}
