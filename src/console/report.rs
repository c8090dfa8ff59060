//! `/report` Báo cáo: a Decree 09/2019 period (or dates) picked in a form,
//! the same numbers as `/api/v1/report` per direction and per unit, links to
//! download them, and a print stylesheet for the periodic report's annex.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::Response;
use chrono::{Datelike, Months, NaiveDate};

use super::{problem, query, render, Head};
use crate::api::AppState;
use crate::report::{Report, ReportQuery, ReportRange};
use crate::vi;

/// A period offered in the picker.
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// One line of the table: a label and its counts, written for people.
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) cells: Vec<String>,
    /// The totals of a direction (shown in bold), not a unit's.
    pub(crate) total: bool,
}

#[derive(Template)]
#[template(path = "report.html", config = "src/console/askama.toml")]
struct ReportPage {
    head: Head,
    heading: String,
    choices: Vec<Choice>,
    from: String,
    to: String,
    columns: &'static [&'static str],
    lines: Vec<Line>,
    /// The query of this report, for the download links.
    query: String,
}

/// The periods offered: the last 12 Decree 09 months, the quarters and
/// halves of this year and the last, this year and the two before.
fn choices(today: NaiveDate, selected: Option<&str>) -> Vec<Choice> {
    let mut out = Vec::new();
    let mut push = |value: String, label: String| {
        out.push(Choice {
            selected: selected == Some(value.as_str()),
            value,
            label,
        })
    };
    // The Decree 09 year of a day after 14 December is the next one.
    let year = if today.month() == 12 && today.day() >= 15 {
        today.year() + 1
    } else {
        today.year()
    };
    for y in [year, year - 1, year - 2] {
        push(format!("{y}"), format!("Năm {y}"));
    }
    for y in [year, year - 1] {
        for h in [2, 1] {
            push(
                format!("{y}-H{h}"),
                format!("6 tháng {} năm {y}", if h == 1 { "đầu" } else { "cuối" }),
            );
        }
        for q in (1..=4).rev() {
            push(format!("{y}-Q{q}"), format!("Quý {q}/{y}"));
        }
    }
    let first = NaiveDate::from_ymd_opt(year, 12, 1).unwrap_or(today);
    for back in 0..24 {
        let Some(m) = first.checked_sub_months(Months::new(back)) else {
            break;
        };
        if m > today.checked_add_months(Months::new(1)).unwrap_or(today) {
            continue;
        }
        push(
            format!("{:04}-{:02}", m.year(), m.month()),
            format!("Tháng {}/{}", m.month(), m.year()),
        );
    }
    out
}

/// The report of a query, as the API builds it.
pub(super) fn build(s: &AppState, range: &ReportRange) -> Report {
    let aggregates = s.shared.aggregates.read().expect("aggregates lock");
    crate::report::for_config(&s.config, range, &aggregates)
}

/// The table of a report, written for people.
fn table(report: &Report) -> Vec<Line> {
    crate::report::lines(report)
        .into_iter()
        .enumerate()
        .map(|(i, (label, c))| Line {
            label,
            total: i < 2,
            cells: vec![
                vi::count(c.total),
                vi::count(c.electronic_signed),
                vi::count(c.electronic_unsigned),
                vi::count(c.paper),
                vi::count(c.secret_exempt),
                vi::percent_or_dash(c.compliance_ratio),
            ],
        })
        .collect()
}

/// The report a request asks for (the page or a download): its parameters
/// and range, or the 400 problem page.
pub(super) fn requested(s: &AppState, uri: &Uri) -> Result<(ReportQuery, ReportRange), Response> {
    let q: ReportQuery = super::params(s, uri)?;
    match ReportRange::try_from(q.clone()) {
        Ok(range) => Ok((q, range)),
        Err(e) => Err(problem(
            s,
            StatusCode::BAD_REQUEST,
            format!("Tham số không hợp lệ: {e}"),
        )),
    }
}

pub(super) async fn page(State(s): State<AppState>, uri: Uri) -> Response {
    let (q, range) = match requested(&s, &uri) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let today =
        crate::parse::time::local_day(chrono::Utc::now().timestamp(), s.config.agency.timezone);
    let report = build(&s, &range);
    let query_string = query(&[
        ("period", q.period.as_deref().unwrap_or("")),
        ("from", q.from.as_deref().unwrap_or("")),
        ("to", q.to.as_deref().unwrap_or("")),
    ]);
    render(&ReportPage {
        head: Head::new(&s, "report", "Báo cáo"),
        heading: crate::report::title(&report, &s.config.agency.name),
        choices: choices(today, range.period.as_deref()),
        from: range
            .from
            .filter(|_| range.period.is_none())
            .map(|d| d.to_string())
            .unwrap_or_default(),
        to: range
            .to
            .filter(|_| range.period.is_none())
            .map(|d| d.to_string())
            .unwrap_or_default(),
        columns: &crate::report::COLUMNS[1..],
        lines: table(&report),
        query: query_string,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_offers_years_halves_quarters_and_months_and_marks_the_one_shown() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let c = choices(today, Some("2026-H1"));
        let values: Vec<&str> = c.iter().map(|c| c.value.as_str()).collect();
        for v in [
            "2026", "2025", "2024", "2026-H1", "2026-H2", "2026-Q1", "2025-Q4", "2026-12",
            "2026-01", "2025-12",
        ] {
            assert!(values.contains(&v), "{v} offered");
        }
        assert!(
            !values.contains(&"2027-02"),
            "no month after the current one"
        );
        assert_eq!(
            c.iter()
                .filter(|c| c.selected)
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>(),
            ["2026-H1"]
        );
        // After 14 December the Decree 09 year is the next one.
        let late = choices(NaiveDate::from_ymd_opt(2026, 12, 20).unwrap(), None);
        assert_eq!(late[0].value, "2027");
    }
}
