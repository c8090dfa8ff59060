//! The writer's view of the documents: groups packed into pages of
//! consecutive doc_ids, decoded pages cached in memory (bounded), dirty pages
//! encoded for the next atomic commit. Packing is what makes ingest fast:
//! sled pays per insert, and one page holds many documents.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use super::encoding::{decode_group, encode_group, index_page, stored_page, PageBuilder, RawEntry};
use super::{DocGroup, Store, StoreError};

/// A page is split when its encoding grows past this.
pub(crate) const MAX_PAGE_BYTES: usize = 16 * 1024;
/// Memory of a decoded group, roughly, for the cache bound.
const DECODED_GROUP_BYTES: usize = 640;
/// Memory of one entry of a page's index.
const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// A group of a cached page: still in the page's bytes as loaded, encoded
/// since (and shared with the commit that writes it), or decoded because the
/// current batch reads or changes it.
enum Group {
    Raw(std::ops::Range<u32>),
    Encoded(Arc<[u8]>),
    Decoded(Box<DocGroup>),
}

enum Id {
    Raw(std::ops::Range<u32>),
    Owned(Arc<str>),
}

struct Entry {
    id: Id,
    group: Group,
}

/// A cached page: the bytes it was loaded from, and its groups in doc_id
/// order. Only touched groups are decoded; a commit encodes them again, and
/// the committer (not the writer) assembles and compresses the page.
struct Cached {
    bytes: Arc<Vec<u8>>,
    entries: Vec<Entry>,
    decoded: usize,
    /// Bytes of the groups encoded since the page was loaded.
    encoded: usize,
    /// Lowest index at which a group was inserted since the last write.
    first_insert: usize,
    used: u64,
    /// Changed since the last write.
    dirty: bool,
}

/// Length of `v` as a varint.
fn uvar_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

impl Cached {
    fn from_bytes(bytes: Vec<u8>, raw: Vec<RawEntry>, used: u64) -> Cached {
        let entries: Vec<Entry> = raw
            .into_iter()
            .map(|e| Entry {
                id: Id::Raw(e.id),
                group: Group::Raw(e.group),
            })
            .collect();
        Cached::with(Arc::new(bytes), entries, used)
    }

    fn with(bytes: Arc<Vec<u8>>, entries: Vec<Entry>, used: u64) -> Cached {
        let mut c = Cached {
            first_insert: entries.len(),
            bytes,
            entries,
            decoded: 0,
            encoded: 0,
            used,
            dirty: false,
        };
        for e in &c.entries {
            match &e.group {
                Group::Raw(_) => {}
                Group::Encoded(b) => c.encoded += b.len(),
                Group::Decoded(_) => c.decoded += 1,
            }
        }
        c
    }

    fn id<'a>(bytes: &'a [u8], e: &'a Entry) -> &'a [u8] {
        match &e.id {
            Id::Raw(r) => &bytes[r.start as usize..r.end as usize],
            Id::Owned(s) => s.as_bytes(),
        }
    }

