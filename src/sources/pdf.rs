//! PDF signature sources (README "Verified signatures (PDF)"): each settled
//! PDF is verified once, giving one signature event per signature, joined to
//! documents by the file's sha256 (directory following in `settled`).

use std::collections::HashSet;
use std::path::Path;

use tracing::{debug, info, warn};

use super::settled::{Listed, WholeFiles};
use super::{Item, Rejected, SourceContext};
use crate::config::{PdfInput, PdfVerify};
use crate::model::{Event, SignatureEvent, SignatureVerdict};
use crate::pdf::{FileReport, PdfError, Verifier};

/// Whether a file name is a PDF to read (not a temporary or hidden file).
pub(crate) fn is_pdf_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.to_ascii_lowercase().ends_with(".pdf")
}

/// The signature events of a verified file: one per signature, keyed by
/// `pdf:{sha256}:{index}` so that the same file read twice counts once.
pub(crate) fn signature_events(
    report: &FileReport,
    verify: &PdfVerify,
    source: &str,
) -> Vec<Event> {
    report
        .signatures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            let role = verify.role_of(&s.subject);
            Event::Signature(SignatureEvent {
                event_id: Some(format!("pdf:{}:{index}", report.sha256)),
                time: s.time,
                doc_id: None,
                sha256: Some(report.sha256.clone()),
                role,
                valid: s.valid(),
                signer: s.signer.clone(),
                verdict: Some(Box::new(SignatureVerdict {
                    source: source.to_string(),
                    index,
                    role,
                    reason: s.reason,
                    signer: s.signer.clone(),
                    subject: s.subject.clone(),
                    issuer: s.issuer.clone(),
                    cert_serial: s.cert_serial.clone(),
                    time: s.time,
                    time_source: s.time_source,
                })),
            })
        })
        .collect()
}

/// Runs one PDF source until `ctx.stop` fires.
pub(super) fn run(ctx: &SourceContext, input: &PdfInput, files_read: HashSet<String>) {
    let Some(verifier) = load_trust(ctx, &input.verify, input.max_file_size) else {
        return;
    };
    let reader = PdfFiles {
        input,
        verifier,
        unreadable: HashSet::new(),
    };
    super::settled::run(ctx, &input.path, input.settle, files_read, reader);
}

/// Loads the trust files, retrying while they cannot be read; `None` once stopped.
pub(super) fn load_trust(
    ctx: &SourceContext,
    verify: &PdfVerify,
    max_file_size: u64,
) -> Option<Verifier> {
    let name = &ctx.handle.config.name;
    loop {
        match verify.verifier(max_file_size) {
            Ok(v) => {
                let (anchors, intermediates, crls) = v.trust.counts();
                info!(source = %name, anchors, intermediates, crls, "trust loaded for PDF signatures");
                ctx.handle.progress().up = true;
                return Some(v);
            }
            Err(e) => {
                warn!(source = %name, error = %e, "cannot load the trust files; will retry");
                let mut p = ctx.handle.progress();
                p.up = false;
                p.last_error = Some((e.to_string(), chrono::Utc::now().timestamp()));
            }
        }
        ctx.waker.wait(ctx.handle.config.poll_interval);
        if ctx.stop.is_cancelled() {
            return None;
        }
    }
}

struct PdfFiles<'a> {
    input: &'a PdfInput,
    verifier: Verifier,
    /// Files that could not be opened, logged once.
    unreadable: HashSet<String>,
}

impl WholeFiles for PdfFiles<'_> {
    const WHAT: &'static str = "PDF";

    fn wants(path: &Path) -> bool {
        is_pdf_name(path)
    }

    fn read(&mut self, ctx: &SourceContext, f: &Listed) -> Option<Vec<Item>> {
        let name = &ctx.handle.config.name;
        let verified = self.verifier.verify_file(Path::new(&f.path));
        if let Err(PdfError::Io(e)) = &verified {
            if !Path::new(&f.path).exists() {
                return None;
            }
            if self.unreadable.insert(f.path.clone()) {
                warn!(source = %name, path = %f.path, error = %e, "cannot read PDF file; will retry");
            }
            return None;
        }
        if !f.unchanged() {
            debug!(source = %name, path = %f.path, "PDF file changed while read; waiting for it to settle");
            return None;
        }
        self.unreadable.remove(&f.path);
        Some(match verified {
            Ok(report) => {
                for (i, s) in report.signatures.iter().enumerate() {
                    let result = s.reason.map_or("valid", |r| r.code());
                    debug!(source = %name, path = %f.path, signature = i, signer = %s.signer, result, "PDF signature verified");
                }
                signature_events(&report, &self.input.verify, name)
                    .into_iter()
                    .map(Item::Event)
                    .collect()
            }
            Err(e) => vec![Item::Invalid(Rejected {
                file: f.path.clone(),
                line: 0,
                reason: format!("{}: {e}", f.path),
                raw: String::new(),
            })],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_pdf_names_are_read() {
        assert!(is_pdf_name(Path::new("/d/CV-12.pdf")));
        assert!(is_pdf_name(Path::new("/d/CV-12.PDF")));
        assert!(!is_pdf_name(Path::new("/d/.CV-12.pdf")));
        assert!(!is_pdf_name(Path::new("/d/CV-12.pdf.part")));
    }
}
