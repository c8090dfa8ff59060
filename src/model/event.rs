//! Validated events: what one record of an exchange log, a signature log or
//! an edXML status message says, whatever format it was read from.

use super::{Channel, Confidentiality, Direction, Role, SignatureVerdict};

/// Which log a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SourceKind {
    Exchange,
    Signature,
}

impl SourceKind {
    /// The name used in config (`kind =`) and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SourceKind::Exchange => "exchange",
            SourceKind::Signature => "signature",
        }
    }

    /// The byte that encodes this kind in the store.
    pub(crate) fn as_byte(self) -> u8 {
        match self {
            SourceKind::Exchange => 0,
            SourceKind::Signature => 1,
        }
    }
}

/// One exchange event, validated (README "Input": exchange events).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExchangeEvent {
    pub(crate) event_id: Option<String>,
    pub(crate) time: i64,
    pub(crate) doc_id: String,
    pub(crate) direction: Direction,
    pub(crate) channel: Channel,
    pub(crate) confidentiality: Confidentiality,
    pub(crate) unit: String,
    pub(crate) doc_number: String,
    pub(crate) doc_type: String,
    pub(crate) subject: String,
    pub(crate) counterpart: String,
    pub(crate) sha256: Option<String>,
}

/// One signature event, validated (README "Input": signature events).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignatureEvent {
    pub(crate) event_id: Option<String>,
    pub(crate) time: i64,
    pub(crate) doc_id: Option<String>,
    pub(crate) sha256: Option<String>,
    /// `None` for a verified signature no role rule matched: it satisfies no requirement.
    pub(crate) role: Option<Role>,
    pub(crate) valid: bool,
    pub(crate) signer: String,
    /// Set when docflowd verified the signature itself (PDF files): kept by sha256.
    pub(crate) verdict: Option<Box<SignatureVerdict>>,
}

/// A status message of the exchange axis about one document (edXML `StatusCode`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusEvent {
    pub(crate) time: i64,
    /// The document the status is about (`ResponseFor/DocumentId`).
    pub(crate) doc_id: String,
    /// Direction of that document as this agency sees it.
    pub(crate) direction: Direction,
    /// QCVN 102 status code: 1–6, 13, 15 or 16.
    pub(crate) code: u8,
}

/// A validated event of either kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Exchange(ExchangeEvent),
    Signature(SignatureEvent),
    /// An exchange event read from an edXML message, with its
    /// `BussinessDocType` (0 new, 1 revoke, 2 update, 3 replace) and the
    /// sha256 of its attachments after the first (the first is the event's):
    /// signatures found in any of the message's files count for its document.
    EdxmlExchange(ExchangeEvent, u8, Vec<String>),
    /// A status message (edXML), about a document of the exchange log.
    Status(StatusEvent),
}

impl Event {
    pub(crate) fn event_id(&self) -> Option<&str> {
        match self {
            Event::Exchange(e) | Event::EdxmlExchange(e, ..) => e.event_id.as_deref(),
            Event::Signature(s) => s.event_id.as_deref(),
            Event::Status(_) => None,
        }
    }

    pub(crate) fn time(&self) -> i64 {
        match self {
            Event::Exchange(e) | Event::EdxmlExchange(e, ..) => e.time,
            Event::Signature(s) => s.time,
            Event::Status(s) => s.time,
        }
    }
}
