//! Alert mail: the Vietnamese text and HTML of a notice (pure), and sending
//! it over SMTP with `lettre`, with SMTP failures explained in plain words.

use std::time::Duration;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::rules::Notice;
use crate::aggregate::ClassCounts;
use crate::config::{SmtpConfig, SmtpSecurity};
use crate::errors::chain;
use crate::model::{Class, Direction, Window};

/// A rendered mail, as kept in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Mail {
    pub(crate) rule: String,
    /// `firing` or `resolved`: the header's and the counter's `state`.
    pub(crate) state: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// A non-compliant document listed in a mail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocLine {
    pub(crate) number: String,
    pub(crate) subject: String,
    pub(crate) unit: String,
    pub(crate) class: Class,
}

/// What a ratio rule saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RatioFacts {
    pub(crate) direction: Direction,
    pub(crate) window: Window,
    pub(crate) range: Option<(NaiveDate, NaiveDate)>,
    pub(crate) below: f64,
    pub(crate) min_documents: u64,
    pub(crate) counts: ClassCounts,
    /// The first non-compliant documents of the window (at most ten).
    pub(crate) documents: Vec<DocLine>,
}

/// What a stale-source rule saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StaleFacts {
    pub(crate) source: String,
    pub(crate) after: Duration,
    pub(crate) last_event_time: Option<i64>,
    pub(crate) last_activity: i64,
}

/// Everything a mail says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MailFacts {
    pub(crate) agency_name: String,
    pub(crate) agency_code: String,
    pub(crate) rule: String,
    pub(crate) notice: Notice,
    pub(crate) at: i64,
    pub(crate) timezone: Tz,
    pub(crate) dashboard_url: Option<String>,
    pub(crate) detail: Detail,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Detail {
    Ratio(RatioFacts),
    Stale(StaleFacts),
}

/// A threshold: `100 %`, `95 %`, `92,5 %` (no needless decimals).
pub(crate) fn vi_threshold(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{} %", p.round() as i64)
    } else {
        crate::vi::percent(ratio)
    }
}

fn vi_time(t: i64, tz: Tz) -> String {
    tz.timestamp_opt(t, 0)
        .single()
        .map(|t| t.format("%H:%M ngày %d/%m/%Y").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn vi_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86400 && s % 86400 == 0 {
        format!("{} ngày", s / 86400)
    } else if s >= 3600 && s % 3600 == 0 {
        format!("{} giờ", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{} phút", s / 60)
    } else {
        format!("{s} giây")
    }
}

fn vi_window(w: Window) -> &'static str {
    match w {
        Window::Day => "hôm nay",
        Window::Days7 => "7 ngày gần nhất",
        Window::Days30 => "30 ngày gần nhất",
        Window::Month => "tháng này",
        Window::Year => "năm nay",
        Window::All => "toàn bộ thời gian",
    }
}

fn vi_direction(d: Direction) -> &'static str {
    match d {
        Direction::Outgoing => "văn bản đi",
        Direction::Incoming => "văn bản đến",
    }
}

