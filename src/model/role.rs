//! The roles a digital signature plays on a document.

/// The role a digital signature plays on a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Role {
    Person,
    Organization,
}

impl Role {
    /// Every role, in bit order.
    pub(crate) const ALL: [Self; 2] = [Self::Person, Self::Organization];

    /// The canonical name used in config, metrics labels and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Organization => "organization",
        }
    }

    /// The bit of this role in a set of roles stored as one byte.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Self::Person => 1,
            Self::Organization => 2,
        }
    }

    /// The roles whose bits are set in `bits`, in canonical order; unknown bits are ignored.
    #[cfg(test)]
    pub(crate) fn from_bits(bits: u8) -> impl Iterator<Item = Role> {
        Self::ALL.into_iter().filter(move |r| bits & r.bit() != 0)
    }
}

canonical_names!(Role);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip() {
        for v in Role::ALL {
            assert_eq!(Role::from_canonical(v.as_str()), Some(v));
        }
    }

    #[test]
    fn role_bits_round_trip() {
        let cases: &[(u8, &[Role])] = &[
            (0, &[]),
            (1, &[Role::Person]),
            (2, &[Role::Organization]),
            (3, &[Role::Person, Role::Organization]),
            (0b1111_1100, &[]),
            (0xFF, &[Role::Person, Role::Organization]),
        ];
        for (bits, want) in cases {
            assert_eq!(
                Role::from_bits(*bits).collect::<Vec<_>>(),
                *want,
                "bits {bits:#b}"
            );
        }
        assert_eq!(Role::Person.bit() | Role::Organization.bit(), 3);
    }
}
