//! `docflow_source_*`: what each source has read and whether it can read,
//! plus the poll metrics of HTTP feed sources.

use std::sync::Arc;

use super::{Collect, Scrape};
use crate::sources::SourceHandle;

/// The configured sources, with their live progress.
pub(crate) struct Sources<'a>(pub &'a [Arc<SourceHandle>]);

impl Collect for Sources<'_> {
    fn collect(&self, scrape: &Scrape) {
        let events = scrape.counters(&super::families::SOURCE_EVENTS);
        let up = scrape.gauges(&super::families::SOURCE_UP);
        let last_event = scrape.gauges(&super::families::SOURCE_LAST_EVENT);
        let verdicts = scrape.counters(&super::families::SIGNATURE_VERDICTS);
        for source in self.0 {
            let name = source.config.name.as_str();
            let p = source.progress();
            for (result, n) in [
                ("accepted", p.state.accepted),
                ("duplicate", p.state.duplicate),
                ("invalid", p.state.invalid),
            ] {
                events.with_label_values(&[name, result]).inc_by(n);
            }
            up.with_label_values(&[name])
                .set(if p.up { 1.0 } else { 0.0 });
            if let Some(t) = p.state.last_event_time {
                last_event.with_label_values(&[name]).set(t as f64);
            }
            drop(p);
            if source.verifies_pdfs() {
                let counted = source
                    .verdicts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let results =
                    std::iter::once("valid").chain(crate::pdf::Reason::ALL.map(|r| r.code()));
                for result in results {
                    let n = counted.get(result).copied().unwrap_or(0);
                    verdicts.with_label_values(&[name, result]).inc_by(n);
                }
            }
            if let Some(feed) = &source.feed_metrics {
                feed.collect(scrape);
            }
        }
    }
}

/// The poll histogram and error counters of an HTTP feed source.
impl Collect for crate::sources::http::FeedMetrics {
    fn collect(&self, scrape: &Scrape) {
        scrape.add(&self.poll_seconds);
        scrape.add(&self.errors);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn feed_metrics_of_several_sources_render_in_one_scrape() {
        let (a, b) = (
            crate::sources::http::FeedMetrics::new("hub-a"),
            crate::sources::http::FeedMetrics::new("hub-b"),
        );
        a.poll_seconds.observe(0.2);
        b.errors.with_label_values(&["timeout"]).inc();
        let text = super::super::render(&[&a, &b]);
        assert!(
            text.contains(r#"docflow_source_poll_duration_seconds_count{source="hub-a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"docflow_source_errors_total{kind="timeout",source="hub-b"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"docflow_source_errors_total{kind="dns",source="hub-a"} 0"#),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE docflow_source_errors_total").count(),
            1
        );
    }
}
