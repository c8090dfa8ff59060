//! Canonical input fields (README "Input"), the per-source field-name mapping,
//! and the validation of one raw record into a typed event.

use std::borrow::Cow;

use chrono_tz::Tz;

use super::normalize::{normalize_text, normalize_unit, Aliases};
use super::time::parse_time;
use crate::model::{Event, ExchangeEvent, SignatureEvent, SourceKind};

/// A canonical input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    EventId,
    Time,
    DocId,
    Direction,
    Channel,
    Confidentiality,
    Unit,
    DocNumber,
    DocType,
    Subject,
    Counterpart,
    Sha256,
    Role,
    Valid,
    Signer,
    CertSerial,
    Issuer,
}

/// Number of canonical fields: the size of a [`RawRecord`].
pub(crate) const FIELD_COUNT: usize = 17;

const ALL_FIELDS: [Field; FIELD_COUNT] = [
    Field::EventId,
    Field::Time,
    Field::DocId,
    Field::Direction,
    Field::Channel,
    Field::Confidentiality,
    Field::Unit,
    Field::DocNumber,
    Field::DocType,
    Field::Subject,
    Field::Counterpart,
    Field::Sha256,
    Field::Role,
    Field::Valid,
    Field::Signer,
    Field::CertSerial,
    Field::Issuer,
];

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::EventId => "event_id",
            Field::Time => "time",
            Field::DocId => "doc_id",
            Field::Direction => "direction",
            Field::Channel => "channel",
            Field::Confidentiality => "confidentiality",
            Field::Unit => "unit",
            Field::DocNumber => "doc_number",
            Field::DocType => "doc_type",
            Field::Subject => "subject",
            Field::Counterpart => "counterpart",
            Field::Sha256 => "sha256",
            Field::Role => "role",
            Field::Valid => "valid",
            Field::Signer => "signer",
            Field::CertSerial => "cert_serial",
            Field::Issuer => "issuer",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Field> {
        ALL_FIELDS.into_iter().find(|f| f.name() == name)
    }

    /// Whether events of `kind` carry this field.
    pub(crate) fn applies_to(self, kind: SourceKind) -> bool {
        use Field::*;
        match self {
            EventId | Time | DocId | Sha256 => true,
            Direction | Channel | Confidentiality | Unit | DocNumber | DocType | Subject
            | Counterpart => kind == SourceKind::Exchange,
            Role | Valid | Signer | CertSerial | Issuer => kind == SourceKind::Signature,
        }
    }

    pub(crate) fn names_for(kind: SourceKind) -> Vec<&'static str> {
        ALL_FIELDS
            .into_iter()
            .filter(|f| f.applies_to(kind))
            .map(Field::name)
            .collect()
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Maps the input's field names (JSON keys, CSV headers) to canonical fields.
#[derive(Debug, Clone)]
pub(crate) struct FieldMap {
    /// (normalized input name, field); short, so a linear scan beats hashing.
    names: Vec<(String, Field)>,
}

impl FieldMap {
    /// Canonical names for every field of `kind`, except those renamed by `mapping`.
    pub(crate) fn new(kind: SourceKind, mapping: &[(Field, String)]) -> FieldMap {
        let names = ALL_FIELDS
            .into_iter()
            .filter(|f| f.applies_to(kind))
            .map(|f| {
                let input = mapping
                    .iter()
                    .find(|(m, _)| *m == f)
                    .map_or(f.name(), |(_, name)| name.as_str());
                (normalize_text(input), f)
            })
            .collect();
        FieldMap { names }
    }

    /// The canonical field for an input name, if it is one we read.
    pub(crate) fn lookup(&self, key: &str) -> Option<Field> {
        if let Some((_, f)) = self.names.iter().find(|(n, _)| n == key) {
            return Some(*f);
        }
        let plain = key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if plain {
            return None;
        }
        let normalized = normalize_text(key);
        self.names
            .iter()
            .find(|(n, _)| *n == normalized)
            .map(|(_, f)| *f)
    }
}

