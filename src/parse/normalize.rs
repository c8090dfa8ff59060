//! Text normalisation and the alias tables (README "Input": values) that turn
//! raw field values into the canonical direction, channel, confidentiality and
//! signature-role enums.

use std::borrow::Cow;
use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use crate::model::{Channel, Confidentiality, Direction, Role};

/// Normalises a value for alias matching: NFC, trimmed, whitespace runs collapsed to one space, lowercased.
pub(crate) fn normalize_text(s: &str) -> String {
    let nfc = to_nfc(s);
    let mut out = String::with_capacity(nfc.len());
    for word in nfc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Normalises a unit name: NFC and trimmed, case kept.
pub(crate) fn normalize_unit(s: &str) -> String {
    to_nfc(s.trim()).into_owned()
}

fn to_nfc(s: &str) -> Cow<'_, str> {
    // ASCII text is always in NFC, and most Vietnamese text already is: the
    // quick check avoids re-composing it.
    if s.is_ascii()
        || unicode_normalization::is_nfc_quick(s.chars())
            == unicode_normalization::IsNormalized::Yes
    {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// An event field whose values are matched through aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AliasField {
    Direction,
    Channel,
    Confidentiality,
    Role,
}

impl AliasField {
    /// Every aliased field.
    pub(crate) const ALL: [Self; 4] = [
        Self::Direction,
        Self::Channel,
        Self::Confidentiality,
        Self::Role,
    ];

    /// The field name as written in config (`[sources.aliases.<name>]`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Direction => "direction",
            Self::Channel => "channel",
            Self::Confidentiality => "confidentiality",
            Self::Role => "role",
        }
    }

    /// Parses a field name as written in config.
    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

const DIRECTION_ALIASES: &[(&str, Direction)] = &[
    ("out", Direction::Outgoing),
    ("sent", Direction::Outgoing),
    ("đi", Direction::Outgoing),
    ("di", Direction::Outgoing),
    ("văn bản đi", Direction::Outgoing),
    ("in", Direction::Incoming),
    ("received", Direction::Incoming),
    ("đến", Direction::Incoming),
    ("den", Direction::Incoming),
    ("văn bản đến", Direction::Incoming),
];

const CHANNEL_ALIASES: &[(&str, Channel)] = &[
    ("điện tử", Channel::Electronic),
    ("dien tu", Channel::Electronic),
    ("edxml", Channel::Electronic),
    ("online", Channel::Electronic),
    ("giấy", Channel::Paper),
    ("giay", Channel::Paper),
    ("bản giấy", Channel::Paper),
];

const CONFIDENTIALITY_ALIASES: &[(&str, Confidentiality)] = &[
    ("", Confidentiality::Normal),
    ("none", Confidentiality::Normal),
    ("thường", Confidentiality::Normal),
    ("thuong", Confidentiality::Normal),
    ("không mật", Confidentiality::Normal),
    ("mật", Confidentiality::Mat),
    ("confidential", Confidentiality::Mat),
    ("tối mật", Confidentiality::ToiMat),
    ("toi mat", Confidentiality::ToiMat),
    ("secret", Confidentiality::ToiMat),
    ("tuyệt mật", Confidentiality::TuyetMat),
    ("tuyet mat", Confidentiality::TuyetMat),
    ("top secret", Confidentiality::TuyetMat),
];

const ROLE_ALIASES: &[(&str, Role)] = &[
    ("cá nhân", Role::Person),
    ("ca nhan", Role::Person),
    ("individual", Role::Person),
    ("organisation", Role::Organization),
    ("cơ quan", Role::Organization),
    ("co quan", Role::Organization),
    ("tổ chức", Role::Organization),
    ("to chuc", Role::Organization),
];

/// One field's alias map, keyed by normalised text.
#[derive(Clone, Debug)]
struct AliasTable<T>(HashMap<String, T>);