    fn find(&self, doc_id: &str) -> Result<usize, usize> {
        // New doc_ids mostly come in order, after the page's last one.
        if let Some(last) = self.entries.last() {
            match Self::id(&self.bytes, last).cmp(doc_id.as_bytes()) {
                std::cmp::Ordering::Less => return Err(self.entries.len()),
                std::cmp::Ordering::Equal => return Ok(self.entries.len() - 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        self.entries
            .binary_search_by(|e| Self::id(&self.bytes, e).cmp(doc_id.as_bytes()))
    }

    /// The group at `i`, decoded if it was not.
    fn decode(&mut self, i: usize) -> Result<&mut DocGroup, StoreError> {
        let Cached {
            bytes,
            entries,
            decoded,
            encoded,
            ..
        } = self;
        let e = &mut entries[i];
        let source: Option<&[u8]> = match &e.group {
            Group::Raw(r) => Some(&bytes[r.start as usize..r.end as usize]),
            Group::Encoded(b) => Some(b),
            Group::Decoded(_) => None,
        };
        if let Some(source) = source {
            let id = std::str::from_utf8(Self::id(bytes, e))
                .map_err(|_| super::codec::DecodeError("bad UTF-8"))?;
            let g = decode_group(source, id)?;
            if let Group::Encoded(b) = &e.group {
                *encoded -= b.len();
            }
            e.group = Group::Decoded(Box::new(g));
            *decoded += 1;
        }
        match &mut e.group {
            Group::Decoded(g) => Ok(g),
            Group::Raw(_) | Group::Encoded(_) => unreachable!("decoded above"),
        }
    }

    fn memory(&self) -> usize {
        self.bytes.len()
            + self.entries.capacity() * ENTRY_BYTES
            + self.decoded * DECODED_GROUP_BYTES
            + self.encoded
    }

    /// Encodes every decoded group (after a batch, for its commit).
    fn seal(&mut self) {
        for e in &mut self.entries {
            if let Group::Decoded(g) = &e.group {
                let b: Arc<[u8]> = encode_group(g).into();
                self.encoded += b.len();
                e.group = Group::Encoded(b);
            }
        }
        self.decoded = 0;
    }

    fn part_len(&self, e: &Entry) -> usize {
        let id = Self::id(&self.bytes, e).len();
        let group = match &e.group {
            Group::Raw(r) => r.len(),
            Group::Encoded(b) => b.len(),
            Group::Decoded(_) => unreachable!("sealed pages only"),
        };
        uvar_len(id) + id + uvar_len(group) + group
    }

    /// Size of the page once assembled (all groups encoded).
    fn size(&self) -> usize {
        1 + uvar_len(self.entries.len())
            + self.entries.iter().map(|e| self.part_len(e)).sum::<usize>()
    }

    /// What the committer needs to assemble the page of `size` bytes (all
    /// groups encoded).
    fn draft(&self, key: &str, size: usize) -> PageDraft {
        let part = |e: &Entry| {
            let id = match &e.id {
                Id::Raw(r) => Part::Base(r.clone()),
                Id::Owned(s) => Part::Str(s.clone()),
            };
            let group = match &e.group {
                Group::Raw(r) => Part::Base(r.clone()),
                Group::Encoded(b) => Part::Bytes(b.clone()),
                Group::Decoded(_) => unreachable!("sealed pages only"),
            };
            (id, group)
        };
        PageDraft {
            key: key.to_string(),
            base: self.bytes.clone(),
            parts: self.entries.iter().map(part).collect(),
            size,
        }
    }
}

/// A piece of a page being assembled.
enum Part {
    /// A range of the page's bytes as loaded.
    Base(std::ops::Range<u32>),
    Str(Arc<str>),
    Bytes(Arc<[u8]>),
}

/// A dirty page, ready to be assembled into its encoding: doc_ids and
/// groups, shared with the writer's cache (nothing is copied until then).
pub(crate) struct PageDraft {
    pub(crate) key: String,
    base: Arc<Vec<u8>>,
    parts: Vec<(Part, Part)>,
    size: usize,
}

impl PageDraft {
    fn bytes<'a>(&'a self, part: &'a Part) -> &'a [u8] {
        match part {
            Part::Base(r) => &self.base[r.start as usize..r.end as usize],
            Part::Str(s) => s.as_bytes(),
            Part::Bytes(b) => b,
        }
    }

    /// The page's encoding (format 3, not compressed).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = PageBuilder::new(self.parts.len(), self.size);
        for (id, group) in &self.parts {
            b.push(self.bytes(id), self.bytes(group));
        }
        let (page, _) = b.finish();
        debug_assert_eq!(page.len(), self.size, "page size computed ahead");
        page
    }
}

/// Pages of document groups, as the writer sees them.
pub(crate) struct PageCache {
    keys: BTreeSet<Arc<str>>,
    cache: super::FastMap<Arc<str>, Cached>,
    new_pages: Vec<String>,
    limit_bytes: usize,
    tick: u64,
    /// The page found last and the key after it: events of one document,
    /// and new doc_ids in order, mostly land on the same page.
    hint: Option<(Arc<str>, Option<Arc<str>>)>,
}

/// Dirty pages ready to be assembled and written.
pub(crate) struct DirtyPages {
    pub(crate) pages: Vec<PageDraft>,
    /// Keys of pages created since the last commit.
    pub(crate) new_pages: Vec<String>,
}

impl DirtyPages {
    /// The pages as stored: compressed (the committer does this off the writer's thread).
    #[cfg(test)]
    pub(crate) fn compressed(&self) -> Vec<(String, sled::IVec)> {
        self.pages
            .iter()
            .map(|d| {
                (
                    d.key.clone(),
                    super::encoding::compress_page(&d.encode()).into(),
                )
            })
            .collect()
    }
}

impl PageCache {
    /// Loads the page index; `limit_bytes` bounds the memory of the cached pages.
    pub(crate) fn open(store: &Store, limit_bytes: usize) -> Result<PageCache, StoreError> {
        Ok(PageCache {
            keys: store.page_keys()?.into_iter().map(Arc::from).collect(),
            cache: Default::default(),
            new_pages: Vec::new(),
            limit_bytes,
            tick: 0,
            hint: None,
        })
    }

    /// Key of the page that holds (or would hold) `doc_id`.
    fn key_for(&mut self, doc_id: &str) -> Arc<str> {
        if let Some((key, next)) = &self.hint {
            if **key <= *doc_id && next.as_ref().is_none_or(|n| *doc_id < **n) {
                return key.clone();
            }
        }
        let key = self
            .keys
            .range::<str, _>((Bound::Unbounded, Bound::Included(doc_id)))
            .next_back()
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let next = self
            .keys
            .range::<str, _>((Bound::Excluded(doc_id), Bound::Unbounded))
            .next()
            .cloned();
        self.hint = Some((key.clone(), next));
        key
    }

    fn load(&mut self, store: &Store, key: &Arc<str>) -> Result<&mut Cached, StoreError> {
        self.tick += 1;
        let tick = self.tick;
        let c = match self.cache.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let cached = match store.page(key)? {
                    Some(stored) => {
                        let bytes = stored_page(&stored)?.into_owned();
                        let raw = index_page(&bytes)?;
                        Cached::from_bytes(bytes, raw, tick)
                    }
                    None => {
                        if self.keys.insert(key.clone()) {
                            self.hint = None;
                            self.new_pages.push(key.to_string());
                        }
                        Cached::from_bytes(Vec::new(), Vec::new(), tick)
                    }
                };
                v.insert(cached)
            }
        };
        c.used = tick;
        Ok(c)
    }

