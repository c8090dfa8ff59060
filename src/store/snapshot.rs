//! Backups: the whole store as JSON Lines (a header line, one line per
//! stored key, an end line with the count), and their import into a new,
//! empty store.
//!
//! A snapshot is untrusted input: the header must name this agency, every
//! line is capped, every key must be one docflow writes and every value must
//! decode with the store's own decoders. Alert state and the mail outbox
//! are never taken from a snapshot (they would make the daemon mail what the
//! file says). Keys and values are hex; each line names what it holds
//! (`type`) so a snapshot can be inspected with `jq`.

use std::io::{BufRead, Read, Seek, Write};

use serde_json::{json, Value};

use super::encoding::{
    decode_day, decode_page, decode_pending, decode_rejected_day, decode_sha_log, decode_source,
};
use super::keys::{KeyKind, KEY_IMPORTING, KEY_VERSION};
use super::{migrate, sha_partition, Store, StoreError, STORE_VERSION};

/// Version of the snapshot format (the header's `docflow_snapshot`).
pub(crate) const SNAPSHOT_FORMAT: u32 = 1;
/// Keys written per sled batch during an import.
const IMPORT_BATCH: usize = 1000;
/// Longest snapshot line: a stored value is at most a few hundred KiB
/// (a page is split at 16 KiB; hex doubles it).
pub(crate) const MAX_LINE_BYTES: usize = 16 << 20;
/// Default cap on a snapshot's total size (`storage.max_import_size`).
pub(crate) const DEFAULT_MAX_IMPORT_BYTES: u64 = 64 << 30;

/// Errors of export and import.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot line {line}: {message}")]
    Bad { line: u64, message: String },
    #[error("the store at {0} is not empty: import only into a new store (stop docflowd, move the store directory aside, import, start docflowd)")]
    NotEmpty(std::path::PathBuf),
    #[error("the snapshot ends after line {0} without its end line: it is truncated; nothing was imported")]
    Truncated(u64),
    #[error("the snapshot is of agency {found:?}, this docflowd counts for agency {expected:?} (agency.code): nothing was imported")]
    ForeignAgency { found: String, expected: String },
    #[error(
        "the snapshot is larger than {0} bytes (storage.max_import_size): nothing was imported"
    )]
    TooLarge(u64),
    #[error("stopped before the snapshot was complete")]
    Cancelled,
}

impl From<sled::Error> for SnapshotError {
    fn from(e: sled::Error) -> Self {
        SnapshotError::Store(e.into())
    }
}

/// Counts of what an export or import carried, by line type.
pub(crate) type Summary = std::collections::BTreeMap<&'static str, u64>;

/// What an import accepts.
#[derive(Debug, Clone)]
pub(crate) struct ImportRules {
    /// `agency.code`: the header must name it.
    pub agency: String,
    /// Total bytes read at most.
    pub(crate) max_bytes: u64,
}

/// A copy of every stored key and value taken between two commits, in a
/// file without a name (it disappears when dropped), so that a slow reader
/// of the snapshot never holds up the writer.
pub(crate) struct Spool {
    file: std::io::BufReader<std::fs::File>,
    records: u64,
}

fn write_record(out: &mut impl Write, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    out.write_all(&(key.len() as u32).to_le_bytes())?;
    out.write_all(&(value.len() as u32).to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(value)
}

fn read_record(input: &mut impl Read) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut lens = [0u8; 8];
    input.read_exact(&mut lens)?;
    let klen = u32::from_le_bytes(lens[..4].try_into().expect("4 bytes")) as usize;
    let vlen = u32::from_le_bytes(lens[4..].try_into().expect("4 bytes")) as usize;
    let mut key = vec![0; klen];
    input.read_exact(&mut key)?;
    let mut value = vec![0; vlen];
    input.read_exact(&mut value)?;
    Ok((key, value))
}

impl Spool {
    /// Writes the snapshot of the spooled records.
    pub(crate) fn export(
        mut self,
        header: serde_json::Map<String, Value>,
        out: &mut impl Write,
    ) -> Result<Summary, SnapshotError> {
        let records = self.records;
        let file = &mut self.file;
        let items = (0..records).map(|_| read_record(file).map_err(SnapshotError::from));
        write_snapshot(header, items, out)
    }
}

/// The header line, the records, the end line.
fn write_snapshot(
    header: serde_json::Map<String, Value>,
    records: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), SnapshotError>>,
    out: &mut impl Write,
) -> Result<Summary, SnapshotError> {
    let mut head = json!({
        "docflow_snapshot": SNAPSHOT_FORMAT,
        "store_version": STORE_VERSION,
        "docflowd": env!("CARGO_PKG_VERSION"),
        "exported_at": chrono::Utc::now().to_rfc3339(),
    });
    head.as_object_mut().expect("object").extend(header);
    writeln!(out, "{head}")?;
    let mut summary = Summary::new();
    let mut count = 0u64;
    for item in records {
        let (k, v) = item?;
        let Some(kind) = KeyKind::of(&k).filter(|k| !k.is_internal()) else {
            continue;
        };
        let line = json!({"type": kind.name(), "key": hex::encode(&k), "value": hex::encode(&v)});
        writeln!(out, "{line}")?;
        *summary.entry(kind.name()).or_default() += 1;
        count += 1;
    }
    writeln!(out, "{}", json!({"type": "end", "records": count}))?;
    out.flush()?;
    Ok(summary)
}

