//! edXML directory sources: each settled message file is read once, as a
//! stream in bounded memory, into one exchange or status event, plus the
//! signature events of its PDF attachments with `verify_attachments = true`
//! (directory following in `settled`).

use std::collections::HashSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use super::settled::{Listed, WholeFiles};
use super::{Item, Rejected, SourceContext};
use crate::config::EdxmlInput;
use crate::parse::edxml::{read_message_spooling, EdxmlError, SpooledPdf};
use crate::pdf::Verifier;

/// Where PDF attachments are spooled, under the state directory.
const SPOOL_DIR: &str = "spool";

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

/// Runs one edXML source until `ctx.stop` fires.
pub(super) fn run(ctx: &SourceContext, input: &EdxmlInput, files_read: HashSet<String>) {
    let verifier = match &input.verify_attachments {
        Some(verify) => match super::pdf::load_trust(ctx, verify, input.max_file_size) {
            Some(v) => Some(v),
            None => return, // stopped while the trust files could not be read
        },
        None => None,
    };
    // One directory per source (its name in hex: any name, no collision), so
    // that clearing it at start never removes another source's live files.
    let spool_dir = ctx
        .state_dir
        .join(SPOOL_DIR)
        .join(hex::encode(ctx.handle.config.name.as_bytes()));
    clear_spool(&spool_dir);
    let reader = EdxmlFiles {
        input,
        unreadable: HashSet::new(),
        verifier,
        spool_dir,
    };
    super::settled::run(ctx, &input.path, input.settle, files_read, reader);
}

/// Removes attachments a crash left spooled (a spooled file lives only while
/// its message is read, so any found at start is stale).
fn clear_spool(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".attachment-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

struct EdxmlFiles<'a> {
    input: &'a EdxmlInput,
    /// Files that could not be opened, logged once.
    unreadable: HashSet<String>,
    /// With `verify_attachments = true`: the trust loaded.
    verifier: Option<Verifier>,
    spool_dir: PathBuf,
}

impl EdxmlFiles<'_> {
    /// The signature events of the spooled PDF attachments of message `path`.
    fn attachment_signatures(&self, name: &str, path: &str, spooled: Vec<SpooledPdf>) -> Vec<Item> {
        let (Some(verifier), Some(verify)) = (&self.verifier, &self.input.verify_attachments)
        else {
            return Vec::new();
        };
        let mut items = Vec::new();
        for pdf in spooled {
            let verified = match &pdf.file {
                Ok(file) => verifier.verify_file(file.path()),
                Err(e) => {
                    warn!(source = %name, path, attachment = pdf.index, error = %e, "cannot spool a PDF attachment; its signatures are not verified");
                    continue;
                }
            };
            match verified {
                Ok(report) => {
                    debug!(source = %name, path, attachment = pdf.index, sha256 = %pdf.sha256, signatures = report.signatures.len(), "PDF attachment verified");
                    items.extend(
                        super::pdf::signature_events(&report, verify, name)
                            .into_iter()
                            .map(Item::Event),
                    );
                }
                Err(e) => {
                    warn!(source = %name, path, attachment = pdf.index, error = %e, "PDF attachment not verified");
                }
            }
        }
        items
    }
}

impl WholeFiles for EdxmlFiles<'_> {
    const WHAT: &'static str = "edXML";

    fn wants(path: &Path) -> bool {
        is_message_name(path)
    }

    /// Reads one message; `None` when the file cannot be read now (retried later).
    fn read(&mut self, ctx: &SourceContext, f: &Listed) -> Option<Vec<Item>> {
        let name = &ctx.handle.config.name;
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
            return Some(vec![reject(
                EdxmlError::FileTooLarge { size: f.len, max }.to_string(),
            )]);
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
        let spool = self.verifier.as_ref().map(|_| self.spool_dir.as_path());
        let parsed = read_message_spooling(BufReader::with_capacity(READ_BUFFER, file), max, spool);
        // A file that changed while it was read is read again once it settles.
        if !f.unchanged() {
            debug!(source = %name, path = %f.path, "edXML file changed while read; waiting for it to settle");
            return None;
        }
        self.unreadable.remove(&f.path);
        Some(match parsed {
            Err(e) => vec![reject(e.to_string())],
            Ok((msg, spooled)) => match msg.to_event(&ctx.agency_code, ctx.timezone) {
                Ok(ev) => {
                    let mut items = vec![Item::Event(ev)];
                    items.extend(self.attachment_signatures(name, &f.path, spooled));
                    items
                }
                Err(reason) => vec![reject(reason)],
            },
        })
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
