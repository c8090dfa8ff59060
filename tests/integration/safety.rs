//! Store safety: an older layout is migrated, a damaged store is refused
//! (never started from zero), `rebuild` re-reads the logs into a new store,
//! `export`/`import` back up and restore it, and a full disk loses nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::corpus::{assert_golden_reports, run_on_corpus, EXCHANGE_COUNTS, SIGNATURE_COUNTS};

/// Places the corpus logs as `run_on_corpus` does, without starting a daemon.
fn install_corpus(env: &Env) {
    install(&fixture("signatures.jsonl"), &env.log("signatures.jsonl"));
    install(&fixture("exchange.jsonl"), &env.log("exchange.jsonl"));
    let late = std::fs::read(fixture("signatures-late.jsonl")).expect("late fixture");
    append(&env.log("signatures.jsonl"), &late);
}

fn assert_corpus_counts(status: &Value) {
    assert_eq!(counts(status, "exchange"), EXCHANGE_COUNTS, "{status}");
    assert_eq!(counts(status, "signatures"), SIGNATURE_COUNTS, "{status}");
}

/// Makes sled's data file unreadable: it recovers nothing from it.
fn garble_store(store: &Path) {
    let db = store.join("db");
    let len = std::fs::metadata(&db).expect("store db file").len();
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(&db, garbage).expect("garble db");
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_store_of_layout_1_is_migrated_and_resumes_without_recounting() {
    let env = Env::exchange_and_signatures();
    // Written by docflowd with layout 1 from this corpus (see the README there).
    let tar = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1/store.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tar)
        .arg("-C")
        .arg(env.dir.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    install_corpus(&env);
    let d = env.start();
    let status = d.wait_caught_up();
    // The positions came from the old store: nothing was read twice.
    assert_corpus_counts(&status);
    assert_golden_reports(d.addr);
    let log = d.stderr_text();
    assert!(
        log.contains("store layout migrated")
            && log.contains("from=1 to=2")
            && log.contains("from=2 to=3"),
        "no migration logged:\n{log}"
    );
    // New lines after the migration are counted once.
    env.append(
        "exchange.jsonl",
        &exchange_line("mig-1", "MIG/1", "2026-05-04T09:00:00+07:00", "điện tử"),
    );
    let status = d.wait_status(CATCH_UP, "one more event", |s| {
        counts(s, "exchange").0 == EXCHANGE_COUNTS.0 + 1 && s["caught_up"] == true
    });
    assert_eq!(counts(&status, "exchange").0, EXCHANGE_COUNTS.0 + 1);
    d.stop();
}

#[test]
fn a_damaged_store_is_rebuilt_from_the_logs_and_kept_for_inspection() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    d.stop();
    garble_store(&env.store());
    // The report command, with no daemon, refuses instead of printing zeros.
    let out = env.cli(&[
        "report",
        "-c",
        env.config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        !out.status.success(),
        "report printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr_of(&out).contains("rebuild"), "{}", stderr_of(&out));
    // The daemon (on_damage = "rebuild", the default) rebuilds it from the logs.
    let d = env.start();
    let status = d.wait_status(CATCH_UP, "rebuilt and caught up", |s| {
        s["caught_up"] == true && counts(s, "exchange") == EXCHANGE_COUNTS
    });
    assert_corpus_counts(&status);
    assert_golden_reports(d.addr);
    let log = d.stderr_text();
    let store = env.store().display().to_string();
    assert!(
        log.contains("ERROR") && log.contains(&store) && log.contains("damaged"),
        "{log}"
    );
    assert!(log.contains("store rebuilt from the logs"), "{log}");
    let kept: Vec<_> = std::fs::read_dir(env.store())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged files are kept once");
    d.stop();
}

#[test]
fn with_on_damage_refuse_a_damaged_store_is_never_served() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    d.stop();
    garble_store(&env.store());
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace("[storage]\n", "[storage]\non_damage = \"refuse\"\n"),
    )
    .unwrap();
    let d = env.start();
    let store = env.store().display().to_string();
    assert_eq!(d.get("/readyz").0, 503);
    for path in ["/api/v1/report", "/api/v1/documents", "/api/v1/status"] {
        let (code, body) = d.get(path);
        assert_eq!(code, 503, "{path}: {body}");
        assert!(
            body.contains(&store) && body.contains("damaged"),
            "{path}: {body}"
        );
    }
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("docflow_store_damaged 1"), "{metrics}");
    assert!(
        !metrics.contains("docflow_documents"),
        "no counts from a damaged store"
    );
    // SIGTERM: exit status 1 and the README's wording.
    d.signal("TERM");
    let (code, stderr) = wait_exit_within(d, Duration::from_secs(15));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&store) && stderr.contains("docflowd rebuild -c"),
        "{stderr}"
    );
}

