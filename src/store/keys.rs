//! The one table of the store's keys: every prefix, what it holds, and the
//! name a snapshot line gives it. Snapshot, rebuild and migrations read it
//! from here, so a new kind of key is added in one place.

/// Layout version (`u32`, little-endian).
pub(crate) const KEY_VERSION: &[u8] = b"\x00version";
/// Time zone and required roles the counts were made with.
pub(crate) const KEY_SETTINGS: &[u8] = b"\x00settings";
/// Creator and migration history ([`super::migrate::Meta`]), since layout 2.
pub(crate) const KEY_META: &[u8] = b"\x00meta";
/// Present while an import is unfinished: such a store is refused.
pub(crate) const KEY_IMPORTING: &[u8] = b"\x00importing";
/// Written and removed to learn whether the store takes writes.
pub(crate) const KEY_PROBE: &[u8] = b"\x00probe";
/// The commit proof ([`super::proof::Proof`]), since layout 4.
pub(crate) const KEY_COMMIT: &[u8] = b"\x00commit";

pub(crate) const PREFIX_PAGE: u8 = b'P';
pub(crate) const PREFIX_PAGE_KEY: u8 = b'I';
pub(crate) const PREFIX_DAY: u8 = b'a';
pub(crate) const PREFIX_SHA_LOG: u8 = b'h';
pub(crate) const PREFIX_PENDING: u8 = b's';
pub(crate) const PREFIX_SOURCE: u8 = b'p';
pub(crate) const PREFIX_SEEN: u8 = b'e';
/// Per-day counts of documents rejected by a receiver (edXML status 02).
pub(crate) const PREFIX_REJECTED_DAY: u8 = b'r';
/// edXML files already read, per source: `x{source}\0{path}`.
pub(crate) const PREFIX_EDXML_FILE: u8 = b'x';
/// Verified signatures of a signed file: `V{sha256 hex}{index, u16 big-endian}`.
pub(crate) const PREFIX_VERDICT: u8 = b'V';
/// Alert rule state: `A{rule}`.
pub(crate) const PREFIX_ALERT: u8 = b'A';
/// Mail waiting to be sent: `O{seq, u64 big-endian}`.
pub(crate) const PREFIX_OUTBOX: u8 = b'O';

/// Key prefixes of the alert state and the mail outbox: what the daemon
/// decided to say, carried from an old store to its replacement.
pub(crate) const ALERT_PREFIXES: [u8; 2] = [PREFIX_ALERT, PREFIX_OUTBOX];

/// What a stored key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Version,
    Settings,
    Meta,
    Importing,
    Probe,
    Commit,
    Page,
    PageIndex,
    Day,
    RejectedDay,
    ShaLog,
    Pending,
    Seen,
    Source,
    EdxmlFile,
    Verdict,
    AlertState,
    AlertOutbox,
}

impl KeyKind {
    /// The kind of `key`, `None` for a key docflow never writes.
    pub(crate) fn of(key: &[u8]) -> Option<KeyKind> {
        use KeyKind::*;
        Some(match key {
            KEY_VERSION => Version,
            KEY_SETTINGS => Settings,
            KEY_META => Meta,
            KEY_IMPORTING => Importing,
            KEY_PROBE => Probe,
            KEY_COMMIT => Commit,
            [PREFIX_PAGE, ..] => Page,
            [PREFIX_PAGE_KEY, ..] => PageIndex,
            [PREFIX_DAY, ..] => Day,
            [PREFIX_REJECTED_DAY, ..] => RejectedDay,
            [PREFIX_SHA_LOG, ..] => ShaLog,
            [PREFIX_PENDING, ..] => Pending,
            [PREFIX_SEEN, ..] => Seen,
            [PREFIX_SOURCE, ..] => Source,
            [PREFIX_EDXML_FILE, ..] => EdxmlFile,
            [PREFIX_VERDICT, ..] => Verdict,
            [PREFIX_ALERT, ..] => AlertState,
            [PREFIX_OUTBOX, ..] => AlertOutbox,
            _ => return None,
        })
    }

    /// The `type` of a snapshot line holding this kind of key.
    pub fn name(self) -> &'static str {
        use KeyKind::*;
        match self {
            Version => "version",
            Settings => "settings",
            Meta => "meta",
            Importing => "importing",
            Probe => "probe",
            Commit => "commit",
            Page => "document_page",
            PageIndex => "page_index",
            Day => "day_counts",
            RejectedDay => "rejected_day_counts",
            ShaLog => "sha256_log",
            Pending => "pending_signatures",
            Seen => "seen_event_ids",
            Source => "source_state",
            EdxmlFile => "edxml_file_read",
            Verdict => "signature_verdict",
            AlertState => "alert_state",
            AlertOutbox => "alert_outbox",
        }
    }

    /// Keys about the store itself, never carried by a snapshot.
    pub(crate) fn is_internal(self) -> bool {
        matches!(
            self,
            KeyKind::Version
                | KeyKind::Meta
                | KeyKind::Importing
                | KeyKind::Probe
                | KeyKind::Commit
        )
    }

    /// A stable code of the kind, for records that name kinds: the key
    /// prefix, or 1 for the settings.
    pub(crate) fn byte(self) -> u8 {
        use KeyKind::*;
        match self {
            Settings => 1,
            Page => PREFIX_PAGE,
            PageIndex => PREFIX_PAGE_KEY,
            Day => PREFIX_DAY,
            RejectedDay => PREFIX_REJECTED_DAY,
            ShaLog => PREFIX_SHA_LOG,
            Pending => PREFIX_PENDING,
            Seen => PREFIX_SEEN,
            Source => PREFIX_SOURCE,
            EdxmlFile => PREFIX_EDXML_FILE,
            Verdict => PREFIX_VERDICT,
            AlertState => PREFIX_ALERT,
            AlertOutbox => PREFIX_OUTBOX,
            Version | Meta | Importing | Probe | Commit => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_has_its_own_kind_and_name() {
        let keys: [&[u8]; 18] = [
            KEY_VERSION,
            KEY_SETTINGS,
            KEY_META,
            KEY_IMPORTING,
            KEY_PROBE,
            KEY_COMMIT,
            b"P1",
            b"I1",
            b"a1234",
            b"r1234",
            b"h0",
            b"sab",
            b"e0",
            b"pexchange",
            b"xs\0/p",
            b"Vab\0\x01",
            b"Arule",
            b"O12345678",
        ];
        let kinds: Vec<KeyKind> = keys.iter().map(|k| KeyKind::of(k).unwrap()).collect();
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), keys.len(), "names are distinct");
        assert_eq!(KeyKind::of(b"Z"), None);
        assert_eq!(KeyKind::of(b"\x00other"), None);
        assert_eq!(KeyKind::of(b""), None);
    }
}
