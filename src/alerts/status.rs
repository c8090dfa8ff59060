//! What the alerting shows: the `alerts` block of `/api/v1/status` and the
//! metrics of its rules. Fields are in alphabetical order, the order of the
//! JSON keys since the first version.

use chrono::TimeZone;
use serde::{Deserialize, Serialize};

use super::rules::Phase;
use super::{Alerting, Inner, Notifications, RuleRecord};
use crate::config::{AlertCondition, AlertRule};
use crate::metrics::{Collect, Scrape};

/// The `alerts` block of `/api/v1/status`: each rule, the mails waiting,
/// and the last mails delivered (newest first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlertsStatus {
    pub(crate) outbox: Vec<OutboxStatus>,
    pub rules: Vec<RuleStatus>,
    #[serde(default)]
    pub(crate) sent: Vec<SentStatus>,
}

/// A mail delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SentStatus {
    /// RFC 3339 time of the delivery.
    pub(crate) at: String,
    pub(crate) rule: String,
    /// `firing` or `resolved`.
    pub(crate) state: String,
    pub(crate) subject: String,
}

/// A mail waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OutboxStatus {
    /// Failed tries so far.
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) rule: String,
    /// `firing` or `resolved`.
    pub(crate) state: String,
    pub(crate) subject: String,
}

/// One rule's state, with what it last observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RuleStatus {
    Ratio(RatioRuleStatus),
    Stale(StaleRuleStatus),
}

/// Which condition a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RuleKind {
    Ratio,
    Stale,
}

/// A rule on the compliance ratio of a direction over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RatioRuleStatus {
    pub(crate) below: f64,
    /// The ratio last observed (`None`: not evaluated yet, or no denominator).
    pub(crate) compliance_ratio: Option<f64>,
    /// Whether the condition held at the last evaluation (`None`: not evaluated yet).
    pub(crate) condition_holds: Option<bool>,
    pub(crate) direction: String,
    /// The denominator last observed.
    pub(crate) documents: Option<u64>,
    pub(crate) kind: RuleKind,
    /// RFC 3339, local time.
    pub(crate) last_notification: Option<String>,
    pub name: String,
    pub(crate) notifications: NotificationCounts,
    /// Mails of this rule waiting in the outbox.
    pub(crate) outbox: usize,
    /// RFC 3339, local time: since when the rule is pending or firing.
    pub(crate) since: Option<String>,
    /// `inactive`, `pending` or `firing`.
    pub(crate) state: String,
    pub(crate) window: String,
}

/// A rule on a source that has accepted no new event for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StaleRuleStatus {
    pub(crate) after_seconds: u64,
    pub(crate) condition_holds: Option<bool>,
    /// Seconds since the source last accepted an event, at the last evaluation.
    pub(crate) idle_seconds: Option<f64>,
    pub(crate) kind: RuleKind,
    pub(crate) last_notification: Option<String>,
    pub name: String,
    pub(crate) notifications: NotificationCounts,
    pub(crate) outbox: usize,
    pub(crate) since: Option<String>,
    pub(crate) source: String,
    pub(crate) state: String,
}

/// Mails of one rule, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotificationCounts {
    pub(crate) firing: SentAndFailed,
    pub(crate) resolved: SentAndFailed,
}

/// Mails sent, and failed tries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentAndFailed {
    pub(crate) failed: u64,
    pub(crate) sent: u64,
}

impl RuleStatus {
    /// `inactive`, `pending` or `firing`.
    pub(crate) fn state(&self) -> &str {
        match self {
            RuleStatus::Ratio(r) => &r.state,
            RuleStatus::Stale(r) => &r.state,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            RuleStatus::Ratio(r) => &r.name,
            RuleStatus::Stale(r) => &r.name,
        }
    }

    /// RFC 3339: since when the rule is pending or firing.
    pub(crate) fn since(&self) -> Option<&str> {
        match self {
            RuleStatus::Ratio(r) => r.since.as_deref(),
            RuleStatus::Stale(r) => r.since.as_deref(),
        }
    }

    /// RFC 3339: when its last mail was queued.
    pub(crate) fn last_notification(&self) -> Option<&str> {
        match self {
            RuleStatus::Ratio(r) => r.last_notification.as_deref(),
            RuleStatus::Stale(r) => r.last_notification.as_deref(),
        }
    }

