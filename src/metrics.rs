//! Prometheus metrics (SPEC §5.2), rendered at scrape time from the in-memory
//! per-day counts and source progress: a scrape never touches documents.

use chrono::NaiveDate;
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::aggregate::{day_number, Summary};
use crate::config::Agency;
use crate::ingest::Shared;
use crate::model::{Class, Direction, Window};

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

/// Renders the text exposition format.
pub fn render(shared: &Shared, agency: &Agency, today: NaiveDate) -> String {
    let registry = Registry::new();
    let documents = gauge(
        &registry,
        "docflow_documents",
        "Documents by direction, class and time window (local days).",
        &["direction", "class", "window"],
    );
    let ratio = gauge(
        &registry,
        "docflow_compliance_ratio",
        "Electronic signed documents / (total - secret exempt); absent when the denominator is 0.",
        &["direction", "window"],
    );
    let unit_documents = gauge(
        &registry,
        "docflow_unit_documents",
        "Documents by internal unit, direction, class and window (month, year).",
        &["unit", "direction", "class", "window"],
    );
    let events = IntCounterVec::new(
        Opts::new(
            "docflow_source_events_total",
            "Events read per source by result.",
        ),
        &["source", "result"],
    )
    .expect("valid metric definition");
    registry
        .register(Box::new(events.clone()))
        .expect("metric registered once");
    let up = gauge(
        &registry,
        "docflow_source_up",
        "1 when the source can be read.",
        &["source"],
    );
    let last_event = gauge(
        &registry,
        "docflow_source_last_event_timestamp_seconds",
        "Time of the newest event accepted from the source.",
        &["source"],
    );
    let agency_info = gauge(
        &registry,
        "docflow_agency_info",
        "The agency this docflowd measures.",
        &["code", "name"],
    );
    let build_info = gauge(
        &registry,
        "docflow_build_info",
        "docflowd build.",
        &["version"],
    );

    let summaries: Vec<(Window, Summary)> = {
        let agg = shared.aggregates.read().expect("aggregates lock");
        Window::ALL
            .into_iter()
            .map(|w| {
                let range = w.range(today);
                let s = agg.summary(
                    range.map(|r| day_number(r.0)),
                    range.map(|r| day_number(r.1)),
                );
                (w, s)
            })
            .collect()
    };
    for (window, summary) in &summaries {
        for d in Direction::ALL {
            let counts = summary.total.get(d);
            for class in Class::ALL {
                documents
                    .with_label_values(&[d.as_str(), class.as_str(), window.label()])
                    .set(counts.get(class) as f64);
            }
            if let Some(r) = counts.compliance_ratio() {
                ratio
                    .with_label_values(&[d.as_str(), window.label()])
                    .set(r);
            }
            if matches!(window, Window::Month | Window::Year) {
                for (unit, per_dir) in &summary.by_unit {
                    let c = per_dir.get(d);
                    for class in Class::ALL {
                        unit_documents
                            .with_label_values(&[
                                unit.as_str(),
                                d.as_str(),
                                class.as_str(),
                                window.label(),
                            ])
                            .set(c.get(class) as f64);
                    }
                }
            }
        }
    }
    for source in &shared.sources {
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
            feed.register(&registry)
                .expect("feed metrics of distinct sources register together");
        }
    }
    agency_info
        .with_label_values(&[agency.code.as_str(), agency.name.as_str()])
        .set(1.0);
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);

    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("text encoding of valid metrics");
    String::from_utf8(out).unwrap_or_default()
}
