//! Configuration errors name file, line and key (SPEC §4); `check-config`
//! does the same checks as `run`.

use std::path::Path;

use crate::common::*;

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("docflow.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn good(dir: &Path) -> String {
    format!(
        "[agency]\ncode = \"H40.27.01\"\nname = \"UBND xã Hương Bình\"\ntimezone = \"Asia/Ho_Chi_Minh\"\n\n\
         [storage]\npath = \"{}/store\"\n\n[server]\nlisten = \"{ANY_PORT}\"\n\n\
         [[sources]]\nname = \"exchange\"\nkind = \"exchange\"\nformat = \"jsonl\"\n\
         path = \"{}/exchange*.jsonl\"\npoll_interval = \"1s\"\n",
        dir.display(),
        dir.display()
    )
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

fn refused(env_dir: &Path, text: &str, needle: &str, key: &str, extra: &str) {
    let path = write(env_dir, text);
    let out = std::process::Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {text}");
    let want = format!("{}:{}: key `{key}`", path.display(), line_of(text, needle));
    assert!(stderr.contains(&want), "want {want:?} in: {stderr}");
    assert!(stderr.contains(extra), "want {extra:?} in: {stderr}");
}

#[test]
fn bad_config_is_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = good(d);

    let ok = write(d, &base);
    let out = std::process::Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "good config refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    refused(
        d,
        &base.replace("poll_interval", "foo = 1\npoll_interval"),
        "foo = 1",
        "sources.foo",
        "",
    );
    refused(
        d,
        &base.replace("Asia/Ho_Chi_Minh", "Asia/Hanoi"),
        "Asia/Hanoi",
        "agency.timezone",
        "Asia/Hanoi",
    );
    refused(
        d,
        &base.replace("exchange*.jsonl", "exchange[.jsonl"),
        "exchange[.jsonl",
        "sources.path",
        "glob",
    );
    refused(
        d,
        &base.replace("[storage]\n", "[storage]\ncolour = \"blue\"\n"),
        "colour",
        "storage.colour",
        "",
    );

    // `run` refuses the same file at start, before binding or opening anything.
    let bad = base.replace("Asia/Ho_Chi_Minh", "Asia/Hanoi");
    let path = write(d, &bad);
    let out = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:{}: key `agency.timezone`",
        path.display(),
        line_of(&bad, "Asia/Hanoi")
    );
    assert!(stderr.contains(&want), "want {want:?} in: {stderr}");
    assert!(!d.join("store").exists(), "a refused config opens no store");
}

#[test]
fn bad_alert_config_is_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = d.join("smtp-password");
    std::fs::write(&pw, "secret\n").unwrap();
    let base = format!(
        "{}\n[alerts]\n[alerts.smtp]\nurl = \"smtp://mail.example.gov.vn:587?tls=required\"\n\
         from = \"docflow@example.gov.vn\"\nto = [\"vanphong@example.gov.vn\"]\n\
         username = \"docflow\"\npassword_file = \"{}\"\n\n\
         [[alerts.rules]]\nname = \"outgoing-30d\"\ndirection = \"outgoing\"\nwindow = \"30d\"\nbelow = 1.0\n\n\
         [[alerts.rules]]\nname = \"feed-stale\"\nstale_source = \"exchange\"\nafter = \"48h\"\n",
        good(d),
        pw.display()
    );
    let ok = write(d, &base);
    let out = std::process::Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&ok)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "good alert config refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 alert rules"));

    refused(
        d,
        &base.replace(
            "stale_source = \"exchange\"",
            "stale_source = \"signatures\"",
        ),
        "stale_source",
        "alerts.rules.stale_source",
        "unknown source \"signatures\"",
    );
    refused(
        d,
        &base.replace(
            "smtp://mail.example.gov.vn:587?tls=required",
            "smtp://mail.example.gov.vn:587?tls=yes",
        ),
        "tls=yes",
        "alerts.smtp.url",
        "bad SMTP url",
    );
    refused(
        d,
        &base.replace("smtp-password", "no-such-file"),
        "password_file",
        "alerts.smtp.password_file",
        "cannot read password file",
    );
    refused(
        d,
        &base.replace("window = \"30d\"", "window = \"week\""),
        "window = ",
        "alerts.rules.window",
        "unknown window",
    );
}