    /// Mails of this rule sent so far (firing, resolved).
    pub(crate) fn sent(&self) -> (u64, u64) {
        let n = match self {
            RuleStatus::Ratio(r) => &r.notifications,
            RuleStatus::Stale(r) => &r.notifications,
        };
        (n.firing.sent, n.resolved.sent)
    }
}

impl From<Notifications> for NotificationCounts {
    fn from(n: Notifications) -> Self {
        NotificationCounts {
            firing: SentAndFailed {
                failed: n.firing_failed,
                sent: n.firing_sent,
            },
            resolved: SentAndFailed {
                failed: n.resolved_failed,
                sent: n.resolved_sent,
            },
        }
    }
}

impl Alerting {
    /// The `alerts` block of `/api/v1/status`.
    pub(crate) fn status(&self) -> AlertsStatus {
        let inner = self.lock();
        let rules = self
            .config
            .rules
            .iter()
            .map(|rule| self.rule_status(rule, &inner))
            .collect();
        let outbox = inner
            .outbox
            .values()
            .map(|e| OutboxStatus {
                attempts: e.attempts,
                last_error: e.last_error.clone(),
                rule: e.mail.rule.clone(),
                state: e.mail.state.clone(),
                subject: e.mail.subject.clone(),
            })
            .collect();
        let mut sent: Vec<(i64, SentStatus)> = inner
            .records
            .iter()
            .flat_map(|(rule, record)| {
                record.sent.iter().map(move |m| {
                    let at = self
                        .timezone
                        .timestamp_opt(m.at, 0)
                        .single()
                        .map(|t| t.to_rfc3339());
                    (
                        m.at,
                        SentStatus {
                            at: at.unwrap_or_default(),
                            rule: rule.clone(),
                            state: m.state.clone(),
                            subject: m.subject.clone(),
                        },
                    )
                })
            })
            .collect();
        sent.sort_by_key(|m| std::cmp::Reverse(m.0));
        AlertsStatus {
            outbox,
            rules,
            sent: sent.into_iter().map(|(_, m)| m).collect(),
        }
    }

    fn rule_status(&self, rule: &AlertRule, inner: &Inner) -> RuleStatus {
        let time = |t: i64| {
            self.timezone
                .timestamp_opt(t, 0)
                .single()
                .map(|t| t.to_rfc3339())
        };
        let record: RuleRecord = inner.records.get(&rule.name).cloned().unwrap_or_default();
        let observed = inner.observed.get(&rule.name);
        let (since, notified) = match record.phase {
            Phase::Inactive => (None, None),
            Phase::Pending { since } => (Some(since), None),
            Phase::Firing { since, notified } => (Some(since), Some(notified)),
        };
        let name = rule.name.clone();
        let condition_holds = observed.map(|o| o.holds);
        let last_notification = notified.and_then(time);
        let notifications = record.notifications.into();
        let outbox = inner
            .outbox
            .values()
            .filter(|e| e.mail.rule == rule.name)
            .count();
        let since = since.and_then(time);
        let state = record.phase.label().to_string();
        match &rule.condition {
            AlertCondition::Ratio {
                direction,
                window,
                below,
                ..
            } => RuleStatus::Ratio(RatioRuleStatus {
                below: *below,
                compliance_ratio: observed.and_then(|o| o.value),
                condition_holds,
                direction: direction.as_str().to_string(),
                documents: observed.map(|o| o.documents),
                kind: RuleKind::Ratio,
                last_notification,
                name,
                notifications,
                outbox,
                since,
                state,
                window: window.label().to_string(),
            }),
            AlertCondition::Stale { source, after } => RuleStatus::Stale(StaleRuleStatus {
                after_seconds: after.as_secs(),
                condition_holds,
                idle_seconds: observed.and_then(|o| o.value),
                kind: RuleKind::Stale,
                last_notification,
                name,
                notifications,
                outbox,
                since,
                source: source.clone(),
                state,
            }),
        }
    }
}

impl Collect for Alerting {
    /// `docflow_alert_firing` and `docflow_alert_notifications_total`.
    fn collect(&self, scrape: &Scrape) {
        let firing = scrape.gauges(&crate::metrics::families::ALERT_FIRING);
        let notifications = scrape.counters(&crate::metrics::families::ALERT_NOTIFICATIONS);
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
