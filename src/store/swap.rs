//! Replacing a store's files by those of another store, inside the store's
//! own directory: the shipped unit makes only `{storage.path}` writable
//! (`ProtectSystem=strict`, `StateDirectory=`), so a new store is staged in a
//! subdirectory and its files are moved into place, never the directory
//! itself. A journal file makes the move resumable: a crash half-way is
//! finished by the next [`super::Store::open`].

use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal of a swap in progress: `phase`, staged directory, old-files directory.
const JOURNAL: &str = ".swap-journal";

/// Whether a directory entry belongs to sled's files or docflow's marker (not
/// `rejected/`, staging directories, sockets or anything else); with
/// `rejected`, the rejected-events directory too.
fn is_store_entry(name: &str, rejected: bool) -> bool {
    matches!(name, "db" | "conf" | "blobs" | super::MARKER_FILE)
        || name.starts_with("snap.")
        || (rejected && name == "rejected")
}

/// What a new store replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replace {
    /// The store's files (an import: the rejected events stay).
    Store,
    /// The store's files and `rejected/` (a rebuild re-wrote them).
    WithRejected,
    /// Both, keeping the old ones in this subdirectory for inspection.
    KeepingOld(String),
}

/// A directory inside the store directory where a new store is prepared.
pub(crate) fn staging_dir(path: &Path, purpose: &str) -> PathBuf {
    path.join(format!(".{purpose}.staging"))
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_journal(
    path: &Path,
    phase: u8,
    staged: &str,
    old: &str,
    rejected: bool,
) -> std::io::Result<()> {
    let tmp = path.join(format!("{JOURNAL}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{phase}\n{staged}\n{old}\n{}", u8::from(rejected))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path.join(JOURNAL))?;
    fsync_dir(path)
}

/// Moves every store entry of `from` into `to` (which exists).
fn move_entries(from: &Path, to: &Path, rejected: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if is_store_entry(&name.to_string_lossy(), rejected) {
            std::fs::rename(entry.path(), to.join(&name))?;
        }
    }
    fsync_dir(from)?;
    fsync_dir(to)
}

/// Old files moved out during a swap that keeps nothing.
const DISCARDED: &str = ".old.swapping";

/// Puts the store staged in `staged` (a subdirectory of `path`, closed) in
/// place of the store files of `path` (closed, or none).
pub(crate) fn install(path: &Path, staged: &Path, replace: Replace) -> std::io::Result<()> {
    let staged_name = staged
        .strip_prefix(path)
        .ok()
        .and_then(|p| p.to_str())
        .filter(|p| !p.contains('/') && !p.is_empty())
        .ok_or_else(|| {
            std::io::Error::other("the staged store must be directly inside the store directory")
        })?
        .to_string();
    let (old, rejected) = match replace {
        Replace::Store => (DISCARDED.to_string(), false),
        Replace::WithRejected => (DISCARDED.to_string(), true),
        Replace::KeepingOld(dir) => (dir, true),
    };
    write_journal(path, 1, &staged_name, &old, rejected)?;
    resume(path)
}

/// Finishes a swap that a crash interrupted; whether there was one.
pub(crate) fn finish_interrupted(path: &Path) -> std::io::Result<bool> {
    if !path.join(JOURNAL).exists() {
        return Ok(false);
    }
    tracing::warn!(store = %path.display(), "finishing a store replacement that was interrupted");
    resume(path)?;
    Ok(true)
}