/// The values of one input record, by canonical field; borrowed from the line where possible.
#[derive(Debug, Default)]
pub(crate) struct RawRecord<'a> {
    values: [Option<Cow<'a, str>>; FIELD_COUNT],
    /// A field whose JSON value was an object or array: makes the event invalid.
    non_scalar: Option<Field>,
}

impl<'a> RawRecord<'a> {
    pub(crate) fn set(&mut self, field: Field, value: Cow<'a, str>) {
        self.values[field.index()] = Some(value);
    }

    pub(crate) fn set_non_scalar(&mut self, field: Field) {
        self.non_scalar.get_or_insert(field);
    }

    fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// A present, non-blank value, trimmed.
    fn text(&self, field: Field) -> Option<&str> {
        self.get(field).map(str::trim).filter(|s| !s.is_empty())
    }

    fn required(&self, field: Field) -> Result<&str, String> {
        self.text(field)
            .ok_or_else(|| format!("missing required field `{}`", field.name()))
    }
}

/// Identifiers are NFC-normalised and trimmed, but keep their case.
fn identifier(s: &str) -> String {
    normalize_unit(s)
}

fn plain_text(s: Option<&str>) -> String {
    s.map(normalize_unit).unwrap_or_default()
}

fn sha(s: Option<&str>) -> Option<String> {
    s.map(|v| v.trim().to_ascii_lowercase())
}