fn vi_class(c: Class) -> &'static str {
    match c {
        Class::ElectronicSigned => "Điện tử, đã ký số",
        Class::ElectronicUnsigned => "Điện tử, chưa đủ chữ ký số",
        Class::Paper => "Bản giấy",
        Class::SecretExempt => "Mật (loại trừ)",
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One block of the mail: a heading line, key/value rows, an optional table.
struct Body {
    lead: String,
    rows: Vec<(String, String)>,
    table: Option<(String, Vec<DocLine>)>,
}

/// Renders the subject, text and HTML of a notice.
pub fn render(f: &MailFacts) -> Mail {
    let prefix = match f.notice {
        Notice::Firing => "Cảnh báo",
        Notice::Reminder => "Nhắc lại cảnh báo",
        Notice::Resolved => "Đã khắc phục",
    };
    let (subject, body) = match &f.detail {
        Detail::Ratio(r) => ratio_body(f, r, prefix),
        Detail::Stale(s) => stale_body(f, s, prefix),
    };
    let subject = format!("[docflow] {subject} — {}", f.agency_name);
    let mut text = format!("{}\n\n", body.lead);
    for (k, v) in &body.rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let mut html = format!(
        "<!doctype html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<p>{}</p>\n<table>\n",
        escape(&subject),
        escape(&body.lead)
    );
    for (k, v) in &body.rows {
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        ));
    }
    html.push_str("</table>\n");
    if let Some((title, docs)) = &body.table {
        text.push_str(&format!("\n{title}:\n"));
        html.push_str(&format!(
            "<h3>{}</h3>\n<table border=\"1\" cellpadding=\"4\">\n<tr><th>Số, ký hiệu</th><th>Trích yếu</th><th>Đơn vị</th><th>Phân loại</th></tr>\n",
            escape(title)
        ));
        for (i, d) in docs.iter().enumerate() {
            let unit = if d.unit.is_empty() {
                "(chưa ghi đơn vị)"
            } else {
                &d.unit
            };
            text.push_str(&format!(
                "{}. {} — {} — {} — {}\n",
                i + 1,
                d.number,
                d.subject,
                unit,
                vi_class(d.class)
            ));
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&d.number),
                escape(&d.subject),
                escape(unit),
                escape(vi_class(d.class))
            ));
        }
        html.push_str("</table>\n");
    }
    if let Some(url) = &f.dashboard_url {
        text.push_str(&format!("\nXem chi tiết: {url}\n"));
        html.push_str(&format!(
            "<p>Xem chi tiết: <a href=\"{0}\">{0}</a></p>\n",
            escape(url)
        ));
    }
    let footer = format!(
        "Thư tự động từ docflowd ({} — mã {}), quy tắc «{}», lúc {}.",
        f.agency_name,
        f.agency_code,
        f.rule,
        vi_time(f.at, f.timezone)
    );
    text.push_str(&format!("\n-- \n{footer}\n"));
    html.push_str(&format!(
        "<hr><p><small>{}</small></p>\n</body></html>\n",
        escape(&footer)
    ));
    Mail {
        rule: f.rule.clone(),
        state: f.notice.state_label().to_string(),
        subject,
        text,
        html,
    }
}

fn ratio_body(f: &MailFacts, r: &RatioFacts, prefix: &str) -> (String, Body) {
    let c = &r.counts;
    let ratio = c.compliance_ratio();
    let ratio_text = ratio.map_or(
        "chưa xác định (không có văn bản nào được tính)".to_string(),
        crate::vi::percent,
    );
    let window = match r.range {
        Some((a, b)) => format!(
            "{} (từ {} đến {})",
            vi_window(r.window),
            crate::vi::date(a),
            crate::vi::date(b)
        ),
        None => vi_window(r.window).to_string(),
    };
    let what = format!("tỷ lệ {} có ký số", vi_direction(r.direction));
    let subject = match f.notice {
        Notice::Resolved => format!("{prefix}: {what} {} ({})", ratio_text, vi_window(r.window)),
        _ => format!(
            "{prefix}: {what} {} dưới ngưỡng {} ({})",
            ratio_text,
            vi_threshold(r.below),
            vi_window(r.window)
        ),
    };
    let lead = match f.notice {
        Notice::Resolved => format!(
            "Tỷ lệ {} điện tử có ký số trong {} đã trở lại mức {}, không còn dưới ngưỡng {}.",
            vi_direction(r.direction),
            vi_window(r.window),
            ratio_text,
            vi_threshold(r.below)
        ),
        _ => format!(
            "Tỷ lệ {} điện tử có ký số trong {} là {}, dưới ngưỡng {} (mục tiêu 100 % theo Quyết định 534/QĐ-TTg).",
            vi_direction(r.direction),
            vi_window(r.window),
            ratio_text,
            vi_threshold(r.below)
        ),
    };
    let mut rows = vec![
        ("Tỷ lệ đạt".to_string(), ratio_text.clone()),
        ("Ngưỡng".to_string(), vi_threshold(r.below)),
        ("Khoảng thời gian".to_string(), window),
        ("Tổng số".to_string(), crate::vi::count(c.total())),
    ];
    for class in [
        Class::ElectronicSigned,
        Class::ElectronicUnsigned,
        Class::Paper,
        Class::SecretExempt,
    ] {
        rows.push((vi_class(class).to_string(), crate::vi::count(c.get(class))));
    }
    let table = if f.notice == Notice::Resolved || r.documents.is_empty() {
        None
    } else {
        let non_compliant = c.electronic_unsigned + c.paper;
        let title = if non_compliant > r.documents.len() as u64 {
            format!(
                "{} văn bản chưa đạt đầu tiên (trong tổng số {}; chưa đủ chữ ký số hoặc bản giấy)",
                r.documents.len(),
                crate::vi::count(non_compliant)
            )
        } else {
            "Các văn bản chưa đạt (chưa đủ chữ ký số hoặc bản giấy)".to_string()
        };
        Some((title, r.documents.clone()))
    };
    (subject, Body { lead, rows, table })
}

