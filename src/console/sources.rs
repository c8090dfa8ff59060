//! `/sources` Nguồn dữ liệu: each source's state, last event and last error,
//! and its most recent rejected lines with the reason, so the clerk can fix
//! the export that produced them.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{render, Head};
use crate::api::status::SourceStatus;
use crate::api::AppState;
use crate::vi;

/// Rejected lines shown per source, newest first.
const REJECTED_SHOWN: usize = 20;
/// Bytes read from the end of a rejected file, whatever its size.
const REJECTED_TAIL: u64 = 64 * 1024;
/// A rejected record longer than this is cut for the page.
const RECORD_SHOWN: usize = 300;

/// A rejected line, as the page shows it.
pub(crate) struct Rejected {
    pub(crate) place: String,
    /// What is wrong, in Vietnamese words.
    pub(crate) gloss: String,
    /// The reason as the log gives it (technical, English).
    pub(crate) reason: String,
    pub(crate) record: String,
}

pub(crate) struct SourceView {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) format: String,
    /// The path or URL read (an URL without its query: it may hold a secret).
    pub(crate) location: String,
    pub(crate) up: bool,
    pub(crate) caught_up: bool,
    pub(crate) last_event: String,
    pub(crate) accepted: String,
    pub(crate) duplicate: String,
    pub(crate) invalid: String,
    pub(crate) error: Option<String>,
    pub(crate) error_time: String,
    pub(crate) rejected: Vec<Rejected>,
    /// Where the whole rejected file is, for the IT staff.
    pub(crate) rejected_file: String,
}

#[derive(Template)]
#[template(path = "sources.html", config = "src/console/askama.toml")]
struct SourcesPage {
    head: Head,
    sources: Vec<SourceView>,
}

/// An RFC 3339 time of the API as the page writes it.
pub(super) fn local_time(t: Option<&str>, tz: chrono_tz::Tz) -> String {
    match t {
        None => "—".to_string(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_or_else(|_| t.to_string(), |t| vi::date_time(t.timestamp(), tz)),
    }
}

/// The last [`REJECTED_SHOWN`] committed lines of a rejected file, newest
/// first, reading at most [`REJECTED_TAIL`] bytes before `committed_len`.
pub(crate) fn rejected_tail(path: &Path, committed_len: u64) -> std::io::Result<Vec<Rejected>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let end = committed_len.min(file.metadata()?.len());
    let start = end.saturating_sub(REJECTED_TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.take(end - start).read_to_end(&mut buf)?;
    let mut lines: Vec<&[u8]> = buf
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // began mid-line
    }
    Ok(lines
        .iter()
        .rev()
        .take(REJECTED_SHOWN)
        .map(|l| rejected_line(l))
        .collect())
}

fn rejected_line(line: &[u8]) -> Rejected {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
        return Rejected {
            place: String::new(),
            gloss: "Dòng ghi lỗi không đọc được".into(),
            reason: String::new(),
            record: cut(&String::from_utf8_lossy(line)),
        };
    };
    let text = |k: &str| {
        v.get(k).map_or(String::new(), |x| {
            x.as_str().map_or_else(|| x.to_string(), str::to_string)
        })
    };
    let line_no = v
        .get("line")
        .and_then(|l| l.as_u64())
        .map_or(String::new(), |l| format!(", dòng {}", vi::count(l)));
    Rejected {
        place: format!("{}{line_no}", text("file")),
        gloss: gloss(&text("reason")),
        reason: text("reason"),
        record: cut(&text("record")),
    }
}

