//! File sources (README "Input": files): a thread per source that scans its glob, tails
//! the files, parses complete records and sends batches to the writer. Woken
//! by `notify`, with a rescan every `poll_interval` as the fallback.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::Watcher;
use tracing::{info, warn};

use super::tail::{FileSeen, Framing, Record, TailEvent, Tailer};
use super::{Item, Observed, Rejected, SourceBatch, SourceContext};
use crate::config::FileInput;
use crate::parse::csv::CsvHeader;
use crate::parse::{RecordFormat, RecordParser};

/// Records per batch sent to the writer.
const BATCH_RECORDS: usize = 1024;

/// Wakes a sleeping source thread (file change, shutdown).
#[derive(Default)]
pub(crate) struct Waker {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Waker {
    pub(crate) fn wake(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Sleeps until woken or `timeout` passes.
    pub(crate) fn wait(&self, timeout: Duration) {
        let guard = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |woken| !*woken)
            .unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }
}

/// The directory to watch for a glob: its longest literal prefix.
fn watch_root(pattern: &str) -> (PathBuf, notify::RecursiveMode) {
    let path = Path::new(pattern);
    let mut root = PathBuf::new();
    let mut recursive = false;
    let components: Vec<_> = path.components().collect();
    for (i, c) in components.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            recursive = i + 1 < components.len();
            break;
        }
        if i + 1 == components.len() {
            break; // the file name itself
        }
        root.push(c.as_os_str());
    }
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    (root, mode)
}

/// Whether every file `pattern` names is followed and still has the length it
/// had when it was last read to its end.
pub(crate) fn unchanged_since(pattern: &str, observed: &[FileSeen]) -> bool {
    let Ok(paths) = glob::glob(pattern) else {
        return false;
    };
    for path in paths.filter_map(Result::ok) {
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        let seen = FileSeen {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
        };
        if m.is_file() && !observed.contains(&seen) {
            return false;
        }
    }
    true
}

/// Runs one file source until `ctx.stop` fires.
pub(super) fn run(ctx: &SourceContext, input: &FileInput) {
    let (handle, cancel, waker) = (&*ctx.handle, &ctx.stop, &ctx.waker);
    let name = &handle.config.name;
    let parser =
        RecordParser::new(&handle.parse_settings(input.format, &input.mapping, ctx.timezone));
    let framing = match input.format {
        RecordFormat::Jsonl => Framing::Lines,
        RecordFormat::Csv { delimiter } => Framing::Csv { delimiter },
    };
    let start = handle.committed_state();
    let mut tailer = Tailer::new(&input.path, framing, start.files, start.retired);
    let mut headers: HashMap<String, Result<CsvHeader, String>> = HashMap::new();
    let mut watcher = None;
    let mut seq = 0u64;
    let mut failing = false;
    while !cancel.is_cancelled() {
        if watcher.is_none() {
            watcher = watch(&input.path, waker);
        }
        match tailer.scan() {
            Ok(events) => {
                log_events(name, events);
                if failing {
                    info!(source = %name, "source readable again");
                    failing = false;
                }
                handle.progress().up = true;
            }
            Err(e) => {
                if !failing {
                    warn!(source = %name, error = %e, "cannot scan source files");
                    failing = true;
                }
                let mut p = handle.progress();
                p.up = false;
                p.last_error = Some((e.to_string(), chrono::Utc::now().timestamp()));
            }
        }
        loop {
            let mut items = Vec::with_capacity(BATCH_RECORDS);
            let read = tailer.read(BATCH_RECORDS, |rec| {
                items.push(to_item(&parser, &mut headers, rec));
            });
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    warn!(source = %name, error = %e, "read error");
                    let mut p = handle.progress();
                    p.up = false;
                    p.last_error = Some((e.to_string(), chrono::Utc::now().timestamp()));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            if !send(ctx, &tailer, &mut seq, items) || cancel.is_cancelled() {
                return;
            }
        }
        let released = tailer.release_gone(super::tail::ROTATED_GRACE);
        if !released.is_empty() {
            log_events(name, released);
            if !send(ctx, &tailer, &mut seq, Vec::new()) {
                return;
            }
        }
        {
            let observed = tailer.observed();
            let mut p = handle.progress();
            p.idle_after = Some(seq);
            p.observed = Observed::Files(observed);
        }
        waker.wait(handle.config.poll_interval);
    }
}

fn send(ctx: &SourceContext, tailer: &Tailer, seq: &mut u64, items: Vec<Item>) -> bool {
    *seq += 1;
    {
        let mut p = ctx.handle.progress();
        p.sent_seq = *seq;
        p.idle_after = None;
    }
    let (files, retired) = tailer.positions();
    ctx.queue.push(
        SourceBatch {
            source: ctx.index,
            seq: *seq,
            items,
            files,
            retired,
            feed: None,
        },
        || ctx.stop.is_cancelled(),
    )
}

fn log_events(source: &str, events: Vec<TailEvent>) {
    for e in events {
        match e {
            TailEvent::Opened { path, offset } => {
                info!(source, path = %path, offset, "following file")
            }
            TailEvent::Truncated { path } => {
                info!(source, path = %path, "file truncated (copy-truncate?): reading it from the start")
            }
            TailEvent::Released { path } => {
                info!(source, path = %path, "file rotated away and read to its end: released")
            }
        }
    }
}

fn to_item(
    parser: &RecordParser,
    headers: &mut HashMap<String, Result<CsvHeader, String>>,
    rec: Record,
) -> Item {
    let reject = |reason: String| {
        Item::Invalid(Rejected {
            file: rec.path.to_string(),
            line: rec.line,
            reason,
            raw: String::from_utf8_lossy(rec.bytes).trim_end().to_string(),
        })
    };
    let Some(text) = rec.text else {
        return reject("record is not valid UTF-8".into());
    };
    let header = match rec.header {
        None => None,
        Some(h) => {
            if !headers.contains_key(h) {
                headers.insert(h.to_string(), parser.header(h));
            }
            match &headers[h] {
                Ok(parsed) => Some(parsed),
                Err(e) => return reject(e.clone()),
            }
        }
    };
    match parser.parse(text, header) {
        Ok(ev) => Item::Event(ev),
        Err(reason) => reject(reason),
    }
}

pub(crate) fn watch(pattern: &str, waker: &Arc<Waker>) -> Option<notify::RecommendedWatcher> {
    let waker = waker.clone();
    let (root, mode) = watch_root(pattern);
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    if !root.is_dir() {
        return None;
    }
    let mut w =
        notify::recommended_watcher(move |_res: notify::Result<notify::Event>| waker.wake())
            .ok()?;
    w.watch(&root, mode).ok()?;
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_root_is_the_literal_directory_of_the_glob() {
        assert_eq!(
            watch_root("/var/log/vanban/exchange*.jsonl"),
            (
                PathBuf::from("/var/log/vanban"),
                notify::RecursiveMode::NonRecursive
            )
        );
        assert_eq!(
            watch_root("/data/*/x.jsonl"),
            (PathBuf::from("/data"), notify::RecursiveMode::Recursive)
        );
    }
}
