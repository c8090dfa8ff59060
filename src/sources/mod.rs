//! Sources: where events come from. Each source runs in its own thread, reads
//! bytes, parses them into events and sends batches (with its new position)
//! to the single writer in `ingest`. Every kind starts through [`run`] with a
//! [`SourceContext`]; what a kind reads is its `config::Input`.

pub mod edxml;
pub mod file;
pub mod http;
pub mod merge;
pub mod tail;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::config::{Input, SourceConfig};
use crate::model::Event;
use crate::parse::{Mapping, ParseSettings, RecordFormat};
use crate::store::SourceState;
use file::Waker;
use merge::MergeQueue;

/// An event that failed validation, kept with its position (README "Input": bad input).
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

/// What a reader saw when it last found nothing more to read: while the input
/// still looks like this, the source is caught up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Observed {
    /// Nothing seen yet (and always for an HTTP feed, whose idleness is its
    /// last empty page).
    #[default]
    Nothing,
    /// File sources: every followed file and its length when read to its end.
    Files(Vec<tail::FileSeen>),
    /// edXML sources: a summary of the message files listed.
    Messages(edxml::Listing),
}

impl Observed {
    /// The files seen (none before a file source first goes idle).
    pub fn files(&self) -> &[tail::FileSeen] {
        match self {
            Observed::Files(seen) => seen,
            Observed::Nothing | Observed::Messages(_) => &[],
        }
    }

    /// The message files seen, if listed.
    pub fn messages(&self) -> Option<&edxml::Listing> {
        match self {
            Observed::Messages(seen) => Some(seen),
            Observed::Nothing | Observed::Files(_) => None,
        }
    }
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
    /// What the reader saw when it went idle.
    pub observed: Observed,
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
        let feed_metrics = match &config.input {
            Input::HttpFeed(_) => Some(http::FeedMetrics::new(&config.name)),
            Input::Files(_) | Input::EdxmlDir(_) => None,
        };
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
        let observed = p.observed.clone();
        drop(p);
        match &self.config.input {
            // The feed's last answer was an empty page (or no further cursor).
            Input::HttpFeed(_) => true,
            Input::Files(f) => file::unchanged_since(&f.path, observed.files()),
            Input::EdxmlDir(e) => edxml::listing(&e.path).as_ref() == observed.messages(),
        }
    }

    /// How to parse this source's records, for the file and HTTP readers.
    fn parse_settings<'a>(
        &self,
        format: RecordFormat,
        mapping: &'a Mapping,
        timezone: Tz,
    ) -> ParseSettings<'a> {
        ParseSettings {
            kind: self.config.kind,
            format,
            mapping,
            timezone,
        }
    }
}

/// What a reader needs besides its source's config: where it stands, where
/// to send, when to stop.
pub struct SourceContext {
    /// The source's index in the config, and in the writer's queues.
    pub index: usize,
    pub handle: Arc<SourceHandle>,
    /// The agency's zone, for local times.
    pub timezone: Tz,
    /// `agency.code`, which tells an edXML message's direction.
    pub agency_code: String,
    pub queue: Arc<MergeQueue>,
    pub stop: CancellationToken,
    /// Wakes a reader waiting for file changes (shutdown).
    pub waker: Arc<Waker>,
    /// The message files an edXML source has already read, from the store
    /// (empty for the other kinds).
    pub files_read: HashSet<String>,
}

/// Runs the reader of one source until `ctx.stop` fires, then closes its queue.
pub fn run(mut ctx: SourceContext) {
    let _close = ctx.queue.close_on_drop(ctx.index);
    let handle = ctx.handle.clone();
    match &handle.config.input {
        Input::Files(input) => file::run(&ctx, input),
        Input::HttpFeed(input) => http::run(&ctx, input),
        Input::EdxmlDir(input) => {
            // Moved, not copied: an archive may hold many thousands of paths.
            let files_read = std::mem::take(&mut ctx.files_read);
            edxml::run(&ctx, input, files_read)
        }
    }
}