#[test]
fn a_store_deleted_while_stopped_starts_fresh_and_recounts_from_the_logs() {
    // No store = a first start, not damage: it reads everything.
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    d.stop();
    std::fs::remove_dir_all(env.store()).unwrap();
    let d = env.start();
    let status = d.wait_caught_up();
    assert_corpus_counts(&status);
    assert_golden_reports(d.addr);
    d.stop();
}

#[test]
fn rebuild_after_corruption_gives_the_same_report_as_before() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let before: Vec<Value> = ["", "period=2026-H1", "period=2026"]
        .iter()
        .map(|q| d.report(q))
        .collect();
    d.stop();
    garble_store(&env.store());
    let out = env.cli(&["rebuild", "-c", env.config.to_str().unwrap()]);
    assert!(out.status.success(), "rebuild failed:\n{}", stderr_of(&out));
    let mut leftovers = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("store."))
        .collect::<Vec<_>>();
    leftovers.sort();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let d = env.start();
    let status = d.wait_caught_up();
    assert_corpus_counts(&status);
    let after: Vec<Value> = ["", "period=2026-H1", "period=2026"]
        .iter()
        .map(|q| d.report(q))
        .collect();
    assert_eq!(after, before);
    assert_golden_reports(d.addr);
    // The rejected-events files were rebuilt too, once.
    assert_eq!(
        rejected_lines(&env.rejected("exchange")).len() as u64,
        EXCHANGE_COUNTS.2
    );
    d.stop();
}

#[test]
fn rebuild_refuses_while_a_daemon_runs_and_carries_alert_state_over() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let out = env.cli(&["rebuild", "-c", env.config.to_str().unwrap()]);
    assert!(!out.status.success(), "rebuild ran beside a daemon");
    assert!(
        stderr_of(&out).contains("stop docflowd"),
        "{}",
        stderr_of(&out)
    );
    d.stop();
    // Alert state (prefixes A and O) cannot come back from the logs.
    let alert = (
        b"Aoutgoing-30d".to_vec(),
        b"firing since 2026-06-01".to_vec(),
    );
    let outbox = (b"O\x00\x00\x00\x01".to_vec(), b"mail".to_vec());
    {
        let s = docflow::store::Store::open(&env.store(), 1 << 20).unwrap();
        s.put_raw(&[alert.clone(), outbox.clone()]).unwrap();
        s.flush().unwrap();
    }
    let out = env.cli(&["rebuild", "-c", env.config.to_str().unwrap()]);
    assert!(out.status.success(), "rebuild failed:\n{}", stderr_of(&out));
    let s = docflow::store::Store::open(&env.store(), 1 << 20).unwrap();
    assert_eq!(s.raw_with_prefix(b'A').unwrap(), vec![alert]);
    assert_eq!(s.raw_with_prefix(b'O').unwrap(), vec![outbox]);
}

#[test]
fn export_while_running_then_import_restores_counts_and_positions() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let status_before = d.status();
    let out = env.cli(&["export", "-c", env.config.to_str().unwrap()]);
    assert!(out.status.success(), "export failed:\n{}", stderr_of(&out));
    let snapshot = out.stdout;
    let text = String::from_utf8(snapshot.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("snapshot line is JSON"))
        .collect();
    assert_eq!(lines[0]["docflow_snapshot"], 1, "header: {}", lines[0]);
    assert_eq!(lines[0]["agency"], "H40.27.01");
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["records"].as_u64().unwrap() as usize, lines.len() - 2);
    for t in [
        "document_page",
        "source_state",
        "seen_event_ids",
        "day_counts",
    ] {
        assert!(lines.iter().any(|l| l["type"] == t), "no {t} line");
    }
    d.stop();

    // Restore into a new store: same report, same positions, nothing re-read.
    std::fs::rename(env.store(), env.dir.path().join("store-before")).unwrap();
    let import = |input: &[u8]| {
        let mut child = Command::new(BIN)
            .args(["import", "-c"])
            .arg(&env.config)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    // A cut snapshot is refused and leaves nothing behind: not even the
    // store directory it had to create.
    let cut = import(&snapshot[..snapshot.len() - 10]);
    assert!(!cut.status.success());
    assert!(stderr_of(&cut).contains("truncated"), "{}", stderr_of(&cut));
    assert!(
        !env.store().exists(),
        "a refused import left {}",
        env.store().display()
    );

    let out = import(&snapshot);
    assert!(out.status.success(), "import failed:\n{}", stderr_of(&out));
    let d = env.start();
    let status = d.wait_caught_up();
    assert_corpus_counts(&status);
    assert_golden_reports(d.addr);
    let positions = |s: &Value| -> Vec<Value> {
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["position"].clone())
            .collect()
    };
    assert_eq!(positions(&status), positions(&status_before));
    // Importing over existing data is refused.
    d.stop();
    let again = import(&snapshot);
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("not empty"),
        "{}",
        stderr_of(&again)
    );
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