/// Validates a raw record of a source of `kind` into an event, or says why not.
pub(crate) fn validate(
    raw: &RawRecord,
    kind: SourceKind,
    aliases: &Aliases,
    tz: Tz,
) -> Result<Event, String> {
    if let Some(f) = raw.non_scalar {
        return Err(format!("field `{}` is not a scalar value", f.name()));
    }
    let time_text = raw.required(Field::Time)?;
    let time = parse_time(time_text, tz).map_err(|e| format!("field `time`: {e}"))?;
    let event_id = raw.text(Field::EventId).map(identifier);
    match kind {
        SourceKind::Exchange => {
            let doc_id = identifier(raw.required(Field::DocId)?);
            let direction_text = raw.required(Field::Direction)?;
            let direction = aliases
                .direction(direction_text)
                .ok_or_else(|| format!("field `direction`: unknown value {direction_text:?}"))?;
            let channel_text = raw.required(Field::Channel)?;
            let channel = aliases
                .channel(channel_text)
                .ok_or_else(|| format!("field `channel`: unknown value {channel_text:?}"))?;
            let conf_text = raw.get(Field::Confidentiality).unwrap_or("");
            let confidentiality = aliases
                .confidentiality(conf_text)
                .ok_or_else(|| format!("field `confidentiality`: unknown value {conf_text:?}"))?;
            Ok(Event::Exchange(ExchangeEvent {
                event_id,
                time,
                doc_id,
                direction,
                channel,
                confidentiality,
                unit: plain_text(raw.text(Field::Unit)),
                doc_number: plain_text(raw.text(Field::DocNumber)),
                doc_type: plain_text(raw.text(Field::DocType)),
                subject: plain_text(raw.text(Field::Subject)),
                counterpart: plain_text(raw.text(Field::Counterpart)),
                sha256: sha(raw.text(Field::Sha256)),
            }))
        }
        SourceKind::Signature => {
            let doc_id = raw.text(Field::DocId).map(identifier);
            let sha256 = sha(raw.text(Field::Sha256));
            if doc_id.is_none() && sha256.is_none() {
                return Err("missing required field: one of `doc_id` or `sha256`".into());
            }
            let role_text = raw.required(Field::Role)?;
            let role = aliases
                .role(role_text)
                .ok_or_else(|| format!("field `role`: unknown value {role_text:?}"))?;
            let valid = match raw.text(Field::Valid) {
                None => true,
                Some(v) => {
                    parse_bool(v).ok_or_else(|| format!("field `valid`: not a boolean {v:?}"))?
                }
            };
            Ok(Event::Signature(SignatureEvent {
                event_id,
                time,
                doc_id,
                sha256,
                role: Some(role),
                valid,
                signer: plain_text(raw.text(Field::Signer)),
                verdict: None,
            }))
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Confidentiality, Direction, Role};

    const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn record(pairs: &[(Field, &'static str)]) -> RawRecord<'static> {
        let mut r = RawRecord::default();
        for (f, v) in pairs {
            r.set(*f, Cow::Borrowed(v));
        }
        r
    }

    fn exchange(extra: &[(Field, &'static str)]) -> Result<Event, String> {
        let mut pairs = vec![
            (Field::Time, "2026-06-14T09:00:00+07:00"),
            (Field::DocId, "DOC-1"),
            (Field::Direction, "đi"),
            (Field::Channel, "điện tử"),
        ];
        for (f, v) in extra {
            pairs.retain(|(g, _)| g != f);
            pairs.push((*f, v));
        }
        validate(
            &record(&pairs),
            SourceKind::Exchange,
            &Aliases::builtin(),
            TZ,
        )
    }

    #[test]
    fn a_complete_exchange_event_is_valid_and_normalised() {
        let Event::Exchange(e) = exchange(&[(Field::Unit, "  Văn phòng ")]).unwrap() else {
            panic!("not an exchange event")
        };
        assert_eq!(e.direction, Direction::Outgoing);
        assert_eq!(e.channel, Channel::Electronic);
        assert_eq!(e.confidentiality, Confidentiality::Normal);
        assert_eq!(e.unit, "Văn phòng");
    }

    #[test]
    fn a_missing_or_blank_required_field_makes_the_event_invalid() {
        for f in [Field::Time, Field::DocId, Field::Direction, Field::Channel] {
            let e = exchange(&[(f, "   ")]).unwrap_err();
            assert!(e.contains(f.name()), "{e}");
        }
    }

    #[test]
    fn unknown_values_make_the_event_invalid() {
        assert!(exchange(&[(Field::Confidentiality, "bí mật quốc gia")]).is_err());
        assert!(exchange(&[(Field::Channel, "fax")]).is_err());
        assert!(exchange(&[(Field::Time, "yesterday")]).is_err());
    }

    #[test]
    fn a_signature_needs_doc_id_or_sha256_and_a_known_role() {
        let aliases = Aliases::builtin();
        let base = [(Field::Time, "14/06/2026 09:00"), (Field::Role, "Cơ quan")];
        let r = record(&base);
        assert!(validate(&r, SourceKind::Signature, &aliases, TZ).is_err());
        let mut pairs = base.to_vec();
        pairs.push((Field::Sha256, " ABCDEF "));
        let Event::Signature(s) =
            validate(&record(&pairs), SourceKind::Signature, &aliases, TZ).unwrap()
        else {
            panic!("not a signature")
        };
        assert_eq!(s.sha256.as_deref(), Some("abcdef"));
        assert_eq!(s.role, Some(Role::Organization));
        assert!(s.valid);
        pairs.push((Field::Valid, "0"));
        let Event::Signature(s) =
            validate(&record(&pairs), SourceKind::Signature, &aliases, TZ).unwrap()
        else {
            panic!("not a signature")
        };
        assert!(!s.valid);
        pairs.push((Field::Valid, "maybe"));
        assert!(validate(&record(&pairs), SourceKind::Signature, &aliases, TZ).is_err());
    }

    #[test]
    fn field_map_matches_renamed_and_nfd_header_names() {
        let map = FieldMap::new(
            SourceKind::Exchange,
            &[(Field::DocId, "Số ký hiệu".to_string())],
        );
        assert_eq!(map.lookup("Số ký hiệu"), Some(Field::DocId));
        use unicode_normalization::UnicodeNormalization;
        let nfd: String = "SỐ KÝ HIỆU".nfd().collect();
        assert_eq!(map.lookup(&nfd), Some(Field::DocId));
        assert_eq!(
            map.lookup("doc_id"),
            None,
            "a renamed field is read under its new name only"
        );
        assert_eq!(map.lookup("time"), Some(Field::Time));
        assert_eq!(
            map.lookup("role"),
            None,
            "signature fields are not read from exchange logs"
        );
    }
}
