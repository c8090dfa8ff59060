use super::*;
use std::io::Write;

struct Harness {
    dir: tempfile::TempDir,
    tailer: Tailer,
}

impl Harness {
    fn new(framing: Framing, pattern: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let pat = dir.path().join(pattern).to_string_lossy().into_owned();
        Harness {
            tailer: Tailer::new(&pat, framing, vec![], vec![]),
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, name: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Scans, reads everything, releases gone files; returns the records.
    fn poll(&mut self) -> Vec<String> {
        self.tailer.scan().unwrap();
        let mut out = Vec::new();
        while self
            .tailer
            .read(1000, |r| {
                out.push(r.text.unwrap_or("<bad utf8>").to_string())
            })
            .unwrap()
            > 0
        {}
        self.tailer.release_gone(std::time::Duration::ZERO);
        out
    }
}

#[test]
fn partial_line_is_read_only_when_complete() {
    let mut h = Harness::new(Framing::Lines, "x*.log");
    h.append("x.log", "one\ntw");
    assert_eq!(h.poll(), vec!["one"]);
    assert!(h.poll().is_empty());
    h.append("x.log", "o\n");
    assert_eq!(h.poll(), vec!["two"]);
}

#[test]
fn log_rotation_by_rename_reads_the_old_file_to_its_end() {
    let mut h = Harness::new(Framing::Lines, "x.log");
    h.append("x.log", "a\n");
    assert_eq!(h.poll(), vec!["a"]);
    h.append("x.log", "b\n");
    std::fs::rename(h.path("x.log"), h.path("x.log.1")).unwrap();
    h.append("x.log", "c\n");
    let mut got = h.poll();
    got.sort();
    assert_eq!(got, vec!["b", "c"]);
    h.append("x.log", "d\n");
    assert_eq!(h.poll(), vec!["d"]);
}

#[test]
fn log_truncation_by_copytruncate_starts_over() {
    let mut h = Harness::new(Framing::Lines, "x*.log");
    h.append("x.log", "line-0001\nline-0002\n");
    assert_eq!(h.poll().len(), 2);
    std::fs::copy(h.path("x.log"), h.path("x-1.log")).unwrap();
    std::fs::File::create(h.path("x.log")).unwrap();
    h.append("x.log", "new-1\n");
    assert_eq!(h.poll(), vec!["new-1"], "the copy is not read again");
}

#[test]
fn truncation_then_regrowth_past_the_old_offset_is_noticed_by_the_head() {
    let mut h = Harness::new(Framing::Lines, "x.log");
    h.append("x.log", "aaaa\n");
    assert_eq!(h.poll().len(), 1);
    std::fs::File::create(h.path("x.log")).unwrap();
    h.append("x.log", "bbbb\ncccc\n");
    assert_eq!(h.poll(), vec!["bbbb", "cccc"]);
}

#[test]
fn a_copy_made_before_truncation_supplies_the_unread_tail() {
    let mut h = Harness::new(Framing::Lines, "x*.log");
    h.append("x.log", "a-first\n");
    assert_eq!(h.poll().len(), 1);
    h.append("x.log", "b-unread\n");
    std::fs::copy(h.path("x.log"), h.path("x-1.log")).unwrap();
    // The copy is seen while the original is still there: it shadows it.
    h.tailer.scan().unwrap();
    std::fs::File::create(h.path("x.log")).unwrap();
    let mut got = h.poll();
    got.sort();
    assert_eq!(got, vec!["b-unread"]);
}

#[test]
fn a_rotated_file_is_followed_through_its_old_handle_during_the_grace_period() {
    let mut h = Harness::new(Framing::Lines, "x.log");
    h.append("x.log", "a\n");
    assert_eq!(h.poll(), vec!["a"]);
    std::fs::rename(h.path("x.log"), h.path("x.log.1")).unwrap();
    h.append("x.log", "b\n");
    let read_all = |h: &mut Harness| {
        h.tailer.scan().unwrap();
        let mut out = Vec::new();
        while h
            .tailer
            .read(100, |r| out.push(r.text.unwrap().to_string()))
            .unwrap()
            > 0
        {}
        h.tailer.release_gone(std::time::Duration::from_secs(60));
        out
    };
    assert_eq!(read_all(&mut h), vec!["b"]);
    // The writer has not reopened yet: its next line lands in the renamed file.
    h.append("x.log.1", "late\n");
    assert_eq!(read_all(&mut h), vec!["late"]);
    assert!(
        h.tailer.release_gone(std::time::Duration::ZERO).len() == 1,
        "released after the grace period"
    );
}

#[test]
fn an_empty_copy_is_not_adopted_before_its_bytes_arrive() {
    let mut h = Harness::new(Framing::Lines, "x*.log");
    h.append("x.log", "line-0001\nline-0002\n");
    assert_eq!(h.poll().len(), 2);
    // cp creates the copy, the tailer looks, then cp fills it and the original is truncated.
    std::fs::File::create(h.path("x-1.log")).unwrap();
    assert!(h.poll().is_empty());
    h.append("x-1.log", "line-0001\n");
    assert!(h.poll().is_empty(), "a prefix of a followed file waits");
    h.append("x-1.log", "line-0002\n");
    std::fs::File::create(h.path("x.log")).unwrap();
    h.append("x.log", "new\n");
    assert_eq!(h.poll(), vec!["new"]);
}

#[test]
fn resume_from_saved_positions_after_restart() {
    let mut h = Harness::new(Framing::Lines, "x.log");
    h.append("x.log", "a\nb\n");
    assert_eq!(h.poll().len(), 2);
    let (files, retired) = h.tailer.positions();
    h.append("x.log", "c\n");
    let pat = h.path("x.log").to_string_lossy().into_owned();
    h.tailer = Tailer::new(&pat, Framing::Lines, files, retired);
    assert_eq!(h.poll(), vec!["c"]);
}

#[test]
fn csv_header_bom_and_multiline_records() {
    let mut h = Harness::new(Framing::Csv { delimiter: b';' }, "s.csv");
    h.append("s.csv", "\u{feff}A;B\r\n1;\"x\ny\"\r\n2;z");
    let mut headers = Vec::new();
    h.tailer.scan().unwrap();
    let mut out = Vec::new();
    h.tailer
        .read(100, |r| {
            headers.push(r.header.map(str::to_string));
            out.push((r.line, r.text.unwrap().to_string()));
        })
        .unwrap();
    assert_eq!(out, vec![(2, "1;\"x\ny\"".to_string())]);
    assert_eq!(headers, vec![Some("A;B".to_string())]);
    // After a restart mid-file the header is read again from the file's start.
    let (files, retired) = h.tailer.positions();
    h.append("s.csv", "\n");
    let pat = h.path("s.csv").to_string_lossy().into_owned();
    h.tailer = Tailer::new(&pat, Framing::Csv { delimiter: b';' }, files, retired);
    h.tailer.scan().unwrap();
    let mut got = Vec::new();
    h.tailer
        .read(100, |r| got.push((r.line, r.header.map(str::to_string))))
        .unwrap();
    assert_eq!(got, vec![(4, Some("A;B".to_string()))]);
}

#[test]
fn a_file_that_appears_later_is_picked_up() {
    let mut h = Harness::new(Framing::Lines, "*.log");
    assert!(h.poll().is_empty());
    h.append("late.log", "x\n");
    assert_eq!(h.poll(), vec!["x"]);
}
