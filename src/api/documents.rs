//! `/api/v1/documents`: the documents matching a filter, a page at a time,
//! in `doc_id` order, with a cursor to the next page. Fields of the answer
//! are in alphabetical order, the order of the JSON keys since the first version.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::query::Params;
use super::verdicts::{listed_signatures, ListedSignature};
use super::{local_time, store_unavailable, AppState, ErrorAnswer};
use crate::model::Direction;
use crate::model::{Class, Document};
use crate::parse::normalize::normalize_unit;
use crate::parse::time::{local_day, parse_date};
use crate::store::{Store, StoreError};

/// Default and largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Longest search text, in characters (a number or a few words of a subject).
const MAX_SEARCH: usize = 200;

/// The parameters as given, before [`Filter`] validates them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentsQuery {
    /// A reporting period (`2026-H1`), instead of `from`/`to`.
    pub(crate) period: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) direction: Option<String>,
    pub(crate) class: Option<String>,
    pub(crate) unit: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) cursor: Option<String>,
    /// Words the number or the subject contains.
    pub(crate) q: Option<String>,
}

/// Which documents to list, and how many.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "DocumentsQuery")]
pub(crate) struct Filter {
    /// First and last local day of the documents' time.
    pub(crate) from: Option<NaiveDate>,
    pub(crate) to: Option<NaiveDate>,
    pub(crate) direction: Option<Direction>,
    pub(crate) class: Option<Class>,
    /// NFC-normalised; `Some("")` lists documents without a unit.
    pub(crate) unit: Option<String>,
    pub(crate) limit: usize,
    /// The last document of the previous page.
    pub(crate) after: Option<(Direction, String)>,
    /// Lower-cased, NFC: what the number or the subject must contain.
    pub(crate) search: Option<String>,
}

impl TryFrom<DocumentsQuery> for Filter {
    type Error = String;

    /// Blank parameters count as absent, except `unit`.
    fn try_from(q: DocumentsQuery) -> Result<Filter, String> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let date = |v: &Option<String>, name: &str| {
            given(v)
                .map(|v| parse_date(v).map_err(|e| format!("bad `{name}`: {e}")))
                .transpose()
        };
        let (from, to) = match given(&q.period) {
            Some(_) if given(&q.from).is_some() || given(&q.to).is_some() => {
                return Err("give either `period` or `from`/`to`, not both".into())
            }
            Some(p) => {
                let (f, t) = crate::parse::time::period_range(p).map_err(|e| {
                    format!("bad period: {e} (examples: 2026-03, 2026-Q1, 2026-H1, 2026)")
                })?;
                (Some(f), Some(t))
            }
            None => (date(&q.from, "from")?, date(&q.to, "to")?),
        };
        let direction = given(&q.direction)
            .map(|d| Direction::from_canonical(d).ok_or("bad `direction` (outgoing, incoming)"))
            .transpose()?;
        let class = given(&q.class)
            .map(|c| {
                Class::from_name(c).ok_or(
                    "bad `class` (electronic_signed, electronic_unsigned, paper, secret_exempt)",
                )
            })
            .transpose()?;
        let limit = match given(&q.limit).map(str::parse::<usize>) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => return Err(format!("bad `limit` (1..{MAX_LIMIT})")),
        };
        let after = given(&q.cursor)
            .map(|c| decode_cursor(c).ok_or("bad `cursor`"))
            .transpose()?;
        if given(&q.q).is_some_and(|t| t.chars().count() > MAX_SEARCH) {
            return Err(format!("bad `q` (at most {MAX_SEARCH} characters)"));
        }
        Ok(Filter {
            from,
            to,
            direction,
            class,
            unit: q.unit.as_deref().map(normalize_unit),
            limit,
            after,
            search: given(&q.q).map(search_key),
        })
    }
}

