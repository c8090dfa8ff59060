//! Per-source poll metrics of an HTTP feed.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};

use super::fault::FaultKind;

/// Per-source poll metrics, kept for the life of the process and added to each scrape.
#[derive(Debug, Clone)]
pub(crate) struct FeedMetrics {
    pub(crate) poll_seconds: Histogram,
    pub(crate) errors: IntCounterVec,
}

impl FeedMetrics {
    pub(crate) fn new(source: &str) -> FeedMetrics {
        let poll_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "docflow_source_poll_duration_seconds",
                "Duration of HTTP feed polls (request and body), successful or not.",
            )
            .const_label("source", source)
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )
        .expect("valid histogram definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "docflow_source_errors_total",
                "Failed HTTP feed polls by kind of fault.",
            )
            .const_label("source", source),
            &["kind"],
        )
        .expect("valid counter definition");
        for kind in FaultKind::ALL {
            errors.with_label_values(&[kind.as_str()]);
        }
        FeedMetrics {
            poll_seconds,
            errors,
        }
    }
}
