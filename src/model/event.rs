//! Validated events: what one record of an exchange log, a signature log or
//! an edXML status message says, whatever format it was read from.

use super::{Channel, Confidentiality, Direction, Role};

/// Which log a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Exchange,
    Signature,
}

impl SourceKind {
    /// The name used in config (`kind =`) and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Exchange => "exchange",
            SourceKind::Signature => "signature",
        }
    }

    /// The byte that encodes this kind in the store.
    pub fn as_byte(self) -> u8 {
        match self {
            SourceKind::Exchange => 0,
            SourceKind::Signature => 1,
        }
    }
}

/// One exchange event, validated (README "Input": exchange events).
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeEvent {
    pub event_id: Option<String>,
    pub time: i64,
    pub doc_id: String,
    pub direction: Direction,
    pub channel: Channel,
    pub confidentiality: Confidentiality,
    pub unit: String,
    pub doc_number: String,
    pub doc_type: String,
    pub subject: String,
    pub counterpart: String,
    pub sha256: Option<String>,
}

/// One signature event, validated (README "Input": signature events).
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureEvent {
    pub event_id: Option<String>,
    pub time: i64,
    pub doc_id: Option<String>,
    pub sha256: Option<String>,
    pub role: Role,
    pub valid: bool,
    pub signer: String,
}

/// A status message of the exchange axis about one document (edXML `StatusCode`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub time: i64,
    /// The document the status is about (`ResponseFor/DocumentId`).
    pub doc_id: String,
    /// Direction of that document as this agency sees it.
    pub direction: Direction,
    /// QCVN 102 status code: 1–6, 13, 15 or 16.
    pub code: u8,
}

/// A validated event of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Exchange(ExchangeEvent),
    Signature(SignatureEvent),
    /// An exchange event read from an edXML message, with its
    /// `BussinessDocType` (0 new, 1 revoke, 2 update, 3 replace).
    EdxmlExchange(ExchangeEvent, u8),
    /// A status message (edXML), about a document of the exchange log.
    Status(StatusEvent),
}

impl Event {
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Event::Exchange(e) | Event::EdxmlExchange(e, _) => e.event_id.as_deref(),
            Event::Signature(s) => s.event_id.as_deref(),
            Event::Status(_) => None,
        }
    }

    pub fn time(&self) -> i64 {
        match self {
            Event::Exchange(e) | Event::EdxmlExchange(e, _) => e.time,
            Event::Signature(s) => s.time,
            Event::Status(s) => s.time,
        }
    }
}
