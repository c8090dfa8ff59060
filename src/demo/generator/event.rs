//! The events of the synthetic feed: what one exchange or signature line
//! says, before it is written in one of the formats (`jsonl`, `csv`).

use std::borrow::Cow;

use super::population::ISSUERS;
use super::rng::{fnv1a, SplitMix64};
use super::text::{push_hex, push_padded};

/// The signer's role, spelled in the line from `ROLE_PERSON` / `ROLE_ORGANIZATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Person,
    Organization,
}

/// How a line writes its time: RFC 3339 local or UTC, naive with a space or `T`, or day first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeStyle {
    Local,
    Utc,
    Naive,
    NaiveT,
    DayFirst,
}

/// Whether a line is valid, an exact copy of the one before, or deliberately bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    Valid,
    Duplicate,
    Bad(BadLine),
}

/// What makes a bad line bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadLine {
    Date(&'static str),
    Channel(&'static str),
    /// `None` leaves the field out.
    DocId(Option<&'static str>),
    Role,
    Truncated,
    Array,
}

/// Which keys a signature names its document by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    Both,
    Sha,
    DocId,
}

/// The document a line is about: its sequence number, direction and sha256 seed.
#[derive(Debug, Clone, Copy)]
pub(super) struct DocRef {
    pub(super) seq: u64,
    pub(super) outgoing: bool,
    pub(super) sha_seed: u64,
}

impl DocRef {
    /// Writes the doc_id, `H40.27.01-DI-0000042` (outgoing) or `H40.27.01-DEN-…`.
    pub(super) fn push_doc_id(&self, buf: &mut String) {
        buf.push_str(if self.outgoing {
            "H40.27.01-DI-"
        } else {
            "H40.27.01-DEN-"
        });
        push_padded(buf, self.seq, 7);
    }

    /// Writes the document's sha256, the same on every line about it.
    pub(super) fn push_sha256(&self, buf: &mut String) {
        let mut rng = SplitMix64::new(self.sha_seed);
        for _ in 0..4 {
            push_hex(buf, rng.next_u64(), b"0123456789abcdef");
        }
    }
}

/// "Số, ký hiệu" of a document.
#[derive(Debug, Clone, Copy)]
pub(super) struct DocNumber {
    pub(super) n: u32,
    pub(super) abbr: &'static str,
    pub(super) issuer: &'static str,
    pub(super) office: &'static str,
}

impl DocNumber {
    /// Writes "Số, ký hiệu": `245/KH-UBND`, or `245/UBND-VP` for a công văn.
    pub(super) fn push(&self, buf: &mut String) {
        push_padded(buf, u64::from(self.n), 1);
        buf.push('/');
        if self.abbr.is_empty() {
            buf.push_str(self.issuer);
            buf.push('-');
            buf.push_str(self.office);
        } else {
            buf.push_str(self.abbr);
            buf.push('-');
            buf.push_str(self.issuer);
        }
    }
}

/// Who signed, for which organisation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Signer {
    pub(super) name: &'static str,
    pub(super) organization: &'static str,
    /// Written as a certificate subject (`CN=…; O=…; C=VN`), which puts `;` in CSV fields.
    pub(super) distinguished: bool,
}

impl Signer {
    pub(super) fn text(&self) -> Cow<'static, str> {
        if self.distinguished {
            format!("CN={}; O={}; C=VN", self.name, self.organization).into()
        } else {
            self.name.into()
        }
    }

    /// One certificate per signer: the serial and the issuing CA follow from the name.
    pub(super) fn certificate(&self) -> (u64, u64, &'static str) {
        let hash = fnv1a(self.name);
        let mut rng = SplitMix64::new(hash);
        let issuer = ISSUERS[rng.weighted_index(&ISSUERS.map(|(_, w)| w))].0;
        (rng.next_u64(), rng.next_u64(), issuer)
    }
}

/// One exchange line.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExchangeEvent {
    pub(super) id: u64,
    pub(super) time: i64,
    pub(super) style: TimeStyle,
    pub(super) doc: DocRef,
    pub(super) direction: &'static str,
    pub(super) channel: &'static str,
    pub(super) confidentiality: Option<&'static str>,
    pub(super) unit: Option<&'static str>,
    pub(super) number: DocNumber,
    pub(super) doc_type: &'static str,
    pub(super) subject: &'static str,
    pub(super) counterpart: &'static str,
    pub(super) line: Line,
}

/// One signature line.
#[derive(Debug, Clone, Copy)]
pub(super) struct SignatureEvent {
    pub(super) id: u64,
    pub(super) time: i64,
    pub(super) style: TimeStyle,
    pub(super) doc: DocRef,
    pub(super) link: Link,
    pub(super) role: &'static str,
    /// `None` leaves the field out (JSON default `true`).
    pub(super) valid: Option<bool>,
    pub(super) signer: Signer,
    pub(super) late: bool,
    pub(super) line: Line,
}

impl SignatureEvent {
    /// The role as written: empty on a line made bad by its role.
    pub(super) fn role(&self) -> &'static str {
        if self.line == Line::Bad(BadLine::Role) {
            ""
        } else {
            self.role
        }
    }
}

/// A line of either file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event {
    Exchange(ExchangeEvent),
    Signature(SignatureEvent),
}

impl Event {
    /// Unix time of the line, the order of its file.
    pub(super) fn time(&self) -> i64 {
        match self {
            Event::Exchange(ex) => ex.time,
            Event::Signature(sig) => sig.time,
        }
    }
}
