//! Documents (README "Classification"): exchange events and signatures merged
//! into one document, order-independently, and the class that follows.
//!
//! The class rule lives here, as a method of the document, because it reads
//! nothing but the document's own fields and the required roles.

use super::{Channel, Class, Confidentiality, Direction, DocStatus, ExchangeEvent, Role};

/// Everything known about one document, keyed by `(direction, doc_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub(crate) direction: Direction,
    pub(crate) doc_id: String,
    /// Earliest exchange time, Unix seconds.
    pub(crate) time: i64,
    /// Whether any exchange event was electronic.
    pub(crate) electronic: bool,
    /// Highest confidentiality of any exchange event.
    pub(crate) confidentiality: Confidentiality,
    pub(crate) unit: String,
    pub(crate) doc_number: String,
    pub(crate) doc_type: String,
    pub(crate) subject: String,
    pub(crate) counterpart: String,
    /// sha256 values of the exchange events, sorted, to join signatures.
    pub(crate) shas: Vec<String>,
    /// Bit mask of the roles with a valid signature.
    pub(crate) roles: u8,
    /// Signer names seen (sorted, at most [`MAX_SIGNERS`]).
    pub(crate) signers: Vec<String>,
    /// Number of exchange events merged.
    pub(crate) events: u32,
    /// edXML `BussinessDocType`s seen, as bits `1 << type` (0 new, 1 revoke, 2 update, 3 replace).
    pub(crate) business: u8,
    /// edXML status messages about this document.
    pub(crate) status: DocStatus,
}

/// edXML business types, as `BussinessDocType` numbers them.
pub(crate) const BUSINESS_TYPES: [&str; 4] = ["new", "revoke", "update", "replace"];

/// Signer names kept per document, to bound its size.
pub(crate) const MAX_SIGNERS: usize = 4;

impl Document {
    /// A document as its first exchange event describes it.
    pub(crate) fn from_event(e: &ExchangeEvent) -> Document {
        Document {
            direction: e.direction,
            doc_id: e.doc_id.clone(),
            time: e.time,
            electronic: e.channel == Channel::Electronic,
            confidentiality: e.confidentiality,
            unit: e.unit.clone(),
            doc_number: e.doc_number.clone(),
            doc_type: e.doc_type.clone(),
            subject: e.subject.clone(),
            counterpart: e.counterpart.clone(),
            shas: e.sha256.iter().cloned().collect(),
            roles: 0,
            signers: Vec::new(),
            events: 1,
            business: 0,
            status: DocStatus::default(),
        }
    }

    /// Whether an edXML revocation (`BussinessDocType` 1) was exchanged for it.
    pub(crate) fn revoked(&self) -> bool {
        self.business & (1 << 1) != 0
    }

    /// Names of the edXML business types seen.
    pub(crate) fn business_names(&self) -> Vec<&'static str> {
        (0..4)
            .filter(|t| self.business & (1 << t) != 0)
            .map(|t| BUSINESS_TYPES[t])
            .collect()
    }

    /// Merges another exchange event; returns the sha256 it added, if new.
    ///
    /// Descriptive fields come from the earliest event (ties: the smallest
    /// values), so the result does not depend on arrival order.
    pub(crate) fn merge_event(&mut self, e: &ExchangeEvent) -> Option<String> {
        self.events += 1;
        self.electronic |= e.channel == Channel::Electronic;
        self.confidentiality = self.confidentiality.max(e.confidentiality);
        let candidate = (
            e.time,
            &e.unit,
            &e.doc_number,
            &e.doc_type,
            &e.subject,
            &e.counterpart,
        );
        let current = (
            self.time,
            &self.unit,
            &self.doc_number,
            &self.doc_type,
            &self.subject,
            &self.counterpart,
        );
        if candidate < current {
            self.time = e.time;
            self.unit = e.unit.clone();
            self.doc_number = e.doc_number.clone();
            self.doc_type = e.doc_type.clone();
            self.subject = e.subject.clone();
            self.counterpart = e.counterpart.clone();
        }
        let sha = e.sha256.as_ref()?;
        self.add_sha(sha).then(|| sha.clone())
    }

    /// Adds a file's sha256 to the document; false if it had it already.
    pub(crate) fn add_sha(&mut self, sha: &str) -> bool {
        match self.shas.binary_search_by(|s| s.as_str().cmp(sha)) {
            Ok(_) => false,
            Err(i) => {
                self.shas.insert(i, sha.to_string());
                true
            }
        }
    }

    /// Records valid signatures (a role mask and signer names).
    pub(crate) fn add_signatures(&mut self, roles: u8, signers: &[String]) {
        self.roles |= roles;
        for s in signers {
            add_signer(&mut self.signers, s);
        }
    }

    /// The class under the given required roles, first match wins.
    pub(crate) fn class(&self, required_roles: u8) -> Class {
        if self.confidentiality.is_secret() {
            Class::SecretExempt
        } else if !self.electronic {
            Class::Paper
        } else if self.roles & required_roles == required_roles {
            Class::ElectronicSigned
        } else {
            Class::ElectronicUnsigned
        }
    }

    /// Role names with a valid signature.
    pub(crate) fn role_names(&self) -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|r| self.roles & r.bit() != 0)
            .map(Role::as_str)
            .collect()
    }
}

