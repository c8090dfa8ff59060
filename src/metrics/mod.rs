//! Prometheus metrics (README, "Metrics"). Each part of `/metrics` is a
//! [`Collect`]or that adds its families to the one registry a scrape is
//! rendered from, as node_exporter's collectors do; [`render`] writes it.

mod documents;
pub(crate) mod families;
mod sources;

use prometheus::core::Collector;
use prometheus::{Encoder, Gauge, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::config::Agency;

pub(crate) use documents::Documents;
pub(crate) use sources::Sources;

/// The media type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One part of `/metrics`.
pub(crate) trait Collect {
    /// Adds this part's metrics, with their values now, to `scrape`.
    fn collect(&self, scrape: &Scrape);
}

/// A shared part.
impl<C: Collect + ?Sized> Collect for std::sync::Arc<C> {
    fn collect(&self, scrape: &Scrape) {
        (**self).collect(scrape);
    }
}

/// A part that may be absent (alerting without `[alerts]`): nothing then.
impl<C: Collect> Collect for Option<C> {
    fn collect(&self, scrape: &Scrape) {
        if let Some(part) = self {
            part.collect(scrape);
        }
    }
}

/// The registry of one scrape.
pub(crate) struct Scrape {
    registry: Registry,
}

impl Scrape {
    /// A gauge without labels, registered in this scrape.
    pub(crate) fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::new(name, help).expect("valid metric definition");
        self.add(&gauge);
        gauge
    }

    /// The gauges of a family of [`families`], registered in this scrape.
    pub(crate) fn gauges(&self, f: &families::Family) -> GaugeVec {
        self.gauge_vec(f.name, f.help, f.labels)
    }

    /// The counters of a family of [`families`], registered in this scrape.
    pub(crate) fn counters(&self, f: &families::Family) -> IntCounterVec {
        self.counter_vec(f.name, f.help, f.labels)
    }

    /// A labelled gauge family, registered in this scrape.
    pub(crate) fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let gauges = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
        self.add(&gauges);
        gauges
    }

    /// A labelled counter family, registered in this scrape.
    pub(crate) fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let counters =
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
        self.add(&counters);
        counters
    }

    /// Adds metrics kept beyond the scrape (the process's counters and
    /// histograms). Families of one name from several parts are merged.
    pub(crate) fn add<C: Collector + Clone + 'static>(&self, metrics: &C) {
        self.registry
            .register(Box::new(metrics.clone()))
            .expect("each metric is added to a scrape once");
    }
}

/// The text exposition of `parts`: families sorted by name, a family with
/// no sample left out.
pub fn render(parts: &[&dyn Collect]) -> String {
    let scrape = Scrape {
        registry: Registry::new(),
    };
    for part in parts {
        part.collect(&scrape);
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&scrape.registry.gather(), &mut out)
        .expect("text encoding of valid metrics");
    String::from_utf8(out).expect("the text format is UTF-8")
}

/// `docflow_agency_info`: the agency this daemon measures.
pub(crate) struct AgencyInfo<'a>(pub &'a Agency);

impl Collect for AgencyInfo<'_> {
    fn collect(&self, scrape: &Scrape) {
        scrape
            .gauges(&families::AGENCY_INFO)
            .with_label_values(&[self.0.code.as_str(), self.0.name.as_str()])
            .set(1.0);
    }
}

/// `docflow_build_info`: the version running.
pub(crate) struct BuildInfo;

impl Collect for BuildInfo {
    fn collect(&self, scrape: &Scrape) {
        scrape
            .gauges(&families::BUILD_INFO)
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
    }
}

/// `docflow_store_damaged`: whether the store failed a check (then no
/// count is exported).
pub(crate) struct StoreDamaged(pub bool);

impl Collect for StoreDamaged {
    fn collect(&self, scrape: &Scrape) {
        scrape
            .gauge(
                "docflow_store_damaged",
                "1 while the store failed a check and no counts are served.",
            )
            .set(if self.0 { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part kept for the process, like an HTTP feed's counters.
    struct Lifelong(IntCounterVec);

    impl Collect for Lifelong {
        fn collect(&self, scrape: &Scrape) {
            scrape.add(&self.0);
        }
    }

    fn lifelong(source: &str) -> Lifelong {
        Lifelong(
            IntCounterVec::new(
                Opts::new("docflow_test_total", "Test.").const_label("source", source),
                &["kind"],
            )
            .unwrap(),
        )
    }

    #[test]
    fn parts_render_as_one_exposition_sorted_by_family() {
        let (a, b) = (lifelong("b"), lifelong("a"));
        a.0.with_label_values(&["x"]).inc_by(3);
        b.0.with_label_values(&["x"]).inc();
        let text = render(&[&StoreDamaged(false), &a, &BuildInfo, &b]);
        assert_eq!(
            text,
            format!(
                "# HELP docflow_build_info docflowd build.\n\
                 # TYPE docflow_build_info gauge\n\
                 docflow_build_info{{version=\"{}\"}} 1\n\
                 # HELP docflow_store_damaged 1 while the store failed a check and no counts are served.\n\
                 # TYPE docflow_store_damaged gauge\n\
                 docflow_store_damaged 0\n\
                 # HELP docflow_test_total Test.\n\
                 # TYPE docflow_test_total counter\n\
                 docflow_test_total{{kind=\"x\",source=\"a\"}} 1\n\
                 docflow_test_total{{kind=\"x\",source=\"b\"}} 3\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn a_family_without_samples_is_left_out() {
        struct Empty;
        impl Collect for Empty {
            fn collect(&self, scrape: &Scrape) {
                scrape.gauge_vec("docflow_empty", "Nothing.", &["x"]);
            }
        }
        assert_eq!(render(&[&Empty]), "");
    }
}
