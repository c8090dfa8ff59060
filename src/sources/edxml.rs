//! edXML directory sources: a thread that lists the directory (notify plus a
//! rescan every `poll_interval`), waits until a new file has stopped changing
//! for `settle`, reads each message once and sends it to the writer. The
//! files read are committed with the batch, so a restart never reads one twice.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Item, Observed, Rejected, SourceBatch, SourceContext};
use crate::config::EdxmlInput;
use crate::parse::edxml::{read_message, EdxmlError};
use crate::store::FilePos;

/// Files per batch sent to the writer.
const BATCH_FILES: usize = 64;
/// Read buffer: memory per message read does not depend on the file's size.
const READ_BUFFER: usize = 64 * 1024;

/// Whether a file name is an edXML message to read (not a temporary or hidden file).
pub(crate) fn is_message_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && (lower.ends_with(".edxml") || lower.ends_with(".xml"))
}

/// A file as listed: path, size, mtime (ns), device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    path: String,
    len: u64,
    mtime_ns: i128,
    dev: u64,
    ino: u64,
}

fn list(pattern: &str) -> Result<Vec<Listed>, String> {
    let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for path in paths.filter_map(Result::ok) {
        if !is_message_name(&path) {
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

/// A cheap summary of the message files a pattern names: what an idle edXML
/// source compares with to tell that nothing changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listing {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    /// Latest mtime, in nanoseconds.
    pub(crate) latest_mtime: u64,
}

/// The [`Listing`] of what `pattern` names now.
pub(crate) fn listing(pattern: &str) -> Option<Listing> {
    Some(summarize(&list(pattern).ok()?))
}

fn summarize(files: &[Listed]) -> Listing {
    let latest = files.iter().map(|f| f.mtime_ns).max().unwrap_or(0);
    Listing {
        count: files.len() as u64,
        bytes: files.iter().map(|f| f.len).sum(),
        latest_mtime: latest as u64,
    }
}

/// Runs one edXML source until `ctx.stop` fires.
pub(super) fn run(ctx: &SourceContext, input: &EdxmlInput, files_read: HashSet<String>) {
    let mut source = EdxmlSource {
        ctx,
        input,
        done: files_read,
        settling: HashMap::new(),
        unreadable: HashSet::new(),
        seq: 0,
    };
    source.follow();
}

struct EdxmlSource<'a> {
    ctx: &'a SourceContext,
    input: &'a EdxmlInput,
    /// Paths already read (committed, or sent to the writer).
    done: HashSet<String>,
    /// New files waiting to stop changing: the listing and when it was first seen so.
    settling: HashMap<String, (Listed, Instant)>,
    /// Files that could not be opened, logged once.
    unreadable: HashSet<String>,
    seq: u64,
}

impl EdxmlSource<'_> {
    fn follow(&mut self) {
        let (ctx, input) = (self.ctx, self.input);
        let (name, cancel, waker) = (&ctx.handle.config.name, &ctx.stop, &ctx.waker);
        let poll_interval = ctx.handle.config.poll_interval;
        info!(source = %name, path = %input.path, known = self.done.len(), "watching edXML files");
        let mut watcher = None;
        let mut failing = false;
        while !cancel.is_cancelled() {
            if watcher.is_none() {
                watcher = super::file::watch(&input.path, waker);
            }
            let listed = match list(&input.path) {
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
                        warn!(source = %name, error = %e, "cannot list edXML files");
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
            let ready = self.settled(listed, input.settle);
            for chunk in ready.chunks(BATCH_FILES) {
                let mut items = Vec::with_capacity(chunk.len());
                let mut files = Vec::with_capacity(chunk.len());
                for f in chunk {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if let Some(item) = self.read(f) {
                        items.push(item);
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
                if items.is_empty() {
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
                poll_interval
                    .min(input.settle / 4)
                    .max(Duration::from_millis(10))
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
                    debug!(path = %f.path, len = f.len, "edXML file new or still changing");
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

    /// Reads one message; `None` when the file cannot be read now (retried later).
    fn read(&mut self, f: &Listed) -> Option<Item> {
        let name = &self.ctx.handle.config.name;
        let max = self.input.max_file_size;
        let reject = |reason: String| {
            Item::Invalid(Rejected {
                file: f.path.clone(),
                line: 0,
                reason,
                raw: String::new(),
            })
        };
        if f.len > max {
            // Never opened: rejected (once, like any bad file) on its listed size.
            return Some(reject(
                EdxmlError::FileTooLarge { size: f.len, max }.to_string(),
            ));
        }
        let file = match std::fs::File::open(&f.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                if self.unreadable.insert(f.path.clone()) {
                    warn!(source = %name, path = %f.path, error = %e, "cannot open edXML file; will retry");
                }
                return None;
            }
        };
        let parsed = read_message(BufReader::with_capacity(READ_BUFFER, file), max);
        // A file that changed while it was read is read again once it settles.
        match std::fs::metadata(&f.path) {
            Ok(m) if m.len() == f.len && m.ino() == f.ino => {}
            _ => {
                debug!(source = %name, path = %f.path, "edXML file changed while read; waiting for it to settle");
                return None;
            }
        }
        self.unreadable.remove(&f.path);
        Some(match parsed {
            Err(e) => reject(e.to_string()),
            Ok(msg) => match msg.to_event(&self.ctx.agency_code, self.ctx.timezone) {
                Ok(ev) => Item::Event(ev),
                Err(reason) => reject(reason),
            },
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_hidden_files_are_not_messages() {
        assert!(is_message_name(Path::new("/d/a.edxml")));
        assert!(is_message_name(Path::new("/d/A.XML")));
        assert!(!is_message_name(Path::new("/d/a.edxml.tmp")));
        assert!(!is_message_name(Path::new("/d/.a.edxml")));
        assert!(!is_message_name(Path::new("/d/a.jsonl")));
    }
}
