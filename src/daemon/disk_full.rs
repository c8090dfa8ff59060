//! A full disk: sled 0.34 keeps its first I/O error and fails every later
//! write, and dropping the failed database blocks forever in its final
//! flush; its file lock forbids a second open in this process. So the daemon
//! keeps serving with `/readyz` failing, waits until the filesystem takes
//! writes again, and re-executes itself (same PID, same arguments) to reopen
//! the store from its last commit. The wait is a state, not a stall: it
//! feeds the watchdog.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::service::Heartbeat;
use crate::store::Store;

/// Environment variable set across the re-exec that reopens a failed store.
pub(super) const RECOVERING_ENV: &str = "DOCFLOW_STORE_RECOVERING";
/// Free bytes the store's filesystem must take before the store is reopened.
const PROBE_BYTES: usize = 1 << 20;
/// Longest wait between checks for free space.
pub(super) const MAX_PROBE_DELAY: Duration = Duration::from_secs(10);

/// Whether `dir` takes [`PROBE_BYTES`] of new data right now.
pub(super) fn space_available(dir: &Path) -> bool {
    let probe = dir.join(".docflow-space-probe");
    let ok = std::fs::File::create(&probe)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        })
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Sleeps `delay` beating `heartbeat` every second; false if `stop` fired.
pub(super) async fn wait_alive(
    delay: Duration,
    heartbeat: &Heartbeat,
    stop: &CancellationToken,
) -> bool {
    let until = tokio::time::Instant::now() + delay;
    loop {
        heartbeat.beat();
        let now = tokio::time::Instant::now();
        if now >= until {
            return true;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep((until - now).min(Duration::from_secs(1))) => {}
        }
    }
}

/// After a failed store write: stops the sources, waits (with backoff) until
/// the filesystem takes writes again, then re-executes docflowd.
pub(super) async fn recover_after_store_failure(
    store_failed: CancellationToken,
    shutdown: CancellationToken,
    sources_stop: CancellationToken,
    store: Store,
    dir: PathBuf,
    heartbeat: Arc<Heartbeat>,
) {
    tokio::select! {
        _ = store_failed.cancelled() => {}
        _ = shutdown.cancelled() => return,
    }
    // Never let the failed database be dropped: its drop would hang.
    std::mem::forget(store);
    sources_stop.cancel();
    let mut delay = Duration::from_millis(500);
    loop {
        if !wait_alive(delay, &heartbeat, &shutdown).await {
            return;
        }
        let probe_dir = dir.clone();
        let space = tokio::task::spawn_blocking(move || space_available(&probe_dir))
            .await
            .unwrap_or(false);
        if space {
            break;
        }
        delay = (delay * 2).min(MAX_PROBE_DELAY);
    }
    info!("the store's filesystem takes writes again: restarting docflowd to reopen the store");
    let err = reexec();
    error!(error = %err, "cannot re-execute docflowd; stop and start it to resume ingestion");
}

fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return e,
    };
    std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(RECOVERING_ENV, "1")
        .exec()
}
