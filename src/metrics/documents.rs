//! `docflow_documents`, `docflow_compliance_ratio` and
//! `docflow_unit_documents`: every window's counts, summed from the per-day
//! counts in memory, so a scrape never reads a document.

use std::sync::RwLock;

use chrono::NaiveDate;

use super::{Collect, Scrape};
use crate::aggregate::{day_number, Aggregates, Summary};
use crate::model::Class;
use crate::model::Direction;
use crate::model::Window;

/// The document counts of every window ending `today` (a local date).
pub(crate) struct Documents<'a> {
    pub(crate) aggregates: &'a RwLock<Aggregates>,
    pub(crate) today: NaiveDate,
}

impl Documents<'_> {
    /// Each window's summary, read under one lock.
    fn summaries(&self) -> Vec<(Window, Summary)> {
        let aggregates = self.aggregates.read().expect("aggregates lock");
        Window::ALL
            .into_iter()
            .map(|w| {
                let range = w.range(self.today);
                let from = range.map(|r| day_number(r.0));
                let to = range.map(|r| day_number(r.1));
                (w, aggregates.summary(from, to))
            })
            .collect()
    }
}

impl Collect for Documents<'_> {
    fn collect(&self, scrape: &Scrape) {
        let documents = scrape.gauges(&super::families::DOCUMENTS);
        let ratio = scrape.gauges(&super::families::COMPLIANCE_RATIO);
        let unit_documents = scrape.gauges(&super::families::UNIT_DOCUMENTS);
        for (window, summary) in &self.summaries() {
            let label = window.label();
            for d in Direction::ALL {
                let counts = summary.total.get(d);
                for class in Class::ALL {
                    documents
                        .with_label_values(&[d.as_str(), class.as_str(), label])
                        .set(counts.get(class) as f64);
                }
                if let Some(r) = counts.compliance_ratio() {
                    ratio.with_label_values(&[d.as_str(), label]).set(r);
                }
            }
            // Per unit only for the calendar month and year: fewer series.
            if !matches!(window, Window::Month | Window::Year) {
                continue;
            }
            for (unit, per_direction) in &summary.by_unit {
                for d in Direction::ALL {
                    for class in Class::ALL {
                        unit_documents
                            .with_label_values(&[unit, d.as_str(), class.as_str(), label])
                            .set(per_direction.get(d).get(class) as f64);
                    }
                }
            }
        }
    }
}
