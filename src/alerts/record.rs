//! What alerting keeps in the store: each rule's state (`A` + rule name)
//! with its notification counters and last mails sent, and the mails
//! waiting in the outbox (`O` + sequence number). JSON, with defaults, so
//! records written by older versions still decode.

use serde::{Deserialize, Serialize};

use super::mail::Mail;
use super::rules::Phase;

/// Notification counters of one rule, persisted with its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notifications {
    #[serde(default)]
    pub(crate) firing_sent: u64,
    #[serde(default)]
    pub(crate) firing_failed: u64,
    #[serde(default)]
    pub(crate) resolved_sent: u64,
    #[serde(default)]
    pub(crate) resolved_failed: u64,
}

impl Notifications {
    pub(super) fn count(&mut self, state: &str, sent: bool) {
        let n = match (state, sent) {
            ("resolved", true) => &mut self.resolved_sent,
            ("resolved", false) => &mut self.resolved_failed,
            (_, true) => &mut self.firing_sent,
            (_, false) => &mut self.firing_failed,
        };
        *n += 1;
    }
}

/// What is stored under `A` + rule name. Fields default so older records decode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleRecord {
    #[serde(default)]
    pub(crate) phase: Phase,
    /// Stale rules: the source's accepted-event count last seen, and when it last changed.
    #[serde(default)]
    pub(crate) activity_count: Option<u64>,
    #[serde(default)]
    pub(crate) activity_at: Option<i64>,
    #[serde(default)]
    pub(crate) notifications: Notifications,
    /// The last mails of this rule that were delivered, oldest first (at
    /// most [`SENT_KEPT`]): the console's list of mails sent.
    #[serde(default)]
    pub(crate) sent: Vec<SentMail>,
}

/// Delivered mails kept per rule.
pub(crate) const SENT_KEPT: usize = 10;

/// A delivered mail, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentMail {
    /// Unix seconds of the delivery.
    pub(crate) at: i64,
    /// `firing` or `resolved`.
    pub(crate) state: String,
    pub(crate) subject: String,
}

/// What is stored under `O` + sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OutboxEntry {
    pub(crate) mail: Mail,
    pub(crate) created: i64,
    pub(crate) attempts: u32,
    /// Unix milliseconds of the next try.
    pub(crate) next_attempt_ms: i64,
    #[serde(default)]
    pub(crate) last_error: Option<String>,
}

/// Whether a stored alert record (rule state `A…` or mail `O…`) decodes.
pub(crate) fn record_decodes(key: &[u8], value: &[u8]) -> bool {
    match key.first() {
        Some(b'A') => serde_json::from_slice::<RuleRecord>(value).is_ok(),
        Some(b'O') => key.len() == 9 && serde_json::from_slice::<OutboxEntry>(value).is_ok(),
        _ => false,
    }
}

pub(super) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("alert records serialise")
}
