//! Whether a document was sent or received.

/// Whether a document was sent or received by the agency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Outgoing,
    Incoming,
}

impl Direction {
    /// Every direction, in store byte order.
    pub(crate) const ALL: [Self; 2] = [Self::Outgoing, Self::Incoming];

    /// The canonical name used in config, metrics labels and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Outgoing => "outgoing",
            Self::Incoming => "incoming",
        }
    }
}

canonical_names!(Direction);
store_bytes!(Direction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_and_store_bytes_round_trip() {
        for v in Direction::ALL {
            assert_eq!(Direction::from_canonical(v.as_str()), Some(v));
            assert_eq!(Direction::from_byte(v.as_byte()), Some(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(
            Direction::from_canonical("Outgoing"),
            None,
            "canonical names are exact"
        );
    }

    #[test]
    fn store_bytes_are_stable() {
        assert_eq!(Direction::Outgoing.as_byte(), 0);
        assert_eq!(Direction::Incoming.as_byte(), 1);
        assert_eq!(Direction::from_byte(2), None);
    }
}
