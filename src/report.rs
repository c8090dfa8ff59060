//! Period reports (SPEC §2.4, §5.1): the JSON document of `/api/v1/report`,
//! built from per-day counts, and its renderings for people (table, csv, md).

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::aggregate::{day_number, Aggregates, ClassCounts, DirectionCounts};
use crate::model::Class;
use crate::parse::time::{parse_date, period_range};

/// The dates a report covers (inclusive, local); `None` = unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportRange {
    pub period: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl ReportRange {
    /// Validates the query parameters of a report request.
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

fn class_block(c: &ClassCounts) -> Value {
    json!({
        "total": c.total(),
        "electronic_signed": c.electronic_signed,
        "electronic_unsigned": c.electronic_unsigned,
        "paper": c.paper,
        "secret_exempt": c.secret_exempt,
        "compliance_ratio": c.compliance_ratio(),
    })
}

fn direction_blocks(d: &DirectionCounts) -> (Value, Value) {
    (class_block(&d.outgoing), class_block(&d.incoming))
}

/// The report document of SPEC §5.1.
pub fn build(agency: &str, range: &ReportRange, agg: &Aggregates) -> Value {
    let summary = agg.summary(range.from.map(day_number), range.to.map(day_number));
    let (outgoing, incoming) = direction_blocks(&summary.total);
    let by_unit: Vec<Value> = summary
        .by_unit
        .iter()
        .map(|(unit, d)| {
            let (o, i) = direction_blocks(d);
            json!({"unit": unit, "outgoing": o, "incoming": i})
        })
        .collect();
    let mut doc = json!({
        "agency": agency,
        "from": range.from.map(|d| d.to_string()),
        "to": range.to.map(|d| d.to_string()),
        "outgoing": outgoing,
        "incoming": incoming,
        "by_unit": by_unit,
    });
    if let Some(p) = &range.period {
        doc["period"] = json!(p);
    }
    doc
}

/// Adds, per direction, the documents a receiver rejected (edXML status 02):
/// reports of agencies with an edXML source carry `rejected_by_receiver`.
pub fn add_rejected_by_receiver(report: &mut Value, range: &ReportRange, agg: &Aggregates) {
    let rejected = agg.rejected(range.from.map(day_number), range.to.map(day_number));
    report["outgoing"]["rejected_by_receiver"] = json!(rejected[0]);
    report["incoming"]["rejected_by_receiver"] = json!(rejected[1]);
}

/// Whether reports of this configuration carry edXML status counts.
pub fn has_edxml_source(config: &crate::config::Config) -> bool {
    config
        .sources
        .iter()
        .any(|s| matches!(s.input, crate::config::Input::EdxmlDir(_)))
}

/// How a report is shown on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Md,
}

/// A ratio the Vietnamese way: "92,5 %"; "—" when undefined.
pub fn format_ratio_vi(ratio: Option<f64>) -> String {
    match ratio {
        None => "—".to_string(),
        Some(r) => {
            let s = format!("{:.1}", r * 100.0).replace('.', ",");
            let s = s.strip_suffix(",0").unwrap_or(&s).to_string();
            format!("{s} %")
        }
    }
}

const COLUMNS: [&str; 7] = [
    "Đơn vị / Hướng",
    "Tổng số",
    "Điện tử, đã ký số",
    "Điện tử, chưa đủ chữ ký số",
    "Bản giấy",
    "Mật (loại trừ)",
    "Tỷ lệ đạt",
];

fn row(label: &str, block: &Value) -> Vec<String> {
    let n = |k: &str| block[k].as_u64().unwrap_or(0).to_string();
    vec![
        label.to_string(),
        n("total"),
        n(Class::ElectronicSigned.as_str()),
        n(Class::ElectronicUnsigned.as_str()),
        n(Class::Paper.as_str()),
        n(Class::SecretExempt.as_str()),
        format_ratio_vi(block["compliance_ratio"].as_f64()),
    ]
}