/// Checks that a snapshot record is a key docflow writes with a value its
/// decoders read; `Ok(false)` for a record that is dropped (alert state and
/// outbox).
pub(crate) fn check_record(key: &[u8], value: &[u8]) -> Result<bool, String> {
    let kind = KeyKind::of(key).ok_or("a key docflow never writes")?;
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(|_| ())
            .map_err(|_| "key is not UTF-8".to_string())
    };
    let fixed = |n: usize| {
        if key.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{} key of {} bytes, not {n}",
                kind.name(),
                key.len()
            ))
        }
    };
    let empty = || {
        if value.is_empty() {
            Ok(())
        } else {
            Err(format!("{} value must be empty", kind.name()))
        }
    };
    let decoded = |r: Result<(), super::codec::DecodeError>| r.map_err(|e| e.to_string());
    match kind {
        KeyKind::Version
        | KeyKind::Meta
        | KeyKind::Importing
        | KeyKind::Probe
        | KeyKind::Commit => return Err("reserved key".into()),
        KeyKind::AlertState | KeyKind::AlertOutbox => return Ok(false),
        KeyKind::Settings => decoded(super::read::decode_settings(value).map(drop))?,
        KeyKind::Page => {
            utf8(&key[1..])?;
            decoded(decode_page(value).map(drop))?
        }
        KeyKind::PageIndex => {
            utf8(&key[1..])?;
            empty()?
        }
        KeyKind::Day => {
            fixed(5)?;
            decoded(decode_day(value).map(drop))?
        }
        KeyKind::RejectedDay => {
            fixed(5)?;
            decoded(decode_rejected_day(value).map(drop))?
        }
        KeyKind::ShaLog => {
            fixed(10)?;
            let pairs = decoded_sha_log(value)?;
            if pairs.iter().any(|(sha, _)| sha_partition(sha) != key[1]) {
                return Err("sha256 log entry in the wrong partition".into());
            }
        }
        KeyKind::Pending => {
            utf8(&key[1..])?;
            decoded(decode_pending(value).map(drop))?
        }
        KeyKind::Seen => {
            fixed(10)?;
            if key[1] > 1 || value.len() % 8 != 0 {
                return Err("bad seen event ids".into());
            }
        }
        KeyKind::Source => {
            utf8(&key[1..])?;
            decoded(decode_source(value).map(drop))?
        }
        KeyKind::Verdict => super::verdicts::check_verdict(key, value)?,
        KeyKind::EdxmlFile => {
            utf8(&key[1..])?;
            if !key[1..].contains(&0) {
                return Err("edXML file key without its source".into());
            }
            empty()?
        }
    }
    Ok(true)
}

fn decoded_sha_log(value: &[u8]) -> Result<Vec<(String, String)>, String> {
    decode_sha_log(value).map_err(|e| e.to_string())
}

/// One line of at most [`MAX_LINE_BYTES`], with its newline; `None` at the end.
fn read_line(
    input: &mut impl BufRead,
    n: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, SnapshotError> {
    buf.clear();
    let read = input
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(SnapshotError::Bad {
            line: n,
            message: format!("longer than {MAX_LINE_BYTES} bytes"),
        });
    }
    // Every line of a snapshot ends with a newline: one that does not was cut.
    if buf.last() != Some(&b'\n') {
        return Err(SnapshotError::Truncated(n.saturating_sub(1)));
    }
    Ok(Some(()))
}

