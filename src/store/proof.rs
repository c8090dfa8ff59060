//! The commit proof: a record written with every commit, in the same atomic
//! batch, holding a sequence number and, per kind of key, how many keys the
//! store holds and the sum of a 128-bit hash of each (key, value). Sums are
//! updated from each written key's old and new value, so the record always
//! describes exactly the committed state; reading the store back and summing
//! again tells a sound store from one where sled lost a value, kept a stale
//! one, or mixed two commits. sled checks each message's CRC but cannot see
//! a lost or stale segment.

use super::codec::{DecodeError, Reader, Writer};
use super::keys::KeyKind;

const FORMAT_PROOF: u8 = 1;

/// Kinds of keys the proof covers: everything that makes the counts (alert
/// state and outbox are written by the alerts on their own, and carried
/// across rebuilds by themselves).
pub(crate) const COVERED: [KeyKind; 11] = [
    KeyKind::Settings,
    KeyKind::Page,
    KeyKind::PageIndex,
    KeyKind::Day,
    KeyKind::RejectedDay,
    KeyKind::ShaLog,
    KeyKind::Pending,
    KeyKind::Seen,
    KeyKind::Source,
    KeyKind::EdxmlFile,
    KeyKind::Verdict,
];

/// Kinds checked at every start, before anything is served: what the
/// report, the metrics and the status show, read in O(days + sources).
pub(crate) const QUICK: [KeyKind; 4] = [
    KeyKind::Settings,
    KeyKind::Day,
    KeyKind::RejectedDay,
    KeyKind::Source,
];

/// How many keys of one kind there are and the sum of their hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) count: u64,
    pub(crate) sum: u128,
}

/// The state the last commit left: its sequence number and a tally per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Proof {
    pub(crate) seq: u64,
    tallies: [Tally; COVERED.len()],
}

/// The hash of one stored entry.
pub(crate) fn entry_hash(key: &[u8], value: &[u8]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(value);
    h.digest128()
}

fn slot(kind: KeyKind) -> Option<usize> {
    COVERED.iter().position(|k| *k == kind)
}

impl Proof {
    /// Whether the proof covers `key`.
    pub(crate) fn covers(key: &[u8]) -> bool {
        KeyKind::of(key).and_then(slot).is_some()
    }

    /// Accounts for `key` going from `old` to `new` (`None` = absent).
    pub(crate) fn change(&mut self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        let Some(i) = KeyKind::of(key).and_then(slot) else {
            return;
        };
        let t = &mut self.tallies[i];
        if let Some(old) = old {
            t.count = t.count.wrapping_sub(1);
            t.sum = t.sum.wrapping_sub(entry_hash(key, old));
        }
        if let Some(new) = new {
            t.count = t.count.wrapping_add(1);
            t.sum = t.sum.wrapping_add(entry_hash(key, new));
        }
    }

    pub(crate) fn tally(&self, kind: KeyKind) -> Tally {
        slot(kind).map(|i| self.tallies[i]).unwrap_or_default()
    }

    /// What differs from `found` (what the store holds) among `kinds`, in words.
    pub(crate) fn differences(&self, found: &Proof, kinds: &[KeyKind]) -> Vec<String> {
        kinds
            .iter()
            .filter_map(|&k| {
                let (want, got) = (self.tally(k), found.tally(k));
                (want != got).then(|| {
                    if want.count == got.count {
                        format!(
                            "{}: {} keys whose contents differ from commit {}",
                            k.name(),
                            got.count,
                            self.seq
                        )
                    } else {
                        format!(
                            "{}: {} keys where commit {} left {}",
                            k.name(),
                            got.count,
                            self.seq,
                            want.count
                        )
                    }
                })
            })
            .collect()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(FORMAT_PROOF);
        w.uvar(self.seq).uvar(COVERED.len() as u64);
        for (kind, t) in COVERED.iter().zip(&self.tallies) {
            w.u8(kind.byte()).uvar(t.count).raw(&t.sum.to_le_bytes());
        }
        w.buf
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Proof, DecodeError> {
        let mut r = Reader::new(v, FORMAT_PROOF)?;
        let mut p = Proof {
            seq: r.uvar()?,
            ..Proof::default()
        };
        let n = r.count()?;
        for _ in 0..n {
            let kind = r.u8()?;
            let count = r.uvar()?;
            let sum = u128::from_le_bytes(r.bytes(16)?.try_into().expect("16 bytes"));
            let i = COVERED
                .iter()
                .position(|k| k.byte() == kind)
                .ok_or(DecodeError("unknown kind in the commit record"))?;
            p.tallies[i] = Tally { count, sum };
        }
        if r.remaining() != 0 {
            return Err(DecodeError("trailing bytes after the commit record"));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_any_order_give_the_same_proof_and_undo_exactly() {
        let mut a = Proof::default();
        a.change(b"a\x01\x02\x03\x04", None, Some(b"one"));
        a.change(b"pexchange", None, Some(b"pos 1"));
        a.change(b"pexchange", Some(b"pos 1"), Some(b"pos 2"));
        let mut b = Proof::default();
        b.change(b"pexchange", None, Some(b"pos 2"));
        b.change(b"a\x01\x02\x03\x04", None, Some(b"one"));
        assert_eq!(a, b);
        assert_eq!(a.tally(KeyKind::Source).count, 1);
        b.change(b"a\x01\x02\x03\x04", Some(b"one"), None);
        assert_eq!(b.tally(KeyKind::Day), Tally::default());
        // Keys outside the proof change nothing.
        let before = a.clone();
        a.change(b"Arule", None, Some(b"x"));
        a.change(b"\x00version", None, Some(b"x"));
        assert_eq!(a, before);
        assert_eq!(Proof::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn a_stale_value_or_a_lost_key_shows_in_the_differences() {
        let mut committed = Proof::default();
        committed.change(b"pexchange", None, Some(b"offset 3462772"));
        committed.change(b"e\x00\0\0\0\0\0\0\0\x01", None, Some(b"ids"));
        let mut stale = Proof::default();
        stale.change(b"pexchange", None, Some(b"offset 1917498"));
        stale.change(b"e\x00\0\0\0\0\0\0\0\x01", None, Some(b"ids"));
        let d = committed.differences(&stale, &COVERED);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].contains("source_state") && d[0].contains("differ"),
            "{d:?}"
        );
        let lost = Proof::default();
        let d = committed.differences(&lost, &[KeyKind::Seen]);
        assert!(d[0].contains("0 keys where commit 0 left 1"), "{d:?}");
    }
}