fn stale_body(f: &MailFacts, s: &StaleFacts, prefix: &str) -> (String, Body) {
    let subject = match f.notice {
        Notice::Resolved => format!("{prefix}: nguồn dữ liệu «{}» đã có sự kiện mới", s.source),
        _ => format!(
            "{prefix}: nguồn dữ liệu «{}» không có sự kiện mới trong {}",
            s.source,
            vi_duration(s.after)
        ),
    };
    let lead = match f.notice {
        Notice::Resolved => format!(
            "Nguồn dữ liệu «{}» đã nhận sự kiện mới; số liệu lại được cập nhật.",
            s.source
        ),
        _ => format!(
            "Nguồn dữ liệu «{}» không nhận được sự kiện mới nào trong {}: số liệu về văn bản có thể không còn đầy đủ. Đề nghị kiểm tra việc xuất nhật ký của hệ thống quản lý văn bản.",
            s.source,
            vi_duration(s.after)
        ),
    };
    let rows = vec![
        ("Nguồn dữ liệu".to_string(), s.source.clone()),
        ("Ngưỡng".to_string(), vi_duration(s.after)),
        (
            "Lần nhận sự kiện gần nhất".to_string(),
            vi_time(s.last_activity, f.timezone),
        ),
        (
            "Thời điểm của sự kiện mới nhất".to_string(),
            s.last_event_time
                .map_or("chưa có".to_string(), |t| vi_time(t, f.timezone)),
        ),
    ];
    (
        subject,
        Body {
            lead,
            rows,
            table: None,
        },
    )
}

/// The `X-Docflow-Alert: <rule>; state=firing|resolved` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct XDocflowAlert(pub String);

impl Header for XDocflowAlert {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Docflow-Alert")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XDocflowAlert(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies to docflowd.
#[derive(Debug, Clone, PartialEq)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("cannot read SMTP password file {path}: {source}")]
    Password {
        path: String,
        source: std::io::Error,
    },
    #[error("bad mail: {0}")]
    Build(String),
    #[error("{explanation} ({detail})")]
    Smtp { explanation: String, detail: String },
}