/// Counts the bytes read and refuses more than a cap.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than the cap means the input is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "over the cap",
                )),
            };
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl Store {
    /// Writes a snapshot of the store as it is now; for a store no writer
    /// uses (the daemon spools instead, see [`Store::spool`]).
    pub(crate) fn export(
        &self,
        header: serde_json::Map<String, Value>,
        out: &mut impl Write,
    ) -> Result<Summary, SnapshotError> {
        let records = self.db.iter().map(|kv| {
            let (k, v) = kv?;
            Ok((k.to_vec(), v.to_vec()))
        });
        write_snapshot(header, records, out)
    }

    /// Copies every key and value into an unnamed file in `dir`, holding
    /// commits for the time of the copy only, so the copy is one consistent
    /// point (positions agree with counts). `stop` cuts it short.
    pub(crate) fn spool(
        &self,
        dir: &std::path::Path,
        stop: &dyn Fn() -> bool,
    ) -> Result<Spool, SnapshotError> {
        let file = tempfile::tempfile_in(dir)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut records = 0u64;
        {
            let _paused = self.lock_commits();
            for item in self.db.iter() {
                let (k, v) = item?;
                write_record(&mut out, &k, &v)?;
                records += 1;
                if records % 4096 == 0 && stop() {
                    return Err(SnapshotError::Cancelled);
                }
            }
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(Spool {
            file: std::io::BufReader::with_capacity(1 << 20, file),
            records,
        })
    }

    /// Whether the store holds nothing but its version and metadata.
    pub(crate) fn is_empty(&self) -> Result<bool, StoreError> {
        for item in self.db.iter().keys() {
            if !KeyKind::of(&item?).is_some_and(KeyKind::is_internal) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads a snapshot into this store, which must be empty (see the module
    /// doc for what is checked). Until the end line is read and applied, the
    /// store carries a marker that makes [`Store::open`] refuse it, so a
    /// failed import never looks like data; callers import into a staging
    /// directory and discard it on error.
    pub(crate) fn import(
        &mut self,
        input: impl BufRead,
        rules: &ImportRules,
    ) -> Result<Summary, SnapshotError> {
        if !self.is_empty()? {
            return Err(SnapshotError::NotEmpty(self.path.clone()));
        }
        let cap = rules.max_bytes;
        let mut input = std::io::BufReader::new(Capped {
            inner: input,
            left: cap,
        });
        self.import_lines(&mut input, rules).map_err(|e| match e {
            SnapshotError::Io(io) if io.kind() == std::io::ErrorKind::FileTooLarge => {
                SnapshotError::TooLarge(cap)
            }
            e => e,
        })
    }

    fn import_lines(
        &mut self,
        input: &mut impl BufRead,
        rules: &ImportRules,
    ) -> Result<Summary, SnapshotError> {
        let bad = |line: u64, message: String| SnapshotError::Bad { line, message };
        let mut buf = Vec::new();
        if read_line(input, 1, &mut buf)?.is_none() {
            return Err(bad(1, "empty input: no snapshot header".into()));
        }
        let header: Value =
            serde_json::from_slice(&buf).map_err(|e| bad(1, format!("header: {e}")))?;
        let version = check_header(&header, rules)?;
        let mut batch = sled::Batch::default();
        batch.insert(KEY_IMPORTING, &[]);
        // Migrations (if any) run on the imported data as on a stored one.
        batch.insert(KEY_VERSION, &version.to_le_bytes());
        self.db.apply_batch(batch).map_err(StoreError::write)?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let mut summary = Summary::new();
        let (mut records, mut n, mut ended) = (0u64, 1u64, false);
        loop {
            n += 1;
            if read_line(input, n, &mut buf)?.is_none() {
                break;
            }
            if buf.trim_ascii().is_empty() {
                continue;
            }
            if ended {
                return Err(bad(n, "data after the end line".into()));
            }
            let v: Value = serde_json::from_slice(&buf).map_err(|e| bad(n, e.to_string()))?;
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
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| bad(n, format!("`{f}` missing or not hex")))
            };
            let (key, value) = (field("key")?, field("value")?);
            records += 1;
            let kind = KeyKind::of(&key).map_or("unknown", KeyKind::name);
            if !check_record(&key, &value).map_err(|m| bad(n, format!("{kind}: {m}")))? {
                *summary.entry(dropped(kind)).or_default() += 1;
                continue;
            }
            *summary.entry(kind).or_default() += 1;
            batch.insert(key, value);
            in_batch += 1;
            if in_batch >= IMPORT_BATCH {
                self.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(StoreError::write)?;
                in_batch = 0;
            }
        }
        if !ended {
            return Err(SnapshotError::Truncated(n - 1));
        }
        self.db.apply_batch(batch).map_err(StoreError::write)?;
        if version < STORE_VERSION {
            migrate::migrate(&self.db, version, STORE_VERSION)?;
        }
        self.check_pages()?;
        self.seal()?;
        self.db.remove(KEY_IMPORTING).map_err(StoreError::write)?;
        self.db.flush().map_err(StoreError::write)?;
        Ok(summary)
    }
}

/// The summary name of records a snapshot carries but an import drops.
fn dropped(kind: &'static str) -> &'static str {
    match kind {
        "alert_state" => "alert_state_dropped",
        _ => "alert_outbox_dropped",
    }
}

/// The header's store layout version, once the header is known to be a
/// snapshot of this agency that this binary can read.
fn check_header(header: &Value, rules: &ImportRules) -> Result<u32, SnapshotError> {
    let bad = |message: String| SnapshotError::Bad { line: 1, message };
    if header["docflow_snapshot"].as_u64() != Some(u64::from(SNAPSHOT_FORMAT)) {
        return Err(bad(format!(
            "not a docflow snapshot of format {SNAPSHOT_FORMAT}; it may come from a newer docflowd"
        )));
    }
    let found = header["agency"].as_str().unwrap_or_default();
    if found != rules.agency {
        return Err(SnapshotError::ForeignAgency {
            found: found.to_string(),
            expected: rules.agency.clone(),
        });
    }
    let version = header["store_version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| bad("header lacks store_version".into()))?;
    if version > STORE_VERSION || version == 0 {
        return Err(bad(format!(
            "snapshot of store layout {version}; this docflowd understands up to {STORE_VERSION}: upgrade docflowd"
        )));
    }
    Ok(version)
}

#[cfg(test)]
mod tests;
