//! Period reports (README, "HTTP API"): the answer of `/api/v1/report` and
//! of `docflowd report`, built from per-day counts; [`render`] shows one to people.

mod render;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::aggregate::{day_number, Aggregates, ClassCounts};
use crate::config::Config;
use crate::model::Class;
use crate::parse::time::{parse_date, period_range};

pub use render::{format_ratio_vi, render, ReportFormat};
pub(crate) use render::{lines, title, COLUMNS};
/// The parameters of a report request as given (`/api/v1/report?period=…`),
/// before [`ReportRange`] validates them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    pub(crate) period: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

/// The dates a report covers (inclusive, local); `None` = unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "ReportQuery")]
pub struct ReportRange {
    pub(crate) period: Option<String>,
    pub(crate) from: Option<NaiveDate>,
    pub(crate) to: Option<NaiveDate>,
}

impl TryFrom<ReportQuery> for ReportRange {
    type Error = String;

    fn try_from(q: ReportQuery) -> Result<ReportRange, String> {
        ReportRange::parse(q.period.as_deref(), q.from.as_deref(), q.to.as_deref())
    }
}

impl ReportRange {
    /// Validates the parameters of a report request; the error says what
    /// is wrong in the words of the API's 400 answer.
    pub fn parse(
        period: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<ReportRange, String> {
        fn blank(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        let (period, from, to) = (blank(period), blank(from), blank(to));
        if let Some(p) = period {
            if from.is_some() || to.is_some() {
                return Err("give either `period` or `from`/`to`, not both".into());
            }
            let (f, t) = period_range(p).map_err(|e| {
                format!("bad period: {e} (examples: 2026-03, 2026-Q1, 2026-H1, 2026)")
            })?;
            return Ok(ReportRange {
                period: Some(p.to_string()),
                from: Some(f),
                to: Some(t),
            });
        }
        let date = |s: Option<&str>, name: &str| {
            s.map(|s| parse_date(s).map_err(|e| format!("bad `{name}`: {e} (expected YYYY-MM-DD)")))
                .transpose()
        };
        let from = date(from, "from")?;
        let to = date(to, "to")?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(format!("`from` ({f}) is after `to` ({t})"));
            }
        }
        Ok(ReportRange {
            period: None,
            from,
            to,
        })
    }
}

/// A period report. Fields are in alphabetical order, the order of the keys
/// of the JSON answer since the first version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The agency's code.
    pub agency: String,
    /// The same counts per internal unit, by unit name (`""`: none recorded).
    pub(crate) by_unit: Vec<UnitReport>,
    /// First local date counted; `None`: since the beginning.
    pub(crate) from: Option<NaiveDate>,
    pub(crate) incoming: DirectionReport,
    pub(crate) outgoing: DirectionReport,
    /// The period asked for (`2026-H1`), when the range is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) period: Option<String>,
    /// Last local date counted; `None`: up to now.
    pub(crate) to: Option<NaiveDate>,
}

/// One internal unit's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UnitReport {
    pub(crate) incoming: DirectionReport,
    pub(crate) outgoing: DirectionReport,
    pub(crate) unit: String,
}

/// The documents of one direction by class, and their compliance ratio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DirectionReport {
    /// `electronic_signed / (total − secret_exempt)`; `None` (JSON `null`)
    /// when the denominator is 0.
    pub(crate) compliance_ratio: Option<f64>,
    pub(crate) electronic_signed: u64,
    pub(crate) electronic_unsigned: u64,
    pub(crate) paper: u64,
    /// Documents a receiver rejected (edXML status 02): only in the totals
    /// of agencies with an edXML source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rejected_by_receiver: Option<u64>,
    pub(crate) secret_exempt: u64,
    pub(crate) total: u64,
}

impl DirectionReport {
    fn new(counts: &ClassCounts) -> DirectionReport {
        DirectionReport {
            compliance_ratio: counts.compliance_ratio(),
            electronic_signed: counts.electronic_signed,
            electronic_unsigned: counts.electronic_unsigned,
            paper: counts.paper,
            rejected_by_receiver: None,
            secret_exempt: counts.secret_exempt,
            total: counts.total(),
        }
    }

    /// The number of documents of `class`.
    pub(crate) fn count(&self, class: Class) -> u64 {
        match class {
            Class::ElectronicSigned => self.electronic_signed,
            Class::ElectronicUnsigned => self.electronic_unsigned,
            Class::Paper => self.paper,
            Class::SecretExempt => self.secret_exempt,
        }
    }
}

/// The report of `range` for this configuration's agency: the one function
/// behind both the API and the command line.
pub(crate) fn for_config(config: &Config, range: &ReportRange, aggregates: &Aggregates) -> Report {
    Report::new(
        &config.agency.code,
        range,
        aggregates,
        has_edxml_source(config),
    )
}

/// Whether reports of this configuration carry edXML status counts.
fn has_edxml_source(config: &Config) -> bool {
    config
        .sources
        .iter()
        .any(|s| matches!(s.input, crate::config::Input::EdxmlDir(_)))
}

