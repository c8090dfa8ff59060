//! The rejected-events files: `{storage.path}/rejected/{source}.jsonl`,
//! appended with each batch and cut back to the committed length at start.

use std::fs::OpenOptions;
use std::io::Write;

/// Appends rejected lines at the committed length (cutting off lines of an
/// uncommitted batch); returns the new length.
pub(super) fn append_rejected(
    dir: &std::path::Path,
    source: &str,
    committed_len: u64,
    bytes: &[u8],
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{source}.jsonl"));
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    let len = f.metadata()?.len();
    if len > committed_len {
        f.set_len(committed_len)?;
    }
    f.write_all(bytes)?;
    Ok(len.min(committed_len) + bytes.len() as u64)
}

/// Cuts a rejected file back to its committed length (at start-up).
pub(crate) fn trim_rejected(
    dir: &std::path::Path,
    source: &str,
    committed_len: u64,
) -> std::io::Result<()> {
    let path = dir.join(format!("{source}.jsonl"));
    match OpenOptions::new().write(true).open(&path) {
        Ok(f) => {
            if f.metadata()?.len() > committed_len {
                f.set_len(committed_len)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
