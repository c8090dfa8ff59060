//! `/documents` Văn bản: the documents that match a filter (class,
//! direction, unit, period or dates, words of the number or subject), a page
//! at a time; and the page of one document, saying in plain words why it
//! does not count as compliant.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::Response;

use super::{problem, query, render, Head};
use crate::api::documents::{DocumentPage, DocumentsQuery, Filter, ListedDocument};
use crate::api::verdicts::{listed_signatures, ListedSignature};
use crate::api::AppState;
use crate::model::{Class, Direction, Document, Role};
use crate::vi;

/// One row of the list.
pub(crate) struct Row {
    pub(crate) date: String,
    pub(crate) number: String,
    pub(crate) subject: String,
    pub(crate) unit: String,
    pub(crate) direction: &'static str,
    pub(crate) class: &'static str,
    pub(crate) compliant: bool,
    pub(crate) link: String,
}

/// An option of a select box.
pub(crate) struct Opt {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

#[derive(Template)]
#[template(path = "documents.html", config = "src/console/askama.toml")]
struct ListPage {
    head: Head,
    classes: Vec<Opt>,
    directions: Vec<Opt>,
    units: Vec<Opt>,
    period: String,
    from: String,
    to: String,
    q: String,
    /// The page size asked for, kept by the filter form.
    limit: String,
    rows: Vec<Row>,
    /// `/documents?…&cursor=…` of the next page.
    next: Option<String>,
    /// `/documents?…` of the first page (when not on it).
    first: Option<String>,
    /// The API answer of the same query.
    api: String,
}

fn options(values: &[(&str, &str)], selected: Option<&str>, any: &str) -> Vec<Opt> {
    std::iter::once(("", any))
        .chain(values.iter().copied())
        .map(|(v, label)| Opt {
            value: v.to_string(),
            label: label.to_string(),
            selected: selected.unwrap_or("") == v,
        })
        .collect()
}

fn row(d: &ListedDocument) -> Row {
    let direction = Direction::from_canonical(&d.direction).unwrap_or(Direction::Outgoing);
    let class = Class::from_name(&d.class).unwrap_or(Class::Paper);
    Row {
        date: chrono::NaiveDate::parse_from_str(&d.date, "%Y-%m-%d")
            .map_or_else(|_| d.date.clone(), vi::date),
        number: d.doc_number.clone(),
        subject: d.subject.clone(),
        unit: d.unit.clone(),
        direction: vi::direction(direction),
        class: vi::class(class),
        compliant: class == Class::ElectronicSigned,
        link: format!(
            "/documents/{}/{}",
            direction.as_str(),
            encode_segment(&d.doc_id)
        ),
    }
}

/// A doc_id as one path segment (it may hold `/`).
fn encode_segment(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The units of the per-day counts, for the unit filter.
fn units(s: &AppState) -> Vec<String> {
    let agg = s.shared.aggregates.read().expect("aggregates lock");
    let mut units: Vec<String> = agg
        .summary(None, None)
        .by_unit
        .into_keys()
        .filter(|u| !u.is_empty())
        .collect();
    units.sort();
    units
}

pub(super) async fn list(State(s): State<AppState>, uri: Uri) -> Response {
    let q: DocumentsQuery = match super::params(&s, &uri) {
        Ok(q) => q,
        Err(answer) => return answer,
    };
    let filter = match Filter::try_from(q.clone()) {
        Ok(f) => f,
        Err(e) => {
            return problem(
                &s,
                StatusCode::BAD_REQUEST,
                format!("Bộ lọc không hợp lệ: {e}"),
            )
        }
    };
    let listed = match read(&s, filter).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let keep = [
        ("class", v(&q.class)),
        ("direction", v(&q.direction)),
        ("unit", v(&q.unit)),
        ("period", v(&q.period)),
        ("from", v(&q.from)),
        ("to", v(&q.to)),
        ("q", v(&q.q)),
        ("limit", v(&q.limit)),
    ];
    let pairs: Vec<(&str, &str)> = keep.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let base = query(&pairs);
    let link = |cursor: Option<&str>| {
        let mut p = pairs.clone();
        if let Some(c) = cursor {
            p.push(("cursor", c));
        }
        format!("/documents?{}", query(&p))
    };
    let classes: Vec<(&str, &str)> = Class::ALL
        .iter()
        .map(|c| (c.as_str(), vi::class(*c)))
        .collect();
    let directions: Vec<(&str, &str)> = Direction::ALL
        .iter()
        .map(|d| (d.as_str(), vi::direction(*d)))
        .collect();
    let unit_names = units(&s);
    let unit_values: Vec<(&str, &str)> = unit_names
        .iter()
        .map(|u| (u.as_str(), u.as_str()))
        .collect();
    render(&ListPage {
        head: Head::new(&s, "documents", "Văn bản"),
        classes: options(&classes, q.class.as_deref(), "Mọi loại"),
        directions: options(&directions, q.direction.as_deref(), "Cả đi và đến"),
        units: options(&unit_values, q.unit.as_deref(), "Mọi đơn vị"),
        period: v(&q.period),
        from: v(&q.from),
        to: v(&q.to),
        q: v(&q.q),
        limit: v(&q.limit),
        rows: listed.documents.iter().map(row).collect(),
        next: listed.next_cursor.as_deref().map(|c| link(Some(c))),
        first: q.cursor.as_ref().map(|_| link(None)),
        api: format!(
            "/api/v1/documents?{}",
            if q.cursor.is_some() {
                link(q.cursor.as_deref())["/documents?".len()..].to_string()
            } else {
                base
            }
        ),
    })
}

/// Reads a page of documents off the async workers; a damaged or unchecked
/// store is a problem page.
async fn read(s: &AppState, filter: Filter) -> Result<DocumentPage, Response> {
    if !s.shared.health.verified() || s.shared.health.is_damaged() {
        return Err(problem(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Kho dữ liệu đang được kiểm tra; danh sách văn bản sẽ hiển thị khi kiểm tra xong."
                .into(),
        ));
    }
    let (store, tz, roles) = (
        s.store.clone(),
        s.config.agency.timezone,
        s.config.required_roles,
    );
    match tokio::task::spawn_blocking(move || {
        crate::api::documents::page(&store, &filter, tz, roles)
    })
    .await
    {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(problem(
            s,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Không đọc được kho dữ liệu: {e}"),
        )),
        Err(e) => Err(problem(
            s,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Không đọc được kho dữ liệu: {e}"),
        )),
    }
}

#[derive(Template)]
#[template(path = "document.html", config = "src/console/askama.toml")]
struct OnePage {
    head: Head,
    d: ListedDocument,
    direction: &'static str,
    class: &'static str,
    compliant: bool,
    reasons: Vec<String>,
    roles: Vec<(&'static str, bool)>,
    /// The signatures docflowd verified in the document's files.
    signatures: Vec<SignatureRow>,
    time: String,
}

/// A signature read from one of the document's files, with its verdict.
struct SignatureRow {
    signer: String,
    role: &'static str,
    time: String,
    /// [`short_sha`] of the file.
    file: String,
    valid: bool,
    verdict: String,
}

fn signature_row(v: &ListedSignature, tz: chrono_tz::Tz) -> SignatureRow {
    SignatureRow {
        signer: v.signer.clone(),
        role: match Role::ALL
            .iter()
            .find(|r| v.role.as_deref() == Some(r.as_str()))
        {
            Some(r) => role_name(*r),
            None => "Không khớp quy tắc vai trò nào",
        },
        time: v
            .time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(String::new, |t| vi::date_time(t.timestamp(), tz)),
        file: short_sha(&v.file_sha256).to_string(),
        valid: v.valid,
        verdict: match &v.reason_text {
            None => "Hợp lệ".into(),
            Some(text) => format!("Không hợp lệ: {text}"),
        },
    }
}

/// The first 12 hex digits of a file's sha256: enough to tell a document's files apart.
fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// One plain sentence per invalid signature found in the document's files.
fn invalid_signatures(verified: &[ListedSignature]) -> impl Iterator<Item = String> + '_ {
    verified.iter().filter(|v| !v.valid).map(|v| {
        format!(
            "Chữ ký số của {} trong tệp {} không hợp lệ: {}",
            if v.signer.is_empty() {
                "(không rõ người ký)"
            } else {
                &v.signer
            },
            short_sha(&v.file_sha256),
            v.reason_text.as_deref().unwrap_or("không rõ lý do")
        )
    })
}

/// Why a document does not count as compliant, in plain words.
pub(crate) fn reasons(doc: &Document, required: u8) -> Vec<String> {
    let mut out = Vec::new();
    match doc.class(required) {
        Class::SecretExempt => out.push("Văn bản mật: không tính vào tỷ lệ.".into()),
        Class::Paper => out.push("Gửi bằng bản giấy: không có lần gửi, nhận điện tử nào.".into()),
        Class::ElectronicUnsigned => {
            for role in Role::ALL {
                if required & role.bit() != 0 && doc.roles & role.bit() == 0 {
                    out.push(match role {
                        Role::Person => "Thiếu chữ ký số của người có thẩm quyền.".into(),
                        Role::Organization => "Thiếu chữ ký số của cơ quan.".into(),
                    });
                }
            }
        }
        Class::ElectronicSigned => {}
    }
    if doc.status.rejected {
        out.push("Bên nhận đã từ chối tiếp nhận văn bản (trục liên thông, mã 02).".into());
    }
    if doc.revoked() {
        out.push("Văn bản đã bị thu hồi.".into());
    }
    out
}

pub(super) async fn one(
    State(s): State<AppState>,
    Path((direction, doc_id)): Path<(String, String)>,
) -> Response {
    let Some(d) = Direction::from_canonical(&direction) else {
        return problem(&s, StatusCode::NOT_FOUND, "Không có văn bản này.".into());
    };
    if !s.shared.health.verified() || s.shared.health.is_damaged() {
        return problem(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Kho dữ liệu đang được kiểm tra; hãy thử lại sau ít phút.".into(),
        );
    }
    let (store, id) = (s.store.clone(), doc_id.clone());
    let (tz, required) = (s.config.agency.timezone, s.config.required_roles);
    let found = tokio::task::spawn_blocking(move || {
        let (gid, group) = store.groups_from(Some(&id)).next()?.ok()?;
        let doc = (gid == id).then(|| group.doc(d).clone()).flatten()?;
        let verified = listed_signatures(&store, &doc, tz);
        Some((doc, verified))
    })
    .await
    .ok()
    .flatten();
    let Some((doc, verified)) = found else {
        return problem(&s, StatusCode::NOT_FOUND, "Không có văn bản này.".into());
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            return problem(
                &s,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Không đọc được kho dữ liệu: {e}"),
            )
        }
    };
    let class = doc.class(required);
    render(&OnePage {
        head: Head::new(
            &s,
            "documents",
            format!(
                "Văn bản {}",
                if doc.doc_number.is_empty() {
                    &doc.doc_id
                } else {
                    &doc.doc_number
                }
            ),
        ),
        direction: vi::direction(d),
        class: vi::class(class),
        compliant: class == Class::ElectronicSigned,
        reasons: reasons(&doc, required)
            .into_iter()
            .chain(invalid_signatures(&verified))
            .collect(),
        signatures: verified.iter().map(|v| signature_row(v, tz)).collect(),
        roles: Role::ALL
            .iter()
            .filter(|r| required & r.bit() != 0)
            .map(|r| (role_name(*r), doc.roles & r.bit() != 0))
            .collect(),
        time: vi::date_time(doc.time, tz),
        d: ListedDocument::new(&doc, class, tz, verified),
    })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Person => "Chữ ký số của người có thẩm quyền",
        Role::Organization => "Chữ ký số của cơ quan",
    }
}