fn resume(path: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path.join(JOURNAL))?;
    let lines: Vec<&str> = text.lines().collect();
    let [phase, staged, old, rejected] = lines[..] else {
        return Err(std::io::Error::other(format!(
            "{}: unreadable journal {JOURNAL}",
            path.display()
        )));
    };
    let rejected = rejected == "1";
    let (staged_dir, old_dir) = (path.join(staged), path.join(old));
    if phase == "1" {
        // Old files move out; none of the staged ones has moved in yet.
        std::fs::create_dir_all(&old_dir)?;
        move_entries(path, &old_dir, rejected)?;
        write_journal(path, 2, staged, old, rejected)?;
    }
    // Phase 2: the store directory holds no old file, only staged ones moving in.
    if staged_dir.exists() {
        move_entries(&staged_dir, path, rejected)?;
        std::fs::remove_dir_all(&staged_dir)?;
    }
    std::fs::remove_file(path.join(JOURNAL))?;
    fsync_dir(path)?;
    if old == DISCARDED {
        std::fs::remove_dir_all(&old_dir)?;
    }
    Ok(())
}

/// Removes a staging directory left by an import or rebuild that did not finish.
pub(crate) fn discard(staged: &Path) {
    if staged.exists() {
        if let Err(e) = std::fs::remove_dir_all(staged) {
            tracing::warn!(dir = %staged.display(), error = %e, "cannot remove a staging directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Commit, SourceState, Store};

    fn store_with(path: &Path, accepted: u64) {
        let mut s = Store::open(path, 1 << 20).unwrap();
        s.record_batch_once(&Commit {
            sources: vec![(
                "x".into(),
                SourceState {
                    accepted,
                    ..Default::default()
                },
            )],
            ..Commit::default()
        })
        .unwrap();
        s.flush().unwrap();
    }

    fn accepted(path: &Path) -> u64 {
        Store::open(path, 1 << 20).unwrap().sources().unwrap()["x"].accepted
    }

    #[test]
    fn a_staged_store_replaces_the_files_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        store_with(path, 1);
        std::fs::create_dir_all(path.join("rejected")).unwrap();
        std::fs::write(path.join("rejected/x.jsonl"), "kept\n").unwrap();
        let staged = staging_dir(path, "import");
        store_with(&staged, 2);
        install(path, &staged, Replace::Store).unwrap();
        assert_eq!(accepted(path), 2);
        assert!(!staged.exists());
        assert_eq!(
            std::fs::read_to_string(path.join("rejected/x.jsonl")).unwrap(),
            "kept\n"
        );
        let left: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn the_old_files_can_be_kept_for_inspection() {
        let dir = tempfile::tempdir().unwrap();
        store_with(dir.path(), 1);
        let staged = staging_dir(dir.path(), "rebuild");
        store_with(&staged, 2);
        install(dir.path(), &staged, Replace::KeepingOld("damaged.1".into())).unwrap();
        assert_eq!(accepted(dir.path()), 2);
        assert_eq!(accepted(&dir.path().join("damaged.1")), 1);
    }

    #[test]
    fn a_swap_cut_at_any_step_is_finished_by_the_next_open() {
        // Phase 1 journal written, nothing moved; then phase 2 with half the
        // staged files moved in: both end with the staged store in place.
        for moved_in in [None, Some(1usize)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path();
            store_with(path, 1);
            let staged = staging_dir(path, "import");
            store_with(&staged, 2);
            match moved_in {
                None => write_journal(path, 1, ".import.staging", DISCARDED, false).unwrap(),
                Some(n) => {
                    std::fs::create_dir_all(path.join(DISCARDED)).unwrap();
                    move_entries(path, &path.join(DISCARDED), false).unwrap();
                    write_journal(path, 2, ".import.staging", DISCARDED, false).unwrap();
                    let mut names: Vec<_> = std::fs::read_dir(&staged)
                        .unwrap()
                        .map(|e| e.unwrap().file_name())
                        .collect();
                    names.sort();
                    for name in names.iter().take(n) {
                        std::fs::rename(staged.join(name), path.join(name)).unwrap();
                    }
                }
            }
            assert_eq!(accepted(path), 2, "cut at {moved_in:?}");
            assert!(!path.join(JOURNAL).exists());
            assert!(!path.join(".old.swapping").exists());
        }
    }
}
