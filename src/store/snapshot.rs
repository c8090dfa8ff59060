//! Backups: the whole store as JSON Lines (a header line, one line per
//! stored key, an end line with the count), written from a consistent point
//! between two commits, and read back into an empty store.
//!
//! Keys and values are hex: the snapshot is exact for every part of the
//! store, including parts other modules add (alert state). Each line names
//! what it holds (`type`) so a snapshot can be inspected with `jq`.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

use super::migrate;
use super::{Store, StoreError, KEY_META, KEY_VERSION, STORE_VERSION};

/// Version of the snapshot format (the header's `docflow_snapshot`).
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Marker present while an import is unfinished: such a store is refused.
pub(super) const KEY_IMPORTING: &[u8] = b"\x00importing";
/// Keys written per sled batch during an import.
const IMPORT_BATCH: usize = 1000;

/// Errors of export and import.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store write failed: {0}")]
    Write(#[from] sled::Error),
    #[error("writing the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot line {line}: {message}")]
    Bad { line: u64, message: String },
    #[error("the store at {0} is not empty: import only into a new store (stop docflowd, move the store directory aside, import, start docflowd)")]
    NotEmpty(std::path::PathBuf),
    #[error("the snapshot ends after line {0} without its end line: it is truncated; nothing was imported")]
    Truncated(u64),
}

/// Stored keys and values, as they are.
pub type RawPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Counts of what an export or import carried, by line type.
pub type Summary = std::collections::BTreeMap<&'static str, u64>;

