//! The sled store: the only module that knows key layouts. Document groups
//! packed into pages by doc_id, per-day counts, a log of (sha256, doc_id)
//! pairs, signatures waiting for a sha256, source positions and counters.
//! [`Store::record_batch_once`] commits a batch and the positions atomically.

pub mod alerts;
mod check;
pub(crate) mod clean;
pub(crate) mod codec;
mod commit;
pub(crate) mod encoding;
mod error;
pub(crate) mod keys;
pub(crate) mod migrate;
mod open;
pub(crate) mod pages;
pub(crate) mod proof;
mod read;
mod seen;
pub(crate) mod snapshot;
pub(crate) mod swap;
mod types;
mod verdicts;
pub(crate) mod verify;

use std::path::PathBuf;

use crate::aggregate::Day;
use codec::DecodeError;
use keys::*;

/// Layout version of this binary's store (see [`migrate::MIGRATIONS`]).
pub(crate) const STORE_VERSION: u32 = 5;

const FORMAT_SETTINGS: u8 = 1;

/// File next to sled's files saying a docflow store was created here.
pub(crate) const MARKER_FILE: &str = "DOCFLOW_STORE";
const MARKER_TEXT: &str = "A docflow store (sled). Back it up with `docflowd export`; if it is damaged, `docflowd rebuild` re-reads the logs.\n";

pub(crate) use error::StoreError;
pub(crate) use open::panic_text;
pub(crate) use seen::{IdSet, SeenIds};
pub(crate) use types::*;

/// The embedded store; clones share the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    sha_log_seq: u64,
    /// The proof of the last commit, and a scrub's progress. Its lock is the
    /// commit lock: held by each commit, by an export's copy and by each
    /// step of a scrub, so none of them sees half a batch.
    committed: std::sync::Arc<std::sync::Mutex<commit::Committed>>,
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

impl Store {
    #[cfg(test)]
    fn insert_raw(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).unwrap();
    }
}

/// Tells when every handle on a store is gone (sled then has closed it).
pub(crate) struct StoreWatch(std::sync::Weak<std::sync::Mutex<commit::Committed>>);

impl StoreWatch {
    pub(crate) fn closed(&self) -> bool {
        self.0.upgrade().is_none()
    }
}

impl Store {
    /// A watch that says when this store and all its clones are dropped.
    pub(crate) fn watch(&self) -> StoreWatch {
        StoreWatch(std::sync::Arc::downgrade(&self.committed))
    }
}

/// A hash map with a fast non-cryptographic hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, xxhash_rust::xxh3::Xxh3Builder>;

/// Partitions of the sha256 log: a lookup reads one of them.
const SHA_PARTITIONS: u8 = 64;

fn sha_partition(sha: &str) -> u8 {
    (xxhash_rust::xxh3::xxh3_64(sha.as_bytes()) % u64::from(SHA_PARTITIONS)) as u8
}

fn day_key(day: Day) -> [u8; 5] {
    let biased = (i64::from(day) - i64::from(i32::MIN)) as u32;
    let b = biased.to_be_bytes();
    [PREFIX_DAY, b[0], b[1], b[2], b[3]]
}

fn rejected_day_key(day: Day) -> [u8; 5] {
    let mut k = day_key(day);
    k[0] = PREFIX_REJECTED_DAY;
    k
}

fn edxml_file_key(source: &str, path: &str) -> Vec<u8> {
    let mut k = prefixed(PREFIX_EDXML_FILE, source.as_bytes());
    k.push(0);
    k.extend_from_slice(path.as_bytes());
    k
}

fn day_of_key(k: &[u8]) -> Result<Day, DecodeError> {
    let b: [u8; 4] = k
        .get(1..5)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError("bad day key"))?;
    Ok((i64::from(u32::from_be_bytes(b)) + i64::from(i32::MIN)) as Day)
}

#[cfg(test)]
mod tests;
