//! JSON Lines records: one JSON object per line, read straight into the
//! canonical field slots of a [`RawRecord`] without building a value tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::record::{FieldMap, RawRecord};

/// Parses one JSON line into a raw record; unknown keys are ignored.
pub(crate) fn parse_line<'a>(line: &'a str, fields: &FieldMap) -> Result<RawRecord<'a>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let record = RecordSeed { fields }
        .deserialize(&mut de)
        .map_err(|e| format!("invalid JSON: {e}"))?;
    de.end().map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(record)
}

struct RecordSeed<'f> {
    fields: &'f FieldMap,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = RawRecord::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.fields.lookup(&key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(field) => match map.next_value::<Scalar<'de>>()? {
                    Scalar::Text(v) => record.set(field, v),
                    Scalar::Null => {}
                    Scalar::Nested => record.set_non_scalar(field),
                },
            }
        }
        Ok(record)
    }
}

/// A JSON value reduced to what an event field can hold.
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Null,
    Nested,
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(if v {
            "true"
        } else {
            "false"
        })))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, SourceKind};
    use crate::parse::normalize::Aliases;
    use crate::parse::record::{validate, Field};

    fn exchange_map() -> FieldMap {
        FieldMap::new(SourceKind::Exchange, &[])
    }

    fn parse(line: &str) -> Result<Event, String> {
        let raw = parse_line(line, &exchange_map())?;
        validate(
            &raw,
            SourceKind::Exchange,
            &Aliases::builtin(),
            chrono_tz::Asia::Ho_Chi_Minh,
        )
    }

    #[test]
    fn an_object_line_with_unknown_fields_parses() {
        let e = parse(r#"{"time":"2026-06-14 09:00:00","doc_id":"A\u0031","direction":"in","channel":"giấy","extra":{"x":[1,2]},"unit":null}"#).unwrap();
        let Event::Exchange(e) = e else { panic!() };
        assert_eq!(e.doc_id, "A1");
        assert_eq!(e.unit, "");
    }

    #[test]
    fn numbers_and_booleans_become_text() {
        let e = parse(
            r#"{"time":"2026-06-14 09:00:00","doc_id":245,"direction":"in","channel":"online","unit":true,"subject":2.5}"#,
        )
        .unwrap();
        let Event::Exchange(e) = e else { panic!() };
        assert_eq!((e.doc_id.as_str(), e.unit.as_str()), ("245", "true"));
        assert_eq!(e.subject, "2.5");
        // A JSON boolean is read as the text `valid` accepts, both ways (absent means true).
        let signature = |valid: &str| {
            let line =
                format!(r#"{{"time":"2026-06-14 09:00:00","doc_id":245,"role":"person"{valid}}}"#);
            let raw = parse_line(&line, &FieldMap::new(SourceKind::Signature, &[])).unwrap();
            let event = validate(
                &raw,
                SourceKind::Signature,
                &Aliases::builtin(),
                chrono_tz::Asia::Ho_Chi_Minh,
            );
            match event.unwrap() {
                Event::Signature(s) => (s.doc_id.unwrap(), s.valid),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(signature(r#","valid":false"#), ("245".to_string(), false));
        assert_eq!(signature(r#","valid":true"#), ("245".to_string(), true));
        assert_eq!(signature(""), ("245".to_string(), true));
    }

    #[test]
    fn non_objects_truncated_lines_and_nested_fields_are_rejected() {
        for bad in [
            "[1,2,3]",
            "\"just a string\"",
            "42",
            r#"{"time":"2026-06-14 09:00:00","doc_id":"A""#,
            r#"{"time":"2026-06-14 09:00:00"} trailing"#,
            "not json at all",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be invalid");
        }
        let e = parse(r#"{"time":"2026-06-14 09:00:00","doc_id":{"id":1},"direction":"in","channel":"online"}"#)
            .unwrap_err();
        assert!(e.contains("doc_id"), "{e}");
    }

    #[test]
    fn mapped_field_names_are_read() {
        let map = FieldMap::new(SourceKind::Exchange, &[(Field::DocId, "Số ký hiệu".into())]);
        let raw = parse_line(r#"{"Số ký hiệu":"12/QĐ-UBND","time":"14/06/2026"}"#, &map).unwrap();
        let err = validate(
            &raw,
            SourceKind::Exchange,
            &Aliases::builtin(),
            chrono_tz::Asia::Ho_Chi_Minh,
        )
        .unwrap_err();
        assert!(
            err.contains("direction"),
            "doc_id was found, direction is what is missing: {err}"
        );
    }
}
