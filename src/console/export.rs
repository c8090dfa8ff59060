//! The report to download: CSV (UTF-8 with a BOM, so Excel opens
//! Vietnamese correctly; cells a spreadsheet would run are neutralised) and
//! .xlsx (rust_xlsxwriter: numbers as numbers, text as text, never formulas).

use axum::extract::State;
use axum::http::Uri;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::api::AppState;
use crate::report::{Report, ReportFormat};

/// The file name of a report: `bao-cao-2026-H1`, `bao-cao-2026-01-01-2026-06-30`.
fn file_name(report: &Report, ext: &str) -> String {
    let what = match (&report.period, report.from, report.to) {
        (Some(p), _, _) => p.clone(),
        (None, None, None) => "toan-bo".to_string(),
        (None, f, t) => format!(
            "{}-{}",
            f.map_or("dau".to_string(), |d| d.to_string()),
            t.map_or("nay".to_string(), |d| d.to_string())
        ),
    };
    format!("bao-cao-{what}.{ext}")
}

fn download(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The report a download asks for, or the 400 problem page.
fn report(s: &AppState, uri: &Uri) -> Result<Report, Response> {
    super::report::requested(s, uri).map(|(_, range)| super::report::build(s, &range))
}

pub(super) async fn csv(State(s): State<AppState>, uri: Uri) -> Response {
    let report = match report(&s, &uri) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend_from_slice(
        crate::report::render(&report, ReportFormat::Csv, &s.config.agency.name).as_bytes(),
    );
    download(body, "text/csv; charset=utf-8", &file_name(&report, "csv"))
}

pub(super) async fn xlsx(State(s): State<AppState>, uri: Uri) -> Response {
    let report = match report(&s, &uri) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match workbook(&report, &s.config.agency.name) {
        Ok(bytes) => download(
            bytes,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &file_name(&report, "xlsx"),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the workbook was not written: {e}\n"),
        )
            .into_response(),
    }
}

/// One sheet: the title, the header, then a line per direction and unit.
fn workbook(report: &Report, agency_name: &str) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Báo cáo")?;
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    sheet.write_string_with_format(0, 0, crate::report::title(report, agency_name), &bold)?;
    for (col, name) in crate::report::COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(2, col as u16, *name, &bold)?;
    }
    for (i, (label, c)) in crate::report::lines(report).into_iter().enumerate() {
        let row = 3 + i as u32;
        sheet.write_string(row, 0, label)?;
        for (col, n) in [
            c.total,
            c.electronic_signed,
            c.electronic_unsigned,
            c.paper,
            c.secret_exempt,
        ]
        .into_iter()
        .enumerate()
        {
            sheet.write_number(row, 1 + col as u16, n as f64)?;
        }
        match c.compliance_ratio {
            Some(r) => sheet.write_number_with_format(row, 6, r, &percent)?,
            None => sheet.write_string(row, 6, "—")?,
        };
    }
    sheet.set_column_width(0, 36)?;
    for col in 1..=6 {
        sheet.set_column_width(col, 14)?;
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportRange;

    /// The text of one part of the workbook.
    fn part(bytes: &[u8], name: &str) -> String {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    }

    #[test]
    fn a_workbook_has_numbers_as_numbers_and_a_formula_looking_unit_as_text() {
        let unit = "=HYPERLINK(\"http://evil.example/\",\"x\")";
        let mut agg = crate::aggregate::Aggregates::default();
        let slot = |class| crate::aggregate::Slot {
            day: 739_000,
            unit: unit.into(),
            direction: crate::model::Direction::Outgoing,
            class,
        };
        agg.apply(&slot(crate::model::Class::Paper), 1);
        agg.apply(&slot(crate::model::Class::ElectronicSigned), 3);
        let report = Report::new("H40", &ReportRange::default(), &agg, false);
        let bytes = workbook(&report, "UBND xã").unwrap();
        let sheet = part(&bytes, "xl/worksheets/sheet1.xml");
        let strings = part(&bytes, "xl/sharedStrings.xml");
        assert!(!sheet.contains("<f>"), "no formula in the sheet: {sheet}");
        assert!(
            strings.contains(&format!("<t>{unit} — đi</t>")),
            "the unit is a shared string: {strings}"
        );
        assert!(
            sheet.contains("<v>4</v>") && sheet.contains("<v>0.75</v>"),
            "the total and the ratio are numbers: {sheet}"
        );
        assert_eq!(file_name(&report, "xlsx"), "bao-cao-toan-bo.xlsx");
    }
}
