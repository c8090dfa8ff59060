//! The four classes of the README's "Classification" section and the
//! compliance ratio built from them.

/// The class of a document; exactly one, first match wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Class {
    SecretExempt,
    ElectronicSigned,
    ElectronicUnsigned,
    Paper,
}

impl Class {
    /// Every class, in store byte order.
    pub(crate) const ALL: [Class; 4] = [
        Class::ElectronicSigned,
        Class::ElectronicUnsigned,
        Class::Paper,
        Class::SecretExempt,
    ];

    /// The canonical name used in metrics labels and the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Class::SecretExempt => "secret_exempt",
            Class::ElectronicSigned => "electronic_signed",
            Class::ElectronicUnsigned => "electronic_unsigned",
            Class::Paper => "paper",
        }
    }

    /// Parses an exact canonical name.
    pub(crate) fn from_name(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The byte that encodes this class in the store.
    pub(crate) fn as_byte(self) -> u8 {
        match self {
            Class::ElectronicSigned => 0,
            Class::ElectronicUnsigned => 1,
            Class::Paper => 2,
            Class::SecretExempt => 3,
        }
    }

    /// Decodes a store byte.
    pub(crate) fn from_byte(b: u8) -> Option<Class> {
        Class::ALL.get(b as usize).copied()
    }
}

/// Compliance ratio: signed / (total − secret); `None` when the denominator is 0.
pub(crate) fn compliance_ratio(signed: u64, total: u64, secret: u64) -> Option<f64> {
    let denominator = total.saturating_sub(secret);
    (denominator > 0).then(|| signed as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_undefined_without_a_denominator() {
        assert_eq!(compliance_ratio(0, 0, 0), None);
        assert_eq!(compliance_ratio(0, 3, 3), None);
        assert_eq!(compliance_ratio(3, 5, 1), Some(0.75));
    }
}