fn rows(report: &Value) -> Vec<Vec<String>> {
    let mut out = vec![
        row("Văn bản đi", &report["outgoing"]),
        row("Văn bản đến", &report["incoming"]),
    ];
    for u in report["by_unit"].as_array().into_iter().flatten() {
        let unit = u["unit"].as_str().unwrap_or("");
        let unit = if unit.is_empty() {
            "(chưa ghi đơn vị)"
        } else {
            unit
        };
        out.push(row(&format!("{unit} — đi"), &u["outgoing"]));
        out.push(row(&format!("{unit} — đến"), &u["incoming"]));
    }
    out
}

fn title(report: &Value, agency_name: &str) -> String {
    let range = match (report["from"].as_str(), report["to"].as_str()) {
        (None, None) => "toàn bộ thời gian".to_string(),
        (f, t) => format!("từ {} đến {}", vi_date(f), vi_date(t)),
    };
    let period = report["period"]
        .as_str()
        .map(|p| format!(" (kỳ {p})"))
        .unwrap_or_default();
    format!(
        "Báo cáo văn bản điện tử có ký số — {} ({}), {range}{period}",
        agency_name,
        report["agency"].as_str().unwrap_or("")
    )
}

fn vi_date(d: Option<&str>) -> String {
    match d.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()) {
        Some(d) => d.format("%d/%m/%Y").to_string(),
        None => "…".to_string(),
    }
}

/// Renders a report document for people, with Vietnamese labels.
pub fn render(report: &Value, format: ReportFormat, agency_name: &str) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        ReportFormat::Csv => {
            let mut out = String::new();
            for r in
                std::iter::once(COLUMNS.iter().map(|s| s.to_string()).collect()).chain(rows(report))
            {
                let line: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        ReportFormat::Md => {
            let mut out = format!("## {}\n\n", title(report, agency_name));
            out.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
            out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
            for r in rows(report) {
                let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            out
        }
        ReportFormat::Table => {
            let all: Vec<Vec<String>> =
                std::iter::once(COLUMNS.iter().map(|s| s.to_string()).collect())
                    .chain(
                        rows(report)
                            .into_iter()
                            .map(|r| r.iter().map(|c| visible(c)).collect()),
                    )
                    .collect();
            let widths: Vec<usize> = (0..COLUMNS.len())
                .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
                .collect();
            let mut out = format!("{}\n\n", title(report, agency_name));
            for (n, r) in all.iter().enumerate() {
                let cells: Vec<String> = r
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let pad = widths[i] - c.chars().count();
                        if i == 0 {
                            format!("{c}{}", " ".repeat(pad))
                        } else {
                            format!("{}{c}", " ".repeat(pad))
                        }
                    })
                    .collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
                if n == 0 {
                    out.push_str(
                        &"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)),
                    );
                    out.push('\n');
                }
            }
            out.push_str("\nTỷ lệ đạt = điện tử đã ký số / (tổng số − văn bản mật); mục tiêu 100 % (Quyết định 534/QĐ-TTg).\n");
            out.push_str(&rejected_note(report));
            out
        }
    }
}

/// A line on documents the receivers rejected (edXML status 02), when there are any.
fn rejected_note(report: &Value) -> String {
    let n = |d: &str| report[d]["rejected_by_receiver"].as_u64().unwrap_or(0);
    let (out, inc) = (n("outgoing"), n("incoming"));
    if out + inc == 0 {
        return String::new();
    }
    format!("Văn bản bị bên nhận từ chối tiếp nhận (trục liên thông, mã 02): văn bản đi {out}, văn bản đến {inc}.\n")
}