/// Builds the message with both alternatives and the alert header.
pub(crate) fn message(smtp: &SmtpConfig, mail: &Mail) -> Result<Message, SendError> {
    let build = |e: &dyn std::fmt::Display| SendError::Build(e.to_string());
    let from: Mailbox = smtp.from.parse().map_err(|e| build(&e))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .message_id(None)
        .header(AutoSubmitted)
        .header(XDocflowAlert(format!(
            "{}; state={}",
            mail.rule, mail.state
        )));
    for to in &smtp.to {
        builder = builder.to(to.parse().map_err(|e| build(&e))?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| build(&e))
}

fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let smtp_err = |explanation: &str, e: &dyn std::fmt::Display| SendError::Smtp {
        explanation: explanation.to_string(),
        detail: e.to_string(),
    };
    let tls_parameters = || -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| smtp_err(&format!("cannot read CA file {}", ca.display()), &e))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| smtp_err(&format!("{} is not a PEM certificate", ca.display()), &e))?;
            b = b
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        b.build().map_err(|e| smtp_err("cannot set up TLS", &e))
    };
    let tls = match smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::StartTlsOpportunistic => Tls::Opportunistic(tls_parameters()?),
        SmtpSecurity::StartTlsRequired => Tls::Required(tls_parameters()?),
        SmtpSecurity::Wrapper => Tls::Wrapper(tls_parameters()?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let (Some(user), Some(file)) = (&smtp.username, &smtp.password_file) {
        let password = std::fs::read_to_string(file).map_err(|source| SendError::Password {
            path: file.display().to_string(),
            source,
        })?;
        b = b.credentials(Credentials::new(
            user.clone(),
            password.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    Ok(b.build())
}

/// Sends one mail; the error explains in plain words what went wrong.
pub(crate) async fn send(smtp: &SmtpConfig, mail: &Mail) -> Result<(), SendError> {
    let message = message(smtp, mail)?;
    let t = transport(smtp)?;
    t.send(message)
        .await
        .map(|_| ())
        .map_err(|e| SendError::Smtp {
            explanation: explain(smtp, &e),
            detail: chain(&e),
        })
}

/// Plain words for an SMTP failure.
pub(crate) fn explain(smtp: &SmtpConfig, e: &lettre::transport::smtp::Error) -> String {
    let causes = chain(e).to_lowercase();
    let code = e.status().map(|c| c.to_string());
    let server = format!("{}:{}", smtp.host, smtp.port);
    if e.is_timeout() || causes.contains("timed out") {
        return format!(
            "the mail server {server} did not answer in time (host down, firewall, or wrong port?)"
        );
    }
    if causes.contains("connection refused") {
        return format!(
            "nothing accepts connections on {server}: the mail server is down or the port is wrong"
        );
    }
    if causes.contains("unreachable")
        || causes.contains("failed to lookup")
        || causes.contains("name or service not known")
        || causes.contains("no address")
    {
        return format!(
            "the mail server {server} cannot be reached (unknown host name or no route)"
        );
    }
    let tls_hint = if smtp.security == SmtpSecurity::None {
        ": use `?tls=required` or smtps://"
    } else {
        ""
    };
    match code.as_deref() {
        Some("535") | Some("534") => {
            return format!("the mail server {server} refused the login: check `username` and the password file");
        }
        Some("530") if causes.contains("tls") => {
            return format!(
                "the mail server {server} requires TLS before accepting mail{tls_hint}"
            );
        }
        Some("530") if smtp.username.is_none() => {
            return format!(
                "the mail server {server} requires a login: set `username` and `password_file`"
            );
        }
        Some("530") => {
            return format!("the mail server {server} refused the login: check `username` and the password file");
        }
        Some("538") => {
            return format!("the mail server {server} requires TLS before a login{tls_hint}");
        }
        _ => {}
    }
    if causes.contains("starttls") {
        return format!(
            "the mail server {server} does not offer STARTTLS although the url says tls=required"
        );
    }
    if e.is_tls() || causes.contains("certificate") || causes.contains("handshake") {
        return format!("TLS with {server} failed (certificate not trusted or wrong host name? set `ca_file` for a private CA)");
    }
    if causes.contains("authentication") || causes.contains("mechanism") {
        return format!("the mail server {server} does not accept the login as configured");
    }
    if e.is_permanent() {
        return format!("the mail server {server} refused the mail permanently (sender or recipient not allowed?)");
    }
    if e.is_transient() {
        return format!("the mail server {server} refused the mail for now; it will be retried");
    }
    format!("sending through {server} failed")
}

#[cfg(test)]
mod tests;
