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
mod tests;
