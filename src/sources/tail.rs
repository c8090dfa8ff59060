//! Follows the files a glob names: complete records only, across rename
//! rotation and copy-truncate. Files are known by device/inode plus a
//! fingerprint of their first bytes, never by path alone.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use xxhash_rust::xxh3::xxh3_64;

use crate::store::FilePos;

/// Bytes of a file's head kept as its fingerprint.
const HEAD_MAX: u64 = 1024;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 1 << 20;
/// A record longer than this is cut and rejected rather than buffered forever.
const MAX_RECORD: usize = 16 << 20;
/// Retired fingerprints remembered to recognise copies of rotated files.
const MAX_RETIRED: usize = 32;
/// A file rotated out of the glob is still followed this long after it last
/// grew: the application may write through its old handle until it reopens.
pub(crate) const ROTATED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One record per line.
    Lines,
    /// RFC 4180: a quoted field may span lines; the first record is the header.
    Csv { delimiter: u8 },
}

/// A followed file as the reader last saw it: device, inode, and its length
/// when last read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileSeen {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
}

/// One complete record handed to the caller.
pub(crate) struct Record<'a> {
    pub path: &'a str,
    /// 1-based line number where the record starts.
    pub(crate) line: u64,
    /// The record text without its line ending; `None` if it is not valid UTF-8.
    pub(crate) text: Option<&'a str>,
    /// The record's bytes, for keeping a rejected record as it was.
    pub(crate) bytes: &'a [u8],
    /// The CSV header of this file, if any.
    pub(crate) header: Option<&'a str>,
}

struct Tailed {
    pos: FilePos,
    file: File,
    /// CSV header text of this file.
    header: Option<String>,
    /// No longer named by the glob: read to the end, then let go.
    gone: bool,
    /// When the file last grew (or was found), to keep a rotated file a while.
    last_growth: std::time::Instant,
    /// The file's length when last read to its end (what "caught up" compares with).
    seen_len: u64,
}

/// Something worth an INFO line that happened during a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TailEvent {
    Opened { path: String, offset: u64 },
    Truncated { path: String },
    Released { path: String },
}

/// The tail state of one source.
pub(crate) struct Tailer {
    pattern: String,
    framing: Framing,
    files: Vec<Tailed>,
    /// Positions restored from the store, matched on the first scan.
    saved: Vec<FilePos>,
    retired: Vec<FilePos>,
    buf: Vec<u8>,
}

fn head_hash(file: &File, len: u64) -> io::Result<u64> {
    let mut head = vec![0u8; len as usize];
    file.read_exact_at(&mut head, 0)?;
    Ok(xxh3_64(&head))
}

/// Whether `file` (of `size` bytes) starts with the fingerprinted head of `pos`.
fn same_head(file: &File, size: u64, pos: &FilePos) -> bool {
    pos.head_len > 0
        && size >= u64::from(pos.head_len)
        && head_hash(file, u64::from(pos.head_len)).ok() == Some(pos.head_hash)
}

impl Tailer {
    /// A tailer resuming from stored positions.
    pub(crate) fn new(
        pattern: &str,
        framing: Framing,
        files: Vec<FilePos>,
        retired: Vec<FilePos>,
    ) -> Tailer {
        Tailer {
            pattern: pattern.to_string(),
            framing,
            files: Vec::new(),
            saved: files,
            retired,
            buf: Vec::new(),
        }
    }

    /// Current positions (files followed, files retired), for the store.
    pub(crate) fn positions(&self) -> (Vec<FilePos>, Vec<FilePos>) {
        let mut files: Vec<FilePos> = self.files.iter().map(|t| t.pos.clone()).collect();
        // Saved positions not yet matched are kept until a scan decides.
        files.extend(self.saved.iter().cloned());
        (files, self.retired.clone())
    }