    /// The group of `doc_id`, if any.
    pub(crate) fn get(
        &mut self,
        store: &Store,
        doc_id: &str,
    ) -> Result<Option<&DocGroup>, StoreError> {
        let key = self.key_for(doc_id);
        self.get_in(store, &key, doc_id)
    }

    /// The group of `doc_id`, if any, on page `key` (from [`PageCache::get_mut_keyed`],
    /// valid until the next [`PageCache::take_dirty`]).
    pub(crate) fn get_in(
        &mut self,
        store: &Store,
        key: &Arc<str>,
        doc_id: &str,
    ) -> Result<Option<&DocGroup>, StoreError> {
        let page = self.load(store, key)?;
        match page.find(doc_id) {
            Ok(i) => Ok(Some(page.decode(i)?)),
            Err(_) => Ok(None),
        }
    }

    /// The group of `doc_id` for changing, created empty if missing.
    #[cfg(test)]
    pub(crate) fn get_mut(
        &mut self,
        store: &Store,
        doc_id: &str,
    ) -> Result<&mut DocGroup, StoreError> {
        Ok(self.get_mut_keyed(store, doc_id)?.1)
    }

    /// The group of `doc_id` for changing, created empty if missing, and the
    /// key of its page.
    pub(crate) fn get_mut_keyed(
        &mut self,
        store: &Store,
        doc_id: &str,
    ) -> Result<(Arc<str>, &mut DocGroup), StoreError> {
        let key = self.key_for(doc_id);
        let page = self.load(store, &key)?;
        page.dirty = true;
        let i = match page.find(doc_id) {
            Ok(i) => i,
            Err(i) => {
                page.entries.insert(
                    i,
                    Entry {
                        id: Id::Owned(Arc::from(doc_id)),
                        group: Group::Decoded(Box::default()),
                    },
                );
                page.decoded += 1;
                page.first_insert = page.first_insert.min(i);
                i
            }
        };
        Ok((key, page.decode(i)?))
    }