/// Text with control characters (a terminal's escape sequences, line
/// breaks) shown as U+FFFD: unit names come from the logs.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A CSV cell a spreadsheet shows as text: one starting with `= + - @`, tab
/// or CR would be run as a formula, so it gets a leading `'`.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{}", visible(s))
    } else {
        visible(s)
    };
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A Markdown table cell: `|` would end it, `\` and `<` would change it.
fn md_cell(s: &str) -> String {
    visible(s)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Slot;
    use crate::model::Direction;

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn agg_with(days: &[(&str, &str, Direction, Class)]) -> Aggregates {
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
        let r = build(
            "H40",
            &ReportRange::parse(Some("2026-H1"), None, None).unwrap(),
            &a,
        );
        assert_eq!(r["from"], "2025-12-15");
        assert_eq!(r["to"], "2026-06-14");
        assert_eq!(r["outgoing"]["total"], 1);
        assert_eq!(r["outgoing"]["compliance_ratio"], 1.0);
        assert_eq!(r["incoming"]["electronic_unsigned"], 1);
        assert_eq!(r["by_unit"][0]["unit"], "");
        assert_eq!(r["by_unit"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn ratio_is_null_without_a_denominator() {
        let a = agg_with(&[("2026-01-01", "A", Direction::Outgoing, Class::SecretExempt)]);
        let r = build("H40", &ReportRange::default(), &a);
        assert_eq!(r["outgoing"]["compliance_ratio"], Value::Null);
        assert_eq!(r["incoming"]["compliance_ratio"], Value::Null);
        assert_eq!(r["from"], Value::Null);
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

    #[test]
    fn vietnamese_ratio_uses_a_decimal_comma() {
        assert_eq!(format_ratio_vi(Some(0.925)), "92,5 %");
        assert_eq!(format_ratio_vi(Some(1.0)), "100 %");
        assert_eq!(format_ratio_vi(None), "—");
    }

    #[test]
    fn rendered_table_has_vietnamese_labels_and_counts() {
        let a = agg_with(&[(
            "2026-01-05",
            "Văn phòng",
            Direction::Outgoing,
            Class::ElectronicSigned,
        )]);
        let r = build("H40", &ReportRange::default(), &a);
        let t = render(&r, ReportFormat::Table, "UBND xã");
        assert!(
            t.contains("Văn bản đi") && t.contains("100 %") && t.contains("Văn phòng — đi"),
            "{t}"
        );
        let c = render(&r, ReportFormat::Csv, "UBND xã");
        assert_eq!(c.lines().count(), 5);
    }

    #[test]
    fn cells_from_the_logs_are_never_run_by_a_spreadsheet_terminal_or_markdown() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://evil.example/\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\""
        );
        for formula in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(formula).starts_with('\''), "{formula:?}");
        }
        assert_eq!(csv_cell("Văn phòng"), "Văn phòng");
        assert_eq!(csv_cell("92,5 %"), "\"92,5 %\"");
        assert_eq!(md_cell("a|b<script>"), "a\\|b&lt;script>");
        assert_eq!(visible("x\u{1b}[2Jy\n"), "x\u{fffd}[2Jy\u{fffd}");
        let a = agg_with(&[
            (
                "2026-01-05",
                "=HYPERLINK(\"http://evil.example/\",\"x\")",
                Direction::Outgoing,
                Class::ElectronicSigned,
            ),
            (
                "2026-01-05",
                "Phòng | Ban",
                Direction::Outgoing,
                Class::Paper,
            ),
        ]);
        let r = build("H40", &ReportRange::default(), &a);
        let csv = render(&r, ReportFormat::Csv, "UBND xã");
        assert!(
            !csv.lines().any(|l| l
                .split(',')
                .any(|c| c.trim_start_matches('"').starts_with('='))),
            "{csv}"
        );
        let md = render(&r, ReportFormat::Md, "UBND xã");
        assert!(md.contains("Phòng \\| Ban"), "{md}");
        for row in md.lines().filter(|l| l.starts_with("| ")) {
            assert_eq!(row.matches(" | ").count(), COLUMNS.len() - 1, "{row}");
        }
    }
}
