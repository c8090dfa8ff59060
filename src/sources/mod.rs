//! Sources: where events come from. Each source runs in its own thread, reads
//! bytes, parses them into events and sends batches (with its new position)
//! to the single writer in `ingest`. Every kind starts through [`run`] with a
//! [`SourceContext`]; what a kind reads is its `config::Input`.

pub(crate) mod edxml;
pub(crate) mod file;
pub mod http;
pub(crate) mod merge;
pub(crate) mod pdf;
pub(crate) mod settled;
pub(crate) mod tail;

use crate::config::Config;
use crate::store::Store;
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
pub(crate) struct Rejected {
    pub(crate) file: String,
    pub(crate) line: u64,
    pub(crate) reason: String,
    pub(crate) raw: String,
}

/// One parsed record.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Event(Event),
    Invalid(Rejected),
}

/// Records read by one source, with the source position after them.
#[derive(Debug)]
pub(crate) struct SourceBatch {
    pub(crate) source: usize,
    pub(crate) seq: u64,
    pub(crate) items: Vec<Item>,
    pub(crate) files: Vec<crate::store::FilePos>,
    pub(crate) retired: Vec<crate::store::FilePos>,
    /// An HTTP feed source's position after this batch (`None` for files).
    pub(crate) feed: Option<crate::store::FeedPos>,
}

/// What a reader saw when it last found nothing more to read: while the input
/// still looks like this, the source is caught up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Nothing seen yet (and always for an HTTP feed, whose idleness is its
    /// last empty page).
    #[default]
    Nothing,
    /// File sources: every followed file and its length when read to its end.
    Files(Vec<tail::FileSeen>),
    /// edXML and PDF sources: a summary of the files listed.
    Messages(settled::Listing),
}

impl Observed {
    /// The files seen (none before a file source first goes idle).
    pub(crate) fn files(&self) -> &[tail::FileSeen] {
        match self {
            Observed::Files(seen) => seen,
            Observed::Nothing | Observed::Messages(_) => &[],
        }
    }

    /// The message files seen, if listed.
    pub(crate) fn messages(&self) -> Option<&settled::Listing> {
        match self {
            Observed::Messages(seen) => Some(seen),
            Observed::Nothing | Observed::Files(_) => None,
        }
    }
}

/// Live progress of a source, for `/api/v1/status` and metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Durable state as of the last commit.
    pub(crate) state: SourceState,
    /// Sequence number of the last batch sent to the writer.
    pub(crate) sent_seq: u64,
    /// Sequence number of the last batch committed.
    pub(crate) committed_seq: u64,
    /// Set when the reader found nothing more to read after batch `n`.
    pub(crate) idle_after: Option<u64>,
    /// What the reader saw when it went idle.
    pub(crate) observed: Observed,
    pub(crate) up: bool,
    pub(crate) last_error: Option<(String, i64)>,
    /// Kind of the last error of an HTTP feed source (`timeout`, `server_error`…).
    pub(crate) last_error_kind: Option<&'static str>,
}

