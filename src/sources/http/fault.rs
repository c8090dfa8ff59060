//! What can go wrong with a poll, and when to try again: the kinds of fault
//! (the `kind` label of `docflow_source_errors_total`), `Retry-After`, and
//! the backoff with jitter.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// First retry delay after a fault (before jitter).
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest delay between two attempts of our own backoff.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(180);
/// A server's `Retry-After` is honoured up to this long.
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Why a poll failed; the `kind` label of `docflow_source_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Connect,
    Dns,
    Tls,
    Timeout,
    Redirect,
    RateLimited,
    ServerError,
    Unauthorized,
    HttpStatus,
    NotJson,
    InvalidJson,
    BadPage,
    TooLarge,
    Body,
    Credentials,
}

impl FaultKind {
    pub(crate) const ALL: [FaultKind; 15] = [
        FaultKind::Connect,
        FaultKind::Dns,
        FaultKind::Tls,
        FaultKind::Timeout,
        FaultKind::Redirect,
        FaultKind::RateLimited,
        FaultKind::ServerError,
        FaultKind::Unauthorized,
        FaultKind::HttpStatus,
        FaultKind::NotJson,
        FaultKind::InvalidJson,
        FaultKind::BadPage,
        FaultKind::TooLarge,
        FaultKind::Body,
        FaultKind::Credentials,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FaultKind::Connect => "connect",
            FaultKind::Dns => "dns",
            FaultKind::Tls => "tls",
            FaultKind::Timeout => "timeout",
            FaultKind::Redirect => "redirect",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::ServerError => "server_error",
            FaultKind::Unauthorized => "unauthorized",
            FaultKind::HttpStatus => "http_status",
            FaultKind::NotJson => "not_json",
            FaultKind::InvalidJson => "invalid_json",
            FaultKind::BadPage => "bad_page",
            FaultKind::TooLarge => "too_large",
            FaultKind::Body => "body",
            FaultKind::Credentials => "credentials",
        }
    }
}

/// A failed poll: nothing of the page is used and the cursor stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) message: String,
    /// The server's `Retry-After`, if it sent one.
    pub(crate) retry_after: Option<Duration>,
}

impl Fault {
    pub(super) fn new(kind: FaultKind, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            // The obsolete forms: RFC 850 and asctime.
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
                .map(|t| t.and_utc())
        })?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Delay before the next attempt after `failures` consecutive failed polls:
/// exponential from [`BACKOFF_BASE`], capped at [`BACKOFF_MAX`], with "equal
/// jitter" (`jitter` in 0..1 picks a point in the upper half), and never
/// before the server's `Retry-After`.
pub(crate) fn retry_delay(failures: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(1u32 << failures.min(16))
        .min(BACKOFF_MAX);
    let backoff = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    backoff.max(retry_after.unwrap_or(Duration::ZERO).min(RETRY_AFTER_MAX))
}

/// A small xorshift generator for jitter (no need for a crypto-grade source).
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn new(index: usize) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    pub(super) fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
