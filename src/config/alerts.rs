//! `[alerts]` (README "Alerts"): how often rules are evaluated, the rules
//! themselves, and where their mail goes (see the SMTP part beside this one).

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::locate::{duration_at_least, is_plain_name, parse_duration_at, ConfigError, Locator};
use super::raw::{RawAlerts, RawRule};
use super::smtp::{validate_smtp, SmtpConfig};
use super::source::SourceConfig;
use crate::model::{Direction, Window};

/// Alerting: how often rules are evaluated, where mail goes, the rules.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub(crate) evaluation_interval: Duration,
    pub(crate) smtp: SmtpConfig,
    /// Link put in every mail (the Grafana dashboard or docflowd's own page).
    pub(crate) dashboard_url: Option<String>,
    pub rules: Vec<AlertRule>,
}

/// One alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub(crate) condition: AlertCondition,
    /// At most one reminder per this interval while firing.
    pub(crate) repeat_interval: Duration,
}

/// What makes a rule fire.
#[derive(Debug, Clone)]
pub enum AlertCondition {
    /// Fires while the compliance ratio of `direction` over `window` is below
    /// `below` for `for_duration`, with at least `min_documents` in the denominator.
    Ratio {
        direction: Direction,
        window: Window,
        below: f64,
        for_duration: Duration,
        min_documents: u64,
    },
    /// Fires when `source` has accepted no new event for `after`.
    Stale { source: String, after: Duration },
}

/// Validates `[alerts]`; `None` when it has neither rules nor a mail server.
pub(super) fn validate_alerts(
    raw: &RawAlerts,
    base: &Path,
    sources: &[SourceConfig],
    loc: &Locator,
) -> Result<Option<AlertsConfig>, ConfigError> {
    let evaluation_interval = match &raw.evaluation_interval {
        None => Duration::from_secs(30),
        Some(d) => duration_at_least(
            d,
            loc,
            "30s",
            "evaluation_interval",
            Duration::from_millis(100),
        )?,
    };
    let dashboard_url = match &raw.dashboard_url {
        None => None,
        Some(u) => {
            let v = u.get_ref().trim();
            if !(v.starts_with("http://") || v.starts_with("https://"))
                || v.contains(char::is_whitespace)
            {
                return Err(loc.error_at(u, "dashboard_url must be an http:// or https:// URL"));
            }
            Some(v.to_string())
        }
    };
    let mut rules: Vec<AlertRule> = Vec::new();
    for r in &raw.rules {
        let rule = validate_rule(r, sources, loc)?;
        if rules.iter().any(|o| o.name == rule.name) {
            return Err(loc.error_at(
                &r.get_ref().name,
                format!("duplicate rule name {:?}", rule.name),
            ));
        }
        rules.push(rule);
    }
    let smtp = match &raw.smtp {
        Some(s) => validate_smtp(s.get_ref(), base, loc)?,
        None if rules.is_empty() => return Ok(None),
        None => {
            return Err(loc.error_at(
                &raw.rules[0],
                "alert rules need [alerts.smtp] (url, from, to) to send their mail",
            ))
        }
    };
    Ok(Some(AlertsConfig {
        evaluation_interval,
        smtp,
        dashboard_url,
        rules,
    }))
}

fn validate_rule(
    raw: &Spanned<RawRule>,
    sources: &[SourceConfig],
    loc: &Locator,
) -> Result<AlertRule, ConfigError> {
    let r = raw.get_ref();
    let name = r.name.get_ref().trim().to_string();
    if !is_plain_name(&name) {
        return Err(loc.error_at(
            &r.name,
            "rule name must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    let repeat_interval = match &r.repeat_interval {
        None => Duration::from_secs(24 * 3600),
        Some(d) => duration_at_least(d, loc, "24h", "repeat_interval", Duration::from_secs(1))?,
    };
    let condition = match &r.stale_source {
        Some(source) => stale_condition(r, source, sources, loc)?,
        None => ratio_condition(r, loc)?,
    };
    Ok(AlertRule {
        name,
        condition,
        repeat_interval,
    })
}

/// A `stale_source` rule: a configured source and `after`, nothing of a ratio rule.
fn stale_condition(
    r: &RawRule,
    source: &Spanned<String>,
    sources: &[SourceConfig],
    loc: &Locator,
) -> Result<AlertCondition, ConfigError> {
    let ratio_keys = [
        r.direction.as_ref().map(|_| "direction"),
        r.window.as_ref().map(|_| "window"),
        r.below.as_ref().map(|_| "below"),
        r.for_duration.as_ref().map(|_| "for"),
        r.min_documents.as_ref().map(|_| "min_documents"),
    ];
    if let Some(k) = ratio_keys.into_iter().flatten().next() {
        return Err(loc.error_at(
            source,
            format!("a stale_source rule takes only `after` and `repeat_interval`, not `{k}`"),
        ));
    }
    if !sources.iter().any(|s| s.name == *source.get_ref()) {
        let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        return Err(loc.error_at(
            source,
            format!(
                "unknown source {:?} (configured: {})",
                source.get_ref(),
                known.join(", ")
            ),
        ));
    }
    let after = match &r.after {
        Some(a) => duration_at_least(a, loc, "48h", "after", Duration::from_secs(1))?,
        None => {
            return Err(loc.error_at(source, "a stale_source rule needs `after` (e.g. \"48h\")"))
        }
    };
    Ok(AlertCondition::Stale {
        source: source.get_ref().clone(),
        after,
    })
}

/// A ratio rule: `direction`, `window` and `below` required, `for` and
/// `min_documents` optional.
fn ratio_condition(r: &RawRule, loc: &Locator) -> Result<AlertCondition, ConfigError> {
    if let Some(a) = &r.after {
        return Err(loc.error_at(a, "`after` applies only to stale_source rules"));
    }
    let direction = match &r.direction {
        None => {
            return Err(loc.error_at(
                &r.name,
                "a ratio rule needs `direction` (outgoing, incoming), or use `stale_source`",
            ))
        }
        Some(d) => Direction::from_canonical(d.get_ref()).ok_or_else(|| {
            loc.error_at(
                d,
                format!("unknown direction {:?} (outgoing, incoming)", d.get_ref()),
            )
        })?,
    };
    let window = match &r.window {
        None => {
            return Err(loc.error_at(
                &r.name,
                "a ratio rule needs `window` (day, 7d, 30d, month, year, all)",
            ))
        }
        Some(w) => Window::from_label(w.get_ref()).ok_or_else(|| {
            loc.error_at(
                w,
                format!(
                    "unknown window {:?} (day, 7d, 30d, month, year, all)",
                    w.get_ref()
                ),
            )
        })?,
    };
    let below = match &r.below {
        None => return Err(loc.error_at(&r.name, "a ratio rule needs `below` (a ratio, e.g. 1.0)")),
        Some(b) => {
            let v = *b.get_ref();
            if !(v > 0.0 && v <= 1.0) {
                return Err(loc.error_at(b, "below must be a ratio in (0, 1], e.g. 0.95"));
            }
            v
        }
    };
    let for_duration = match &r.for_duration {
        None => Duration::ZERO,
        Some(d) => parse_duration_at(d, loc, "1h")?,
    };
    let min_documents = r.min_documents.as_ref().map_or(1, |m| *m.get_ref()).max(1);
    Ok(AlertCondition::Ratio {
        direction,
        window,
        below,
        for_duration,
        min_documents,
    })
}