/// A source's configuration and live progress, shared between its reader, the writer and the API.
#[derive(Debug)]
pub(crate) struct SourceHandle {
    pub(crate) config: SourceConfig,
    pub(crate) progress: Mutex<Progress>,
    /// Poll and error metrics of an HTTP feed source.
    pub(crate) feed_metrics: Option<http::FeedMetrics>,
    /// Verified signatures committed since the start, by result (`valid`
    /// or a reason code): `docflow_signature_verdicts_total`.
    pub(crate) verdicts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl SourceHandle {
    pub(crate) fn new(config: SourceConfig, state: SourceState) -> SourceHandle {
        let feed_metrics = match &config.input {
            Input::HttpFeed(_) => Some(http::FeedMetrics::new(&config.name)),
            Input::Files(_) | Input::EdxmlDir(_) | Input::PdfDir(_) => None,
        };
        SourceHandle {
            feed_metrics,
            verdicts: Mutex::default(),
            config,
            progress: Mutex::new(Progress {
                state,
                up: true,
                ..Progress::default()
            }),
        }
    }

    pub(crate) fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a committed verdict (after the commit, as every metric).
    pub(crate) fn count_verdict(&self, result: &'static str) {
        let mut v = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        *v.entry(result).or_default() += 1;
    }

    /// Whether this source verifies PDF signatures (its own files or edXML attachments).
    pub(crate) fn verifies_pdfs(&self) -> bool {
        match &self.config.input {
            Input::PdfDir(_) => true,
            Input::EdxmlDir(e) => e.verify_attachments.is_some(),
            Input::Files(_) | Input::HttpFeed(_) => false,
        }
    }

    pub(crate) fn committed_state(&self) -> SourceState {
        self.progress().state.clone()
    }

    /// Called by the writer once batch `seq` is durable.
    pub(crate) fn committed(&self, state: SourceState, seq: u64) {
        let mut p = self.progress();
        p.state = state;
        p.committed_seq = p.committed_seq.max(seq);
    }

    /// Whether everything available has been read and committed.
    pub(crate) fn caught_up(&self) -> bool {
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
            Input::EdxmlDir(e) => {
                settled::listing(&e.path, edxml::is_message_name).as_ref() == observed.messages()
            }
            Input::PdfDir(p) => {
                settled::listing(&p.path, pdf::is_pdf_name).as_ref() == observed.messages()
            }
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
pub(crate) struct SourceContext {
    /// The source's index in the config, and in the writer's queues.
    pub(crate) index: usize,
    pub(crate) handle: Arc<SourceHandle>,
    /// The agency's zone, for local times.
    pub(crate) timezone: Tz,
    /// `agency.code`, which tells an edXML message's direction.
    pub(crate) agency_code: String,
    pub(crate) queue: Arc<MergeQueue>,
    pub(crate) stop: CancellationToken,
    /// Wakes a reader waiting for file changes (shutdown).
    pub(crate) waker: Arc<Waker>,
    /// The message files an edXML source has already read, from the store
    /// (empty for the other kinds).
    pub(crate) files_read: HashSet<String>,
    /// `storage.path`: edXML PDF attachments are spooled under it to be verified.
    pub(crate) state_dir: std::path::PathBuf,
}

/// Runs the reader of one source until `ctx.stop` fires, then closes its queue.
pub(crate) fn run(mut ctx: SourceContext) {
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
        Input::PdfDir(input) => {
            let files_read = std::mem::take(&mut ctx.files_read);
            pdf::run(&ctx, input, files_read)
        }
    }
}

/// The reader threads of the sources, one per source.
pub(crate) struct Readers {
    threads: Vec<std::thread::JoinHandle<()>>,
    wakers: Vec<Arc<Waker>>,
}

impl Readers {
    /// Starts a reader per source (file tailer, HTTP feed or edXML
    /// directory), sending to `queue` until `stop`.
    pub(crate) fn spawn(
        handles: &[Arc<SourceHandle>],
        config: &Config,
        store: &Store,
        queue: &Arc<MergeQueue>,
        stop: &CancellationToken,
    ) -> anyhow::Result<Readers> {
        let mut readers = Readers {
            threads: Vec::new(),
            wakers: Vec::new(),
        };
        for (index, handle) in handles.iter().enumerate() {
            let waker = Arc::new(Waker::default());
            readers.wakers.push(waker.clone());
            let ctx = SourceContext {
                index,
                handle: handle.clone(),
                timezone: config.agency.timezone,
                agency_code: config.agency.code.clone(),
                queue: queue.clone(),
                stop: stop.clone(),
                waker,
                files_read: store.edxml_files(&handle.config.name)?,
                state_dir: config.storage.path.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("source-{}", handle.config.name))
                .spawn(move || crate::sources::run(ctx))?;
            readers.threads.push(thread);
        }
        Ok(readers)
    }

    /// Wakes readers waiting for file changes (their stop token must be
    /// cancelled first) and waits for them to end.
    pub(crate) fn wake_and_join(self) {
        for w in &self.wakers {
            w.wake();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
