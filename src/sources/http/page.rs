//! One page of a feed: reading the events and the next cursor out of a body,
//! deciding which events are new, and the URL of the next page.

use serde_json::Value;

use super::fault::{Fault, FaultKind};
use crate::config::HttpConfig;
use crate::store::FeedPos;

/// One page of a feed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub(crate) events: Vec<Value>,
    /// `None` when absent, `null` or empty.
    pub(crate) next_cursor: Option<String>,
}

/// What to do with a page fetched at `pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PagePlan {
    /// Index of the first event not read before.
    pub(crate) first: usize,
    /// The position once this page is committed.
    pub(crate) next: FeedPos,
    /// Whether another page is waiting (fetch it without waiting `poll_interval`).
    pub(crate) more: bool,
}

/// Decides which events of a page are new and where the feed stands after it.
/// A feed that answers without a new cursor may serve the same page grown
/// later: the events already read are skipped, never counted twice.
pub(crate) fn plan(pos: &FeedPos, page: &Page) -> PagePlan {
    let len = page.events.len() as u64;
    let first = pos.skip.min(len) as usize;
    match &page.next_cursor {
        Some(next) if Some(next) != pos.cursor.as_ref() => PagePlan {
            first,
            next: FeedPos {
                cursor: Some(next.clone()),
                skip: 0,
                pages: pos.pages + 1,
            },
            // README "HTTP feed sources": an empty page means caught up, whatever its cursor.
            more: !page.events.is_empty(),
        },
        _ => {
            let skip = pos.skip.max(len);
            PagePlan {
                first,
                next: FeedPos {
                    cursor: pos.cursor.clone(),
                    skip,
                    pages: pos.pages + u64::from(skip > pos.skip),
                },
                more: false,
            }
        }
    }
}

/// Reads the events array and the next cursor out of a response body.
pub(crate) fn parse_page(
    body: &[u8],
    content_type: Option<&str>,
    events_pointer: &str,
    next_cursor_pointer: &str,
) -> Result<Page, Fault> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let mut root: Value = serde_json::from_slice(body).map_err(|e| {
        let html = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("html"))
            || body.trim_ascii_start().starts_with(b"<");
        if html {
            Fault::new(
                FaultKind::NotJson,
                format!(
                    "response is not JSON (content type {}, {} bytes)",
                    content_type.unwrap_or("unknown"),
                    body.len()
                ),
            )
        } else if e.is_eof() {
            Fault::new(FaultKind::InvalidJson, format!("truncated JSON: {e}"))
        } else {
            Fault::new(FaultKind::InvalidJson, format!("invalid JSON: {e}"))
        }
    })?;
    let next = root.pointer(next_cursor_pointer).cloned();
    let events = match root.pointer_mut(events_pointer).map(Value::take) {
        Some(Value::Array(a)) => a,
        Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(Fault::new(
                FaultKind::BadPage,
                format!("`{events_pointer}` in the response is not an array"),
            ))
        }
        None => {
            return Err(Fault::new(
                FaultKind::BadPage,
                format!("no `{events_pointer}` array in the response"),
            ))
        }
    };
    let next_cursor = match next {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(Fault::new(
                FaultKind::BadPage,
                format!("`{next_cursor_pointer}` in the response is not a string, number or null"),
            ))
        }
    };
    Ok(Page {
        events,
        next_cursor,
    })
}

/// The URL of the page at `cursor`: the configured URL plus `cursor=` and `limit=`.
pub(crate) fn page_url(cfg: &HttpConfig, cursor: Option<&str>) -> Result<reqwest::Url, Fault> {
    let mut url = reqwest::Url::parse(&cfg.url)
        .map_err(|e| Fault::new(FaultKind::HttpStatus, format!("bad URL: {e}")))?;
    if cursor.is_some() || cfg.page_size.is_some() {
        let mut q = url.query_pairs_mut();
        if let Some(c) = cursor {
            q.append_pair(&cfg.cursor_param, c);
        }
        if let Some(n) = cfg.page_size {
            q.append_pair("limit", &n.to_string());
        }
    }
    Ok(url)
}
