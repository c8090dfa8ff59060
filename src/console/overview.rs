//! `/` Tổng quan: where the agency stands — the ratio of each direction over
//! the dashboard's windows, the last twelve Decree 09 months, the units
//! furthest below target, the sources that need a look, the alerts firing.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::chart::{self, Month};
use super::{query, render, Head};
use crate::aggregate::{day_number, ClassCounts, Summary};
use crate::api::status::SourceStatus;
use crate::api::AppState;
use crate::model::{Direction, Window};
use crate::vi;

/// A source without a new event for this long is called stale.
const STALE_AFTER_SECS: i64 = 48 * 3600;
/// Units listed below the target, at most.
const WORST_UNITS: usize = 5;

/// One direction's ratio over one window.
pub(crate) struct Cell {
    pub(crate) window: &'static str,
    pub(crate) ratio: String,
    /// Percent, for the `<meter>` (0 when undefined).
    pub(crate) meter: f64,
    pub(crate) signed: String,
    pub(crate) counted: String,
}

pub(crate) struct DirectionRow {
    pub(crate) name: &'static str,
    pub(crate) cells: Vec<Cell>,
}

/// A unit below the target.
pub(crate) struct UnitRow {
    pub(crate) unit: String,
    pub(crate) direction: &'static str,
    pub(crate) ratio: String,
    pub(crate) missing: String,
    /// `/documents?…` listing its documents that are not compliant (none
    /// for documents without a unit: a page's empty `unit` means "any").
    pub(crate) link: Option<String>,
}

/// A source that needs a look, and why.
pub(crate) struct SourceRow {
    pub(crate) name: String,
    pub(crate) problem: String,
}

pub(crate) struct AlertRow {
    pub(crate) rule: String,
    pub(crate) since: String,
}

#[derive(Template)]
#[template(path = "overview.html", config = "src/console/askama.toml")]
struct Overview {
    head: Head,
    today: String,
    directions: Vec<DirectionRow>,
    chart: String,
    months: Vec<MonthRow>,
    units: Vec<UnitRow>,
    units_period: &'static str,
    sources: Vec<SourceRow>,
    alerts: Vec<AlertRow>,
}

/// A Decree 09 month in the table under the chart.
pub(crate) struct MonthRow {
    pub(crate) period: String,
    pub(crate) label: String,
    pub(crate) outgoing: String,
    pub(crate) incoming: String,
}

impl From<&Month> for MonthRow {
    fn from(m: &Month) -> MonthRow {
        MonthRow {
            period: m.period.clone(),
            label: m.label.clone(),
            outgoing: vi::percent_or_dash(m.outgoing),
            incoming: vi::percent_or_dash(m.incoming),
        }
    }
}

fn cell(window: Window, counts: &ClassCounts) -> Cell {
    let ratio = counts.compliance_ratio();
    Cell {
        window: vi::window(window),
        ratio: vi::percent_or_dash(ratio),
        meter: ratio.map_or(0.0, |r| (r * 1000.0).round() / 10.0),
        signed: vi::count(counts.electronic_signed),
        counted: vi::count(counts.total() - counts.secret_exempt),
    }
}

/// The units whose ratio is lowest (this year's documents, else all time's).
fn worst_units(year: &Summary, all: &Summary) -> (Vec<UnitRow>, &'static str) {
    let (summary, period) = if year.by_unit.is_empty() {
        (all, "toàn bộ thời gian")
    } else {
        (year, "năm nay")
    };
    let mut rows: Vec<(f64, u64, UnitRow)> = Vec::new();
    for (unit, counts) in &summary.by_unit {
        for d in Direction::ALL {
            let c = counts.get(d);
            let Some(ratio) = c.compliance_ratio().filter(|r| *r < 1.0) else {
                continue;
            };
            let missing = c.total() - c.secret_exempt - c.electronic_signed;
            rows.push((
                ratio,
                missing,
                UnitRow {
                    unit: if unit.is_empty() {
                        "(không ghi đơn vị)".into()
                    } else {
                        unit.clone()
                    },
                    direction: vi::direction(d),
                    ratio: vi::percent(ratio),
                    missing: vi::count(missing),
                    link: (!unit.is_empty()).then(|| {
                        format!(
                            "/documents?{}",
                            query(&[
                                ("direction", d.as_str()),
                                ("unit", unit),
                                ("class", "electronic_unsigned")
                            ])
                        )
                    }),
                },
            ));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    (
        rows.into_iter().take(WORST_UNITS).map(|r| r.2).collect(),
        period,
    )
}

/// Why a source needs a look, if it does.
fn source_problem(s: &SourceStatus, now: i64, tz: chrono_tz::Tz) -> Option<String> {
    let last = s
        .last_event_time
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    if !s.up {
        let why = s
            .last_error
            .as_ref()
            .map_or(String::new(), |e| format!(": {}", e.message));
        return Some(format!("không đọc được{why}"));
    }
    match last {
        Some(t) if now - t > STALE_AFTER_SECS => {
            Some(format!("không có sự kiện mới từ {}", vi::date_time(t, tz)))
        }
        None if s.caught_up => Some("chưa nhận được sự kiện nào".into()),
        _ => None,
    }
}

pub(super) async fn page(State(s): State<AppState>) -> Response {
    let tz = s.config.agency.timezone;
    let now = chrono::Utc::now().timestamp();
    let today = crate::parse::time::local_day(now, tz);
    let (directions, months, units) = {
        let agg = s.shared.aggregates.read().expect("aggregates lock");
        let summaries: Vec<(Window, Summary)> = Window::ALL
            .into_iter()
            .map(|w| {
                let r = w.range(today);
                (
                    w,
                    agg.summary(r.map(|r| day_number(r.0)), r.map(|r| day_number(r.1))),
                )
            })
            .collect();
        let directions = Direction::ALL
            .into_iter()
            .map(|d| DirectionRow {
                name: vi::direction(d),
                cells: summaries
                    .iter()
                    .map(|(w, s)| cell(*w, s.total.get(d)))
                    .collect(),
            })
            .collect();
        let months = chart::last_months(&agg, today, 12);
        let year = &summaries
            .iter()
            .find(|(w, _)| *w == Window::Year)
            .expect("a year window")
            .1;
        let all = &summaries
            .iter()
            .find(|(w, _)| *w == Window::All)
            .expect("an all window")
            .1;
        (directions, months, worst_units(year, all))
    };
    let state = s.clone();
    let status = tokio::task::spawn_blocking(move || crate::api::status::build(&state))
        .await
        .expect("the status task does not panic");
    let sources = status
        .sources
        .iter()
        .filter_map(|src| {
            source_problem(src, now, tz).map(|problem| SourceRow {
                name: src.name.clone(),
                problem,
            })
        })
        .collect();
    let alerts = status
        .alerts
        .rules
        .iter()
        .filter(|r| r.state() == "firing")
        .map(|r| AlertRow {
            rule: r.name().to_string(),
            since: r.since().map_or_else(String::new, |t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_or_else(|_| t.to_string(), |t| vi::date_time(t.timestamp(), tz))
            }),
        })
        .collect();
    render(&Overview {
        head: Head::new(&s, "overview", "Tổng quan"),
        today: vi::date(today),
        directions,
        chart: chart::svg(&months),
        months: months.iter().map(MonthRow::from).collect(),
        units: units.0,
        units_period: units.1,
        sources,
        alerts,
    })
}