    fn retire(&mut self, pos: FilePos) {
        if pos.head_len == 0 {
            return;
        }
        self.retired
            .retain(|r| !(r.head_len == pos.head_len && r.head_hash == pos.head_hash));
        self.retired.push(pos);
        if self.retired.len() > MAX_RETIRED {
            self.retired.remove(0);
        }
    }

    /// Lists the glob, follows new files, notices truncation and files gone.
    pub(crate) fn scan(&mut self) -> io::Result<Vec<TailEvent>> {
        let mut events = Vec::new();
        let mut paths: Vec<_> = glob::glob(&self.pattern)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            .filter_map(Result::ok)
            .collect();
        paths.sort();
        let mut present = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
            let path_str = path.to_string_lossy().into_owned();
            present.push((dev, ino));
            if let Some(i) = self
                .files
                .iter()
                .position(|t| t.pos.dev == dev && t.pos.ino == ino)
            {
                self.files[i].pos.path = path_str;
                self.files[i].gone = false;
                let t = &self.files[i];
                let truncated = size < t.pos.offset
                    || (t.pos.head_len > 0 && !same_head(&t.file, size, &t.pos));
                if truncated {
                    events.push(TailEvent::Truncated {
                        path: t.pos.path.clone(),
                    });
                    self.restart_truncated(i)?;
                }
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let Some(pos) = self.identify(&file, &path_str, dev, ino, size) else {
                continue;
            };
            events.push(TailEvent::Opened {
                path: path_str,
                offset: pos.offset,
            });
            let header = self.read_header(&file, &pos);
            self.files.push(Tailed {
                pos,
                file,
                header,
                gone: false,
                last_growth: std::time::Instant::now(),
                seen_len: u64::MAX,
            });
        }
        for t in &mut self.files {
            if !present.contains(&(t.pos.dev, t.pos.ino)) {
                t.gone = true;
            }
        }
        // Saved positions whose files are no longer there were rotated away while stopped.
        for pos in std::mem::take(&mut self.saved) {
            self.retire(pos);
        }
        Ok(events)
    }

    /// Decides where a newly seen file starts; `None` = decide on a later scan.
    fn identify(
        &mut self,
        file: &File,
        path: &str,
        dev: u64,
        ino: u64,
        size: u64,
    ) -> Option<FilePos> {
        // The same file as before a restart.
        if let Some(i) = self.saved.iter().position(|p| p.dev == dev && p.ino == ino) {
            let saved = self.saved.remove(i);
            if size >= saved.offset && (saved.head_len == 0 || same_head(file, size, &saved)) {
                return Some(FilePos {
                    path: path.to_string(),
                    ..saved
                });
            }
            self.retire(saved);
        }
        // Whether it is a copy of a file already read is decided at its first read.
        Some(FilePos {
            path: path.to_string(),
            dev,
            ino,
            ..FilePos::default()
        })
    }