/// Mounts a tmpfs of `size` and moves the store there (the logs stay
/// elsewhere); the mount point and the mount, unmounted when dropped.
fn store_on_tmpfs(env: &Env, size: &str) -> (std::path::PathBuf, Tmpfs) {
    let mnt = env.dir.path().join("small");
    let fs = Tmpfs::mount(&mnt, size);
    let config = std::fs::read_to_string(&env.config).unwrap().replace(
        &env.store().display().to_string(),
        &mnt.join("store").display().to_string(),
    );
    std::fs::write(&env.config, config).unwrap();
    (mnt, fs)
}

fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("docflow"))
        .collect()
}

#[test]
#[ignore = "needs root for a size-limited tmpfs"]
fn disk_full_then_space_back_loses_nothing_and_counts_nothing_twice() {
    let env = Env::new(&source("exchange", "exchange", "{logs}/exchange*.jsonl"));
    let (mnt, _fs) = store_on_tmpfs(&env, "12m");
    env.append("exchange.jsonl", &exchange_lines("A", 1..=500));
    let sock = env.dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&sock);
    let sock_str = sock.display().to_string();
    // systemd's watchdog at 2 s: a ping at least every 2 s, full disk or not.
    let d = env.start_with_env(
        &[("NOTIFY_SOCKET", &sock_str), ("WATCHDOG_USEC", "2000000")],
        |addr| matches!(http_get(addr, "/healthz"), Ok((200, _))),
    );
    d.wait_status(CATCH_UP, "first 500", |s| {
        counts(s, "exchange").0 == 500 && s["caught_up"] == true
    });
    assert_eq!(d.get("/readyz").0, 200);

    let ballast = mnt.join("ballast");
    fill(&ballast);
    env.append("exchange.jsonl", &exchange_lines("B", 1..=4000));
    let deadline = Instant::now() + CATCH_UP;
    while d.get("/readyz").0 != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz never failed on a full disk; stderr:\n{}",
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.get("/healthz").0, 200, "the process stays up");
    // Counts only ever show committed batches.
    let during = counts(&d.status(), "exchange").0;
    assert!((500..4500).contains(&during), "accepted {during}");
    // Waiting for space is a state, not a stall: the watchdog is fed.
    let n = notes.seen.len();
    notes.wait(n, "WATCHDOG=1");
    let (gap, pings) = notes.longest_ping_gap(Duration::from_secs(6));
    assert!(
        gap < Duration::from_secs(2),
        "no watchdog ping for {gap:?} on a full disk ({pings} pings)"
    );
    let log = d.stderr_text();
    assert_eq!(error_lines(&log).len(), 1, "one ERROR line:\n{log}");
    assert!(!log.contains("watchdog pings withheld"), "{log}");

    std::fs::remove_file(&ballast).unwrap();
    let status = d.wait_status(CATCH_UP, "all 4500 after space came back", |s| {
        counts(s, "exchange").0 >= 4500 && s["caught_up"] == true
    });
    assert_eq!(counts(&status, "exchange"), (4500, 0, 0));
    assert_eq!(d.report("")["outgoing"]["total"], 4500);
    assert_eq!(d.get("/readyz").0, 200);
    let log = d.stderr_text();
    assert_eq!(error_lines(&log).len(), 1, "still one ERROR line:\n{log}");
    assert!(log.contains("store writes work again"), "{log}");
    d.stop();
    // And a restart finds the same counts on disk.
    let d = env.start();
    let status = d.wait_caught_up();
    assert_eq!(counts(&status, "exchange"), (4500, 0, 0));
    assert_eq!(d.report("")["outgoing"]["total"], 4500);
    d.stop();
}

