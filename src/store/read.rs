//! Reading the store: settings, per-day counts, source states, document
//! groups in doc_id order, the sha256 log, seen ids and pending signatures.

use std::collections::BTreeMap;
use std::path::Path;

use super::codec::{DecodeError, Reader};
use super::encoding::*;
use super::keys::*;
use super::*;
use crate::aggregate::Aggregates;

impl Store {
    /// Creator and migration history of the store.
    #[cfg(test)]
    pub(crate) fn meta(&self) -> Result<Option<migrate::Meta>, StoreError> {
        Ok(self
            .db
            .get(KEY_META)?
            .map(|v| migrate::decode_meta(&v))
            .transpose()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings the counts were made with, if any.
    pub(crate) fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let Some(v) = self.db.get(KEY_SETTINGS)? else {
            return Ok(None);
        };
        Ok(Some(decode_settings(&v)?))
    }

    /// All per-day counts.
    pub(crate) fn aggregates(&self) -> Result<Aggregates, StoreError> {
        let mut agg = Aggregates::default();
        for item in self.db.scan_prefix([PREFIX_DAY]) {
            let (k, v) = item?;
            agg.set_day(day_of_key(&k)?, &decode_day(&v)?);
        }
        for item in self.db.scan_prefix([PREFIX_REJECTED_DAY]) {
            let (k, v) = item?;
            agg.set_rejected_day(day_of_key(&k)?, decode_rejected_day(&v)?);
        }
        Ok(agg)
    }

    /// Paths of the edXML files `source` has already read.
    pub(crate) fn edxml_files(
        &self,
        source: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let prefix = edxml_file_key(source, "");
        self.db
            .scan_prefix(&prefix)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned()))
            .collect()
    }

    /// Durable state of every source that has committed anything.
    pub fn sources(&self) -> Result<BTreeMap<String, SourceState>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.db.scan_prefix([PREFIX_SOURCE]) {
            let (k, v) = item?;
            out.insert(
                String::from_utf8_lossy(&k[1..]).into_owned(),
                decode_source(&v)?,
            );
        }
        Ok(out)
    }

    /// Keys of all pages of document groups.
    pub(crate) fn page_keys(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .scan_prefix([PREFIX_PAGE_KEY])
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[1..]).into_owned()))
            .collect()
    }

    /// The encoded page with this key.
    pub(crate) fn page(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.db.get(prefixed(PREFIX_PAGE, key.as_bytes()))?)
    }

    /// Document groups in doc_id order, from `start` (inclusive) on.
    pub(crate) fn groups_from(
        &self,
        start: Option<&str>,
    ) -> impl Iterator<Item = Result<(String, DocGroup), StoreError>> + '_ {
        let first_page = match start {
            None => Ok(String::new()),
            Some(s) => self.page_keys().map(|keys| {
                keys.into_iter()
                    .filter(|k| k.as_str() <= s)
                    .max()
                    .unwrap_or_default()
            }),
        };
        let start = start.unwrap_or("").to_string();
        let pages: Box<dyn Iterator<Item = Result<Page, StoreError>>> = match first_page {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok(first) => Box::new(
                self.db
                    .range(prefixed(PREFIX_PAGE, first.as_bytes())..vec![PREFIX_PAGE + 1])
                    .map(|item| -> Result<_, StoreError> { Ok(decode_page(&item?.1)?) }),
            ),
        };
        pages.flat_map(move |page| -> Vec<Result<(String, DocGroup), StoreError>> {
            match page {
                Err(e) => vec![Err(e)],
                Ok(groups) => groups
                    .into_iter()
                    .filter(|(id, _)| *id >= start)
                    .map(Ok)
                    .collect(),
            }
        })
    }

    /// Visits every (sha256, doc_id) pair logged, in the partition of `sha`
    /// (or all of them), oldest first within a partition.
    pub(crate) fn scan_sha_log(
        &self,
        sha: Option<&str>,
        mut visit: impl FnMut(String, String),
    ) -> Result<(), StoreError> {
        let prefix = match sha {
            Some(sha) => vec![PREFIX_SHA_LOG, sha_partition(sha)],
            None => vec![PREFIX_SHA_LOG],
        };
        for item in self.db.scan_prefix(prefix) {
            for (sha, doc_id) in decode_sha_log(&item?.1)? {
                visit(sha, doc_id);
            }
        }
        Ok(())
    }

    /// Every event-id hash seen so far by sources of `kind`.
    pub(crate) fn seen_ids(&self, kind: crate::model::SourceKind) -> Result<SeenIds, StoreError> {
        // Streamed into the buckets: a vector of every id first would double
        // the start's peak memory on a large store.
        let mut failed = None;
        let records = self
            .db
            .scan_prefix([PREFIX_SEEN, kind.as_byte()])
            .map_while(|item| item.map_err(|e| failed = Some(e)).ok());
        let seen = SeenIds::from_unsorted(records.flat_map(|(_, v)| {
            (0..v.len() / 8)
                .map(move |i| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
        }));
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(seen),
        }
    }

    /// The sha256 values with signatures waiting for a document.
    pub(crate) fn pending_shas(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .scan_prefix([PREFIX_PENDING])
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[1..]).into_owned()))
            .collect()
    }

    pub(crate) fn pending(&self, sha: &str) -> Result<Option<PendingSha>, StoreError> {
        Ok(self
            .db
            .get(prefixed(PREFIX_PENDING, sha.as_bytes()))?
            .map(|v| decode_pending(&v))
            .transpose()?)
    }
}

pub(super) fn decode_settings(v: &[u8]) -> Result<Settings, DecodeError> {
    let mut r = Reader::new(v, FORMAT_SETTINGS)?;
    Ok(Settings {
        timezone: r.str()?,
        required_roles: r.u8()?,
    })
}
