//! One streaming pass over a PDF file: its sha256, where its revisions end
//! (`%%EOF`) and where `/ByteRange` keys stand. Memory does not depend on the
//! file's size; later reads are bounded windows.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use aws_lc_rs::digest;
use memchr::memmem;

use super::PdfError;

/// Read buffer of the streaming pass.
const CHUNK: usize = 256 * 1024;
/// Bytes of the previous chunk kept so that a token cut by a chunk edge is found.
const OVERLAP: usize = 16;
/// More `/ByteRange` keys than this: the file is refused (each costs a pass).
pub(crate) const MAX_SIGNATURES: usize = 32;
/// More revisions than this: the file is refused.
pub(crate) const MAX_REVISIONS: usize = 512;
/// ISO 32000: `%PDF-` within the first and `%%EOF` within the last 1024 bytes.
const HEADER_WINDOW: u64 = 1024;

/// What the streaming pass found.
pub(crate) struct Scanned {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) sha256: [u8; 32],
    /// Each revision's end: just after `%%EOF`, and after its end of line.
    pub(crate) revisions: Vec<(u64, u64)>,
    /// Offsets of the `/ByteRange` keys.
    pub(crate) byte_ranges: Vec<u64>,
    /// Modification time, Unix seconds.
    pub(crate) mtime: i64,
}

/// Reads the file once: digest, revision ends, signature keys.
pub(crate) fn scan(path: &Path, max_size: u64) -> Result<Scanned, PdfError> {
    let io = |e: std::io::Error| PdfError::Io(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let len = meta.len();
    if len > max_size {
        return Err(PdfError::TooLarge {
            size: len,
            max: max_size,
        });
    }
    let mtime = std::os::unix::fs::MetadataExt::mtime(&meta);
    let mut ctx = digest::Context::new(&digest::SHA256);
    let eof_finder = memmem::Finder::new(b"%%EOF");
    let br_finder = memmem::Finder::new(b"/ByteRange");
    let mut buf = vec![0u8; OVERLAP + CHUNK];
    let mut kept = 0usize; // bytes of the previous chunk at the start of `buf`
    let mut base = 0u64; // file offset of buf[0]
    let mut revisions = Vec::new();
    let mut eof_pending: Option<u64> = None; // `%%EOF` whose end of line is not read yet
    let mut byte_ranges = Vec::new();
    let mut header_seen = false;
    loop {
        let n = read_full(&mut file, &mut buf[kept..]).map_err(io)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[kept..kept + n]);
        let window = &buf[..kept + n];
        if base == 0 && !header_seen {
            let head = &window[..window.len().min(HEADER_WINDOW as usize)];
            header_seen = memmem::find(head, b"%PDF-").is_some();
            if !header_seen {
                return Err(PdfError::NotPdf);
            }
        }
        if let Some(end) = eof_pending.take() {
            revisions.push((end, end + eol_len(&window[(end - base) as usize..])));
        }
        for at in eof_finder.find_iter(window) {
            if at + 5 <= kept {
                continue; // found in the previous round
            }
            let end = base + at as u64 + 5;
            if at + 5 + 2 <= window.len() {
                revisions.push((end, end + eol_len(&window[at + 5..])));
            } else {
                eof_pending = Some(end);
            }
            if revisions.len() > MAX_REVISIONS {
                return Err(PdfError::Limit("too many revisions"));
            }
        }
        for at in br_finder.find_iter(window) {
            if at + 10 <= kept {
                continue;
            }
            byte_ranges.push(base + at as u64);
            if byte_ranges.len() > MAX_SIGNATURES {
                return Err(PdfError::Limit("too many signatures"));
            }
        }
        let total = kept + n;
        kept = total.min(OVERLAP);
        buf.copy_within(total - kept..total, 0);
        base += (total - kept) as u64;
    }
    if let Some(end) = eof_pending {
        revisions.push((end, end + eol_len(&buf[(end - base) as usize..kept])));
    }
    if len == 0 || !header_seen {
        return Err(PdfError::NotPdf);
    }
    match revisions.last() {
        Some(&(end, _)) if end + HEADER_WINDOW >= len => {}
        _ => return Err(PdfError::Truncated),
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(ctx.finish().as_ref());
    Ok(Scanned {
        file,
        len,
        sha256,
        revisions,
        byte_ranges,
        mtime,
    })
}

/// Length of the end of line at the start of `rest`: CR LF, LF, CR or none.
fn eol_len(rest: &[u8]) -> u64 {
    match rest {
        [b'\r', b'\n', ..] => 2,
        [b'\n', ..] | [b'\r', ..] => 1,
        _ => 0,
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Scanned {
    /// Up to `max` bytes from `offset` (fewer at the end of the file).
    pub(crate) fn read_at(&self, offset: u64, max: usize) -> Result<Vec<u8>, PdfError> {
        let want = (max as u64).min(self.len.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; want];
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| PdfError::Io(e.to_string()))?;
        Ok(buf)
    }

    /// Digest of the byte ranges `(start, length)`, read in chunks.
    pub(crate) fn digest_ranges(
        &self,
        alg: &'static digest::Algorithm,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<u8>, PdfError> {
        let mut ctx = digest::Context::new(alg);
        let mut buf = vec![0u8; CHUNK];
        let mut f = &self.file;
        for &(start, length) in ranges {
            f.seek(SeekFrom::Start(start))
                .map_err(|e| PdfError::Io(e.to_string()))?;
            let mut left = length;
            while left > 0 {
                let n = (left as usize).min(CHUNK);
                f.read_exact(&mut buf[..n])
                    .map_err(|e| PdfError::Io(e.to_string()))?;
                ctx.update(&buf[..n]);
                left -= n as u64;
            }
        }
        Ok(ctx.finish().as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scan_bytes(bytes: &[u8]) -> Result<Scanned, PdfError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        scan(f.path(), 1 << 30)
    }

    #[test]
    fn tokens_cut_by_a_chunk_edge_are_found_once() {
        for pad in [CHUNK - 3, CHUNK - 5, CHUNK + 1, CHUNK - OVERLAP] {
            let mut pdf = b"%PDF-1.7\n".to_vec();
            pdf.resize(pad, b' ');
            pdf.extend_from_slice(b"/ByteRange [0 1 2 3]\n%%EOF\n");
            pdf.extend_from_slice(b"more\n%%EOF\r\n");
            let s = scan_bytes(&pdf).unwrap();
            assert_eq!(s.byte_ranges, [pad as u64], "pad {pad}");
            let first = pad as u64 + 21 + 5;
            assert_eq!(
                s.revisions,
                [(first, first + 1), (pdf.len() as u64 - 2, pdf.len() as u64)]
            );
            let want = digest::digest(&digest::SHA256, &pdf);
            assert_eq!(&s.sha256[..], want.as_ref());
        }
    }

    #[test]
    fn not_a_pdf_and_truncated_files_are_refused() {
        assert!(matches!(scan_bytes(b"hello"), Err(PdfError::NotPdf)));
        assert!(matches!(scan_bytes(b""), Err(PdfError::NotPdf)));
        let mut cut = b"%PDF-1.7\n%%EOF\n".to_vec();
        cut.extend(std::iter::repeat_n(b'x', 5000));
        assert!(matches!(scan_bytes(&cut), Err(PdfError::Truncated)));
    }
}
