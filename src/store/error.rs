//! The store's errors: each says whether reading or writing failed, names
//! the store where it can, and tells damage from a store that is busy, too
//! new or out of space (callers match on a variant, never on text).

use std::path::PathBuf;

use super::codec::DecodeError;
use super::STORE_VERSION;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another process (is docflowd already running?)")]
    Locked { path: PathBuf },
    #[error("cannot open store {path}: {source}. If it is damaged, rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Open { path: PathBuf, source: SledError },
    #[error("the store's filesystem is full ({0})")]
    DiskFull(SledError),
    #[error("store {path} has layout version {found}, this docflowd understands up to {STORE_VERSION}: upgrade docflowd, or rebuild the store from the logs with this one: docflowd rebuild -c CONFIG")]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("store {path} holds data but no docflow version key: it is not a docflow store or it is damaged; rebuild it from the logs: docflowd rebuild -c CONFIG")]
    NotDocflow { path: PathBuf },
    #[error("store {path} is damaged: {what}. Refusing to serve numbers from it; rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Damaged { path: PathBuf, what: String },
    #[error("store {path} cannot be read ({what}); rebuild it from the logs: docflowd rebuild -c CONFIG")]
    Unreadable { path: PathBuf, what: String },
    #[error("migrating store {path} from layout version {from}: {source}")]
    Migration {
        path: PathBuf,
        from: u32,
        source: Box<StoreError>,
    },
    #[error("reading the store failed: {0}")]
    Read(SledError),
    #[error("writing the store failed: {0}")]
    Write(SledError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("rejected-events file: {0}")]
    Rejected(std::io::Error),
}

/// An error of sled, kept opaque: the rest of the crate matches on
/// [`StoreError`]'s variants, never on sled's.
#[derive(Debug)]
pub struct SledError(sled::Error);

impl std::fmt::Display for SledError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SledError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn is_full(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull)
}

/// Any read of sled: a full disk, or a read that failed.
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        if is_full(&e) {
            StoreError::DiskFull(SledError(e))
        } else {
            StoreError::Read(SledError(e))
        }
    }
}

impl StoreError {
    /// A write of sled that failed.
    pub(crate) fn write(e: sled::Error) -> StoreError {
        if is_full(&e) {
            StoreError::DiskFull(SledError(e))
        } else {
            StoreError::Write(SledError(e))
        }
    }

    /// Opening sled at `path` failed.
    pub(crate) fn open(path: &std::path::Path, e: sled::Error) -> StoreError {
        if is_full(&e) {
            StoreError::DiskFull(SledError(e))
        } else {
            StoreError::Open {
                path: path.to_path_buf(),
                source: SledError(e),
            }
        }
    }

    /// Whether the error says the store's contents cannot be trusted (as
    /// opposed to a store that is busy, too new, or out of space).
    pub(crate) fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged { .. }
            | StoreError::Unreadable { .. }
            | StoreError::NotDocflow { .. }
            | StoreError::Decode(_)
            | StoreError::Read(_) => true,
            StoreError::Open { source, .. } => !matches!(source.0, sled::Error::Io(_)),
            StoreError::Migration { source, .. } => source.is_damage(),
            _ => false,
        }
    }

    /// What is wrong, without the store's path and the remedy (for messages
    /// that give those themselves).
    pub(crate) fn detail(&self) -> String {
        match self {
            StoreError::Damaged { what, .. } | StoreError::Unreadable { what, .. } => what.clone(),
            e => e.to_string(),
        }
    }

    /// Whether the error is the filesystem refusing to grow.
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull(_) => true,
            StoreError::Migration { source, .. } => source.is_disk_full(),
            _ => false,
        }
    }

    /// Whether writing failed (the disk, the permissions): sled 0.34 then
    /// refuses every later write of this database.
    pub(crate) fn is_write_failure(&self) -> bool {
        matches!(self, StoreError::Write(_) | StoreError::DiskFull(_))
    }
}
