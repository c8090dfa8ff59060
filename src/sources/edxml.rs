//! edXML directory sources: each settled message file is read once, as a
//! stream in bounded memory, into one exchange or status event
//! (directory following in `settled`).

use std::collections::HashSet;
use std::io::BufReader;
use std::path::Path;

use tracing::{debug, warn};

use super::settled::{Listed, WholeFiles};
use super::{Item, Rejected, SourceContext};
use crate::config::EdxmlInput;
use crate::parse::edxml::{read_message, EdxmlError};

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
    let reader = EdxmlFiles {
        input,
        unreadable: HashSet::new(),
    };
    super::settled::run(ctx, &input.path, input.settle, files_read, reader);
}

struct EdxmlFiles<'a> {
    input: &'a EdxmlInput,
    /// Files that could not be opened, logged once.
    unreadable: HashSet<String>,
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
        let parsed = read_message(BufReader::with_capacity(READ_BUFFER, file), max);
        // A file that changed while it was read is read again once it settles.
        if !f.unchanged() {
            debug!(source = %name, path = %f.path, "edXML file changed while read; waiting for it to settle");
            return None;
        }
        self.unreadable.remove(&f.path);
        Some(vec![match parsed {
            Err(e) => reject(e.to_string()),
            Ok(msg) => match msg.to_event(&ctx.agency_code, ctx.timezone) {
                Ok(ev) => Item::Event(ev),
                Err(reason) => reject(reason),
            },
        }])
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
