//! The per-rule state machine (inactive → pending → firing → resolved): pure,
//! driven by an observation and an injected time, so it is tested without sleeping.

use serde::{Deserialize, Serialize};

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(crate) enum Phase {
    /// The condition does not hold.
    #[default]
    Inactive,
    /// The condition holds since `since` (unix seconds) but not yet for `for`.
    Pending { since: i64 },
    /// Mail sent (or queued) at `notified`; firing since `since`.
    Firing { since: i64, notified: i64 },
}

impl Phase {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending { .. } => "pending",
            Phase::Firing { .. } => "firing",
        }
    }
}

/// The mail a transition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Notice {
    /// The rule starts firing.
    Firing,
    /// Still firing after `repeat_interval`.
    Reminder,
    /// The condition no longer holds.
    Resolved,
}

impl Notice {
    /// The `state` label of the header and the counter.
    pub(crate) fn state_label(self) -> &'static str {
        match self {
            Notice::Firing | Notice::Reminder => "firing",
            Notice::Resolved => "resolved",
        }
    }
}

/// Timing of a rule, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) for_secs: i64,
    pub(crate) repeat_secs: i64,
}

/// Advances `phase` given whether the condition holds at `now`; returns the
/// new phase and the mail to send, if any. At most one mail per call.
pub(crate) fn step(phase: Phase, holds: bool, now: i64, timing: Timing) -> (Phase, Option<Notice>) {
    match (phase, holds) {
        (Phase::Inactive, false) => (Phase::Inactive, None),
        (Phase::Pending { .. }, false) => (Phase::Inactive, None),
        (Phase::Firing { .. }, false) => (Phase::Inactive, Some(Notice::Resolved)),
        (Phase::Inactive, true) => {
            if timing.for_secs <= 0 {
                fire(now, now)
            } else {
                (Phase::Pending { since: now }, None)
            }
        }
        (Phase::Pending { since }, true) => {
            if now.saturating_sub(since) >= timing.for_secs {
                fire(since, now)
            } else {
                (Phase::Pending { since }, None)
            }
        }
        (Phase::Firing { since, notified }, true) => {
            if now.saturating_sub(notified) >= timing.repeat_secs {
                (
                    Phase::Firing {
                        since,
                        notified: now,
                    },
                    Some(Notice::Reminder),
                )
            } else {
                (Phase::Firing { since, notified }, None)
            }
        }
    }
}

fn fire(since: i64, now: i64) -> (Phase, Option<Notice>) {
    (
        Phase::Firing {
            since,
            notified: now,
        },
        Some(Notice::Firing),
    )
}

/// Replays observations `(time, holds)` and collects the mails (for tests and docs).
#[cfg(test)]
pub(crate) fn replay(timing: Timing, observations: &[(i64, bool)]) -> (Phase, Vec<(i64, Notice)>) {
    let mut phase = Phase::Inactive;
    let mut mails = Vec::new();
    for &(t, holds) in observations {
        let (next, notice) = step(phase, holds, t, timing);
        phase = next;
        if let Some(n) = notice {
            mails.push((t, n));
        }
    }
    (phase, mails)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const T: Timing = Timing {
        for_secs: HOUR,
        repeat_secs: 24 * HOUR,
    };

    /// Observations every `step` seconds from 0 to `end`, holding where `holds(t)`.
    fn every(step: i64, end: i64, holds: impl Fn(i64) -> bool) -> Vec<(i64, bool)> {
        (0..=end / step)
            .map(|i| (i * step, holds(i * step)))
            .collect()
    }

    #[test]
    fn fires_once_after_for_then_resolves_once() {
        // Below the threshold from 10:00 to 15:00 (t in seconds from 0:00), evaluated every 30 s.
        let obs = every(30, 20 * HOUR, |t| (10 * HOUR..15 * HOUR).contains(&t));
        let (phase, mails) = replay(T, &obs);
        assert_eq!(
            mails,
            vec![(11 * HOUR, Notice::Firing), (15 * HOUR, Notice::Resolved)]
        );
        assert_eq!(phase, Phase::Inactive);
    }

    #[test]
    fn flapping_inside_for_sends_nothing() {
        // Holds for 50 min, recovers for 1 min, again and again for two days.
        let obs = every(30, 48 * HOUR, |t| t % (51 * 60) < 50 * 60);
        let (_, mails) = replay(T, &obs);
        assert!(mails.is_empty(), "{mails:?}");
    }

    #[test]
    fn one_reminder_per_repeat_interval_while_firing() {
        let obs = every(30, 80 * HOUR, |_| true);
        let (_, mails) = replay(T, &obs);
        let kinds: Vec<_> = mails.iter().map(|m| m.1).collect();
        assert_eq!(
            kinds,
            [
                Notice::Firing,
                Notice::Reminder,
                Notice::Reminder,
                Notice::Reminder
            ]
        );
        assert_eq!(mails[1].0 - mails[0].0, 24 * HOUR);
        assert_eq!(mails[3].0, HOUR + 72 * HOUR);
    }

    #[test]
    fn without_for_the_first_observation_fires() {
        let t = Timing {
            for_secs: 0,
            repeat_secs: HOUR,
        };
        assert_eq!(
            step(Phase::Inactive, true, 5, t),
            (
                Phase::Firing {
                    since: 5,
                    notified: 5
                },
                Some(Notice::Firing)
            )
        );
    }

    #[test]
    fn a_restored_phase_continues_where_it_was() {
        // The daemon restarts while firing: the stored phase is fed back and no mail repeats.
        let (phase, mails) = replay(T, &every(30, 2 * HOUR, |_| true));
        assert_eq!(mails.len(), 1);
        let json = serde_json::to_string(&phase).unwrap();
        let restored: Phase = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, phase);
        let (_, again) = step(restored, true, 2 * HOUR + 60, T);
        assert_eq!(again, None);
        // A pending rule keeps its start across a restart, so `for` is not restarted.
        let (p, _) = step(Phase::Inactive, true, 0, T);
        let p: Phase = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(step(p, true, HOUR, T).1, Some(Notice::Firing));
    }
}