/// The kind of a rejection reason, in Vietnamese (the log's reason is
/// technical and stays next to it).
fn gloss(reason: &str) -> String {
    let field = reason
        .strip_prefix("field `")
        .and_then(|r| r.split_once('`'));
    if reason.starts_with("missing required field") {
        "Thiếu trường bắt buộc".into()
    } else if reason.starts_with("invalid JSON") || reason.starts_with("not json") {
        "Dòng không phải JSON hợp lệ (có thể bị cắt ngang hoặc sai cú pháp)".into()
    } else if let Some(("time", _)) = field {
        "Thời gian không đúng định dạng".into()
    } else if let Some((name, rest)) = field {
        if rest.contains("unknown value") {
            format!("Giá trị không được chấp nhận ở trường {name}")
        } else {
            format!("Trường {name} không hợp lệ")
        }
    } else if reason.contains("XML")
        || reason.contains("edXML")
        || reason.contains("Bussiness")
        || reason.contains("StatusCode")
    {
        "Tệp edXML không hợp lệ".into()
    } else if reason.contains("too large")
        || reason.contains("longer than")
        || reason.contains("over ")
    {
        "Vượt giới hạn kích thước".into()
    } else {
        "Dòng không hợp lệ".into()
    }
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(RECORD_SHOWN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn view(
    s: &SourceStatus,
    rejected: Vec<Rejected>,
    rejected_file: String,
    tz: chrono_tz::Tz,
) -> SourceView {
    SourceView {
        name: s.name.clone(),
        kind: if s.kind == "signature" {
            "nhật ký ký số"
        } else {
            "nhật ký trao đổi văn bản"
        },
        format: s.format.clone(),
        location: s.path.clone().or_else(|| s.url.clone()).unwrap_or_default(),
        up: s.up,
        caught_up: s.caught_up,
        last_event: local_time(s.last_event_time.as_deref(), tz),
        accepted: vi::count(s.events.accepted),
        duplicate: vi::count(s.events.duplicate),
        invalid: vi::count(s.events.invalid),
        error: s.last_error.as_ref().map(|e| e.message.clone()),
        error_time: local_time(s.last_error.as_ref().and_then(|e| e.time.as_deref()), tz),
        rejected,
        rejected_file,
    }
}

pub(super) async fn page(State(s): State<AppState>) -> Response {
    let state = s.clone();
    let views = tokio::task::spawn_blocking(move || {
        let status = crate::api::status::build(&state);
        let tz = state.config.agency.timezone;
        let dir = state.config.storage.path.join("rejected");
        status
            .sources
            .iter()
            .map(|src| {
                let path = dir.join(format!("{}.jsonl", src.name));
                let committed = state
                    .shared
                    .sources
                    .iter()
                    .find(|h| h.config.name == src.name)
                    .map_or(0, |h| h.committed_state().rejected_len);
                let rejected = rejected_tail(&path, committed).unwrap_or_else(|e| {
                    vec![Rejected {
                        place: path.display().to_string(),
                        gloss: "Không đọc được tệp các dòng bị loại".into(),
                        reason: e.to_string(),
                        record: String::new(),
                    }]
                });
                view(src, rejected, path.display().to_string(), tz)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    render(&SourcesPage {
        head: Head::new(&s, "sources", "Nguồn dữ liệu"),
        sources: views,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64, reason: &str) -> String {
        format!(
            "{}\n",
            serde_json::json!({"source": "s", "file": "/x.jsonl", "line": n, "reason": reason, "record": "{}"})
        )
    }

    #[test]
    fn the_tail_is_newest_first_bounded_and_stops_at_the_committed_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut text = String::new();
        for n in 1..=5000 {
            text.push_str(&line(n, "missing doc_id"));
        }
        let committed = text.len() as u64;
        text.push_str(&line(9999, "not yet committed"));
        std::fs::write(&path, &text).unwrap();
        let tail = rejected_tail(&path, committed).unwrap();
        assert_eq!(tail.len(), REJECTED_SHOWN);
        assert_eq!(tail[0].place, "/x.jsonl, dòng 5.000");
        assert_eq!(tail[19].place, "/x.jsonl, dòng 4.981");
        assert!(tail.iter().all(|r| r.reason == "missing doc_id"));
        assert!(rejected_tail(&dir.path().join("none.jsonl"), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn reasons_are_named_in_vietnamese_by_kind() {
        assert_eq!(
            gloss("missing required field `doc_id`"),
            "Thiếu trường bắt buộc"
        );
        assert_eq!(
            gloss("field `channel`: unknown value \"fax\""),
            "Giá trị không được chấp nhận ở trường channel"
        );
        assert_eq!(
            gloss("field `time`: unrecognised time \"2026/06/14\""),
            "Thời gian không đúng định dạng"
        );
        assert!(gloss("invalid JSON: EOF while parsing").starts_with("Dòng không phải JSON"));
        assert_eq!(gloss("something new"), "Dòng không hợp lệ");
    }

    #[test]
    fn a_long_record_is_cut_on_a_character_boundary() {
        let long = "Đ".repeat(RECORD_SHOWN + 5);
        let shown = cut(&long);
        assert_eq!(shown.chars().count(), RECORD_SHOWN + 1);
        assert!(shown.ends_with('…'));
    }
}
