//! Sources: where events come from. Each source runs in its own thread, reads
//! bytes, parses them into events and sends batches (with its new position)
//! to the single writer in `ingest`.

pub mod edxml;
pub mod file;
pub mod http;
pub mod merge;
pub mod tail;

use std::sync::Mutex;

use crate::config::SourceConfig;
use crate::model::Event;
use crate::store::SourceState;

/// An event that failed validation, kept with its position (SPEC §3.4).
#[derive(Debug, Clone)]
pub struct Rejected {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// One parsed record.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Event),
    Invalid(Rejected),
}

/// Records read by one source, with the source position after them.
#[derive(Debug)]
pub struct SourceBatch {
    pub source: usize,
    pub seq: u64,
    pub items: Vec<Item>,
    pub files: Vec<crate::store::FilePos>,
    pub retired: Vec<crate::store::FilePos>,
    /// An HTTP feed source's position after this batch (`None` for files).
    pub feed: Option<crate::store::FeedPos>,
}

/// Live progress of a source, for `/api/v1/status` and metrics.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Durable state as of the last commit.
    pub state: SourceState,
    /// Sequence number of the last batch sent to the writer.
    pub sent_seq: u64,
    /// Sequence number of the last batch committed.
    pub committed_seq: u64,
    /// Set when the reader found nothing more to read after batch `n`.
    pub idle_after: Option<u64>,
    /// Files and sizes the reader saw when it went idle.
    pub observed: Vec<(u64, u64, u64)>,
    pub up: bool,
    pub last_error: Option<(String, i64)>,
    /// Kind of the last error of an HTTP feed source (`timeout`, `server_error`…).
    pub last_error_kind: Option<&'static str>,
}

/// A source's configuration and live progress, shared between its reader, the writer and the API.
#[derive(Debug)]
pub struct SourceHandle {
    pub config: SourceConfig,
    pub progress: Mutex<Progress>,
    /// Poll and error metrics of an HTTP feed source.
    pub feed_metrics: Option<http::FeedMetrics>,
}

impl SourceHandle {
    pub fn new(config: SourceConfig, state: SourceState) -> SourceHandle {
        let feed_metrics = config
            .http
            .as_ref()
            .map(|_| http::FeedMetrics::new(&config.name));
        SourceHandle {
            feed_metrics,
            config,
            progress: Mutex::new(Progress {
                state,
                up: true,
                ..Progress::default()
            }),
        }
    }

    pub fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn committed_state(&self) -> SourceState {
        self.progress().state.clone()
    }

    /// Called by the writer once batch `seq` is durable.
    pub fn committed(&self, state: SourceState, seq: u64) {
        let mut p = self.progress();
        p.state = state;
        p.committed_seq = p.committed_seq.max(seq);
    }

    /// Whether everything available has been read and committed.
    pub fn caught_up(&self) -> bool {
        let p = self.progress();
        match p.idle_after {
            Some(seq) if p.committed_seq >= seq => {}
            _ => return false,
        }
        if self.config.http.is_some() {
            // The feed's last answer was an empty page (or no further cursor).
            return true;
        }
        let observed = p.observed.clone();
        drop(p);
        if self.config.format == crate::config::Format::Edxml {
            return edxml::fingerprint(&self.config.path).as_ref() == observed.first();
        }
        file::unchanged_since(&self.config.path, &observed)
    }
}