/// Text as searched: NFC, whitespace collapsed, lower case.
fn search_key(text: &str) -> String {
    normalize_unit(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Filter {
    /// Whether a document of `class` on local `day` is listed.
    fn keeps(&self, doc: &Document, class: Class, day: NaiveDate) -> bool {
        self.direction.is_none_or(|d| d == doc.direction)
            && self.class.is_none_or(|c| c == class)
            && self.unit.as_ref().is_none_or(|u| *u == doc.unit)
            && self.from.is_none_or(|f| day >= f)
            && self.to.is_none_or(|t| day <= t)
            && self.search.as_ref().is_none_or(|s| {
                search_key(&doc.doc_number).contains(s.as_str())
                    || search_key(&doc.subject).contains(s.as_str())
            })
    }
}

/// The answer: one page, and the cursor of the next one if there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DocumentPage {
    pub(crate) documents: Vec<ListedDocument>,
    pub(crate) next_cursor: Option<String>,
}

/// One document as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListedDocument {
    /// `electronic` or `paper`.
    pub(crate) channel: String,
    pub(crate) class: String,
    pub(crate) confidentiality: String,
    pub(crate) counterpart: String,
    /// The local day it counts on.
    pub(crate) date: String,
    pub(crate) direction: String,
    pub(crate) doc_id: String,
    pub(crate) doc_number: String,
    pub(crate) doc_type: String,
    /// edXML business types seen (`new`, `revoke`, `update`, `replace`).
    pub(crate) edxml_business: Vec<String>,
    /// Exchange events merged into it.
    pub(crate) exchange_events: u32,
    /// The latest edXML status, if any.
    pub(crate) exchange_status: Option<ExchangeStatus>,
    pub(crate) rejected_by_receiver: bool,
    pub(crate) revoked: bool,
    /// Roles with a valid signature.
    pub(crate) signature_roles: Vec<String>,
    pub(crate) signers: Vec<String>,
    pub(crate) subject: String,
    /// RFC 3339, local time, of its earliest exchange event.
    pub(crate) time: Option<String>,
    pub(crate) unit: String,
    /// Signatures docflowd verified in the document's files (PDF), valid or not.
    pub(crate) verified_signatures: Vec<ListedSignature>,
}

/// An edXML status message (QCVN 102 code, two digits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExchangeStatus {
    pub(crate) code: String,
    pub(crate) label: String,
    pub(crate) time: Option<String>,
}

impl ListedDocument {
    pub(crate) fn new(
        d: &Document,
        class: Class,
        tz: chrono_tz::Tz,
        verified_signatures: Vec<ListedSignature>,
    ) -> ListedDocument {
        let names = |names: Vec<&str>| names.into_iter().map(str::to_string).collect();
        ListedDocument {
            channel: if d.electronic { "electronic" } else { "paper" }.to_string(),
            class: class.as_str().to_string(),
            confidentiality: d.confidentiality.as_str().to_string(),
            counterpart: d.counterpart.clone(),
            date: local_day(d.time, tz).to_string(),
            direction: d.direction.as_str().to_string(),
            doc_id: d.doc_id.clone(),
            doc_number: d.doc_number.clone(),
            doc_type: d.doc_type.clone(),
            edxml_business: names(d.business_names()),
            exchange_events: d.events,
            exchange_status: (d.status.code != 0).then(|| ExchangeStatus {
                code: format!("{:02}", d.status.code),
                label: crate::model::status_label(d.status.code).to_string(),
                time: local_time(d.status.time, tz),
            }),
            rejected_by_receiver: d.status.rejected,
            revoked: d.revoked(),
            signature_roles: names(d.role_names()),
            signers: d.signers.clone(),
            subject: d.subject.clone(),
            time: local_time(d.time, tz),
            unit: d.unit.clone(),
            verified_signatures,
        }
    }
}

pub(super) async fn documents(
    State(s): State<AppState>,
    Params(filter): Params<Filter>,
) -> Response {
    if !s.shared.health.verified() || s.shared.health.is_damaged() {
        return store_unavailable(&s);
    }
    let (tz, required) = (s.config.agency.timezone, s.config.required_roles);
    let store = s.store.clone();
    let listed = tokio::task::spawn_blocking(move || page(&store, &filter, tz, required)).await;
    match listed {
        Ok(Ok(page)) => Json(page).into_response(),
        Ok(Err(e)) if e.is_damage() => {
            s.shared.health.report_damage(&e.detail());
            store_unavailable(&s)
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorAnswer::json(format!("store {}: {e}", s.store.path().display())),
        )
            .into_response(),
        Err(e) => {
            // sled panics on some damaged files instead of returning an error.
            s.shared
                .health
                .report_damage(&format!("the store panicked while being read: {e}"));
            store_unavailable(&s)
        }
    }
}

/// Reads the page `filter` asks for; `required` roles decide the classes.
pub(crate) fn page(
    store: &Store,
    filter: &Filter,
    tz: chrono_tz::Tz,
    required: u8,
) -> Result<DocumentPage, StoreError> {
    let mut documents = Vec::new();
    let mut last: Option<(Direction, String)> = None;
    let start = filter.after.as_ref().map(|(_, id)| id.as_str());
    for item in store.groups_from(start) {
        let (doc_id, group) = item?;
        for d in Direction::ALL {
            if let Some((after_direction, after_id)) = &filter.after {
                if *after_id == doc_id && d <= *after_direction {
                    continue;
                }
            }
            let Some(doc) = group.doc(d) else { continue };
            let class = doc.class(required);
            if !filter.keeps(doc, class, local_day(doc.time, tz)) {
                continue;
            }
            if documents.len() == filter.limit {
                let next_cursor = last.map(|(d, id)| encode_cursor(d, &id));
                return Ok(DocumentPage {
                    documents,
                    next_cursor,
                });
            }
            let verified = listed_signatures(store, doc, tz)?;
            documents.push(ListedDocument::new(doc, class, tz, verified));
            last = Some((doc.direction, doc.doc_id.clone()));
        }
    }
    Ok(DocumentPage {
        documents,
        next_cursor: None,
    })
}

