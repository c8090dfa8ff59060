//! How a document travelled: electronically or on paper.

/// How a document was exchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Channel {
    Electronic,
    Paper,
}

impl Channel {
    /// Every channel, in store byte order.
    pub(crate) const ALL: [Self; 2] = [Self::Electronic, Self::Paper];

    /// The canonical name used in config, metrics labels and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Electronic => "electronic",
            Self::Paper => "paper",
        }
    }
}

canonical_names!(Channel);
store_bytes!(Channel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_and_store_bytes_round_trip() {
        for v in Channel::ALL {
            assert_eq!(Channel::from_canonical(v.as_str()), Some(v));
            assert_eq!(Channel::from_byte(v.as_byte()), Some(v));
        }
    }

    #[test]
    fn store_bytes_are_stable() {
        assert_eq!(Channel::Electronic.as_byte(), 0);
        assert_eq!(Channel::Paper.as_byte(), 1);
        assert_eq!(Channel::from_byte(255), None);
    }
}
