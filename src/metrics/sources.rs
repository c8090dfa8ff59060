//! `docflow_source_*`: what each source has read and whether it can read,
//! plus the poll metrics of HTTP feed sources.

use std::sync::Arc;

use super::{Collect, Scrape};
use crate::sources::SourceHandle;

/// The configured sources, with their live progress.
pub struct Sources<'a>(pub &'a [Arc<SourceHandle>]);

impl Collect for Sources<'_> {
    fn collect(&self, scrape: &Scrape) {
        let events = scrape.counters(&super::families::SOURCE_EVENTS);
        let up = scrape.gauges(&super::families::SOURCE_UP);
        let last_event = scrape.gauges(&super::families::SOURCE_LAST_EVENT);
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
            if let Some(feed) = &source.feed_metrics {
                feed.collect(scrape);
            }
        }
    }
}
