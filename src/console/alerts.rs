//! `/alerts` Cảnh báo: each rule (what it watches, its state, since when),
//! the mails waiting in the outbox and the last mails sent.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::sources::local_time;
use super::{render, Head};
use crate::alerts::{AlertsStatus, RuleStatus};
use crate::api::AppState;
use crate::model::{Direction, Window};
use crate::vi;

pub(crate) struct RuleView {
    pub(crate) name: String,
    pub(crate) watches: String,
    pub(crate) observed: String,
    pub(crate) state: &'static str,
    /// CSS class of the state.
    pub(crate) state_class: &'static str,
    pub(crate) since: String,
    pub(crate) last_mail: String,
    pub(crate) sent: String,
}

pub(crate) struct MailView {
    pub(crate) at: String,
    pub(crate) rule: String,
    pub(crate) state: &'static str,
    pub(crate) subject: String,
    pub(crate) problem: String,
}

#[derive(Template)]
#[template(path = "alerts.html", config = "src/console/askama.toml")]
struct AlertsPage {
    head: Head,
    rules: Vec<RuleView>,
    outbox: Vec<MailView>,
    sent: Vec<MailView>,
}

fn state_name(state: &str) -> (&'static str, &'static str) {
    match state {
        "firing" => ("Đang cảnh báo", "bad"),
        "pending" => ("Chờ xác nhận", "warn"),
        _ => ("Bình thường", "good"),
    }
}

fn mail_state(state: &str) -> &'static str {
    if state == "resolved" {
        "Đã hết cảnh báo"
    } else {
        "Cảnh báo"
    }
}

/// What a rule watches and what it last saw, in words.
fn describe(rule: &RuleStatus) -> (String, String) {
    match rule {
        RuleStatus::Ratio(r) => {
            let direction = Direction::from_canonical(&r.direction)
                .map_or_else(|| r.direction.clone(), |d| vi::direction(d).to_string());
            let window = Window::from_label(&r.window)
                .map_or_else(|| r.window.clone(), |w| vi::window(w).to_string());
            let observed = match (r.compliance_ratio, r.documents) {
                (Some(ratio), Some(n)) => {
                    format!("{} trên {} văn bản", vi::percent(ratio), vi::count(n))
                }
                _ => "chưa đánh giá".to_string(),
            };
            (
                format!(
                    "Tỷ lệ {} ({}) dưới {}",
                    direction.to_lowercase(),
                    window.to_lowercase(),
                    crate::alerts::mail::vi_threshold(r.below)
                ),
                observed,
            )
        }
        RuleStatus::Stale(r) => (
            format!(
                "Nguồn {} không có sự kiện mới quá {}",
                r.source,
                hours(r.after_seconds as f64)
            ),
            r.idle_seconds.map_or_else(
                || "chưa đánh giá".to_string(),
                |s| format!("không có sự kiện mới {}", hours(s)),
            ),
        ),
    }
}

/// A duration in hours (or minutes under one hour), in words.
fn hours(secs: f64) -> String {
    if secs < 3600.0 {
        format!("{} phút", (secs / 60.0).round() as u64)
    } else {
        let h = secs / 3600.0;
        if (h - h.round()).abs() < 0.05 {
            format!("{} giờ", h.round() as u64)
        } else {
            format!("{} giờ", format!("{h:.1}").replace('.', ","))
        }
    }
}

fn views(
    status: &AlertsStatus,
    tz: chrono_tz::Tz,
) -> (Vec<RuleView>, Vec<MailView>, Vec<MailView>) {
    let rules = status
        .rules
        .iter()
        .map(|r| {
            let (watches, observed) = describe(r);
            let (state, state_class) = state_name(r.state());
            let (firing, resolved) = r.sent();
            RuleView {
                name: r.name().to_string(),
                watches,
                observed,
                state,
                state_class,
                since: local_time(r.since(), tz),
                last_mail: local_time(r.last_notification(), tz),
                sent: format!(
                    "{} cảnh báo, {} hết cảnh báo",
                    vi::count(firing),
                    vi::count(resolved)
                ),
            }
        })
        .collect();
    let outbox = status
        .outbox
        .iter()
        .map(|m| MailView {
            at: String::new(),
            rule: m.rule.clone(),
            state: mail_state(&m.state),
            subject: m.subject.clone(),
            problem: match &m.last_error {
                Some(e) => format!("đã thử {} lần: {e}", m.attempts),
                None => "chờ gửi".to_string(),
            },
        })
        .collect();
    let sent = status
        .sent
        .iter()
        .map(|m| MailView {
            at: local_time(Some(&m.at), tz),
            rule: m.rule.clone(),
            state: mail_state(&m.state),
            subject: m.subject.clone(),
            problem: String::new(),
        })
        .collect();
    (rules, outbox, sent)
}

pub(super) async fn page(State(s): State<AppState>) -> Response {
    let status = s.alerts.as_ref().map(|a| a.status()).unwrap_or_default();
    let (rules, outbox, sent) = views(&status, s.config.agency.timezone);
    render(&AlertsPage {
        head: Head::new(&s, "alerts", "Cảnh báo"),
        rules,
        outbox,
        sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_in_hours_or_minutes() {
        assert_eq!(hours(172_800.0), "48 giờ");
        assert_eq!(hours(5_400.0), "1,5 giờ");
        assert_eq!(hours(1_200.0), "20 phút");
    }
}
