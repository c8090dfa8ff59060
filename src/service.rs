//! systemd integration: readiness, reload and stop notifications, and the
//! watchdog, which pings only while the writer's heartbeat is fresh so that a
//! stuck pipeline gets the service restarted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Proof of life of a loop: the time of its last turn.
pub(crate) struct Heartbeat {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// Records a turn of the loop.
    pub(crate) fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last turn.
    pub(crate) fn age(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Sends states to systemd when started by it (`NOTIFY_SOCKET`); a no-op otherwise.
pub(crate) fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// `READY=1` with a status line.
pub(crate) fn notify_ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` (with the monotonic time systemd 253+ expects).
pub(crate) fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`.
pub(crate) fn notify_stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog timing: ping every quarter of systemd's timeout while the
/// heartbeat is younger than half of it, so a stall is noticed within 1.5×.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchdogPlan {
    pub(crate) interval: Duration,
    pub(crate) max_age: Duration,
}

impl WatchdogPlan {
    pub(crate) fn for_timeout(timeout: Duration) -> WatchdogPlan {
        WatchdogPlan {
            interval: (timeout / 4).max(Duration::from_millis(10)),
            max_age: (timeout / 2).max(Duration::from_secs(2)),
        }
    }
}

/// Pings (through `ping`) every `plan.interval` while the heartbeat is fresh;
/// stops pinging, with one warning, while it is stale. Ends at `stop`.
pub(crate) async fn watchdog(
    plan: WatchdogPlan,
    heartbeat_age: impl Fn() -> Duration,
    stop: CancellationToken,
    ping: impl Fn(),
) {
    let mut tick = tokio::time::interval(plan.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let age = heartbeat_age();
        if age <= plan.max_age {
            if stalled {
                info!("writer is alive again; watchdog pings resumed");
                stalled = false;
            }
            ping();
        } else if !stalled {
            warn!(
                stalled_for_ms = age.as_millis() as u64,
                "writer has not turned its loop: watchdog pings withheld, systemd will restart the service"
            );
            stalled = true;
        }
    }
}

/// Starts the watchdog task if systemd asked for one (`WATCHDOG_USEC`).
pub(crate) fn spawn_watchdog(
    heartbeat_age: impl Fn() -> Duration + Send + 'static,
    stop: CancellationToken,
) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let plan = WatchdogPlan::for_timeout(timeout);
    debug!(?plan, "systemd watchdog enabled");
    tokio::spawn(watchdog(plan, heartbeat_age, stop, || {
        notify(&[NotifyState::Watchdog])
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn plan_pings_four_times_per_timeout() {
        let p = WatchdogPlan::for_timeout(Duration::from_secs(60));
        assert_eq!(p.interval, Duration::from_secs(15));
        assert_eq!(p.max_age, Duration::from_secs(30));
    }

    #[test]
    fn heartbeat_age_grows_until_the_next_beat() {
        let h = Heartbeat::default();
        h.beat();
        assert!(h.age() < Duration::from_secs(1));
        let old = Heartbeat {
            origin: Instant::now() - Duration::from_secs(90),
            last_ms: AtomicU64::new(0),
        };
        assert!(old.age() >= Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_writer_stops_the_pings_and_a_live_one_resumes_them() {
        let age_ms = Arc::new(AtomicU64::new(0));
        let pings = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let plan = WatchdogPlan {
            interval: Duration::from_secs(1),
            max_age: Duration::from_secs(3),
        };
        let task = tokio::spawn(watchdog(
            plan,
            {
                let age_ms = age_ms.clone();
                move || Duration::from_millis(age_ms.load(Ordering::SeqCst))
            },
            stop.clone(),
            {
                let pings = pings.clone();
                move || {
                    pings.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let alive = pings.load(Ordering::SeqCst);
        assert_eq!(alive, 11, "one ping per interval while the writer turns");

        age_ms.store(3_001, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(pings.load(Ordering::SeqCst), alive, "no ping while stuck");

        age_ms.store(100, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(pings.load(Ordering::SeqCst), alive + 2, "pings resume");
        stop.cancel();
        task.await.unwrap();
    }
}
