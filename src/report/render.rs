//! A [`Report`] for people, with Vietnamese labels: a terminal table, CSV
//! for spreadsheets, Markdown, or the API's JSON.

use chrono::NaiveDate;

use super::{DirectionReport, Report};
use crate::model::Class;

/// How a report is shown on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Md,
}

/// Renders a report; `agency_name` goes in the title.
pub fn render(report: &Report, format: ReportFormat, agency_name: &str) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        ReportFormat::Csv => csv(report),
        ReportFormat::Md => markdown(report, agency_name),
        ReportFormat::Table => table(report, agency_name),
    }
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

pub(crate) const COLUMNS: [&str; 7] = [
    "Đơn vị / Hướng",
    "Tổng số",
    "Điện tử, đã ký số",
    "Điện tử, chưa đủ chữ ký số",
    "Bản giấy",
    "Mật (loại trừ)",
    "Tỷ lệ đạt",
];

fn header() -> Vec<String> {
    COLUMNS.iter().map(|s| s.to_string()).collect()
}

fn row(label: &str, counts: &DirectionReport) -> Vec<String> {
    let n = |class: Class| counts.count(class).to_string();
    vec![
        label.to_string(),
        counts.total.to_string(),
        n(Class::ElectronicSigned),
        n(Class::ElectronicUnsigned),
        n(Class::Paper),
        n(Class::SecretExempt),
        format_ratio_vi(counts.compliance_ratio),
    ]
}

/// The lines of a report: the totals, then each unit, one line per
/// direction, with the label each shows.
pub(crate) fn lines(report: &Report) -> Vec<(String, &DirectionReport)> {
    let mut out = vec![
        ("Văn bản đi".to_string(), &report.outgoing),
        ("Văn bản đến".to_string(), &report.incoming),
    ];
    for u in &report.by_unit {
        let unit = if u.unit.is_empty() {
            "(chưa ghi đơn vị)"
        } else {
            &u.unit
        };
        out.push((format!("{unit} — đi"), &u.outgoing));
        out.push((format!("{unit} — đến"), &u.incoming));
    }
    out
}

fn rows(report: &Report) -> Vec<Vec<String>> {
    lines(report)
        .into_iter()
        .map(|(label, counts)| row(&label, counts))
        .collect()
}

pub(crate) fn title(report: &Report, agency_name: &str) -> String {
    let range = match (report.from, report.to) {
        (None, None) => "toàn bộ thời gian".to_string(),
        (f, t) => format!("từ {} đến {}", vi_date(f), vi_date(t)),
    };
    let period = report
        .period
        .as_ref()
        .map(|p| format!(" (kỳ {p})"))
        .unwrap_or_default();
    format!(
        "Báo cáo văn bản điện tử có ký số — {} ({}), {range}{period}",
        agency_name, report.agency
    )
}

fn vi_date(d: Option<NaiveDate>) -> String {
    match d {
        Some(d) => d.format("%d/%m/%Y").to_string(),
        None => "…".to_string(),
    }
}

fn csv(report: &Report) -> String {
    let mut out = String::new();
    for r in std::iter::once(header()).chain(rows(report)) {
        let line: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn markdown(report: &Report, agency_name: &str) -> String {
    let mut out = format!("## {}\n\n", title(report, agency_name));
    out.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
    for r in rows(report) {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Columns padded to their widest cell: labels to the left, numbers to the right.
fn table(report: &Report, agency_name: &str) -> String {
    let all: Vec<Vec<String>> = std::iter::once(header())
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
                let pad = " ".repeat(widths[i] - c.chars().count());
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out.push_str("\nTỷ lệ đạt = điện tử đã ký số / (tổng số − văn bản mật); mục tiêu 100 % (Quyết định 534/QĐ-TTg).\n");
    out.push_str(&rejected_note(report));
    out
}

/// A line on documents the receivers rejected (edXML status 02), when there are any.
fn rejected_note(report: &Report) -> String {
    let n = |d: &DirectionReport| d.rejected_by_receiver.unwrap_or(0);
    let (out, inc) = (n(&report.outgoing), n(&report.incoming));
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
    use crate::model::Direction;
    use crate::report::tests::agg_with;
    use crate::report::ReportRange;

    fn report(days: &[(&str, &str, Direction, Class)]) -> Report {
        Report::new("H40", &ReportRange::default(), &agg_with(days), false)
    }

    #[test]
    fn vietnamese_ratio_uses_a_decimal_comma() {
        assert_eq!(format_ratio_vi(Some(0.925)), "92,5 %");
        assert_eq!(format_ratio_vi(Some(1.0)), "100 %");
        assert_eq!(format_ratio_vi(None), "—");
    }

    #[test]
    fn rendered_table_has_vietnamese_labels_and_counts() {
        let r = report(&[(
            "2026-01-05",
            "Văn phòng",
            Direction::Outgoing,
            Class::ElectronicSigned,
        )]);
        let t = render(&r, ReportFormat::Table, "UBND xã");
        assert!(
            t.contains("Văn bản đi") && t.contains("100 %") && t.contains("Văn phòng — đi"),
            "{t}"
        );
        assert!(!t.contains("từ chối"), "no rejections, no line: {t}");
        let c = render(&r, ReportFormat::Csv, "UBND xã");
        assert_eq!(c.lines().count(), 5);
    }

    #[test]
    fn the_table_names_rejected_documents_when_there_are_some() {
        let mut r = report(&[]);
        r.outgoing.rejected_by_receiver = Some(2);
        r.incoming.rejected_by_receiver = Some(0);
        let t = render(&r, ReportFormat::Table, "UBND xã");
        assert!(
            t.ends_with("(trục liên thông, mã 02): văn bản đi 2, văn bản đến 0.\n"),
            "{t}"
        );
    }

    #[test]
    fn json_rendering_reads_back_as_the_same_report() {
        let mut r = report(&[("2026-01-05", "", Direction::Incoming, Class::Paper)]);
        r.outgoing.rejected_by_receiver = Some(1);
        let text = render(&r, ReportFormat::Json, "UBND xã");
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
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
        let r = report(&[
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
