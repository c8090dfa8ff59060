//! The tailer against a model: random appends (with partial lines), rename
//! rotations, copy-truncates, deletions of rotated files and restarts from
//! saved positions. Every complete line is read exactly once.
//! `PROPTEST_CASES=5000 cargo test --lib tailer_` runs many more cases.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;

use super::{Framing, Tailer};

#[derive(Debug, Clone)]
enum Step {
    /// Appends this many complete lines, the last one maybe left unfinished.
    Append { lines: u8, partial: bool },
    /// Scans and reads everything available.
    Poll,
    /// `mv x.log x.log.N`; the writer creates a new `x.log` on its next line.
    Rotate,
    /// `cp x.log x.log.N; : > x.log` with no poll in between.
    CopyTruncate,
    /// Deletes the oldest rotated file, once it has been read.
    DeleteOldest,
    /// Saves the positions and starts a new tailer from them (a daemon restart).
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..6, any::<bool>()).prop_map(|(lines, partial)| Step::Append { lines, partial }),
        3 => Just(Step::Poll),
        1 => Just(Step::Rotate),
        1 => Just(Step::CopyTruncate),
        1 => Just(Step::DeleteOldest),
        1 => Just(Step::Restart),
    ]
}

struct World {
    dir: tempfile::TempDir,
    pattern: String,
    tailer: Tailer,
    next_line: u32,
    /// Text of a line written without its newline yet.
    unfinished: Option<String>,
    rotated: Vec<String>,
    next_rotation: u32,
    /// How many times each line was read.
    read: BTreeMap<String, u32>,
    written: Vec<String>,
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        // Rotated and copied files stay inside the glob, as with `x.log*`.
        let pattern = dir.path().join("x.log*").to_string_lossy().into_owned();
        World {
            tailer: Tailer::new(&pattern, Framing::Lines, vec![], vec![]),
            pattern,
            dir,
            next_line: 0,
            unfinished: None,
            rotated: Vec::new(),
            next_rotation: 1,
            read: BTreeMap::new(),
            written: Vec::new(),
        }
    }

    fn live(&self) -> std::path::PathBuf {
        self.dir.path().join("x.log")
    }

    /// Ends the unfinished line, as its writer eventually does.
    fn finish_line(&mut self) {
        if let Some(text) = self.unfinished.take() {
            let (_, rest) = text.split_at(text.len() / 2);
            append(&self.live(), &format!("{rest}\n"));
            self.written.push(text);
        }
    }

    fn poll(&mut self) {
        self.tailer.scan().unwrap();
        let mut got = Vec::new();
        while self
            .tailer
            .read(7, |r| got.push(r.text.unwrap().to_string()))
            .unwrap()
            > 0
        {}
        self.tailer.release_gone(std::time::Duration::ZERO);
        for line in got {
            *self.read.entry(line).or_default() += 1;
        }
    }

    fn apply(&mut self, step: &Step) {
        match step {
            Step::Append { lines, partial } => {
                self.finish_line();
                let mut text = String::new();
                for _ in 0..*lines {
                    self.next_line += 1;
                    let line = format!(
                        "line-{:06}-{}",
                        self.next_line,
                        "x".repeat((self.next_line % 13) as usize)
                    );
                    text.push_str(&line);
                    text.push('\n');
                    self.written.push(line);
                }
                if *partial {
                    self.next_line += 1;
                    let line = format!("line-{:06}-partial", self.next_line);
                    text.push_str(&line[..line.len() / 2]);
                    self.unfinished = Some(line);
                }
                append(&self.live(), &text);
            }
            Step::Poll => self.poll(),
            Step::Rotate => {
                self.finish_line();
                if self.live().exists() {
                    let to = format!("x.log.{}", self.next_rotation);
                    self.next_rotation += 1;
                    std::fs::rename(self.live(), self.dir.path().join(&to)).unwrap();
                    self.rotated.push(to);
                }
            }
            Step::CopyTruncate => {
                self.finish_line();
                let size = std::fs::metadata(self.live()).map(|m| m.len()).unwrap_or(0);
                if size > 0 {
                    let to = format!("x.log.{}", self.next_rotation);
                    self.next_rotation += 1;
                    std::fs::copy(self.live(), self.dir.path().join(&to)).unwrap();
                    std::fs::File::create(self.live()).unwrap();
                    self.rotated.push(to);
                }
            }
            Step::DeleteOldest => {
                if !self.rotated.is_empty() {
                    // Only what was read may go: poll first, as an operator's
                    // retention would be far behind the reader.
                    self.poll();
                    let oldest = self.rotated.remove(0);
                    std::fs::remove_file(self.dir.path().join(oldest)).unwrap();
                }
            }
            Step::Restart => {
                let (files, retired) = self.tailer.positions();
                self.tailer = Tailer::new(&self.pattern, Framing::Lines, files, retired);
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn tailer_reads_every_line_once_whatever_the_rotation(steps in prop::collection::vec(step(), 1..40)) {
        let mut w = World::new();
        for s in &steps {
            w.apply(s);
            if let Some((line, n)) = w.read.iter().find(|(_, n)| **n > 1) {
                prop_assert!(false, "{line} read {n} times after {s:?}");
            }
        }
        w.finish_line();
        w.poll();
        w.poll();
        for line in &w.written {
            let n = w.read.get(line).copied().unwrap_or(0);
            prop_assert_eq!(n, 1, "{} read {} times", line, n);
        }
        prop_assert_eq!(w.read.len(), w.written.len(), "lines read that were never written");
    }
}