impl<T: Copy> AliasTable<T> {
    fn new(
        canonical: impl IntoIterator<Item = (&'static str, T)>,
        aliases: &[(&'static str, T)],
    ) -> Self {
        let mut map = HashMap::new();
        for (alias, value) in canonical.into_iter().chain(aliases.iter().copied()) {
            map.insert(normalize_text(alias), value);
        }
        Self(map)
    }

    fn lookup(&self, raw: &str) -> Option<T> {
        // Most inputs are already normalised: try them as-is before allocating.
        if let Some(value) = self.0.get(raw) {
            return Some(*value);
        }
        self.0.get(normalize_text(raw).as_str()).copied()
    }
}

/// The alias tables of one source: the built-in aliases plus the source's config aliases.
#[derive(Clone, Debug)]
pub(crate) struct Aliases {
    direction: AliasTable<Direction>,
    channel: AliasTable<Channel>,
    confidentiality: AliasTable<Confidentiality>,
    role: AliasTable<Role>,
}

impl Default for Aliases {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Aliases {
    /// The built-in aliases listed in the README ("Input": values), plus every canonical name itself.
    pub(crate) fn builtin() -> Self {
        Self {
            direction: AliasTable::new(Direction::ALL.map(|v| (v.as_str(), v)), DIRECTION_ALIASES),
            channel: AliasTable::new(Channel::ALL.map(|v| (v.as_str(), v)), CHANNEL_ALIASES),
            confidentiality: AliasTable::new(
                Confidentiality::ALL.map(|v| (v.as_str(), v)),
                CONFIDENTIALITY_ALIASES,
            ),
            role: AliasTable::new(Role::ALL.map(|v| (v.as_str(), v)), ROLE_ALIASES),
        }
    }

    /// Adds a config alias of `field` for the canonical value `canonical`, replacing any earlier meaning of that alias.
    pub(crate) fn add(
        &mut self,
        field: AliasField,
        alias: &str,
        canonical: &str,
    ) -> Result<(), String> {
        let key = normalize_text(alias);
        if key.is_empty() {
            return Err(format!(
                "{} alias for {canonical:?} is empty",
                field.as_str()
            ));
        }
        match field {
            AliasField::Direction => {
                let value = resolve(field, canonical, &Direction::ALL, Direction::as_str)?;
                self.direction.0.insert(key, value);
            }
            AliasField::Channel => {
                let value = resolve(field, canonical, &Channel::ALL, Channel::as_str)?;
                self.channel.0.insert(key, value);
            }
            AliasField::Confidentiality => {
                let value = resolve(
                    field,
                    canonical,
                    &Confidentiality::ALL,
                    Confidentiality::as_str,
                )?;
                self.confidentiality.0.insert(key, value);
            }
            AliasField::Role => {
                let value = resolve(field, canonical, &Role::ALL, Role::as_str)?;
                self.role.0.insert(key, value);
            }
        }
        Ok(())
    }

    /// Matches a raw direction value.
    pub(crate) fn direction(&self, raw: &str) -> Option<Direction> {
        self.direction.lookup(raw)
    }

    /// Matches a raw channel value.
    pub(crate) fn channel(&self, raw: &str) -> Option<Channel> {
        self.channel.lookup(raw)
    }

    /// Matches a raw confidentiality value; empty or blank means normal, anything unknown is `None`.
    pub(crate) fn confidentiality(&self, raw: &str) -> Option<Confidentiality> {
        self.confidentiality.lookup(raw)
    }

    /// Matches a raw signature-role value.
    pub(crate) fn role(&self, raw: &str) -> Option<Role> {
        self.role.lookup(raw)
    }
}

/// Finds the canonical value named by `canonical`, accepting any case and spaces for underscores.
fn resolve<T: Copy>(
    field: AliasField,
    canonical: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    let wanted = normalize_text(canonical).replace(' ', "_");
    all.iter()
        .copied()
        .find(|v| name(*v) == wanted)
        .ok_or_else(|| {
            let allowed: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            format!(
                "{} alias target {canonical:?} is not a canonical value; expected one of: {}",
                field.as_str(),
                allowed.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::UnicodeNormalization;

    /// The README's table of built-in spellings ("Input": values): (field, alias, canonical name).
    const BUILTIN_TABLE: &[(AliasField, &str, &str)] = &[
        (AliasField::Direction, "outgoing", "outgoing"),
        (AliasField::Direction, "out", "outgoing"),
        (AliasField::Direction, "sent", "outgoing"),
        (AliasField::Direction, "đi", "outgoing"),
        (AliasField::Direction, "di", "outgoing"),
        (AliasField::Direction, "văn bản đi", "outgoing"),
        (AliasField::Direction, "incoming", "incoming"),
        (AliasField::Direction, "in", "incoming"),
        (AliasField::Direction, "received", "incoming"),
        (AliasField::Direction, "đến", "incoming"),
        (AliasField::Direction, "den", "incoming"),
        (AliasField::Direction, "văn bản đến", "incoming"),
        (AliasField::Channel, "electronic", "electronic"),
        (AliasField::Channel, "điện tử", "electronic"),
        (AliasField::Channel, "dien tu", "electronic"),
        (AliasField::Channel, "edxml", "electronic"),
        (AliasField::Channel, "online", "electronic"),
        (AliasField::Channel, "paper", "paper"),
        (AliasField::Channel, "giấy", "paper"),
        (AliasField::Channel, "giay", "paper"),
        (AliasField::Channel, "bản giấy", "paper"),
        (AliasField::Confidentiality, "normal", "normal"),
        (AliasField::Confidentiality, "none", "normal"),
        (AliasField::Confidentiality, "thường", "normal"),
        (AliasField::Confidentiality, "thuong", "normal"),
        (AliasField::Confidentiality, "không mật", "normal"),
        (AliasField::Confidentiality, "mat", "mat"),
        (AliasField::Confidentiality, "mật", "mat"),
        (AliasField::Confidentiality, "confidential", "mat"),
        (AliasField::Confidentiality, "toi_mat", "toi_mat"),
        (AliasField::Confidentiality, "tối mật", "toi_mat"),
        (AliasField::Confidentiality, "toi mat", "toi_mat"),
        (AliasField::Confidentiality, "secret", "toi_mat"),
        (AliasField::Confidentiality, "tuyet_mat", "tuyet_mat"),
        (AliasField::Confidentiality, "tuyệt mật", "tuyet_mat"),
        (AliasField::Confidentiality, "tuyet mat", "tuyet_mat"),
        (AliasField::Confidentiality, "top secret", "tuyet_mat"),
        (AliasField::Role, "person", "person"),
        (AliasField::Role, "cá nhân", "person"),
        (AliasField::Role, "ca nhan", "person"),
        (AliasField::Role, "individual", "person"),
        (AliasField::Role, "organization", "organization"),
        (AliasField::Role, "organisation", "organization"),
        (AliasField::Role, "cơ quan", "organization"),
        (AliasField::Role, "co quan", "organization"),
        (AliasField::Role, "tổ chức", "organization"),
        (AliasField::Role, "to chuc", "organization"),
    ];

    /// Looks `raw` up in the table of `field` and returns the canonical name it maps to.
    fn lookup(aliases: &Aliases, field: AliasField, raw: &str) -> Option<&'static str> {
        match field {
            AliasField::Direction => aliases.direction(raw).map(Direction::as_str),
            AliasField::Channel => aliases.channel(raw).map(Channel::as_str),
            AliasField::Confidentiality => {
                aliases.confidentiality(raw).map(Confidentiality::as_str)
            }
            AliasField::Role => aliases.role(raw).map(Role::as_str),
        }
    }

    fn nfd(s: &str) -> String {
        s.nfd().collect()
    }

    #[test]
    fn normalize_text_composes_trims_collapses_and_lowercases() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("   \t\n ", ""),
            ("Online", "online"),
            ("  TOP \t  SECRET  ", "top secret"),
            ("ĐI", "đi"),
            ("VĂN BẢN ĐẾN", "văn bản đến"),
            ("Tối\u{00A0}Mật", "tối mật"),
            ("\r\nbản   giấy\r\n", "bản giấy"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_text(raw), *want, "raw {raw:?}");
        }
        let decomposed = nfd("Tuyệt Mật");
        assert_ne!(decomposed, "Tuyệt Mật", "the test input must really be NFD");
        assert_eq!(normalize_text(&decomposed), "tuyệt mật");
    }

    #[test]
    fn normalize_unit_composes_and_trims_but_keeps_case() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("  Văn phòng  ", "Văn phòng"),
            ("Phòng  Tư pháp", "Phòng  Tư pháp"),
            ("ABC", "ABC"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_unit(raw), *want, "raw {raw:?}");
        }
        assert_eq!(
            normalize_unit(&format!(" {} ", nfd("Văn phòng"))),
            "Văn phòng"
        );
    }

    #[test]
    fn every_builtin_alias_matches_as_written() {
        let aliases = Aliases::builtin();
        for (field, alias, want) in BUILTIN_TABLE {
            assert_eq!(
                lookup(&aliases, *field, alias),
                Some(*want),
                "{field:?} {alias:?}"
            );
        }
    }

    #[test]
    fn every_builtin_alias_matches_in_upper_case() {
        let aliases = Aliases::builtin();
        for (field, alias, want) in BUILTIN_TABLE {
            let upper = alias.to_uppercase();
            assert_eq!(
                lookup(&aliases, *field, &upper),
                Some(*want),
                "{field:?} {upper:?}"
            );
        }
    }

    #[test]
    fn every_builtin_alias_matches_in_nfd() {
        let aliases = Aliases::builtin();
        for (field, alias, want) in BUILTIN_TABLE {
            let decomposed = nfd(alias);
            assert_eq!(
                lookup(&aliases, *field, &decomposed),
                Some(*want),
                "{field:?} {decomposed:?}"
            );
            let upper = nfd(&alias.to_uppercase());
            assert_eq!(
                lookup(&aliases, *field, &upper),
                Some(*want),
                "{field:?} {upper:?}"
            );
        }
    }

    #[test]
    fn every_builtin_alias_matches_with_extra_whitespace() {
        let aliases = Aliases::builtin();
        for (field, alias, want) in BUILTIN_TABLE {
            let padded = format!(" \t{}\u{00A0}\n", alias.replace(' ', "  \t "));
            assert_eq!(
                lookup(&aliases, *field, &padded),
                Some(*want),
                "{field:?} {padded:?}"
            );
        }
    }

    #[test]
    fn unknown_values_match_nothing() {
        let aliases = Aliases::builtin();
        let cases: &[(AliasField, &str)] = &[
            (AliasField::Direction, ""),
            (AliasField::Direction, "   "),
            (AliasField::Direction, "outbound"),
            (AliasField::Direction, "vănbảnđi"),
            (AliasField::Channel, ""),
            (AliasField::Channel, "fax"),
            (AliasField::Channel, "e-mail"),
            (AliasField::Confidentiality, "mật mật"),
            (AliasField::Confidentiality, "restricted"),
            (AliasField::Confidentiality, "tối_mật"),
            (AliasField::Confidentiality, "0"),
            (AliasField::Confidentiality, "-"),
            (AliasField::Role, ""),
            (AliasField::Role, "seal"),
            (AliasField::Role, "organizations"),
        ];
        for (field, raw) in cases {
            assert_eq!(lookup(&aliases, *field, raw), None, "{field:?} {raw:?}");
        }
    }

    #[test]
    fn empty_or_blank_confidentiality_is_normal() {
        let aliases = Aliases::builtin();
        for raw in ["", " ", "\t \r\n", "\u{00A0}"] {
            assert_eq!(
                aliases.confidentiality(raw),
                Some(Confidentiality::Normal),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn config_alias_is_recognised_in_any_spelling() {
        let mut aliases = Aliases::builtin();
        aliases
            .add(AliasField::Channel, &nfd("Trục Liên Thông"), "electronic")
            .unwrap();
        aliases
            .add(AliasField::Confidentiality, "KÍN", "TOI_MAT")
            .unwrap();
        aliases
            .add(AliasField::Confidentiality, "kín nhất", "tuyet mat")
            .unwrap();
        aliases
            .add(AliasField::Direction, "gửi", " Outgoing ")
            .unwrap();
        aliases
            .add(AliasField::Role, "con dấu", "organization")
            .unwrap();

        assert_eq!(
            aliases.channel("trục liên thông"),
            Some(Channel::Electronic)
        );
        assert_eq!(
            aliases.channel(&nfd(" TRỤC  LIÊN THÔNG ")),
            Some(Channel::Electronic)
        );
        assert_eq!(
            aliases.confidentiality("kín"),
            Some(Confidentiality::ToiMat)
        );
        assert_eq!(
            aliases.confidentiality("Kín Nhất"),
            Some(Confidentiality::TuyetMat)
        );
        assert_eq!(aliases.direction("GỬI"), Some(Direction::Outgoing));
        assert_eq!(aliases.role("con dấu"), Some(Role::Organization));
        // Built-in aliases are still there.
        assert_eq!(aliases.channel("giấy"), Some(Channel::Paper));
    }

    #[test]
    fn config_alias_overrides_a_builtin_one() {
        let mut aliases = Aliases::builtin();
        aliases.add(AliasField::Channel, "online", "paper").unwrap();
        assert_eq!(aliases.channel("online"), Some(Channel::Paper));
    }

    #[test]
    fn config_alias_with_a_bad_target_or_empty_key_is_refused() {
        let mut aliases = Aliases::builtin();
        let cases: &[(AliasField, &str, &str)] = &[
            (AliasField::Channel, "trục", "điện tử"),
            (AliasField::Channel, "trục", "fax"),
            (AliasField::Direction, "gửi", "out"),
            (AliasField::Confidentiality, "kín", "secret"),
            (AliasField::Confidentiality, "kín", ""),
            (AliasField::Role, "con dấu", "organisation"),
            (AliasField::Role, "  ", "person"),
        ];
        for (field, alias, canonical) in cases {
            let err = aliases.add(*field, alias, canonical).unwrap_err();
            assert!(err.contains(field.as_str()), "{err}");
        }
        let err = aliases
            .add(AliasField::Confidentiality, "kín", "secret")
            .unwrap_err();
        assert!(err.contains("\"secret\""), "{err}");
        assert!(err.contains("normal, mat, toi_mat, tuyet_mat"), "{err}");
        assert_eq!(
            aliases.confidentiality("kín"),
            None,
            "a refused alias is not added"
        );
    }

    #[test]
    fn alias_field_names_round_trip() {
        for v in AliasField::ALL {
            assert_eq!(AliasField::from_name(v.as_str()), Some(v));
        }
        assert_eq!(AliasField::from_name("unit"), None);
    }
}