/// What a stored key holds (the line's `type`).
fn key_type(key: &[u8]) -> &'static str {
    if key == super::KEY_SETTINGS {
        return "settings";
    }
    match key.first() {
        Some(b'P') => "document_page",
        Some(b'I') => "page_index",
        Some(b'a') => "day_counts",
        Some(b'h') => "sha256_log",
        Some(b's') => "pending_signatures",
        Some(b'e') => "seen_event_ids",
        Some(b'p') => "source_state",
        Some(b'A') => "alert_state",
        Some(b'O') => "alert_outbox",
        _ => "other",
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Store {
    /// Writes the snapshot; commits wait until it is written, so it is one
    /// consistent point (positions agree with counts). `header` fields are
    /// added to the header line.
    pub fn export(
        &self,
        header: serde_json::Map<String, Value>,
        out: &mut impl Write,
    ) -> Result<Summary, SnapshotError> {
        let _paused = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut head = json!({
            "docflow_snapshot": SNAPSHOT_FORMAT,
            "store_version": STORE_VERSION,
            "docflowd": env!("CARGO_PKG_VERSION"),
            "exported_at": chrono::Utc::now().to_rfc3339(),
        });
        head.as_object_mut().expect("object").extend(header);
        writeln!(out, "{head}")?;
        let mut summary = Summary::new();
        let mut records = 0u64;
        for item in self.db.iter() {
            let (k, v) = item.map_err(StoreError::from)?;
            if k.as_ref() == KEY_VERSION || k.as_ref() == KEY_META {
                continue;
            }
            let t = key_type(&k);
            let line = json!({"type": t, "key": hex(&k), "value": hex(&v)});
            writeln!(out, "{line}")?;
            *summary.entry(t).or_default() += 1;
            records += 1;
        }
        writeln!(out, "{}", json!({"type": "end", "records": records}))?;
        out.flush()?;
        Ok(summary)
    }

    /// Every key and value under a one-byte prefix, as stored.
    pub fn raw_with_prefix(&self, prefix: u8) -> Result<RawPairs, StoreError> {
        self.db
            .scan_prefix([prefix])
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Writes keys and values as they are, in one atomic batch.
    pub fn put_raw(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in pairs {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Whether the store holds nothing but its version and metadata.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        for item in self.db.iter().keys() {
            let k = item?;
            if k.as_ref() != KEY_VERSION && k.as_ref() != KEY_META {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads a snapshot into this store, which must be empty. Until the end
    /// line is read and applied, the store carries a marker that makes
    /// [`Store::open`] refuse it, so a failed import never looks like data.
    pub fn import(&mut self, input: impl BufRead) -> Result<Summary, SnapshotError> {
        if !self.is_empty()? {
            return Err(SnapshotError::NotEmpty(self.path.clone()));
        }
        let bad = |line: u64, message: String| SnapshotError::Bad { line, message };
        let mut input = input;
        // Every line of a snapshot ends with a newline: one that does not was cut.
        let mut next_line = |n: u64| -> Result<Option<String>, SnapshotError> {
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            if !line.ends_with('\n') {
                return Err(SnapshotError::Truncated(n.saturating_sub(1)));
            }
            Ok(Some(line))
        };
        let header: Value = match next_line(1)? {
            None => return Err(bad(1, "empty input: no snapshot header".into())),
            Some(l) => serde_json::from_str(&l).map_err(|e| bad(1, format!("header: {e}")))?,
        };
        if header["docflow_snapshot"].as_u64() != Some(u64::from(SNAPSHOT_FORMAT)) {
            return Err(bad(
                1,
                format!(
                    "not a docflow snapshot of format {SNAPSHOT_FORMAT} (header {header}); it may come from a newer docflowd"
                ),
            ));
        }
        let version = header["store_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad(1, "header lacks store_version".into()))?;
        if version > STORE_VERSION || version == 0 {
            return Err(bad(
                1,
                format!("snapshot of store layout {version}; this docflowd understands up to {STORE_VERSION}: upgrade docflowd"),
            ));
        }
        let mut batch = sled::Batch::default();
        batch.insert(KEY_IMPORTING, &[]);
        // Migrations (if any) run on the imported data as on a stored one.
        batch.insert(KEY_VERSION, &version.to_le_bytes());
        self.db.apply_batch(batch)?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let mut summary = Summary::new();
        let mut records = 0u64;
        let mut n = 1u64;
        let mut ended = false;
        loop {
            n += 1;
            let Some(line) = next_line(n)? else { break };
            if line.trim().is_empty() {
                continue;
            }
            if ended {
                return Err(bad(n, "data after the end line".into()));
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| bad(n, e.to_string()))?;
            if v["type"] == "end" {
                if v["records"].as_u64() != Some(records) {
                    return Err(bad(
                        n,
                        format!("end line says {} records, {records} read", v["records"]),
                    ));
                }
                ended = true;
                continue;
            }
            let field = |f: &str| {
                v[f].as_str()
                    .and_then(unhex)
                    .ok_or_else(|| bad(n, format!("`{f}` missing or not hex")))
            };
            let (key, value) = (field("key")?, field("value")?);
            if key.as_slice() == KEY_IMPORTING
                || key.as_slice() == KEY_VERSION
                || key.as_slice() == KEY_META
            {
                return Err(bad(n, "reserved key".into()));
            }
            *summary.entry(key_type(&key)).or_default() += 1;
            batch.insert(key, value);
            records += 1;
            in_batch += 1;
            if in_batch >= IMPORT_BATCH {
                self.db.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        if !ended {
            return Err(SnapshotError::Truncated(n - 1));
        }
        self.db.apply_batch(batch)?;
        if version < STORE_VERSION {
            migrate::migrate(&self.db, version, STORE_VERSION)?;
        }
        self.db.remove(KEY_IMPORTING)?;
        self.db.flush()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{Commit, PendingSha, SourceState};

    fn filled(path: &std::path::Path) -> Store {
        let mut s = Store::open(path, 1 << 20).unwrap();
        s.record_batch_once(&Commit {
            sha_log: vec![("aa".into(), "D1".into())],
            pending_put: vec![("bb".into(), PendingSha::default())],
            seen: [vec![1, 2], vec![3]],
            sources: vec![(
                "exchange".into(),
                SourceState {
                    accepted: 2,
                    ..Default::default()
                },
            )],
            ..Commit::default()
        })
        .unwrap();
        s.put_raw(&[(b"Arule".to_vec(), b"firing".to_vec())])
            .unwrap();
        s
    }

    fn contents(s: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
        s.db.iter()
            .map(|kv| kv.unwrap())
            .filter(|(k, _)| k.as_ref() != KEY_META)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn export_then_import_gives_the_same_store() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let source = filled(a.path());
        let mut out = Vec::new();
        source.export(Default::default(), &mut out).unwrap();
        let mut target = Store::open(b.path(), 1 << 20).unwrap();
        let summary = target.import(out.as_slice()).unwrap();
        assert_eq!(summary["alert_state"], 1);
        assert_eq!(summary["source_state"], 1);
        drop(target);
        let target = Store::open(b.path(), 1 << 20).unwrap();
        assert_eq!(contents(&target), contents(&source));
        // A second import into the now filled store is refused.
        let mut target = target;
        assert!(matches!(
            target.import(out.as_slice()),
            Err(SnapshotError::NotEmpty(_))
        ));
    }

    #[test]
    fn a_cut_or_foreign_snapshot_is_refused_and_never_opens_as_data() {
        let a = tempfile::tempdir().unwrap();
        let source = filled(a.path());
        let mut out = Vec::new();
        source.export(Default::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let without_end: String = text
            .lines()
            .take(text.lines().count() - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        for (input, what) in [
            (without_end.as_str(), "truncated"),
            (&text[..text.len() - 5], "truncated"),
            ("{\"docflow_snapshot\":99,\"store_version\":1}\n", "format"),
            (
                "{\"docflow_snapshot\":1,\"store_version\":99}\n{\"type\":\"end\",\"records\":0}\n",
                "upgrade",
            ),
            ("", "empty"),
        ] {
            let b = tempfile::tempdir().unwrap();
            let mut target = Store::open(b.path(), 1 << 20).unwrap();
            let e = target
                .import(input.as_bytes())
                .expect_err("refused")
                .to_string();
            assert!(e.contains(what), "{what}: {e}");
            drop(target);
            if what == "truncated" {
                let e = Store::open(b.path(), 1 << 20)
                    .err()
                    .expect("half import refused");
                assert!(e.to_string().contains("import"), "{e}");
            }
        }
    }

    #[test]
    fn hex_round_trips() {
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&b)).unwrap(), b);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
