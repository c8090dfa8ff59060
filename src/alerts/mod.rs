//! Alerts (README, "Alerts"): evaluates the configured rules against the in-memory
//! counts and source progress, keeps each rule's state and an outbox of mails
//! in the store (written together, so a restart neither re-sends nor forgets)
//! and delivers the outbox over SMTP with exponential backoff.

pub(crate) mod mail;
mod record;
pub mod rules;
mod status;

use record::encode;
pub(crate) use record::{
    record_decodes, Notifications, OutboxEntry, RuleRecord, SentMail, SENT_KEPT,
};
pub(crate) use status::{AlertsStatus, RuleStatus};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::aggregate::{day_number, ClassCounts};
use crate::config::{AlertCondition, AlertRule, AlertsConfig, Config};
use crate::ingest::Shared;
use crate::model::Class;
use crate::parse::time::local_day;
use crate::store::alerts::AlertCommit;
use crate::store::{Store, StoreError};
use mail::{Detail, DocLine, Mail, MailFacts, RatioFacts, StaleFacts};
use rules::{Notice, Timing};

/// How many non-compliant documents a mail lists.
const LISTED_DOCUMENTS: usize = 10;
/// First retry delay of an undelivered mail; doubles per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 60 * 1_000;
/// Longest wait for the sources to catch up before ratio rules are evaluated anyway.
const CATCH_UP_GRACE_SECS: i64 = 600;

/// The last observation of a rule, for `/api/v1/status`.
#[derive(Debug, Clone, Default)]
struct Observation {
    value: Option<f64>,
    documents: u64,
    holds: bool,
}

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<String, RuleRecord>,
    outbox: BTreeMap<u64, OutboxEntry>,
    next_seq: u64,
    observed: BTreeMap<String, Observation>,
    /// Ratio rules wait until every source has caught up once, so a backlog
    /// being read at start does not look like a drop.
    sources_caught_up: bool,
    /// Time of the first evaluation: after [`CATCH_UP_GRACE_SECS`] ratio rules
    /// run even if a source never catches up (a broken source must not silence them).
    first_evaluation: Option<i64>,
}

/// The alerting component: rule states, outbox and delivery.
pub(crate) struct Alerting {
    config: AlertsConfig,
    agency_name: String,
    agency_code: String,
    timezone: chrono_tz::Tz,
    required_roles: u8,
    store: Store,
    shared: Arc<Shared>,
    inner: Mutex<Inner>,
}

fn backoff_ms(attempts: u32) -> i64 {
    FIRST_BACKOFF_MS
        .saturating_mul(1i64 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF_MS)
}