#[test]
fn import_through_the_running_daemon_replaces_its_store() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let out = env.cli(&["export", "-c", env.config.to_str().unwrap()]);
    assert!(out.status.success(), "export failed:\n{}", stderr_of(&out));
    let snapshot = out.stdout;
    // Documents counted after the snapshot, from a file then removed: only
    // the live store knows them, so they vanish if the snapshot is restored.
    env.append("exchange-extra.jsonl", &exchange_lines("EXTRA", 1..=3));
    d.wait_status(CATCH_UP, "3 extra documents", |s| {
        counts(s, "exchange").0 == EXCHANGE_COUNTS.0 + 3 && s["caught_up"] == true
    });
    std::fs::remove_file(env.log("exchange-extra.jsonl")).unwrap();

    let mut child = Command::new(BIN)
        .args(["import", "-c"])
        .arg(&env.config)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&snapshot).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "import failed:\n{}", stderr_of(&out));
    let status = d.wait_status(CATCH_UP, "restarted on the snapshot", |s| {
        counts(s, "exchange").0 == EXCHANGE_COUNTS.0 && s["caught_up"] == true
    });
    assert_corpus_counts(&status);
    assert_golden_reports(d.addr);
    assert!(
        d.stderr_text().contains("imported store in place"),
        "{}",
        d.stderr_text()
    );
    // A cut snapshot is refused and the daemon keeps its store.
    let mut child = Command::new(BIN)
        .args(["import", "-c"])
        .arg(&env.config)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&snapshot[..snapshot.len() / 2])
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cut snapshot was accepted");
    assert!(stderr_of(&out).contains("truncated"), "{}", stderr_of(&out));
    assert_eq!(d.get("/readyz").0, 200);
    assert_golden_reports(d.addr);
    d.stop();
}

#[test]
#[ignore = "needs root for a size-limited tmpfs"]
fn a_first_start_on_a_full_disk_waits_for_space_then_counts_everything() {
    let env = Env::new(&source("exchange", "exchange", "{logs}/exchange*.jsonl"));
    let (mnt, _fs) = store_on_tmpfs(&env, "4m");
    env.append("exchange.jsonl", &exchange_lines("F", 1..=300));
    let ballast = mnt.join("ballast");
    fill(&ballast);
    let stderr = std::fs::File::create(env.stderr_path()).unwrap();
    let sock = env.dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&sock);
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&env.config)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    // READY once it serves (health, and 503 saying why), so systemd's start
    // timeout does not cycle it; the watchdog fed while it waits.
    let ready = notes.wait(0, "READY=1");
    assert!(
        notes.seen[ready].contains("disk full"),
        "{:?}",
        notes.seen[ready]
    );
    let (gap, _) = notes.longest_ping_gap(Duration::from_secs(4));
    assert!(
        gap < Duration::from_secs(2),
        "no watchdog ping for {gap:?} while waiting for space"
    );
    let addr = wait_started_addr(&env.stderr_path(), 0);
    let (code, body) = get(addr, "/api/v1/report");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("full"), "{body}");
    assert_eq!(get(addr, "/healthz").0, 200);
    let log = std::fs::read_to_string(env.stderr_path()).unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "docflowd gave up on a full disk:\n{log}"
    );
    assert_eq!(error_lines(&log).len(), 1, "one ERROR line:\n{log}");
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + CATCH_UP;
    let status = loop {
        if let Ok((200, body)) = http_get(addr, "/api/v1/status") {
            let s: Value = serde_json::from_str(&body).unwrap();
            if s["caught_up"] == true && counts(&s, "exchange").0 == 300 {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not caught up after space came back:\n{}",
            std::fs::read_to_string(env.stderr_path()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(counts(&status, "exchange"), (300, 0, 0));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn shutdown_ends_within_its_deadline_even_when_the_writer_hangs() {
    let env = Env::exchange_and_signatures();
    install_corpus(&env);
    // The writer blocks for good when asked to stop (a debug-build test hook).
    let d = env.start_with_env(&[("DOCFLOW_TEST_HANG", "writer-stop")], |addr| {
        matches!(http_get(addr, "/healthz"), Ok((200, _)))
    });
    d.wait_caught_up();
    let started = Instant::now();
    d.signal("TERM");
    let (code, stderr) = wait_exit_within(d, Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(
        code,
        Some(1),
        "a shutdown past its deadline is not a clean exit:\n{stderr}"
    );
    assert!(took < Duration::from_secs(27), "took {took:?}");
    assert!(stderr.contains("did not stop in time"), "{stderr}");
    // Nothing was lost: the next start resumes from the last commit.
    let d = env.start();
    let status = d.wait_caught_up();
    assert_corpus_counts(&status);
    d.stop();
}

/// Waits for a signalled daemon to exit; (exit code, stderr).
fn wait_exit_within(mut d: Daemon, within: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + within;
    while d.running() {
        assert!(
            Instant::now() < deadline,
            "docflowd did not exit within {within:?}:\n{}",
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (d.exit_code(), d.stderr_text())
}
