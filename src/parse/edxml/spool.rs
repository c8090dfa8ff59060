//! PDF attachments written to a temporary file while they are decoded
//! (`verify_attachments = true`), so that their signatures can be verified
//! afterwards with memory that does not depend on their size.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Most PDF attachments of one message spooled (each holds a file open until verified).
pub(crate) const MAX_SPOOLED: usize = 32;
/// Decoded bytes looked at for the `%PDF-` header (ISO 32000 allows it anywhere in the first 1024).
const HEAD: usize = 1024;

/// A PDF attachment on disk, removed when dropped.
#[derive(Debug)]
pub(crate) struct SpooledPdf {
    /// Its position among the message's attachments, from 0.
    pub(crate) index: usize,
    /// The sha256 of the decoded attachment (hex), its join key.
    pub(crate) sha256: String,
    /// The file, or why it could not be written (disk full, no directory…).
    pub(crate) file: Result<NamedTempFile, String>,
}

/// The decoded bytes of one attachment on their way to a temporary file:
/// held in memory only until the header says whether it is a PDF.
pub(super) struct PdfSpool {
    dir: PathBuf,
    head: Vec<u8>,
    state: State,
}

enum State {
    /// Fewer than [`HEAD`] bytes seen: not known yet.
    Undecided,
    Writing(NamedTempFile),
    NotPdf,
    Failed(String),
}

impl PdfSpool {
    pub(super) fn new(dir: &Path) -> PdfSpool {
        PdfSpool {
            dir: dir.to_path_buf(),
            head: Vec::new(),
            state: State::Undecided,
        }
    }

    /// Takes the next decoded bytes.
    pub(super) fn write(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Undecided => {
                self.head.extend_from_slice(bytes);
                if self.head.len() >= HEAD {
                    self.decide();
                }
            }
            State::Writing(f) => {
                if let Err(e) = f.write_all(bytes) {
                    self.state = State::Failed(e.to_string());
                }
            }
            State::NotPdf | State::Failed(_) => {}
        }
    }

    /// Opens the temporary file if the head holds a PDF header.
    fn decide(&mut self) {
        let head = std::mem::take(&mut self.head);
        let window = &head[..head.len().min(HEAD)];
        if memchr::memmem::find(window, b"%PDF-").is_none() {
            self.state = State::NotPdf;
            return;
        }
        let opened = std::fs::create_dir_all(&self.dir)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix(".attachment-")
                    .suffix(".pdf")
                    .tempfile_in(&self.dir)
            })
            .and_then(|mut f| f.write_all(&head).map(|()| f));
        self.state = match opened {
            Ok(f) => State::Writing(f),
            Err(e) => State::Failed(format!("{}: {e}", self.dir.display())),
        };
    }

    /// The spooled file once the attachment ends; `None` when it is not a PDF.
    pub(super) fn finish(mut self) -> Option<Result<NamedTempFile, String>> {
        if matches!(self.state, State::Undecided) {
            self.decide();
        }
        match self.state {
            State::Undecided | State::NotPdf => None,
            State::Writing(mut f) => Some(f.flush().map(|()| f).map_err(|e| e.to_string())),
            State::Failed(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pdfs_are_spooled_whatever_the_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend(std::iter::repeat_n(b'x', 5000));
        for chunk in [1, 7, 1024, 6000] {
            let mut s = PdfSpool::new(dir.path());
            pdf.chunks(chunk).for_each(|c| s.write(c));
            let f = s.finish().unwrap().unwrap();
            assert_eq!(std::fs::read(f.path()).unwrap(), pdf, "chunks of {chunk}");
        }
        let mut small = PdfSpool::new(dir.path());
        small.write(b"%PDF-1.4 tiny");
        assert!(
            small.finish().unwrap().is_ok(),
            "a PDF shorter than the head"
        );
        let mut docx = PdfSpool::new(dir.path());
        docx.write(&[b'P'; 4000]);
        assert!(docx.finish().is_none());
        let mut nowhere = PdfSpool::new(&dir.path().join("file").join("sub"));
        std::fs::write(dir.path().join("file"), b"").unwrap();
        nowhere.write(b"%PDF-1.4");
        assert!(
            nowhere.finish().unwrap().is_err(),
            "an unwritable directory is an error, not a panic"
        );
    }
}
