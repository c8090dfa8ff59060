//! `/api/v1/status`: the agency, the store's health, each source's position
//! and counts, and the alert rules. Fields are in alphabetical order, the
//! order of the JSON keys since the first version.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{local_time, AppState};
use crate::alerts::AlertsStatus;
use crate::config::redact_url;
use crate::config::Input;
use crate::sources::SourceHandle;

/// The answer of `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Status {
    pub agency: AgencyStatus,
    pub alerts: AlertsStatus,
    /// Whether every source has read and committed everything available.
    pub(crate) caught_up: bool,
    /// The store is open and every source has started.
    pub(crate) ready: bool,
    pub sources: Vec<SourceStatus>,
    pub(crate) store: StoreStatus,
    pub(crate) version: String,
}

/// The agency measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgencyStatus {
    pub(crate) code: String,
    pub name: String,
    pub(crate) timezone: String,
}

/// The store's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoreStatus {
    /// What a failed check found; nothing is served then.
    pub(crate) damage: Option<String>,
    /// False while the store refuses writes.
    pub(crate) ok: bool,
    pub path: String,
    /// The full check of this start passed (documents are listed only then).
    pub(crate) verified: bool,
}

/// One source: where it reads, how far it has read, and its last error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceStatus {
    pub(crate) accepted: u64,
    pub(crate) caught_up: bool,
    pub(crate) duplicate: u64,
    pub(crate) events: EventCounts,
    /// `jsonl`, `csv`, `edxml`, or `json` for an HTTP feed.
    pub format: String,
    pub(crate) invalid: u64,
    /// `exchange` or `signature`.
    pub(crate) kind: String,
    pub(crate) last_error: Option<SourceError>,
    /// RFC 3339, local time, of the newest event accepted.
    pub(crate) last_event_time: Option<String>,
    pub name: String,
    /// The files' glob or directory (`None` for an HTTP feed).
    pub path: Option<String>,
    pub(crate) position: Position,
    pub(crate) up: bool,
    /// The feed's URL, secrets redacted (`None` for files).
    pub url: Option<String>,
}

/// Events read, by result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventCounts {
    pub(crate) accepted: u64,
    pub(crate) duplicate: u64,
    pub(crate) invalid: u64,
}

/// A source's last error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceError {
    /// The kind of fault of an HTTP feed (`timeout`, `server_error`…).
    pub(crate) kind: Option<String>,
    pub(crate) message: String,
    /// RFC 3339, local time.
    pub(crate) time: Option<String>,
}

/// Where a source stands: per file, or in an HTTP feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Position {
    Files {
        files: Vec<FilePosition>,
    },
    Feed {
        /// The cursor requested next (`None`: the feed's beginning).
        cursor: Option<String>,
        /// Events of the page at `cursor` already read.
        index: u64,
        /// Pages committed so far.
        pages: u64,
        url: String,
    },
}

/// How far a file has been read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FilePosition {
    pub(crate) line: u64,
    pub(crate) offset: u64,
    pub path: String,
}

pub(super) async fn status(State(s): State<AppState>) -> Json<Status> {
    // Whether a file source has caught up is a look at its files.
    let built = tokio::task::spawn_blocking(move || build(&s)).await;
    Json(built.expect("the status task does not panic"))
}

/// The status of the daemon `s` serves (blocking: file sources look at their files).
pub(crate) fn build(s: &AppState) -> Status {
    let tz = s.config.agency.timezone;
    let sources: Vec<SourceStatus> = s
        .shared
        .sources
        .iter()
        .map(|h| source_status(h, tz))
        .collect();
    let health = &s.shared.health;
    Status {
        agency: AgencyStatus {
            code: s.config.agency.code.clone(),
            name: s.config.agency.name.clone(),
            timezone: tz.name().to_string(),
        },
        alerts: s.alerts.as_ref().map(|a| a.status()).unwrap_or_default(),
        caught_up: sources.iter().all(|s| s.caught_up),
        ready: s.ready.load(Ordering::Relaxed),
        sources,
        store: StoreStatus {
            damage: health.damage(),
            ok: s.shared.store_ok.load(Ordering::Relaxed),
            path: s.store.path().display().to_string(),
            verified: health.verified(),
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

fn source_status(h: &SourceHandle, tz: chrono_tz::Tz) -> SourceStatus {
    let caught_up = h.caught_up();
    let p = h.progress().clone();
    let time = |t: i64| local_time(t, tz);
    let config = &h.config;
    let url = match &config.input {
        Input::HttpFeed(feed) => Some(redact_url(&feed.http.url)),
        Input::Files(_) | Input::EdxmlDir(_) | Input::PdfDir(_) => None,
    };
    let position = match &url {
        None => Position::Files {
            files: (p.state.files.iter())
                .map(|f| FilePosition {
                    line: f.line,
                    offset: f.offset,
                    path: f.path.clone(),
                })
                .collect(),
        },
        Some(url) => Position::Feed {
            cursor: p.state.feed.cursor.clone(),
            index: p.state.feed.skip,
            pages: p.state.feed.pages,
            url: url.clone(),
        },
    };
    let events = EventCounts {
        accepted: p.state.accepted,
        duplicate: p.state.duplicate,
        invalid: p.state.invalid,
    };
    SourceStatus {
        accepted: events.accepted,
        caught_up,
        duplicate: events.duplicate,
        events,
        format: config.input.format_name().to_string(),
        invalid: events.invalid,
        kind: config.kind.as_str().to_string(),
        last_error: p.last_error.as_ref().map(|(message, t)| SourceError {
            kind: p.last_error_kind.map(str::to_string),
            message: message.clone(),
            time: time(*t),
        }),
        last_event_time: p.state.last_event_time.and_then(time),
        name: config.name.clone(),
        path: config.input.path().map(str::to_string),
        position,
        up: p.up,
        url,
    }
}
