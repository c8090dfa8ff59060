//! Alert state (`A` + rule name) and the mail outbox (`O` + sequence number):
//! values are opaque bytes encoded by `alerts`; a state change and its mails
//! are written in one atomic batch.

use std::collections::BTreeMap;

use super::keys::{PREFIX_ALERT, PREFIX_OUTBOX};
use super::{prefixed, Store, StoreError};

/// Stored keys and values, as they are.
pub(crate) type RawPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One atomic change of alert state and outbox.
#[derive(Debug, Default)]
pub(crate) struct AlertCommit {
    pub(crate) states: Vec<(String, Vec<u8>)>,
    pub(crate) outbox_put: Vec<(u64, Vec<u8>)>,
    pub(crate) outbox_remove: Vec<u64>,
}

impl AlertCommit {
    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty() && self.outbox_put.is_empty() && self.outbox_remove.is_empty()
    }
}

impl Store {
    /// Every stored rule state, by rule name.
    pub fn alert_states(&self) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.db.scan_prefix([PREFIX_ALERT]) {
            let (k, v) = item?;
            out.insert(String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec());
        }
        Ok(out)
    }

    /// Mails not yet delivered, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([PREFIX_OUTBOX]) {
            let (k, v) = item?;
            let seq: [u8; 8] = k
                .get(1..9)
                .and_then(|s| s.try_into().ok())
                .ok_or(super::codec::DecodeError("bad outbox key"))?;
            out.push((u64::from_be_bytes(seq), v.to_vec()));
        }
        Ok(out)
    }

    /// Every key and value under a one-byte prefix, as stored (alert state
    /// and outbox are carried this way from a store to its replacement).
    pub fn raw_with_prefix(&self, prefix: u8) -> Result<RawPairs, StoreError> {
        self.db
            .scan_prefix([prefix])
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Writes alert state and outbox records as they are, in one atomic
    /// batch; any other key is refused (it would escape the commit proof).
    pub fn put_raw(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in pairs {
            if !k
                .first()
                .is_some_and(|p| super::keys::ALERT_PREFIXES.contains(p))
            {
                return Err(super::codec::DecodeError("only alert records are written raw").into());
            }
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(batch).map_err(StoreError::write)?;
        Ok(())
    }

    /// Writes rule states and outbox changes in one atomic batch, durably.
    pub(crate) fn record_alerts(&self, commit: &AlertCommit) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (name, state) in &commit.states {
            batch.insert(prefixed(PREFIX_ALERT, name.as_bytes()), state.as_slice());
        }
        for (seq, mail) in &commit.outbox_put {
            batch.insert(prefixed(PREFIX_OUTBOX, &seq.to_be_bytes()), mail.as_slice());
        }
        for seq in &commit.outbox_remove {
            batch.remove(prefixed(PREFIX_OUTBOX, &seq.to_be_bytes()));
        }
        self.db.apply_batch(batch).map_err(StoreError::write)?;
        // A mail must not be sent twice after a crash: make the change durable now.
        self.db.flush().map_err(StoreError::write)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_state_and_outbox_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            store
                .record_alerts(&AlertCommit {
                    states: vec![("r1".into(), b"firing".to_vec())],
                    outbox_put: vec![(7, b"mail7".to_vec()), (300, b"mail300".to_vec())],
                    outbox_remove: vec![],
                })
                .unwrap();
            store
                .record_alerts(&AlertCommit {
                    outbox_remove: vec![7],
                    ..AlertCommit::default()
                })
                .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.alert_states().unwrap()["r1"], b"firing");
        assert_eq!(store.outbox().unwrap(), vec![(300, b"mail300".to_vec())]);
    }
}
