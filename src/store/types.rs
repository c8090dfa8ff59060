//! What the store holds, as the rest of the crate sees it: document groups
//! and their signatures, source positions and counters, settings, and the
//! changes of one commit.

use crate::aggregate::{Day, DayCounts};
use crate::model::Direction;
use crate::model::Document;

/// Valid signatures collected under one join key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signatures {
    pub roles: u8,
    pub signers: Vec<String>,
}

/// Everything stored under one `doc_id`: its outgoing and incoming documents,
/// the signatures that name this `doc_id`, the signatures that name a sha256
/// of its documents, and the event ids seen for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocGroup {
    pub signatures: Signatures,
    /// Signatures joined by sha256, per sha256 of this group's documents.
    pub sha_signatures: Vec<(String, Signatures)>,
    pub outgoing: Option<Document>,
    pub incoming: Option<Document>,
    /// edXML statuses that arrived before their document, per direction.
    pub pending_status: [crate::model::DocStatus; 2],
}

impl DocGroup {
    pub fn doc(&self, d: Direction) -> &Option<Document> {
        match d {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    pub fn doc_mut(&mut self, d: Direction) -> &mut Option<Document> {
        match d {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }

    /// Signatures joined to this group by `sha`.
    pub fn sha_signatures(&self, sha: &str) -> Option<&Signatures> {
        self.sha_signatures
            .iter()
            .find(|(s, _)| s == sha)
            .map(|(_, sig)| sig)
    }

    pub fn sha_signatures_mut(&mut self, sha: &str) -> &mut Signatures {
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
    pub fn is_empty(&self) -> bool {
        self.roles == 0 && self.signers.is_empty()
    }

    /// Adds the roles and signer names of `other`.
    pub fn merge(&mut self, other: &Signatures) {
        self.roles |= other.roles;
        for s in &other.signers {
            crate::model::add_signer(&mut self.signers, s);
        }
    }
}

/// Signatures naming a sha256 that no document carries yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingSha {
    pub signatures: Signatures,
}

/// Where a file source stands in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePos {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (always at a record boundary).
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    /// Length and hash of the file's first bytes, to recognise it after a copy or truncation.
    pub head_len: u32,
    pub head_hash: u64,
    /// Inode of a live file this one is a copy of (0 = none): not read while that file lives.
    pub shadow_of: u64,
}

/// Durable state of one source: its position and event counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    pub accepted: u64,
    pub duplicate: u64,
    pub invalid: u64,
    pub last_event_time: Option<i64>,
    /// Length of `rejected/{source}.jsonl` after the last committed batch.
    pub rejected_len: u64,
    pub files: Vec<FilePos>,
    /// Files let go (rotated away or truncated), remembered to recognise copies.
    pub retired: Vec<FilePos>,
    /// Where an HTTP feed source stands (default for file sources).
    pub feed: FeedPos,
}

/// Where an HTTP feed source stands: the cursor to request next and how many
/// events of the page served at that cursor were already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedPos {
    /// `None` = the feed's beginning (no cursor parameter).
    pub cursor: Option<String>,
    /// Events at the start of the page at `cursor` already read (a feed may
    /// answer `next_cursor: null` and serve the same page grown later).
    pub skip: u64,
    /// Pages committed so far, for status.
    pub pages: u64,
}

/// Settings that decide classes and days; a change means recounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub timezone: String,
    pub required_roles: u8,
}

/// The document groups of one page, in doc_id order.
pub type Page = Vec<(String, DocGroup)>;

/// Everything one batch changes, written in one atomic step.
#[derive(Debug, Default)]
pub struct Commit {
    /// Encoded pages of document groups, by page key.
    pub pages: Vec<(String, sled::IVec)>,
    /// Keys of pages created by this batch.
    pub new_pages: Vec<String>,
    pub days: Vec<(Day, DayCounts)>,
    /// (sha256, doc_id) pairs first seen in this batch.
    pub sha_log: Vec<(String, String)>,
    /// Event-id hashes first seen in this batch, per source kind (exchange, signature).
    pub seen: [Vec<u64>; 2],
    pub pending_put: Vec<(String, PendingSha)>,
    pub pending_remove: Vec<String>,
    pub sources: Vec<(String, SourceState)>,
    /// Days whose rejected-document counts changed (per direction).
    pub rejected_days: Vec<(Day, [u64; 2])>,
    /// edXML files read by this batch: (source, path).
    pub edxml_files: Vec<(String, String)>,
}
