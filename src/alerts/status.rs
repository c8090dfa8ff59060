//! What the alerting shows: the metrics of its rules.

use super::rules::Phase;
use super::Alerting;
use crate::metrics::{Collect, Scrape};

impl Collect for Alerting {
    /// `docflow_alert_firing` and `docflow_alert_notifications_total`.
    fn collect(&self, scrape: &Scrape) {
        let firing = scrape.gauge_vec(
            "docflow_alert_firing",
            "1 while the alert rule is firing.",
            &["rule"],
        );
        let notifications = scrape.counter_vec(
            "docflow_alert_notifications_total",
            "Alert mails by rule, state (firing, resolved) and result (sent, failed: one per failed try).",
            &["rule", "state", "result"],
        );
        let inner = self.lock();
        for rule in &self.config.rules {
            let record = inner.records.get(&rule.name).cloned().unwrap_or_default();
            let is_firing = matches!(record.phase, Phase::Firing { .. });
            firing
                .with_label_values(&[rule.name.as_str()])
                .set(if is_firing { 1.0 } else { 0.0 });
            let n = record.notifications;
            for (state, result, value) in [
                ("firing", "sent", n.firing_sent),
                ("firing", "failed", n.firing_failed),
                ("resolved", "sent", n.resolved_sent),
                ("resolved", "failed", n.resolved_failed),
            ] {
                notifications
                    .with_label_values(&[rule.name.as_str(), state, result])
                    .inc_by(value);
            }
        }
    }
}
