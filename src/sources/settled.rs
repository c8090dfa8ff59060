//! Directories of whole files (edXML messages, signed PDFs): a thread that
//! lists the glob (notify plus a rescan every `poll_interval`), waits until a
//! new file has stopped changing for `settle`, reads each file once and sends
//! what it holds to the writer. The files read are committed with the batch,
//! so a restart never reads one twice.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Item, Observed, SourceBatch, SourceContext};
use crate::store::FilePos;

/// Files per batch sent to the writer.
const BATCH_FILES: usize = 64;

/// What a directory source does with one settled file.
pub(super) trait WholeFiles {
    /// What the source reads, for logs ("edXML", "PDF").
    const WHAT: &'static str;
    /// Whether a listed path is a file to read (not a temporary or hidden file).
    fn wants(path: &Path) -> bool;
    /// The items of one file; `None` when it cannot be read now (retried later).
    fn read(&mut self, ctx: &SourceContext, f: &Listed) -> Option<Vec<Item>>;
}

/// A file as listed: path, size, mtime (ns), device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    pub(super) path: String,
    pub(super) len: u64,
    pub(super) mtime_ns: i128,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

impl Listed {
    /// Whether the file still has the size and inode it was listed with
    /// (a file that changed while it was read is read again once it settles).
    pub(super) fn unchanged(&self) -> bool {
        matches!(std::fs::metadata(&self.path), Ok(m) if m.len() == self.len && m.ino() == self.ino)
    }
}

fn list(pattern: &str, wants: fn(&Path) -> bool) -> Result<Vec<Listed>, String> {
    let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for path in paths.filter_map(Result::ok) {
        if !wants(&path) {
            continue;
        }
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        if !m.is_file() {
            continue;
        }
        out.push(Listed {
            path: path.to_string_lossy().into_owned(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            dev: m.dev(),
            ino: m.ino(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A cheap summary of the files a pattern names: what an idle directory
/// source compares with to tell that nothing changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listing {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    /// Latest mtime, in nanoseconds.
    pub(crate) latest_mtime: u64,
}

/// The [`Listing`] of what `pattern` names now, of the files `wants` accepts.
pub(crate) fn listing(pattern: &str, wants: fn(&Path) -> bool) -> Option<Listing> {
    Some(summarize(&list(pattern, wants).ok()?))
}

fn summarize(files: &[Listed]) -> Listing {
    let latest = files.iter().map(|f| f.mtime_ns).max().unwrap_or(0);
    Listing {
        count: files.len() as u64,
        bytes: files.iter().map(|f| f.len).sum(),
        latest_mtime: latest as u64,
    }
}

/// Runs one directory source until `ctx.stop` fires.
pub(super) fn run<R: WholeFiles>(
    ctx: &SourceContext,
    pattern: &str,
    settle: Duration,
    files_read: HashSet<String>,
    reader: R,
) {
    let mut source = Settled {
        ctx,
        pattern,
        settle,
        reader,
        done: files_read,
        settling: HashMap::new(),
        seq: 0,
    };
    source.follow();
}

struct Settled<'a, R> {
    ctx: &'a SourceContext,
    pattern: &'a str,
    settle: Duration,
    reader: R,
    /// Paths already read (committed, or sent to the writer).
    done: HashSet<String>,
    /// New files waiting to stop changing: the listing and when it was first seen so.
    settling: HashMap<String, (Listed, Instant)>,
    seq: u64,
}

impl<R: WholeFiles> Settled<'_, R> {
    fn follow(&mut self) {
        let (ctx, pattern, settle) = (self.ctx, self.pattern, self.settle);
        let (name, cancel, waker) = (&ctx.handle.config.name, &ctx.stop, &ctx.waker);
        let poll_interval = ctx.handle.config.poll_interval;
        info!(source = %name, path = %pattern, known = self.done.len(), what = R::WHAT, "watching files");
        let mut watcher = None;
        let mut failing = false;
        while !cancel.is_cancelled() {
            if watcher.is_none() {
                watcher = super::file::watch(pattern, waker);
            }
            let listed = match list(pattern, R::wants) {
                Ok(l) => {
                    if failing {
                        info!(source = %name, "source readable again");
                        failing = false;
                    }
                    ctx.handle.progress().up = true;
                    l
                }
                Err(e) => {
                    if !failing {
                        warn!(source = %name, error = %e, what = R::WHAT, "cannot list files");
                        failing = true;
                    }
                    let mut p = ctx.handle.progress();
                    p.up = false;
                    p.last_error = Some((e, chrono::Utc::now().timestamp()));
                    waker.wait(poll_interval);
                    continue;
                }
            };
            // What this pass saw: the source is caught up while the files still look so.
            let seen = summarize(&listed);
            let ready = self.settled(listed, settle);
            for chunk in ready.chunks(BATCH_FILES) {
                let mut items = Vec::with_capacity(chunk.len());
                let mut files = Vec::with_capacity(chunk.len());
                for f in chunk {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if let Some(read) = self.reader.read(ctx, f) {
                        items.extend(read);
                        files.push(FilePos {
                            path: f.path.clone(),
                            dev: f.dev,
                            ino: f.ino,
                            offset: f.len,
                            line: 1,
                            ..FilePos::default()
                        });
                    }
                }
                if files.is_empty() {
                    continue;
                }
                for f in &files {
                    self.done.insert(f.path.clone());
                }
                if !self.send(items, files) || cancel.is_cancelled() {
                    return;
                }
            }
            let wait = if self.settling.is_empty() {
                let mut p = ctx.handle.progress();
                p.idle_after = Some(self.seq);
                p.observed = Observed::Messages(seen);
                poll_interval
            } else {
                // Check again soon: a file is waiting to stop changing.
                poll_interval.min(settle / 4).max(Duration::from_millis(10))
            };
            waker.wait(wait);
        }
    }

    /// New files that have not changed for `settle`, in name order.
    fn settled(&mut self, listed: Vec<Listed>, settle: Duration) -> Vec<Listed> {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut present = HashSet::new();
        for f in listed {
            if self.done.contains(&f.path) {
                continue;
            }
            present.insert(f.path.clone());
            match self.settling.get(&f.path) {
                Some((seen, since)) if *seen == f => {
                    if now.duration_since(*since) >= settle {
                        ready.push(f);
                    }
                }
                _ => {
                    debug!(path = %f.path, len = f.len, what = R::WHAT, "file new or still changing");
                    self.settling.insert(f.path.clone(), (f, now));
                }
            }
        }
        self.settling.retain(|p, _| present.contains(p));
        if !ready.is_empty() {
            // Idle state is stale as soon as there is something to read.
            self.ctx.handle.progress().idle_after = None;
        }
        for f in &ready {
            self.settling.remove(&f.path);
        }
        ready
    }

    fn send(&mut self, items: Vec<Item>, files: Vec<FilePos>) -> bool {
        self.seq += 1;
        {
            let mut p = self.ctx.handle.progress();
            p.sent_seq = self.seq;
            p.idle_after = None;
        }
        self.ctx.queue.push(
            SourceBatch {
                source: self.ctx.index,
                seq: self.seq,
                items,
                files,
                retired: Vec::new(),
                feed: None,
            },
            || self.ctx.stop.is_cancelled(),
        )
    }
}
