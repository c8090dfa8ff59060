//! Opening a store: sled's lock, damaged or unfinished files, the layout
//! version and its migrations, the commit proof.

use std::path::Path;

use super::codec::DecodeError;
use super::keys::*;
use super::*;

impl Store {
    /// Opens (or creates) the store, checks its layout version and migrates
    /// an older layout.
    pub fn open(path: &Path, cache_capacity: u64) -> Result<Store, StoreError> {
        Ok(Store::open_migrating(path, cache_capacity)?.0)
    }

    /// Whether `path` holds a store already (docflowd's marker, or sled's
    /// data file with data in it): such a store must open with its data,
    /// never as a fresh one. An empty data file without the marker is what
    /// a creation that failed (e.g. on a full disk) leaves.
    pub(crate) fn exists(path: &Path) -> bool {
        path.join(MARKER_FILE).exists()
            || std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0)
    }

    /// Like [`Store::open`], also returning the migration steps applied.
    pub(crate) fn open_migrating(
        path: &Path,
        cache_capacity: u64,
    ) -> Result<(Store, Vec<migrate::StepReport>), StoreError> {
        let io = |e: std::io::Error| StoreError::open(path, e.into());
        swap::finish_interrupted(path).map_err(io)?;
        let existed = Store::exists(path);
        let db = open_sled(path, cache_capacity)?;
        let reports = check_version(path, &db, existed)?;
        if !path.join(MARKER_FILE).exists() {
            // Written once the version is durable: from now on an empty or
            // unreadable store here is damage, not a first start.
            std::fs::write(path.join(MARKER_FILE), MARKER_TEXT).map_err(io)?;
        }
        if db.contains_key(KEY_IMPORTING)? {
            return Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                what: "an import into it did not finish; delete the directory and import again, or rebuild".into(),
            });
        }
        let proof = match db.get(KEY_COMMIT)? {
            Some(v) => proof::Proof::decode(&v).map_err(|e| unreadable(path, e))?,
            None => {
                return Err(StoreError::Damaged {
                    path: path.to_path_buf(),
                    what: "its commit record is missing".into(),
                })
            }
        };
        let store = Store {
            sha_log_seq: next_sequence(path, &db)?,
            db,
            path: path.to_path_buf(),
            committed: std::sync::Arc::new(std::sync::Mutex::new(commit::Committed::new(proof))),
        };
        Ok((store, reports))
    }
}

fn unreadable(path: &Path, e: DecodeError) -> StoreError {
    StoreError::Unreadable {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// Whether another process holds the store: sled takes an exclusive `flock`
/// on its `db` file, which this asks for (and releases) without waiting.
fn held_by_another(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path.join("db")) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; it is released when `file` closes.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    locked != 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

/// Opens sled's files: refused when another process holds them; sled's
/// panics on some damaged files caught; an unfinished snapshot left by a
/// full disk removed.
fn open_sled(path: &Path, cache_capacity: u64) -> Result<sled::Db, StoreError> {
    // sled's background threads may hold a just-closed store's lock for a
    // moment: only a lock held for a second means another process.
    let lock_deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while held_by_another(path) {
        if std::time::Instant::now() > lock_deadline {
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let open = || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(cache_capacity)
                .flush_every_ms(Some(500))
                .open()
        }))
        .map_err(|panic| StoreError::Unreadable {
            path: path.to_path_buf(),
            what: format!("sled panicked while opening it: {}", panic_text(&panic)),
        })
    };
    let mut opened = open()?;
    if matches!(opened, Err(sled::Error::Corruption { .. })) && remove_unfinished_snapshots(path) {
        // An open on a full disk leaves an empty `snap.*.generating` file
        // that sled 0.34 then reads as corruption: it is an unfinished
        // snapshot and sled rebuilds it from its log.
        opened = open()?;
    }
    opened.map_err(|source| StoreError::open(path, source))
}

/// Checks the layout version, migrating an older one (or initialising an
/// empty new store); the migration steps applied.
fn check_version(
    path: &Path,
    db: &sled::Db,
    existed: bool,
) -> Result<Vec<migrate::StepReport>, StoreError> {
    let found = match db.get(KEY_VERSION)? {
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u32::from_le_bytes)
            .map_err(|_| unreadable(path, DecodeError("bad version key")))?,
        None if db.is_empty() && existed => {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                what: "it exists but reads as empty (sled recovered nothing)".into(),
            })
        }
        None if db.is_empty() => {
            let mut batch = sled::Batch::default();
            batch.insert(KEY_VERSION, &STORE_VERSION.to_le_bytes());
            batch.insert(KEY_META, migrate::encode_meta(&migrate::new_meta()));
            batch.insert(KEY_COMMIT, proof::Proof::default().encode());
            db.apply_batch(batch).map_err(StoreError::write)?;
            db.flush().map_err(StoreError::write)?;
            return Ok(Vec::new());
        }
        None => {
            return Err(StoreError::NotDocflow {
                path: path.to_path_buf(),
            })
        }
    };
    if found > STORE_VERSION {
        return Err(StoreError::NewerVersion {
            path: path.to_path_buf(),
            found,
        });
    }
    if found == STORE_VERSION {
        return Ok(Vec::new());
    }
    let reports =
        migrate::migrate(db, found, STORE_VERSION).map_err(|e| StoreError::Migration {
            path: path.to_path_buf(),
            from: found,
            source: Box::new(e),
        })?;
    for r in &reports {
        tracing::info!(store = %path.display(), from = r.from, to = r.to, counts = ?r.counts, what = r.what, "store layout migrated");
    }
    Ok(reports)
}

/// Sequence numbers of commits key the sha256 log and the seen-id lists:
/// the next one, after the highest in use.
fn next_sequence(path: &Path, db: &sled::Db) -> Result<u64, StoreError> {
    let mut next = 0;
    let prefixes = (0..SHA_PARTITIONS)
        .map(|p| [PREFIX_SHA_LOG, p])
        .chain([[PREFIX_SEEN, 0], [PREFIX_SEEN, 1]]);
    for prefix in prefixes {
        if let Some(kv) = db.scan_prefix(prefix).next_back() {
            let (k, _) = kv?;
            let b: [u8; 8] = k
                .get(2..10)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| unreadable(path, DecodeError("bad sha log key")))?;
            next = next.max(u64::from_be_bytes(b) + 1);
        }
    }
    Ok(next)
}

/// Removes sled's unfinished snapshot files (`snap.*.generating`); whether
/// there were any.
fn remove_unfinished_snapshots(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::warn!(file = %entry.path().display(), "removed an unfinished sled snapshot left by a failed write");
            removed = true;
        }
    }
    removed
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