/// `o` or `i`, then the `doc_id`'s bytes in hex.
fn encode_cursor(direction: Direction, doc_id: &str) -> String {
    let mut s = String::with_capacity(2 + doc_id.len() * 2);
    s.push_str(if direction == Direction::Outgoing {
        "o"
    } else {
        "i"
    });
    for b in doc_id.as_bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_cursor(c: &str) -> Option<(Direction, String)> {
    let (d, hex) = c.split_at_checked(1)?;
    let direction = match d {
        "o" => Direction::Outgoing,
        "i" => Direction::Incoming,
        _ => return None,
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((direction, String::from_utf8(bytes?).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(q: DocumentsQuery) -> Result<Filter, String> {
        Filter::try_from(q)
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(Direction::Incoming, "12/QĐ-UBND");
        assert_eq!(
            decode_cursor(&c),
            Some((Direction::Incoming, "12/QĐ-UBND".into()))
        );
        assert_eq!(decode_cursor("x00"), None);
        assert_eq!(decode_cursor("o0"), None);
        assert_eq!(decode_cursor(""), None);
    }

    #[test]
    fn blank_parameters_are_absent_but_a_blank_unit_is_no_unit() {
        let f = filter(DocumentsQuery {
            direction: Some(" ".into()),
            limit: Some(" 5 ".into()),
            unit: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.direction, None);
        assert_eq!(f.limit, 5);
        assert_eq!(f.unit.as_deref(), Some(""));
        assert_eq!(
            filter(DocumentsQuery::default()).unwrap().limit,
            DEFAULT_LIMIT
        );
    }

    fn document(number: &str, subject: &str) -> Document {
        Document::from_event(&crate::model::ExchangeEvent {
            event_id: None,
            time: 1_781_000_000,
            doc_id: "D1".into(),
            direction: Direction::Outgoing,
            channel: crate::model::Channel::Electronic,
            confidentiality: crate::model::Confidentiality::Normal,
            unit: "Văn phòng".into(),
            doc_number: number.into(),
            doc_type: String::new(),
            subject: subject.into(),
            counterpart: String::new(),
            sha256: None,
        })
    }

    #[test]
    fn the_search_finds_words_of_the_number_or_subject_whatever_their_case() {
        let doc = document("245/KH-UBND", "Kế hoạch Chuyển đổi số năm 2026");
        let day = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
        let keeps = |q: &str| {
            filter(DocumentsQuery {
                q: Some(q.into()),
                ..Default::default()
            })
            .unwrap()
            .keeps(&doc, Class::Paper, day)
        };
        assert!(keeps("kh-ubnd"));
        assert!(keeps("CHUYỂN   ĐỔI SỐ"));
        // Decomposed accents (as some keyboards send them) are the same text.
        assert!(keeps("chuye\u{302}\u{309}n"));
        assert!(!keeps("chuyen doi so"), "accents are not ignored");
        assert!(!keeps("quyết định"));
    }

    #[test]
    fn a_period_is_the_decree_09_range_and_excludes_from_and_to() {
        let f = filter(DocumentsQuery {
            period: Some("2026-H1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (f.from, f.to),
            (
                NaiveDate::from_ymd_opt(2025, 12, 15),
                NaiveDate::from_ymd_opt(2026, 6, 14)
            )
        );
        let both = DocumentsQuery {
            period: Some("2026-H1".into()),
            from: Some("2026-01-01".into()),
            ..Default::default()
        };
        assert_eq!(
            filter(both).unwrap_err(),
            "give either `period` or `from`/`to`, not both"
        );
        let long = DocumentsQuery {
            q: Some("x".repeat(MAX_SEARCH + 1)),
            ..Default::default()
        };
        assert_eq!(
            filter(long).unwrap_err(),
            "bad `q` (at most 200 characters)"
        );
    }

    #[test]
    fn bad_parameters_are_named_from_first_to_last() {
        let bad = |q: DocumentsQuery| filter(q).unwrap_err();
        assert_eq!(
            bad(DocumentsQuery {
                from: Some("bad".into()),
                to: Some("bad".into()),
                ..Default::default()
            }),
            "bad `from`: invalid date \"bad\": expected YYYY-MM-DD"
        );
        assert_eq!(
            bad(DocumentsQuery {
                limit: Some("1001".into()),
                ..Default::default()
            }),
            "bad `limit` (1..1000)"
        );
        assert_eq!(
            bad(DocumentsQuery {
                cursor: Some("o0".into()),
                ..Default::default()
            }),
            "bad `cursor`"
        );
    }
}
