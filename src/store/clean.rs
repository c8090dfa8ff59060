//! A clean close, remembered: once the daemon has closed the store after a
//! clean shutdown it writes `{path}/.clean`, a hash of sled's files as they
//! are on disk. At the next start the files are hashed again before sled
//! opens them: the same hash means nothing changed them while the daemon
//! was stopped, so the full check can be skipped; anything else (a crash,
//! damage to the files, an import or rebuild put in place, no marker) makes
//! the daemon run the full check before it ingests or lists documents.
//! Hashing reads the files sequentially with a fixed buffer: no sled cache.

use std::io::Read;
use std::path::Path;

const MARKER: &str = ".clean";

/// Hash of the store's files (name, length and bytes of each), in name order.
fn fingerprint(path: &Path) -> std::io::Result<u128> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "db" | "conf" | super::MARKER_FILE) || name.starts_with("snap.")
        {
            files.push((name, entry.path()));
        } else if name == "blobs" {
            for blob in std::fs::read_dir(entry.path())? {
                let blob = blob?;
                files.push((
                    format!("blobs/{}", blob.file_name().to_string_lossy()),
                    blob.path(),
                ));
            }
        }
    }
    files.sort();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    for (name, file) in files {
        let mut f = std::fs::File::open(&file)?;
        h.update(name.as_bytes());
        h.update(&f.metadata()?.len().to_le_bytes());
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.digest128())
}

/// Records that the store at `path` was closed cleanly (call once every
/// handle on it is dropped, so that sled has written its last byte).
pub(crate) fn mark(path: &Path) -> std::io::Result<()> {
    let print = fingerprint(path)?;
    let tmp = path.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, format!("{print:032x}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path.join(MARKER))
}

/// Whether the store's files are byte for byte those of its last clean
/// close; the marker is removed either way (before sled opens the files), so
/// a crash from now on is never taken for a clean close.
pub(crate) fn take(path: &Path) -> bool {
    let marker = path.join(MARKER);
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return false;
    };
    let unchanged = fingerprint(path).is_ok_and(|p| format!("{p:032x}") == text.trim());
    let removed = std::fs::remove_file(&marker).is_ok()
        && std::fs::File::open(path).and_then(|d| d.sync_all()).is_ok();
    unchanged && removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_close_is_recognised_once_and_any_change_to_the_files_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open(dir.path(), 1 << 20).unwrap();
        drop(s);
        assert!(!take(dir.path()), "no marker: not clean");
        mark(dir.path()).unwrap();
        assert!(take(dir.path()));
        assert!(!take(dir.path()), "the marker is used once");
        mark(dir.path()).unwrap();
        let db = dir.path().join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&db, bytes).unwrap();
        assert!(!take(dir.path()), "a flipped bit is a change");
    }
}
