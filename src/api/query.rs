//! Query strings read into typed parameters: [`Params<T>`] deserialises a
//! `#[serde(deny_unknown_fields)]` struct (validated with `try_from` where
//! the raw strings need checking) and answers 400 in the API's words.

use std::collections::BTreeMap;
use std::fmt;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::Uri;
use axum::response::Response;
use serde::de::value::MapDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// An extractor of the query parameters `T`; a parameter given twice
/// counts once, with its last value.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parse(&parts.uri).map(Params).map_err(super::bad_request)
    }
}

/// The query parameters of `uri` as `T`, or why not (the console's pages
/// read their parameters with the API's rules and words).
pub(crate) fn parse<T: DeserializeOwned>(uri: &Uri) -> Result<T, String> {
    let Query(pairs) =
        Query::<BTreeMap<String, String>>::try_from_uri(uri).map_err(|e| e.body_text())?;
    let values = pairs.into_iter().map(|(k, v)| (k, Text(v)));
    T::deserialize(MapDeserializer::new(values)).map_err(|QueryError(message)| message)
}

/// Why parameters were refused: the message of the 400 answer.
#[derive(Debug)]
struct QueryError(String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    /// A `try_from` validation's message, as is.
    fn custom<M: fmt::Display>(message: M) -> Self {
        QueryError(message.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        QueryError(format!(
            "unknown parameter `{field}` ({})",
            expected.join(", ")
        ))
    }
}

/// A parameter's value: text, which an `Option` field takes as `Some`.
struct Text(String);

impl<'de> IntoDeserializer<'de, QueryError> for Text {
    type Deserializer = Text;

    fn into_deserializer(self) -> Text {
        self
    }
}

impl<'de> de::Deserializer<'de> for Text {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_some(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        first: Option<String>,
        second: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(try_from = "Raw")]
    struct Checked(String);

    impl TryFrom<Raw> for Checked {
        type Error = String;

        fn try_from(raw: Raw) -> Result<Checked, String> {
            raw.first.map(Checked).ok_or_else(|| "bad `first`".into())
        }
    }

    fn params<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, String> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Text(v.to_string())));
        T::deserialize(MapDeserializer::new(map)).map_err(|QueryError(m)| m)
    }

    #[test]
    fn parameters_fill_optional_fields() {
        assert_eq!(
            params::<Raw>(&[("second", " x ")]),
            Ok(Raw {
                first: None,
                second: Some(" x ".into())
            })
        );
    }

    #[test]
    fn an_unknown_parameter_is_named_with_the_known_ones() {
        assert_eq!(
            params::<Raw>(&[("first", "1"), ("colour", "red")]),
            Err("unknown parameter `colour` (first, second)".to_string())
        );
    }

    #[test]
    fn validation_messages_are_kept_as_they_are() {
        assert_eq!(
            params::<Checked>(&[("second", "2")]),
            Err("bad `first`".into())
        );
        assert_eq!(
            params::<Checked>(&[("first", "1")]),
            Ok(Checked("1".into()))
        );
    }
}
