//! The overview's chart, drawn on the server as SVG: the compliance ratio of
//! the last twelve Decree 09 months, per direction, against the 100 % target.

use std::fmt::Write;

use chrono::{Datelike, Months, NaiveDate};

use crate::aggregate::{day_number, Aggregates};
use crate::model::Direction;

/// One Decree 09 month: its name (`2026-03`), label (`T3/2026`) and ratios.
pub(crate) struct Month {
    pub(crate) period: String,
    pub(crate) label: String,
    pub(crate) outgoing: Option<f64>,
    pub(crate) incoming: Option<f64>,
}

/// The Decree 09 month `today` falls in: the one whose 14th closes it
/// (15 Feb – 14 Mar is `03`).
fn current_period(today: NaiveDate) -> NaiveDate {
    let month_start = today.with_day(1).unwrap_or(today);
    if today.day() >= 15 {
        month_start
            .checked_add_months(Months::new(1))
            .unwrap_or(month_start)
    } else {
        month_start
    }
}

/// The last `n` Decree 09 months up to the one of `today`, oldest first.
pub(crate) fn last_months(aggregates: &Aggregates, today: NaiveDate, n: u32) -> Vec<Month> {
    let current = current_period(today);
    (0..n)
        .rev()
        .filter_map(|back| current.checked_sub_months(Months::new(back)))
        .map(|m| {
            let period = format!("{:04}-{:02}", m.year(), m.month());
            let range = crate::parse::time::period_range(&period).ok();
            let summary =
                range.map(|(f, t)| aggregates.summary(Some(day_number(f)), Some(day_number(t))));
            let ratio = |d: Direction| {
                summary
                    .as_ref()
                    .and_then(|s| s.total.get(d).compliance_ratio())
            };
            Month {
                label: format!("T{}/{}", m.month(), m.year()),
                outgoing: ratio(Direction::Outgoing),
                incoming: ratio(Direction::Incoming),
                period,
            }
        })
        .collect()
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 260;
const LEFT: u32 = 44;
const BOTTOM: u32 = 36;
const TOP: u32 = 12;

/// The bars of `months` as an SVG element (text escaped: labels are ours,
/// but the element is inserted as markup).
pub(crate) fn svg(months: &[Month]) -> String {
    let plot_h = f64::from(HEIGHT - BOTTOM - TOP);
    let y = |ratio: f64| f64::from(TOP) + plot_h * (1.0 - ratio.clamp(0.0, 1.0));
    let slot = f64::from(WIDTH - LEFT - 8) / months.len().max(1) as f64;
    let bar = (slot / 3.0).max(2.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">Tỷ lệ đạt 12 tháng gần nhất (kỳ báo cáo Nghị định 09/2019)</title>"#
    );
    for pct in [0, 25, 50, 75, 100] {
        let yy = y(f64::from(pct) / 100.0);
        let class = if pct == 100 { "target" } else { "grid" };
        let _ = write!(
            out,
            r#"<line class="{class}" x1="{LEFT}" x2="{WIDTH}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{pct} %</text>"#,
            LEFT - 4,
            yy + 4.0
        );
    }
    for (i, m) in months.iter().enumerate() {
        let x0 = f64::from(LEFT) + slot * i as f64 + (slot - 2.0 * bar) / 2.0;
        for (k, (ratio, class)) in [(m.outgoing, "out"), (m.incoming, "in")]
            .into_iter()
            .enumerate()
        {
            let Some(r) = ratio else { continue };
            let top = y(r);
            let x = x0 + bar * k as f64;
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{} — {}: {}</title></rect>"#,
                bar - 1.0,
                f64::from(HEIGHT - BOTTOM) - top,
                escape(&m.label),
                if k == 0 {
                    "văn bản đi"
                } else {
                    "văn bản đến"
                },
                crate::vi::percent(r)
            );
        }
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x0 + bar,
            HEIGHT - BOTTOM + 16,
            escape(&m.label)
        );
    }
    out.push_str("</svg>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_current_period_is_the_one_whose_14th_closes_it() {
        assert_eq!(current_period(date("2026-03-14")), date("2026-03-01"));
        assert_eq!(current_period(date("2026-03-15")), date("2026-04-01"));
        assert_eq!(current_period(date("2026-12-20")), date("2027-01-01"));
    }

    #[test]
    fn twelve_months_end_with_the_current_one_and_months_without_documents_have_no_bar() {
        let months = last_months(&Aggregates::default(), date("2026-12-01"), 12);
        assert_eq!(months.len(), 12);
        assert_eq!(months[0].period, "2026-01");
        assert_eq!(months[11].period, "2026-12");
        assert_eq!(months[11].label, "T12/2026");
        let svg = svg(&months);
        assert!(!svg.contains("<rect"), "no bar without documents");
        assert!(svg.contains("T1/2026") && svg.contains("100 %"));
    }
}
