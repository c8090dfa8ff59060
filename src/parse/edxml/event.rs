//! What an edXML message means for one agency: an exchange event (with its
//! business type) or a status event, or the reason it cannot be used.

use chrono_tz::Tz;

use super::{Message, Organ};
use crate::model::{
    Channel, Confidentiality, Direction, Event, ExchangeEvent, StatusEvent, STATUS_CODES,
};
use crate::parse::time::parse_time;

/// Parses `yyyy/MM/dd HH:mm:ss` or `yyyy/MM/dd` (local), or any time format of the README ("Input": times).
fn edxml_time(s: &str, tz: Tz) -> Result<i64, String> {
    let t = s.trim();
    let b = t.as_bytes();
    let iso = if b.len() >= 10 && b[4] == b'/' && b[7] == b'/' {
        let mut v = t.to_string();
        v.replace_range(4..5, "-");
        v.replace_range(7..8, "-");
        if v.len() == 10 {
            v.push_str(" 00:00:00");
        }
        v
    } else {
        t.to_string()
    };
    parse_time(&iso, tz).map_err(|e| e.to_string())
}

fn same_organ(a: &str, b: &str) -> bool {
    !a.is_empty() && a.trim().eq_ignore_ascii_case(b.trim())
}

impl Message {
    /// Whether this is a status message (it carries a `StatusCode`).
    pub(crate) fn is_status(&self) -> bool {
        !self.status_code.is_empty()
    }

    /// The exchange event (with its business type 0–3) or status event this
    /// message means for the agency `agency_code`, or why it cannot be used.
    pub(crate) fn to_event(&self, agency_code: &str, tz: Tz) -> Result<Event, String> {
        if self.is_status() {
            return self.status_event(agency_code, tz);
        }
        if self.document_id.is_empty() {
            return Err("neither a document message (MessageHeader/DocumentId) nor a status message (MessageHeader/StatusCode)".into());
        }
        if self.from.id.is_empty() {
            return Err("missing From/OrganId".into());
        }
        let direction = if same_organ(&self.from.id, agency_code) {
            Direction::Outgoing
        } else if self.to.iter().any(|t| same_organ(&t.id, agency_code)) {
            Direction::Incoming
        } else {
            let to: Vec<&str> = self.to.iter().map(|t| t.id.as_str()).collect();
            return Err(format!(
                "message is neither from nor to this agency ({agency_code}): From/OrganId {}, To/OrganId [{}]",
                self.from.id,
                to.join(", ")
            ));
        };
        let mut time: Option<i64> = None;
        for ts in &self.trace_timestamps {
            let t = edxml_time(ts, tz).map_err(|e| format!("TraceHeader/Timestamp: {e}"))?;
            time = Some(time.map_or(t, |old| old.min(t)));
        }
        let time =
            match time {
                Some(t) => t,
                None if !self.promulgation_date.is_empty() => {
                    edxml_time(&self.promulgation_date, tz)
                        .map_err(|e| format!("PromulgationInfo/PromulgationDate: {e}"))?
                }
                None => return Err(
                    "no time: neither TraceHeader/Timestamp nor PromulgationInfo/PromulgationDate"
                        .into(),
                ),
            };
        let business = match self.business_doc_type.as_str() {
            "" => 0,
            s => match s.parse::<u8>() {
                Ok(n @ 0..=3) => n,
                _ => return Err(format!("unknown BussinessDocType {s:?} (0, 1, 2, 3)")),
            },
        };
        let doc_number = match (self.code_number.is_empty(), self.code_notation.is_empty()) {
            (false, false) => format!("{}/{}", self.code_number, self.code_notation),
            (false, true) => self.code_number.clone(),
            (true, _) => self.code_notation.clone(),
        };
        let counterpart = match direction {
            Direction::Outgoing => self
                .to
                .iter()
                .filter(|t| !t.id.is_empty())
                .map(Organ::label)
                .collect::<Vec<_>>()
                .join("; "),
            Direction::Incoming => self.from.label(),
        };
        let exchange = ExchangeEvent {
            event_id: None,
            time,
            doc_id: self.document_id.clone(),
            direction,
            channel: Channel::Electronic,
            confidentiality: Confidentiality::Normal,
            unit: String::new(),
            doc_number,
            doc_type: self.type_name.clone(),
            subject: self.subject.clone(),
            counterpart: truncate_chars(&counterpart, 1000),
            sha256: self.attachments.first().and_then(|a| a.sha256.clone()),
        };
        let mut more: Vec<String> = self
            .attachments
            .iter()
            .skip(1)
            .filter_map(|a| a.sha256.clone())
            .filter(|sha| exchange.sha256.as_ref() != Some(sha))
            .collect();
        more.sort_unstable();
        more.dedup();
        Ok(Event::EdxmlExchange(exchange, business, more))
    }

    fn status_event(&self, agency_code: &str, tz: Tz) -> Result<Event, String> {
        let code = self
            .status_code
            .parse::<u8>()
            .ok()
            .filter(|c| STATUS_CODES.contains(c))
            .ok_or_else(|| {
                format!(
                    "unknown StatusCode {:?} (01–06, 13, 15, 16)",
                    self.status_code
                )
            })?;
        if self.response_for_document.is_empty() {
            return Err("status message without ResponseFor/DocumentId".into());
        }
        if self.status_timestamp.is_empty() {
            return Err("status message without Timestamp".into());
        }
        let time = edxml_time(&self.status_timestamp, tz).map_err(|e| format!("Timestamp: {e}"))?;
        // 13 (take back) is sent by the document's sender; every other code by its receiver.
        let sent_by_sender = code == 13;
        let we_sent_status = if same_organ(&self.from.id, agency_code) {
            true
        } else if same_organ(&self.response_for_organ, agency_code)
            || self.to.iter().any(|t| same_organ(&t.id, agency_code))
        {
            false
        } else {
            return Err(format!(
                "status message is neither from nor to this agency ({agency_code}): From/OrganId {}, ResponseFor/OrganId {}",
                self.from.id, self.response_for_organ
            ));
        };
        let direction = if we_sent_status == sent_by_sender {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        Ok(Event::Status(StatusEvent {
            time,
            doc_id: self.response_for_document.clone(),
            direction,
            code,
        }))
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