    /// Before the first read of a file: is it a copy of content already read
    /// (copy-truncate, a rotated file moved into the glob, a backup `cp`)?
    /// Returns whether the file may be read now.
    fn decide(&mut self, idx: usize) -> bool {
        let file = &self.files[idx].file;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            return false;
        }
        let known = self.saved.iter().chain(self.retired.iter());
        if let Some(prev) = known
            .filter(|p| same_head(file, size, p))
            .max_by_key(|p| p.offset)
            .cloned()
        {
            if size < prev.offset {
                return false; // still being copied
            }
            self.saved.retain(|p| p != &prev);
            self.retired.retain(|p| p != &prev);
            let t = &mut self.files[idx];
            t.pos = FilePos {
                path: t.pos.path.clone(),
                dev: t.pos.dev,
                ino: t.pos.ino,
                shadow_of: 0,
                ..prev
            };
            return true;
        }
        let others = || {
            self.files
                .iter()
                .enumerate()
                .filter(move |(j, _)| *j != idx)
                .map(|(_, t)| t)
        };
        if let Some(live) = others().find(|t| t.pos.head_len > 0 && same_head(file, size, &t.pos)) {
            let live = live.pos.clone();
            let t = &mut self.files[idx];
            t.pos = FilePos {
                path: t.pos.path.clone(),
                dev: t.pos.dev,
                ino: t.pos.ino,
                shadow_of: live.ino,
                ..live
            };
            return false;
        }
        // Its bytes so far begin a followed file: maybe a copy still being written.
        !others().any(|t| is_prefix_of(file, size, &t.file))
    }

    /// A truncated file starts over; its copies take over its old position.
    fn restart_truncated(&mut self, i: usize) -> io::Result<()> {
        let old = self.files[i].pos.clone();
        self.release_shadows(&old);
        self.retire(old);
        let t = &mut self.files[i];
        t.pos = FilePos {
            path: t.pos.path.clone(),
            dev: t.pos.dev,
            ino: t.pos.ino,
            ..FilePos::default()
        };
        Ok(())
    }

    /// Copies of `original` become ordinary files that continue where it stopped.
    fn release_shadows(&mut self, original: &FilePos) {
        for s in &mut self.files {
            if s.pos.shadow_of == original.ino && s.pos.ino != original.ino {
                s.pos.shadow_of = 0;
                s.pos.offset = original.offset;
                s.pos.line = original.line;
            }
        }
    }

    fn read_header(&self, file: &File, pos: &FilePos) -> Option<String> {
        let Framing::Csv { delimiter } = self.framing else {
            return None;
        };
        if pos.offset == 0 {
            return None;
        }
        let mut head = vec![0u8; READ_CHUNK.min(pos.offset as usize)];
        let n = file.read_at(&mut head, 0).ok()?;
        let head = strip_bom(&head[..n]);
        let end = crate::parse::csv::record_end(head, delimiter)?;
        std::str::from_utf8(&head[..end])
            .ok()
            .map(|s| trim_end(s).to_string())
    }

    /// Lets go of files that left the glob, once read to the end and quiet for `grace`.
    pub(crate) fn release_gone(&mut self, grace: std::time::Duration) -> Vec<TailEvent> {
        let mut events = Vec::new();
        let mut i = 0;
        while i < self.files.len() {
            let t = &self.files[i];
            let at_end = t
                .file
                .metadata()
                .map(|m| m.len() <= t.pos.offset)
                .unwrap_or(true);
            if t.gone && at_end && t.last_growth.elapsed() >= grace {
                let t = self.files.remove(i);
                events.push(TailEvent::Released {
                    path: t.pos.path.clone(),
                });
                self.release_shadows(&t.pos);
                self.retire(t.pos);
            } else {
                i += 1;
            }
        }
        events
    }

    /// Reads up to `max_records` complete records, handing each to `sink`;
    /// returns how many were read (0 = nothing new).
    pub(crate) fn read(
        &mut self,
        max_records: usize,
        mut sink: impl FnMut(Record),
    ) -> io::Result<usize> {
        let mut count = 0;
        for idx in 0..self.files.len() {
            let live = self.files[idx].pos.shadow_of;
            if live != 0 {
                if self.files.iter().any(|t| t.pos.ino == live) {
                    let t = &mut self.files[idx];
                    t.seen_len = t.file.metadata().map(|m| m.len()).unwrap_or(0);
                    continue;
                }
                self.files[idx].pos.shadow_of = 0;
            }
            let undecided = {
                let p = &self.files[idx].pos;
                p.offset == 0 && p.head_len == 0
            };
            if undecided && !self.decide(idx) {
                let t = &mut self.files[idx];
                t.seen_len = t.file.metadata().map(|m| m.len()).unwrap_or(0);
                continue;
            }
            while count < max_records {
                let n = self.read_file(idx, max_records - count, &mut sink)?;
                if n == 0 {
                    break;
                }
                count += n;
            }
            if count >= max_records {
                break;
            }
        }
        Ok(count)
    }

    fn read_file(
        &mut self,
        idx: usize,
        max_records: usize,
        sink: &mut impl FnMut(Record),
    ) -> io::Result<usize> {
        let framing = self.framing;
        let t = &mut self.files[idx];
        let mut buf = std::mem::take(&mut self.buf);
        let mut want = READ_CHUNK;
        let filled = loop {
            buf.resize(want, 0);
            let n = read_full_at(&t.file, &mut buf, t.pos.offset)?;
            let start = if t.pos.offset == 0 {
                bom_len(&buf[..n])
            } else {
                0
            };
            let complete = next_record_end(&buf[start..n], framing).is_some();
            if complete || n < want || want >= MAX_RECORD {
                break n;
            }
            want *= 2;
        };
        if filled < want {
            t.seen_len = t.pos.offset + filled as u64;
        }
        let mut at = 0usize;
        if t.pos.offset == 0 {
            at = bom_len(&buf[..filled]);
        }
        let mut count = 0;
        let mut consumed_lines = 0u64;
        while count < max_records {
            let rest = &buf[at..filled];
            let end = match next_record_end(rest, framing) {
                Some(e) => e,
                // An over-long record: hand it over whole (it will be rejected) and move on.
                None if filled >= MAX_RECORD && at == 0 => rest.len(),
                None => break,
            };
            let raw = &rest[..end];
            let record_start = at;
            let lines = raw.iter().filter(|&&b| b == b'\n').count() as u64;
            let line_no = t.pos.line + consumed_lines + 1;
            consumed_lines += lines.max(1);
            at += end;
            let text = std::str::from_utf8(raw).ok().map(trim_end);
            if text.is_some_and(|s| s.trim().is_empty()) {
                continue;
            }
            let first_record = t.pos.offset == 0 && record_start == bom_len(&buf[..filled]);
            if matches!(framing, Framing::Csv { .. }) && first_record {
                // The first record is the header, unless this is a copy-truncated
                // file whose new content starts without one: then the old header holds.
                if t.header.is_none() || t.header.as_deref() == text {
                    t.header = text.map(str::to_string);
                    count += 1;
                    continue;
                }
            }
            sink(Record {
                path: &t.pos.path,
                line: line_no,
                text,
                bytes: raw,
                header: t.header.as_deref(),
            });
            count += 1;
        }
        if at > 0 {
            t.last_growth = std::time::Instant::now();
        }
        t.pos.offset += at as u64;
        t.pos.line += consumed_lines;
        if u64::from(t.pos.head_len) < HEAD_MAX.min(t.pos.offset) {
            let len = HEAD_MAX.min(t.pos.offset);
            t.pos.head_hash = head_hash(&t.file, len)?;
            t.pos.head_len = len as u32;
        }
        self.buf = buf;
        Ok(count)
    }

    /// Every followed file and its length when last read to its end.
    pub(crate) fn observed(&self) -> Vec<FileSeen> {
        self.files
            .iter()
            .map(|t| FileSeen {
                dev: t.pos.dev,
                ino: t.pos.ino,
                len: t.seen_len,
            })
            .collect()
    }
}

/// Whether the `size` bytes of `candidate` are the first bytes of `other` (small files only).
fn is_prefix_of(candidate: &File, size: u64, other: &File) -> bool {
    if size >= HEAD_MAX || other.metadata().map(|m| m.len() <= size).unwrap_or(true) {
        return false;
    }
    let mut a = vec![0u8; size as usize];
    let mut b = vec![0u8; size as usize];
    candidate.read_exact_at(&mut a, 0).is_ok() && other.read_exact_at(&mut b, 0).is_ok() && a == b
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn next_record_end(buf: &[u8], framing: Framing) -> Option<usize> {
    match framing {
        Framing::Lines => memchr_newline(buf).map(|i| i + 1),
        Framing::Csv { delimiter } => crate::parse::csv::record_end(buf, delimiter),
    }
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

fn bom_len(buf: &[u8]) -> usize {
    if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    }
}

fn strip_bom(buf: &[u8]) -> &[u8] {
    &buf[bom_len(buf)..]
}

fn trim_end(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod tests;