    /// Encodes the groups of the dirty pages (splitting pages grown too
    /// large) for a commit, which assembles the pages.
    pub(crate) fn take_dirty(&mut self) -> DirtyPages {
        let mut pages = Vec::new();
        // A few hundred cached pages at most: a scan is cheaper than keeping a set.
        let mut queue: Vec<Arc<str>> = (self.cache.iter())
            .filter(|(_, c)| c.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        while let Some(key) = queue.pop() {
            let Some(c) = self.cache.get_mut(&*key) else {
                continue;
            };
            c.dirty = false;
            // Groups emptied of everything are dropped.
            c.entries
                .retain(|e| !matches!(&e.group, Group::Decoded(g) if **g == DocGroup::default()));
            c.seal();
            let size = c.size();
            if size > MAX_PAGE_BYTES && c.entries.len() >= 2 {
                // Appending at the end (new doc_ids in order) splits near the
                // end, so that the pages left behind stay nearly full.
                let n = c.entries.len();
                let at = if c.first_insert >= n * 3 / 4 {
                    (n * 7 / 8).clamp(1, n - 1)
                } else {
                    n / 2
                };
                let upper = c.entries.split_off(at);
                let upper = Cached::with(c.bytes.clone(), upper, self.tick);
                let lower = std::mem::take(&mut c.entries);
                *c = Cached::with(c.bytes.clone(), lower, c.used);
                let upper_key: Arc<str> =
                    String::from_utf8_lossy(Cached::id(&upper.bytes, &upper.entries[0])).into();
                self.keys.insert(upper_key.clone());
                self.hint = None;
                self.new_pages.push(upper_key.to_string());
                self.cache.insert(upper_key.clone(), upper);
                queue.push(key);
                queue.push(upper_key);
                continue;
            }
            c.first_insert = c.entries.len();
            pages.push(c.draft(&key, size));
        }
        DirtyPages {
            pages,
            new_pages: std::mem::take(&mut self.new_pages),
        }
    }

    /// Drops the least recently used clean pages beyond the memory limit,
    /// but not those in `keep` (written by a commit not yet durable: the
    /// store still has their old version).
    pub(crate) fn evict(&mut self, keep: &std::collections::HashSet<String>) {
        let used: usize = self.cache.values().map(Cached::memory).sum();
        if used <= self.limit_bytes {
            return;
        }
        let mut clean: Vec<(u64, Arc<str>, usize)> = self
            .cache
            .iter()
            .filter(|(k, c)| !c.dirty && !keep.contains(&***k))
            .map(|(k, c)| (c.used, k.clone(), c.memory()))
            .collect();
        clean.sort_unstable();
        let mut excess = used - self.limit_bytes * 4 / 5;
        for (_, key, size) in clean {
            if excess == 0 {
                break;
            }
            self.cache.remove(&*key);
            excess = excess.saturating_sub(size);
        }
    }

    /// Forgets every cached page (after a failed batch left them half-changed).
    pub(crate) fn reset(&mut self, store: &Store) -> Result<(), StoreError> {
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
        assert!(dirty
            .compressed()
            .iter()
            .all(|(_, v)| stored_page(v).unwrap().len() <= MAX_PAGE_BYTES));
        let commit = Commit {
            pages: dirty.compressed(),
            new_pages: dirty.new_pages,
            ..Commit::default()
        };
        store.record_batch_once(&commit).unwrap();
        // The same cache, whose last look-up was on a page since split, and a new one.
        for i in (0..2000u32).rev() {
            let id = format!("DOC-{i:05}");
            assert!(pages.get(&store, &id).unwrap().is_some(), "{id} lost");
        }
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

    fn group(id: &str) -> DocGroup {
        let mut g = DocGroup::default();
        g.signatures.signers.push(format!("Nguyễn Văn An, {id}"));
        g.sha_signatures
            .push((format!("{:064x}", id.len() * 7919), Default::default()));
        g.signatures.roles = 1;
        g
    }

    #[test]
    fn pages_are_written_compressed_and_uncompressed_pages_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 1 << 20).unwrap();
        // A page as the previous version wrote it: format 3, not compressed.
        let groups: Vec<(String, DocGroup)> = (0..30)
            .map(|i| (format!("H40-DI-{i:04}"), group(&format!("H40-DI-{i:04}"))))
            .collect();
        let plain = super::super::encoding::encode_page(&groups);
        store
            .record_batch_once(&Commit {
                pages: vec![(String::new(), plain.clone().into())],
                new_pages: vec![String::new()],
                ..Commit::default()
            })
            .unwrap();
        let mut pages = PageCache::open(&store, 1 << 20).unwrap();
        for (id, g) in &groups {
            assert_eq!(pages.get(&store, id).unwrap(), Some(g), "{id}");
        }
        pages
            .get_mut(&store, "H40-DI-0007")
            .unwrap()
            .signatures
            .roles = 3;
        let dirty = pages.take_dirty();
        assert_eq!(dirty.pages.len(), 1);
        let compressed = dirty.compressed();
        let stored = &compressed[0].1;
        assert!(
            matches!(stored_page(stored).unwrap(), std::borrow::Cow::Owned(_)),
            "a written page is compressed"
        );
        assert!(
            stored.len() * 2 < plain.len(),
            "{} bytes compressed from {}",
            stored.len(),
            plain.len()
        );
        store
            .record_batch_once(&Commit {
                pages: compressed,
                new_pages: dirty.new_pages,
                ..Commit::default()
            })
            .unwrap();
        let mut reopened = PageCache::open(&store, 1 << 20).unwrap();
        for (id, g) in &groups {
            let mut want = g.clone();
            if id == "H40-DI-0007" {
                want.signatures.roles = 3;
            }
            assert_eq!(reopened.get(&store, id).unwrap(), Some(&want), "{id}");
        }
        let listed: Vec<(String, DocGroup)> = store.groups_from(None).map(|r| r.unwrap()).collect();
        assert_eq!(listed.len(), groups.len());
        assert_eq!(listed[7].1.signatures.roles, 3);
    }

    #[test]
    fn a_damaged_compressed_page_is_an_error_not_a_panic() {
        let groups: Vec<(String, DocGroup)> = (0..20)
            .map(|i| (format!("D-{i:03}"), group(&format!("D-{i:03}"))))
            .collect();
        let stored =
            super::super::encoding::compress_page(&super::super::encoding::encode_page(&groups));
        assert_eq!(
            super::super::encoding::decode_page(&stored).unwrap(),
            groups
        );
        for cut in 0..stored.len() {
            assert!(
                super::super::encoding::decode_page(&stored[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(stored_page(&huge).is_err());
        // Flipped bytes decode to an error or to other groups, never a panic.
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x5a;
            let _ = super::super::encoding::decode_page(&bad);
        }
    }
}
