//! systemd integration: the shipped unit passes `systemd-analyze verify` and
//! `security`; the real binary speaks the notify protocol (READY, WATCHDOG,
//! RELOADING, STOPPING) and reloads its config on SIGHUP without losing state.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const UNIT: &str = "deploy/systemd/docflowd.service";

/// The unit with `/usr/bin/docflowd` replaced by the built binary (verify wants
/// ExecStart to exist), written under the unit's own name.
fn unit_copy(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT))
        .expect("read unit");
    assert!(text.contains("ExecStart=/usr/bin/docflowd run"), "{text}");
    let path = dir.join("docflowd.service");
    std::fs::write(&path, text.replace("/usr/bin/docflowd", BIN)).expect("write unit copy");
    path
}

#[test]
#[ignore = "needs systemd-analyze"]
fn systemd_unit_verifies_clean_and_exposure_is_at_most_2_0() {
    let tool = require_tool("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());

    // verify reports unknown keys and bad values as warnings with exit 0.
    let out = Command::new(&tool)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let printed = printed(&out);
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "systemd-analyze verify is not clean ({}):\n{printed}",
        out.status
    );

    let out = Command::new(&tool)
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for docflowd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    println!("systemd-analyze security exposure: {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
}

fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let (_, body) = d.get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn sd_notify_ready_watchdog_reload_and_stopping_with_state_kept() {
    let env = Env::exchange_and_signatures();
    install_corpus(&env);
    let sock = env.dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&sock);
    let sock_str = sock.display().to_string();
    // 400 ms: the watchdog pings every 100 ms while the writer turns.
    let mut d = env.start_with_env(
        &[("NOTIFY_SOCKET", &sock_str), ("WATCHDOG_USEC", "400000")],
        |addr| matches!(http_get(addr, "/healthz"), Ok((200, _))),
    );
    let ready = notes.wait(0, "READY=1");
    let first_ping = notes.wait(ready, "WATCHDOG=1");
    notes.wait(first_ping + 1, "WATCHDOG=1");
    d.wait_caught_up();
    let before = d.report("");
    let original = std::fs::read_to_string(&env.config).unwrap();

    // A bad config is refused: ERROR naming file, line and key; old one kept.
    let bad = original.replace("[server]\n", "[server]\ncolour = \"blue\"\n");
    std::fs::write(&env.config, &bad).unwrap();
    let n = notes.seen.len();
    d.signal("HUP");
    let reloading = notes.wait(n, "RELOADING=1");
    let back = notes.wait(reloading, "READY=1");
    assert!(
        notes.seen[back].contains("STATUS=config reload refused"),
        "{:?}",
        notes.seen[back]
    );
    let line = bad.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    let stderr = d.stderr_text();
    let expected = format!("{}:{line}: key `server.colour`", env.config.display());
    assert!(
        stderr.contains("ERROR") && stderr.contains(&expected),
        "no ERROR naming {expected} in:\n{stderr}"
    );
    assert!(d.running(), "a refused reload must not stop the daemon");
    assert_eq!(
        metric(&d, "docflow_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(d.report(""), before, "a refused reload changes no count");

    // A good config with a restart-only change: accepted, the change is named.
    let renamed = original.replace("(test)", "(đổi tên)");
    std::fs::write(&env.config, &renamed).unwrap();
    let n = notes.seen.len();
    d.signal("HUP");
    let back = notes.wait(n, "READY=1");
    assert!(notes.seen[back].contains("STATUS=config reloaded"));
    assert_eq!(
        metric(&d, "docflow_config_last_reload_successful"),
        Some(1.0)
    );
    let stderr = d.stderr_text();
    assert!(
        stderr.contains("agency.name") && stderr.contains("next restart"),
        "{stderr}"
    );
    assert_eq!(d.report(""), before, "a reload changes no count");
    notes.wait(back, "WATCHDOG=1");

    let n = notes.seen.len();
    d.stop();
    notes.wait(n, "STOPPING=1");
}
