//! What the store holds, as the rest of the crate sees it: document groups
//! and their signatures, source positions and counters, settings, and the
//! changes of one commit.

use crate::aggregate::{Day, DayCounts};
use crate::model::Direction;
use crate::model::Document;

/// Valid signatures collected under one join key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Signatures {
    pub(crate) roles: u8,
    pub(crate) signers: Vec<String>,
}

/// Everything stored under one `doc_id`: its outgoing and incoming documents,
/// the signatures that name this `doc_id`, the signatures that name a sha256
/// of its documents, and the event ids seen for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DocGroup {
    pub(crate) signatures: Signatures,
    /// Signatures joined by sha256, per sha256 of this group's documents.
    pub(crate) sha_signatures: Vec<(String, Signatures)>,
    pub(crate) outgoing: Option<Document>,
    pub(crate) incoming: Option<Document>,
    /// edXML statuses that arrived before their document, per direction.
    pub(crate) pending_status: [crate::model::DocStatus; 2],
}

impl DocGroup {
    pub(crate) fn doc(&self, d: Direction) -> &Option<Document> {
        match d {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    pub(crate) fn doc_mut(&mut self, d: Direction) -> &mut Option<Document> {
        match d {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }

    /// Signatures joined to this group by `sha`.
    pub(crate) fn sha_signatures(&self, sha: &str) -> Option<&Signatures> {
        self.sha_signatures
            .iter()
            .find(|(s, _)| s == sha)
            .map(|(_, sig)| sig)
    }

    pub(crate) fn sha_signatures_mut(&mut self, sha: &str) -> &mut Signatures {
        let i = match self.sha_signatures.iter().position(|(s, _)| s == sha) {
            Some(i) => i,
            None => {
                self.sha_signatures
                    .push((sha.to_string(), Signatures::default()));
                self.sha_signatures.len() - 1
            }
        };
        &mut self.sha_signatures[i].1
    }
}

impl Signatures {
    pub(crate) fn is_empty(&self) -> bool {
        self.roles == 0 && self.signers.is_empty()
    }

    /// Adds the roles and signer names of `other`.
    pub(crate) fn merge(&mut self, other: &Signatures) {
        self.roles |= other.roles;
        for s in &other.signers {
            crate::model::add_signer(&mut self.signers, s);
        }
    }
}

/// Signatures naming a sha256 that no document carries yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PendingSha {
    pub(crate) signatures: Signatures,
}

/// Where a file source stands in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilePos {
    pub path: String,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Bytes consumed (always at a record boundary).
    pub(crate) offset: u64,
    /// Lines consumed.
    pub(crate) line: u64,
    /// Length and hash of the file's first bytes, to recognise it after a copy or truncation.
    pub(crate) head_len: u32,
    pub(crate) head_hash: u64,
    /// Inode of a live file this one is a copy of (0 = none): not read while that file lives.
    pub(crate) shadow_of: u64,
}

/// Durable state of one source: its position and event counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    pub(crate) accepted: u64,
    pub(crate) duplicate: u64,
    pub(crate) invalid: u64,
    pub(crate) last_event_time: Option<i64>,
    /// Length of `rejected/{source}.jsonl` after the last committed batch.
    pub(crate) rejected_len: u64,
    pub(crate) files: Vec<FilePos>,
    /// Files let go (rotated away or truncated), remembered to recognise copies.
    pub(crate) retired: Vec<FilePos>,
    /// Where an HTTP feed source stands (default for file sources).
    pub(crate) feed: FeedPos,
}

/// Where an HTTP feed source stands: the cursor to request next and how many
/// events of the page served at that cursor were already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FeedPos {
    /// `None` = the feed's beginning (no cursor parameter).
    pub(crate) cursor: Option<String>,
    /// Events at the start of the page at `cursor` already read (a feed may
    /// answer `next_cursor: null` and serve the same page grown later).
    pub(crate) skip: u64,
    /// Pages committed so far, for status.
    pub(crate) pages: u64,
}

/// Settings that decide classes and days; a change means recounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) timezone: String,
    pub(crate) required_roles: u8,
}

/// The document groups of one page, in doc_id order.
pub(crate) type Page = Vec<(String, DocGroup)>;

/// Everything one batch changes, written in one atomic step.
#[derive(Debug, Default)]
pub(crate) struct Commit {
    /// Encoded pages of document groups, by page key.
    pub(crate) pages: Vec<(String, sled::IVec)>,
    /// Keys of pages created by this batch.
    pub(crate) new_pages: Vec<String>,
    pub(crate) days: Vec<(Day, DayCounts)>,
    /// (sha256, doc_id) pairs first seen in this batch.
    pub(crate) sha_log: Vec<(String, String)>,
    /// Event-id hashes first seen in this batch, per source kind (exchange, signature).
    pub(crate) seen: [Vec<u64>; 2],
    pub(crate) pending_put: Vec<(String, PendingSha)>,
    pub(crate) pending_remove: Vec<String>,
    pub sources: Vec<(String, SourceState)>,
    /// Days whose rejected-document counts changed (per direction).
    pub(crate) rejected_days: Vec<(Day, [u64; 2])>,
    /// edXML and PDF files read by this batch: (source, path).
    pub(crate) edxml_files: Vec<(String, String)>,
    /// Verified signatures of signed files: (sha256, verdict).
    pub(crate) verdicts: Vec<(String, crate::model::SignatureVerdict)>,
}
