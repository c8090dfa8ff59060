//! The state-secret levels that exempt a document from the target.

/// The state-secret level of a document (Mật, Tối mật, Tuyệt mật) or normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Confidentiality {
    Normal,
    Mat,
    ToiMat,
    TuyetMat,
}

impl Confidentiality {
    /// Every level, in store byte order.
    pub(crate) const ALL: [Self; 4] = [Self::Normal, Self::Mat, Self::ToiMat, Self::TuyetMat];

    /// The canonical name used in config, metrics labels and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Mat => "mat",
            Self::ToiMat => "toi_mat",
            Self::TuyetMat => "tuyet_mat",
        }
    }

    /// Whether this is a state-secret level, which exempts the document from the target.
    pub(crate) fn is_secret(self) -> bool {
        self != Self::Normal
    }
}

canonical_names!(Confidentiality);
store_bytes!(Confidentiality);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_and_store_bytes_round_trip() {
        for v in Confidentiality::ALL {
            assert_eq!(Confidentiality::from_canonical(v.as_str()), Some(v));
            assert_eq!(Confidentiality::from_byte(v.as_byte()), Some(v));
        }
        assert_eq!(Confidentiality::from_canonical("toi mat"), None);
    }

    #[test]
    fn store_bytes_are_stable() {
        assert_eq!(Confidentiality::Normal.as_byte(), 0);
        assert_eq!(Confidentiality::TuyetMat.as_byte(), 3);
        assert_eq!(Confidentiality::from_byte(4), None);
    }

    #[test]
    fn only_normal_is_not_secret() {
        let secret: Vec<_> = Confidentiality::ALL
            .into_iter()
            .filter(|c| c.is_secret())
            .collect();
        assert_eq!(
            secret,
            [
                Confidentiality::Mat,
                Confidentiality::ToiMat,
                Confidentiality::TuyetMat
            ]
        );
    }
}