impl Alerting {
    /// Loads rule states and the outbox; `None` when no alerts are configured.
    pub(crate) fn open(
        config: &Config,
        store: Store,
        shared: Arc<Shared>,
    ) -> Result<Option<Arc<Alerting>>, StoreError> {
        let Some(alerts) = &config.alerts else {
            return Ok(None);
        };
        let mut inner = Inner::default();
        for (name, bytes) in store.alert_states()? {
            match serde_json::from_slice::<RuleRecord>(&bytes) {
                Ok(r) => {
                    inner.records.insert(name, r);
                }
                Err(e) => {
                    warn!(rule = %name, error = %e, "unreadable alert state; starting the rule afresh")
                }
            }
        }
        for (seq, bytes) in store.outbox()? {
            inner.next_seq = inner.next_seq.max(seq + 1);
            match serde_json::from_slice::<OutboxEntry>(&bytes) {
                Ok(e) => {
                    inner.outbox.insert(seq, e);
                }
                Err(e) => {
                    error!(seq, error = %e, "unreadable mail in the alert outbox; it is kept but not sent")
                }
            }
        }
        if !inner.outbox.is_empty() {
            info!(
                mails = inner.outbox.len(),
                "alert mails waiting from before the restart"
            );
        }
        Ok(Some(Arc::new(Alerting {
            config: alerts.clone(),
            agency_name: config.agency.name.clone(),
            agency_code: config.agency.code.clone(),
            timezone: config.agency.timezone,
            required_roles: config.required_roles,
            store,
            shared,
            inner: Mutex::new(inner),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evaluates every rule at `now` (unix seconds) and queues the mails that
    /// transitions ask for. Blocking: reads the store when a mail lists documents.
    pub(crate) fn evaluate(&self, now: i64) -> Result<(), StoreError> {
        {
            let mut inner = self.lock();
            let first = *inner.first_evaluation.get_or_insert(now);
            if !inner.sources_caught_up {
                inner.sources_caught_up = self.shared.sources.iter().all(|s| s.caught_up());
                if !inner.sources_caught_up && now - first >= CATCH_UP_GRACE_SECS {
                    warn!(
                        grace_seconds = CATCH_UP_GRACE_SECS,
                        "sources have not caught up; evaluating ratio rules anyway"
                    );
                    inner.sources_caught_up = true;
                }
            }
        }
        for rule in &self.config.rules {
            self.evaluate_rule(rule, now)?;
        }
        Ok(())
    }

    fn evaluate_rule(&self, rule: &AlertRule, now: i64) -> Result<(), StoreError> {
        let (record, caught_up) = {
            let inner = self.lock();
            (
                inner.records.get(&rule.name).cloned().unwrap_or_default(),
                inner.sources_caught_up,
            )
        };
        let mut next = record.clone();
        let repeat_secs = rule.repeat_interval.as_secs().max(1) as i64;
        let (holds, observation, timing) = match &rule.condition {
            AlertCondition::Ratio {
                direction,
                window,
                below,
                for_duration,
                min_documents,
            } => {
                if !caught_up {
                    return Ok(());
                }
                let counts = self.window_counts(*direction, *window, now);
                let denominator = counts.total() - counts.secret_exempt;
                let ratio = counts.compliance_ratio();
                let holds = denominator >= *min_documents && ratio.is_some_and(|r| r < *below);
                (
                    holds,
                    Observation {
                        value: ratio,
                        documents: denominator,
                        holds,
                    },
                    Timing {
                        for_secs: for_duration.as_secs() as i64,
                        repeat_secs,
                    },
                )
            }
            AlertCondition::Stale { source, after } => {
                let count = self.source_progress(source).0;
                if next.activity_count != Some(count) || next.activity_at.is_none() {
                    next.activity_count = Some(count);
                    next.activity_at = Some(now);
                }
                let idle = now - next.activity_at.unwrap_or(now);
                let holds = idle >= after.as_secs() as i64;
                (
                    holds,
                    Observation {
                        value: Some(idle as f64),
                        documents: count,
                        holds,
                    },
                    Timing {
                        for_secs: 0,
                        repeat_secs,
                    },
                )
            }
        };
        let (phase, mut notice) = rules::step(record.phase, holds, now, timing);
        next.phase = phase;
        if notice == Some(Notice::Reminder) && self.has_queued_mail(&rule.name) {
            // The first mail has not even gone out: a reminder behind it adds nothing.
            notice = None;
        }
        let mut commit = AlertCommit::default();
        let mut queued = None;
        if let Some(notice) = notice {
            let mail = mail::render(&self.facts(rule, notice, now, &next)?);
            info!(rule = %rule.name, state = notice.state_label(), subject = %mail.subject, "alert mail queued");
            let entry = OutboxEntry {
                mail,
                created: now,
                attempts: 0,
                next_attempt_ms: now.saturating_mul(1000),
                last_error: None,
            };
            let seq = self.lock().next_seq;
            commit.outbox_put.push((seq, encode(&entry)));
            queued = Some((seq, entry));
        }
        if next != record {
            commit.states.push((rule.name.clone(), encode(&next)));
        }
        if !commit.is_empty() {
            self.store.record_alerts(&commit)?;
        }
        let mut inner = self.lock();
        inner.records.insert(rule.name.clone(), next);
        inner.observed.insert(rule.name.clone(), observation);
        if let Some((seq, entry)) = queued {
            inner.outbox.insert(seq, entry);
            inner.next_seq = seq + 1;
        }
        Ok(())
    }

    fn window_counts(
        &self,
        direction: crate::model::Direction,
        window: crate::model::Window,
        now: i64,
    ) -> ClassCounts {
        let range = window.range(local_day(now, self.timezone));
        let agg = self
            .shared
            .aggregates
            .read()
            .unwrap_or_else(|e| e.into_inner());
        *agg.summary(
            range.map(|r| day_number(r.0)),
            range.map(|r| day_number(r.1)),
        )
        .total
        .get(direction)
    }

    /// Accepted events and newest event time of a source.
    fn source_progress(&self, name: &str) -> (u64, Option<i64>) {
        self.shared
            .sources
            .iter()
            .find(|s| s.config.name == name)
            .map(|s| {
                let p = s.progress();
                (p.state.accepted, p.state.last_event_time)
            })
            .unwrap_or_default()
    }

    fn facts(
        &self,
        rule: &AlertRule,
        notice: Notice,
        now: i64,
        record: &RuleRecord,
    ) -> Result<MailFacts, StoreError> {
        let detail = match &rule.condition {
            AlertCondition::Ratio {
                direction,
                window,
                below,
                min_documents,
                ..
            } => {
                let range = window.range(local_day(now, self.timezone));
                let documents = if notice == Notice::Resolved {
                    Vec::new()
                } else {
                    self.non_compliant(*direction, range)?
                };
                Detail::Ratio(RatioFacts {
                    direction: *direction,
                    window: *window,
                    range,
                    below: *below,
                    min_documents: *min_documents,
                    counts: self.window_counts(*direction, *window, now),
                    documents,
                })
            }
            AlertCondition::Stale { source, after } => Detail::Stale(StaleFacts {
                source: source.clone(),
                after: *after,
                last_event_time: self.source_progress(source).1,
                last_activity: record.activity_at.unwrap_or(now),
            }),
        };
        Ok(MailFacts {
            agency_name: self.agency_name.clone(),
            agency_code: self.agency_code.clone(),
            rule: rule.name.clone(),
            notice,
            at: now,
            timezone: self.timezone,
            dashboard_url: self.config.dashboard_url.clone(),
            detail,
        })
    }

    /// The first non-compliant documents of a window, in the order of `/api/v1/documents`.
    fn non_compliant(
        &self,
        direction: crate::model::Direction,
        range: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    ) -> Result<Vec<DocLine>, StoreError> {
        let mut out = Vec::new();
        for item in self.store.groups_from(None) {
            let (_, group) = item?;
            let Some(doc) = group.doc(direction) else {
                continue;
            };
            let class = doc.class(self.required_roles);
            if !matches!(class, Class::ElectronicUnsigned | Class::Paper) {
                continue;
            }
            let day = local_day(doc.time, self.timezone);
            if range.is_some_and(|(from, to)| day < from || day > to) {
                continue;
            }
            out.push(DocLine {
                number: if doc.doc_number.is_empty() {
                    doc.doc_id.clone()
                } else {
                    doc.doc_number.clone()
                },
                subject: doc.subject.clone(),
                unit: doc.unit.clone(),
                class,
            });
            if out.len() == LISTED_DOCUMENTS {
                break;
            }
        }
        Ok(out)
    }

    /// Tries every mail due at `now_ms`, oldest first; a rule whose mail failed
    /// keeps its later mails back, so firing and resolved arrive in order.
    pub(crate) async fn deliver_due(&self, now_ms: i64) {
        let due: Vec<(u64, OutboxEntry)> = self
            .lock()
            .outbox
            .iter()
            .filter(|(_, e)| e.next_attempt_ms <= now_ms)
            .map(|(s, e)| (*s, e.clone()))
            .collect();
        let mut held_back = BTreeSet::new();
        for (seq, mut entry) in due {
            let rule = entry.mail.rule.clone();
            if held_back.contains(&rule) {
                continue;
            }
            let result = mail::send(&self.config.smtp, &entry.mail).await;
            let mut record = self.lock().records.get(&rule).cloned().unwrap_or_default();
            record
                .notifications
                .count(&entry.mail.state, result.is_ok());
            if result.is_ok() {
                record.sent.push(SentMail {
                    at: now_ms.div_euclid(1000),
                    state: entry.mail.state.clone(),
                    subject: entry.mail.subject.clone(),
                });
                let extra = record.sent.len().saturating_sub(SENT_KEPT);
                record.sent.drain(..extra);
            }
            let mut commit = AlertCommit::default();
            commit.states.push((rule.clone(), encode(&record)));
            match &result {
                Ok(()) => {
                    info!(rule = %rule, state = %entry.mail.state, attempts = entry.attempts + 1, "alert mail sent");
                    commit.outbox_remove.push(seq);
                }
                Err(e) => {
                    entry.attempts += 1;
                    entry.next_attempt_ms = now_ms + backoff_ms(entry.attempts);
                    entry.last_error = Some(e.to_string());
                    warn!(rule = %rule, state = %entry.mail.state, attempts = entry.attempts, retry_in_ms = backoff_ms(entry.attempts), error = %e, "alert mail not delivered; will retry");
                    commit.outbox_put.push((seq, encode(&entry)));
                    held_back.insert(rule.clone());
                }
            }
            let store = self.store.clone();
            let written = tokio::task::spawn_blocking(move || store.record_alerts(&commit)).await;
            match written {
                Ok(Ok(())) => {
                    let mut inner = self.lock();
                    inner.records.insert(rule.clone(), record);
                    if result.is_ok() {
                        inner.outbox.remove(&seq);
                    } else {
                        inner.outbox.insert(seq, entry);
                    }
                }
                Ok(Err(e)) => {
                    error!(rule = %rule, error = %e, "cannot record alert mail delivery; it may be sent again");
                    return;
                }
                Err(e) => {
                    error!(rule = %rule, error = %e, "alert store task failed");
                    return;
                }
            }
        }
    }

    fn has_queued_mail(&self, rule: &str) -> bool {
        self.lock().outbox.values().any(|e| e.mail.rule == rule)
    }

    /// When the next outbox try is due (unix ms), if any.
    fn next_due_ms(&self) -> Option<i64> {
        self.lock().outbox.values().map(|e| e.next_attempt_ms).min()
    }

    /// Evaluates every `evaluation_interval` and delivers the outbox until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.config.evaluation_interval;
        let mut next_eval = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_eval {
                next_eval += interval;
                let now = chrono::Utc::now().timestamp();
                let this = self.clone();
                match tokio::task::spawn_blocking(move || this.evaluate(now)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        error!(error = %e, "alert evaluation failed; state kept, retrying")
                    }
                    Err(e) => error!(error = %e, "alert evaluation task failed"),
                }
            }
            self.deliver_due(chrono::Utc::now().timestamp_millis())
                .await;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let mut wake = next_eval;
            if let Some(due) = self.next_due_ms() {
                let wait = Duration::from_millis(due.saturating_sub(now_ms).max(0) as u64);
                wake = wake.min(tokio::time::Instant::now() + wait);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// `docflowd alert-test`: sends one test mail to the configured recipients.
pub async fn send_test(config: &Config) -> Result<String, String> {
    let alerts = config
        .alerts
        .as_ref()
        .ok_or_else(|| format!("{}: no [alerts.smtp] configured", config.file.display()))?;
    let now = chrono::Utc::now().timestamp();
    let when = {
        use chrono::TimeZone;
        config
            .agency
            .timezone
            .timestamp_opt(now, 0)
            .single()
            .map(|t| t.format("%H:%M ngày %d/%m/%Y").to_string())
            .unwrap_or_default()
    };
    let text = format!(
        "Đây là thư thử nghiệm của docflowd ({} — mã {}), gửi lúc {when}.\nNếu nhận được thư này, cảnh báo qua thư điện tử đã hoạt động.\n",
        config.agency.name, config.agency.code
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"></head><body><p>{}</p></body></html>\n",
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\n', "<br>")
    );
    let mail = Mail {
        rule: "alert-test".into(),
        state: "test".into(),
        subject: format!("[docflow] Thư thử nghiệm cảnh báo — {}", config.agency.name),
        text,
        html,
    };
    mail::send(&alerts.smtp, &mail)
        .await
        .map(|()| {
            format!(
                "test mail sent through {} to {}",
                alerts.smtp.url,
                alerts.smtp.to.join(", ")
            )
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
