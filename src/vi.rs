//! How Vietnamese is written for people — in the console, the reports and
//! the alert mails: `92,5 %`, `12.345`, `14/06/2026`, and the names of the
//! classes, directions and windows.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::model::{Class, Direction, Window};

/// A ratio with one decimal, a decimal comma and a space: `92,5 %`.
pub(crate) fn percent(ratio: f64) -> String {
    format!("{} %", format!("{:.1}", ratio * 100.0).replace('.', ","))
}

/// [`percent`], or a dash when the ratio is undefined (no document counted).
pub(crate) fn percent_or_dash(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".to_string(), percent)
}

/// A count with `.` between thousands: `12.345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A date: `14/06/2026`.
pub(crate) fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// A moment in the agency's zone: `14/06/2026 09:05`.
pub(crate) fn date_time(unix_secs: i64, tz: Tz) -> String {
    match tz.timestamp_opt(unix_secs, 0).single() {
        Some(t) => t.format("%d/%m/%Y %H:%M").to_string(),
        None => "—".to_string(),
    }
}

/// `Văn bản đi` / `Văn bản đến`.
pub(crate) fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Outgoing => "Văn bản đi",
        Direction::Incoming => "Văn bản đến",
    }
}

/// What a class means, in a few words.
pub(crate) fn class(c: Class) -> &'static str {
    match c {
        Class::ElectronicSigned => "Điện tử, đã ký số",
        Class::ElectronicUnsigned => "Điện tử, chưa đủ chữ ký số",
        Class::Paper => "Bản giấy",
        Class::SecretExempt => "Mật (loại trừ)",
    }
}

/// The name of a dashboard window.
pub(crate) fn window(w: Window) -> &'static str {
    match w {
        Window::Day => "Hôm nay",
        Window::Days7 => "7 ngày",
        Window::Days30 => "30 ngày",
        Window::Month => "Tháng này",
        Window::Year => "Năm nay",
        Window::All => "Toàn bộ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_have_one_decimal_a_comma_and_a_space() {
        assert_eq!(percent(0.925), "92,5 %");
        assert_eq!(percent(1.0), "100,0 %");
        assert_eq!(percent(0.0), "0,0 %");
        assert_eq!(percent(0.94017), "94,0 %");
        assert_eq!(percent(0.91666), "91,7 %");
        assert_eq!(percent_or_dash(None), "—");
    }

    #[test]
    fn counts_group_thousands_with_dots() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1.000"),
            (12_345, "12.345"),
            (636_311, "636.311"),
            (1_234_567, "1.234.567"),
        ] {
            assert_eq!(count(n), s);
        }
    }

    #[test]
    fn dates_are_day_month_year() {
        let d = NaiveDate::from_ymd_opt(2026, 6, 4).unwrap();
        assert_eq!(date(d), "04/06/2026");
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        // 2026-06-14T02:05:00Z is 09:05 in Hanoi.
        assert_eq!(date_time(1_781_402_700, tz), "14/06/2026 09:05");
    }
}