impl Report {
    /// Counts `range` of `aggregates`; `with_rejected` adds, per direction,
    /// the documents a receiver rejected.
    pub(crate) fn new(
        agency: &str,
        range: &ReportRange,
        aggregates: &Aggregates,
        with_rejected: bool,
    ) -> Report {
        let (from, to) = (range.from.map(day_number), range.to.map(day_number));
        let summary = aggregates.summary(from, to);
        let mut outgoing = DirectionReport::new(&summary.total.outgoing);
        let mut incoming = DirectionReport::new(&summary.total.incoming);
        if with_rejected {
            let [rejected_outgoing, rejected_incoming] = aggregates.rejected(from, to);
            outgoing.rejected_by_receiver = Some(rejected_outgoing);
            incoming.rejected_by_receiver = Some(rejected_incoming);
        }
        let by_unit = summary
            .by_unit
            .iter()
            .map(|(unit, counts)| UnitReport {
                incoming: DirectionReport::new(&counts.incoming),
                outgoing: DirectionReport::new(&counts.outgoing),
                unit: unit.clone(),
            })
            .collect();
        Report {
            agency: agency.to_string(),
            by_unit,
            from: range.from,
            incoming,
            outgoing,
            period: range.period.clone(),
            to: range.to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Slot;
    use crate::model::Direction;

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    /// Per-day counts with one document per `(day, unit, direction, class)`.
    pub(super) fn agg_with(days: &[(&str, &str, Direction, Class)]) -> Aggregates {
        let mut a = Aggregates::default();
        for (d, unit, dir, class) in days {
            a.apply(
                &Slot {
                    day: day_number(date(d)),
                    unit: unit.to_string(),
                    direction: *dir,
                    class: *class,
                },
                1,
            );
        }
        a
    }

    #[test]
    fn a_period_report_covers_the_decree_cut_off_dates_only() {
        let a = agg_with(&[
            ("2025-12-14", "A", Direction::Outgoing, Class::Paper),
            (
                "2025-12-15",
                "A",
                Direction::Outgoing,
                Class::ElectronicSigned,
            ),
            (
                "2026-06-14",
                "",
                Direction::Incoming,
                Class::ElectronicUnsigned,
            ),
            ("2026-06-15", "A", Direction::Outgoing, Class::Paper),
        ]);
        let range = ReportRange::parse(Some("2026-H1"), None, None).unwrap();
        let r = Report::new("H40", &range, &a, false);
        assert_eq!(r.from, Some(date("2025-12-15")));
        assert_eq!(r.to, Some(date("2026-06-14")));
        assert_eq!(r.period.as_deref(), Some("2026-H1"));
        assert_eq!(r.outgoing.total, 1);
        assert_eq!(r.outgoing.compliance_ratio, Some(1.0));
        assert_eq!(r.incoming.electronic_unsigned, 1);
        assert_eq!(r.by_unit[0].unit, "");
        assert_eq!(r.by_unit.len(), 2);
    }

    #[test]
    fn ratio_is_null_without_a_denominator() {
        let a = agg_with(&[("2026-01-01", "A", Direction::Outgoing, Class::SecretExempt)]);
        let r = Report::new("H40", &ReportRange::default(), &a, false);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["outgoing"]["compliance_ratio"],
            serde_json::Value::Null
        );
        assert_eq!(
            json["incoming"]["compliance_ratio"],
            serde_json::Value::Null
        );
        assert_eq!(json["from"], serde_json::Value::Null);
    }

    #[test]
    fn the_json_keeps_its_key_order_and_optional_keys() {
        let a = agg_with(&[("2026-01-05", "A", Direction::Outgoing, Class::Paper)]);
        let range = ReportRange::parse(None, Some("2026-01-01"), None).unwrap();
        let plain = serde_json::to_string(&Report::new("H40", &range, &a, false)).unwrap();
        let block = r#"{"compliance_ratio":0.0,"electronic_signed":0,"electronic_unsigned":0,"paper":1,"secret_exempt":0,"total":1}"#;
        let empty = r#"{"compliance_ratio":null,"electronic_signed":0,"electronic_unsigned":0,"paper":0,"secret_exempt":0,"total":0}"#;
        assert_eq!(
            plain,
            format!(
                r#"{{"agency":"H40","by_unit":[{{"incoming":{empty},"outgoing":{block},"unit":"A"}}],"from":"2026-01-01","incoming":{empty},"outgoing":{block},"to":null}}"#
            )
        );
        let range = ReportRange::parse(Some("2026"), None, None).unwrap();
        let with_edxml = serde_json::to_string(&Report::new("H40", &range, &a, true)).unwrap();
        assert!(
            with_edxml.contains(r#""paper":0,"rejected_by_receiver":0,"secret_exempt":0"#),
            "{with_edxml}"
        );
        assert!(
            with_edxml.ends_with(r#","period":"2026","to":"2026-12-14"}"#),
            "{with_edxml}"
        );
    }

    #[test]
    fn bad_parameters_are_explained() {
        assert!(ReportRange::parse(Some("2026-H3"), None, None).is_err());
        assert!(ReportRange::parse(Some("2026"), Some("2026-01-01"), None).is_err());
        assert!(ReportRange::parse(None, Some("2026-02-01"), Some("2026-01-01")).is_err());
        assert!(ReportRange::parse(None, Some("01/02/2026"), None).is_err());
        let r = ReportRange::parse(None, Some("2026-01-01"), None).unwrap();
        assert_eq!(r.to, None);
    }
}