/// Adds a signer name to a small sorted set, keeping the smallest names when full.
pub(crate) fn add_signer(signers: &mut Vec<String>, name: &str) {
    if name.is_empty() {
        return;
    }
    if let Err(i) = signers.binary_search_by(|s| s.as_str().cmp(name)) {
        signers.insert(i, name.to_string());
        signers.truncate(MAX_SIGNERS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: u8 = 3;

    fn event(time: i64, channel: Channel, conf: Confidentiality) -> ExchangeEvent {
        ExchangeEvent {
            event_id: None,
            time,
            doc_id: "D".into(),
            direction: Direction::Outgoing,
            channel,
            confidentiality: conf,
            unit: format!("unit-{time}"),
            doc_number: String::new(),
            doc_type: String::new(),
            subject: String::new(),
            counterpart: String::new(),
            sha256: Some(format!("sha-{time}")),
        }
    }

    #[test]
    fn class_precedence_secret_then_signed_then_unsigned_then_paper() {
        let mut d = Document::from_event(&event(1, Channel::Electronic, Confidentiality::Normal));
        assert_eq!(d.class(BOTH), Class::ElectronicUnsigned);
        d.add_signatures(Role::Person.bit(), &[]);
        assert_eq!(
            d.class(BOTH),
            Class::ElectronicUnsigned,
            "one role is not enough"
        );
        d.add_signatures(Role::Organization.bit(), &[]);
        assert_eq!(d.class(BOTH), Class::ElectronicSigned);
        d.merge_event(&event(2, Channel::Paper, Confidentiality::Mat));
        assert_eq!(
            d.class(BOTH),
            Class::SecretExempt,
            "any secret event exempts the document"
        );
        let p = Document::from_event(&event(1, Channel::Paper, Confidentiality::Normal));
        assert_eq!(p.class(BOTH), Class::Paper);
        let mut p2 = p.clone();
        p2.add_signatures(BOTH, &[]);
        assert_eq!(
            p2.class(BOTH),
            Class::Paper,
            "signatures do not make paper electronic"
        );
    }

    #[test]
    fn one_electronic_event_makes_the_document_electronic() {
        let mut d = Document::from_event(&event(5, Channel::Paper, Confidentiality::Normal));
        d.merge_event(&event(9, Channel::Electronic, Confidentiality::Normal));
        d.add_signatures(BOTH, &[]);
        assert_eq!(d.class(BOTH), Class::ElectronicSigned);
    }

    #[test]
    fn required_roles_come_from_config() {
        let mut d = Document::from_event(&event(1, Channel::Electronic, Confidentiality::Normal));
        d.add_signatures(Role::Organization.bit(), &[]);
        assert_eq!(d.class(Role::Organization.bit()), Class::ElectronicSigned);
        assert_eq!(d.class(BOTH), Class::ElectronicUnsigned);
    }

    #[test]
    fn merge_is_order_independent_and_keeps_the_earliest_time() {
        let events = [
            event(30, Channel::Paper, Confidentiality::Normal),
            event(10, Channel::Electronic, Confidentiality::Normal),
            event(20, Channel::Paper, Confidentiality::Normal),
        ];
        let mut a = Document::from_event(&events[0]);
        a.merge_event(&events[1]);
        a.merge_event(&events[2]);
        let mut b = Document::from_event(&events[2]);
        b.merge_event(&events[1]);
        b.merge_event(&events[0]);
        assert_eq!(a, b);
        assert_eq!(a.time, 10);
        assert_eq!(a.unit, "unit-10");
        assert_eq!(a.shas.len(), 3);
    }
}
