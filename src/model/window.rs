//! The calendar windows of the dashboard and the alert rules.

use chrono::{Datelike, Days, Months, NaiveDate};

/// A dashboard window (README "Metrics": `window`), in local days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    Day,
    Days7,
    Days30,
    Month,
    Year,
    All,
}

impl Window {
    /// Every window, in label order.
    pub(crate) const ALL: [Window; 6] = [
        Window::Day,
        Window::Days7,
        Window::Days30,
        Window::Month,
        Window::Year,
        Window::All,
    ];

    /// The `window` metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Days7 => "7d",
            Window::Days30 => "30d",
            Window::Month => "month",
            Window::Year => "year",
            Window::All => "all",
        }
    }

    /// Parses a `window` label.
    pub(crate) fn from_label(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.label() == s)
    }

    /// Inclusive local date range for `today`; None for All. Day: today..today; 7d: today-6..today; 30d: today-29..today; Month: 1st..last day of the calendar month; Year: 1 Jan..31 Dec.
    pub(crate) fn range(self, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let days_back = |n| {
            today
                .checked_sub_days(Days::new(n))
                .unwrap_or(NaiveDate::MIN)
        };
        match self {
            Window::Day => Some((today, today)),
            Window::Days7 => Some((days_back(6), today)),
            Window::Days30 => Some((days_back(29), today)),
            Window::Month => {
                let first = today.with_day(1)?;
                let last = first
                    .checked_add_months(Months::new(1))
                    .and_then(|next| next.pred_opt())
                    // Only the last month chrono can represent has no successor.
                    .unwrap_or(NaiveDate::MAX);
                Some((first, last))
            }
            Window::Year => Some((
                NaiveDate::from_ymd_opt(today.year(), 1, 1)?,
                NaiveDate::from_ymd_opt(today.year(), 12, 31).unwrap_or(NaiveDate::MAX),
            )),
            Window::All => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn window_labels_round_trip() {
        let labels: Vec<_> = Window::ALL.into_iter().map(Window::label).collect();
        assert_eq!(labels, ["day", "7d", "30d", "month", "year", "all"]);
        for w in Window::ALL {
            assert_eq!(Window::from_label(w.label()), Some(w));
        }
        assert_eq!(Window::from_label("Day"), None);
        assert_eq!(Window::from_label("7"), None);
    }

    #[test]
    fn window_ranges_include_today() {
        let cases = [
            (
                Window::Day,
                date(2026, 6, 14),
                Some((date(2026, 6, 14), date(2026, 6, 14))),
            ),
            (
                Window::Days7,
                date(2026, 6, 14),
                Some((date(2026, 6, 8), date(2026, 6, 14))),
            ),
            (
                Window::Days7,
                date(2026, 1, 3),
                Some((date(2025, 12, 28), date(2026, 1, 3))),
            ),
            (
                Window::Days30,
                date(2026, 6, 14),
                Some((date(2026, 5, 16), date(2026, 6, 14))),
            ),
            (
                Window::Days30,
                date(2026, 3, 1),
                Some((date(2026, 1, 31), date(2026, 3, 1))),
            ),
            (
                Window::Month,
                date(2026, 6, 14),
                Some((date(2026, 6, 1), date(2026, 6, 30))),
            ),
            (
                Window::Month,
                date(2026, 2, 1),
                Some((date(2026, 2, 1), date(2026, 2, 28))),
            ),
            (
                Window::Month,
                date(2024, 2, 29),
                Some((date(2024, 2, 1), date(2024, 2, 29))),
            ),
            (
                Window::Month,
                date(2026, 12, 31),
                Some((date(2026, 12, 1), date(2026, 12, 31))),
            ),
            (
                Window::Year,
                date(2026, 6, 14),
                Some((date(2026, 1, 1), date(2026, 12, 31))),
            ),
            (Window::All, date(2026, 6, 14), None),
        ];
        for (window, today, want) in cases {
            assert_eq!(window.range(today), want, "{window:?} on {today}");
        }
    }

    #[test]
    fn window_ranges_at_chrono_limits_do_not_panic() {
        for w in Window::ALL {
            let _ = w.range(NaiveDate::MIN);
            let _ = w.range(NaiveDate::MAX);
        }
    }
}
