//! TLS and basic auth from an exporter-toolkit web config file, checked with a
//! real TLS client (curl) against certificates made for the test by rcgen.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::common::*;

/// Writes `ca.pem`, `server.pem` and `server.key` (for 127.0.0.1 and localhost).
fn make_certs(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "docflow test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// curl's HTTP status (0 when no HTTP exchange happened) and exit code.
fn curl(args: &[&str], url: &str) -> (u16, i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        out.status.code().unwrap_or(-1),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
#[ignore = "needs curl"]
fn tls_and_basic_auth_from_the_web_config_with_reload() {
    require_tool("curl");
    let env = Env::exchange_and_signatures();
    install_corpus(&env);
    let dir = env.dir.path();
    make_certs(dir);
    let hash = bcrypt::hash("mật khẩu đúng", 6).unwrap();
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    std::fs::write(
        dir.join("web.yml"),
        format!("{tls}basic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[server]\n", "[server]\nweb_config_file = \"web.yml\"\n");
    std::fs::write(&env.config, text).unwrap();
    let check = env.cli(&["check-config", "-c", &env.config.display().to_string()]);
    assert!(check.status.success(), "{check:?}");

    let d = env.start_with_env(&[], |addr| std::net::TcpStream::connect(addr).is_ok());
    let base = format!("https://{}", d.addr);
    let ca = dir.join("ca.pem").display().to_string();
    let metrics = format!("{base}/metrics");

    let (code, _, body) = curl(
        &["--cacert", &ca, "-u", "prometheus:mật khẩu đúng"],
        &metrics,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("docflow_build_info"), "{body}");
    // A second scrape hits the cache of good passwords.
    let (code, _, _) = curl(
        &["--cacert", &ca, "-u", "prometheus:mật khẩu đúng"],
        &metrics,
    );
    assert_eq!(code, 200);

    let (code, _, body) = curl(&["--cacert", &ca, "-u", "prometheus:sai"], &metrics);
    assert_eq!(code, 401, "wrong password: {body}");
    let (code, _, _) = curl(&["--cacert", &ca, "-u", "khach:mật khẩu đúng"], &metrics);
    assert_eq!(code, 401, "unknown user");
    let (code, _, _) = curl(&["--cacert", &ca], &format!("{base}/api/v1/report"));
    assert_eq!(code, 401, "no credentials");
    // Untrusted certificate: curl refuses (exit 60), no HTTP at all.
    let (code, exit, _) = curl(&["-u", "prometheus:mật khẩu đúng"], &metrics);
    assert_eq!(
        (code, exit),
        (0, 60),
        "a client without the CA must refuse the server"
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let (code, exit, _) = curl(
        &["-u", "prometheus:mật khẩu đúng"],
        &format!("http://{}/metrics", d.addr),
    );
    assert!(
        code == 0 && exit != 0,
        "plain HTTP must fail on a TLS port (http {code}, exit {exit})"
    );
    assert!(http_get(d.addr, "/healthz").map_or(true, |(c, _)| c != 200));

    // The CLI cannot log in: it says so and how to ask the API instead.
    let out = env.cli(&["report", "-c", &env.config.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("web_config_file") && err.contains("curl --cacert"),
        "{err}"
    );

    // Reload with TLS only: requests without credentials now pass.
    std::fs::write(dir.join("web.yml"), tls).unwrap();
    d.signal("HUP");
    wait_for(Duration::from_secs(10), "reload without basic auth", || {
        let (code, _, _) = curl(&["--cacert", &ca], &format!("{base}/api/v1/status"));
        (code == 200).then_some(())
    });
    d.stop();

    // With no daemon running the CLI reads the store itself.
    let out = env.cli(&[
        "report",
        "-c",
        &env.config.display().to_string(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["agency"], "H40.27.01");
}

#[test]
#[ignore = "needs curl"]
fn remote_admin_is_for_admin_users_over_tls_never_for_the_scrape_user_or_a_web_page() {
    require_tool("curl");
    let env = Env::exchange_and_signatures();
    let d = crate::corpus::run_on_corpus(&env);
    let snapshot = env.cli(&["export", "-c", &env.config.display().to_string()]);
    assert!(snapshot.status.success(), "{}", printed(&snapshot));
    d.stop();
    let dir = env.dir.path();
    make_certs(dir);
    std::fs::write(dir.join("snapshot.jsonl"), &snapshot.stdout).unwrap();
    let (scrape, admin) = (
        bcrypt::hash("scrape-pw", 4).unwrap(),
        bcrypt::hash("admin-pw", 4).unwrap(),
    );
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {scrape}\n  quantri: {admin}\nadmin_users: [quantri]\n"
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[server]\n", "[server]\nweb_config_file = \"web.yml\"\n");
    std::fs::write(&env.config, text).unwrap();
    let d = env.start_with_env(&[], |addr| std::net::TcpStream::connect(addr).is_ok());
    let ca = dir.join("ca.pem").display().to_string();
    let import_url = format!("https://{}/api/v1/import", d.addr);
    let body = format!("@{}", dir.join("snapshot.jsonl").display());
    let post = |user: &str, extra: &[&str]| {
        let mut args = vec![
            "--cacert",
            &ca,
            "-u",
            user,
            "-H",
            "Content-Type: application/jsonl",
            "--data-binary",
            &body,
        ];
        args.extend_from_slice(extra);
        curl(&args, &import_url)
    };
    let (code, _, answer) = post("prometheus:scrape-pw", &[]);
    assert_eq!(code, 403, "the scrape user imported: {answer}");
    let (code, _, answer) = post("quantri:admin-pw", &["-H", "Origin: https://evil.example"]);
    assert_eq!(code, 403, "a web page imported: {answer}");
    let (code, _, answer) = post("quantri:admin-pw", &[]);
    assert_eq!(code, 200, "the admin could not import: {answer}");
    let (code, _, answer) = curl(
        &["--cacert", &ca, "-u", "quantri:admin-pw"],
        &format!("https://{}/api/v1/export", d.addr),
    );
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("\"type\":\"end\""), "a whole snapshot");
    let log = d.stderr_text();
    assert!(
        log.contains("user quantri from 127.0.0.1"),
        "the audit line names the user:\n{log}"
    );
    d.stop();
}

#[test]
#[ignore = "needs curl"]
fn repeated_failed_logins_are_answered_429_until_the_window_ends() {
    require_tool("curl");
    let env = Env::exchange_and_signatures();
    let dir = env.dir.path();
    make_certs(dir);
    let hash = bcrypt::hash("right", 4).unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[server]\n", "[server]\nweb_config_file = \"web.yml\"\n");
    std::fs::write(&env.config, text).unwrap();
    let d = env.start_with_env(&[], |addr| std::net::TcpStream::connect(addr).is_ok());
    let ca = dir.join("ca.pem").display().to_string();
    let url = format!("https://{}/metrics", d.addr);
    for i in 0..10 {
        let (code, _, _) = curl(&["--cacert", &ca, "-u", "prometheus:wrong"], &url);
        assert_eq!(code, 401, "attempt {i}");
    }
    let (code, _, body) = curl(&["--cacert", &ca, "-u", "prometheus:right"], &url);
    assert_eq!(code, 429, "the 11th attempt, even right, waits: {body}");
    d.stop();
}
