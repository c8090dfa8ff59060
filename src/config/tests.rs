//! The config tests: defaults, every error naming file, line and key, the
//! shipped examples.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::parse::{Mapping, RecordFormat};

/// The HTTP settings of source `i`.
fn http(c: &Config, i: usize) -> &HttpConfig {
    match &c.sources[i].input {
        Input::HttpFeed(feed) => &feed.http,
        other => panic!("not an HTTP feed: {other:?}"),
    }
}

/// The glob, `settle` and `max_file_size` of edXML source `i`.
fn edxml_input(c: &Config, i: usize) -> (&str, Duration, u64) {
    match &c.sources[i].input {
        Input::EdxmlDir(e) => (&e.path, e.settle, e.max_file_size),
        other => panic!("not an edXML source: {other:?}"),
    }
}

/// The field names and aliases of file source `i`.
fn mapping(c: &Config, i: usize) -> &Mapping {
    match &c.sources[i].input {
        Input::Files(f) => &f.mapping,
        other => panic!("not a file source: {other:?}"),
    }
}

const MINIMAL: &str = r#"
[agency]
code = "H40.27.01"
name = "UBND xã Hương Bình"

[storage]
path = "/tmp/x"

[[sources]]
name = "exchange"
kind = "exchange"
format = "jsonl"
path = "/var/log/vanban/exchange*.jsonl"
"#;

fn err(text: &str) -> String {
    Config::parse(Path::new("docflow.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn edxml_sources_read_a_directory_of_exchange_messages() {
    let edxml = MINIMAL
        .replace("format = \"jsonl\"", "format = \"edxml\"")
        .replace("/var/log/vanban/exchange*.jsonl", "/var/lib/truc/archive/");
    let c = Config::parse(Path::new("d.toml"), &edxml).unwrap();
    let (path, settle, _) = edxml_input(&c, 0);
    assert_eq!(path, "/var/lib/truc/archive/*");
    assert_eq!(settle, Duration::from_secs(2));
    let e = err(&edxml.replace("kind = \"exchange\"", "kind = \"signature\""));
    assert!(
        e.contains("docflow.toml:11")
            && e.contains("`sources.kind`")
            && e.contains("kind must be \"exchange\""),
        "{e}"
    );
    let e = err(&MINIMAL.replace("format = \"jsonl\"", "format = \"jsonl\"\nsettle = \"1s\""));
    assert!(e.contains("settle applies only"), "{e}");
    let e = err(&edxml.replace(
        "format = \"edxml\"",
        "format = \"edxml\"\nsettle = \"soon\"",
    ));
    assert!(e.contains("bad duration"), "{e}");
}

#[test]
fn edxml_max_file_size_is_a_byte_size_for_edxml_sources_only() {
    let edxml = MINIMAL
        .replace("format = \"jsonl\"", "format = \"edxml\"")
        .replace("/var/log/vanban/exchange*.jsonl", "/var/lib/truc/archive/");
    let c = Config::parse(Path::new("d.toml"), &edxml).unwrap();
    assert_eq!(edxml_input(&c, 0).2, DEFAULT_MAX_FILE_SIZE);
    let with =
        |line: &str| edxml.replace("format = \"edxml\"", &format!("format = \"edxml\"\n{line}"));
    for (line, bytes) in [
        ("max_file_size = \"512MiB\"", 512 << 20),
        ("max_file_size = \"1 GiB\"", 1 << 30),
        ("max_file_size = 4096", 4096),
    ] {
        let c = Config::parse(Path::new("d.toml"), &with(line)).unwrap();
        assert_eq!(edxml_input(&c, 0).2, bytes, "{line}");
    }
    for (line, expected) in [
        ("max_file_size = \"lots\"", "at least 1KiB"),
        ("max_file_size = 100", "at least 1KiB"),
        ("max_file_size = -1", "at least 1KiB"),
        ("max_file_size = true", "at least 1KiB"),
    ] {
        let e = err(&with(line));
        assert!(
            e.contains("docflow.toml:13")
                && e.contains("`sources.max_file_size`")
                && e.contains(expected),
            "{line}: {e}"
        );
    }
    let e = err(&MINIMAL.replace(
        "format = \"jsonl\"",
        "format = \"jsonl\"\nmax_file_size = \"1MiB\"",
    ));
    assert!(
        e.contains("`sources.max_file_size`") && e.contains("applies only to format = \"edxml\""),
        "{e}"
    );
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = Config::parse(Path::new("d.toml"), MINIMAL).unwrap();
    assert_eq!(c.agency.timezone, chrono_tz::Asia::Ho_Chi_Minh);
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.required_roles, 3);
    assert_eq!(c.sources[0].poll_interval, Duration::from_secs(5));
    assert_eq!(c.storage.cache_capacity, DEFAULT_CACHE_CAPACITY);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = MINIMAL.replace("[storage]\n", "[storage]\ncolour = 1\n");
    let e = err(&text);
    assert!(e.starts_with("docflow.toml:7: key `storage.colour`"), "{e}");
}

#[test]
fn unknown_timezone_is_refused_at_its_line() {
    let text = MINIMAL.replace("[storage]", "timezone = \"Asia/Hanoi\"\n[storage]");
    let e = err(&text);
    assert!(e.contains(":6: key `agency.timezone`"), "{e}");
    assert!(e.contains("Asia/Hanoi"), "{e}");
}

#[test]
fn bad_glob_bad_listen_and_bad_duration_are_refused() {
    let e = err(&MINIMAL.replace("exchange*.jsonl", "exchange[.jsonl"));
    assert!(
        e.contains("key `sources.path`") && e.contains("bad glob"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[server]\nlisten = \"localhost\"\n"));
    assert!(e.contains("key `server.listen`"), "{e}");
    let e = err(&format!("{MINIMAL}poll_interval = \"soon\"\n"));
    assert!(e.contains("key `sources.poll_interval`"), "{e}");
}

#[test]
fn field_mapping_and_aliases_are_validated() {
    let ok = format!(
        "{MINIMAL}[sources.fields]\ndoc_id = \"Số ký hiệu\"\n[sources.aliases.channel]\n\"trục liên thông\" = \"electronic\"\n"
    );
    let c = Config::parse(Path::new("d.toml"), &ok).unwrap();
    assert_eq!(
        mapping(&c, 0).aliases.channel("Trục liên thông"),
        Some(crate::model::Channel::Electronic)
    );
    let e = err(&format!("{MINIMAL}[sources.fields]\nrole = \"Vai trò\"\n"));
    assert!(e.contains("unknown field \"role\""), "{e}");
    let e = err(&format!(
        "{MINIMAL}[sources.aliases.channel]\n\"fax\" = \"telepathy\"\n"
    ));
    assert!(e.contains("key `sources.aliases.channel.fax`"), "{e}");
}

#[test]
fn empty_alerts_table_means_no_alerts() {
    let c = Config::parse(Path::new("d.toml"), &format!("{MINIMAL}\n[alerts]\n")).unwrap();
    assert!(c.alerts.is_none());
}

/// An `[alerts]` block whose password file is `pw`.
fn alerts(pw: &Path, rules: &str) -> String {
    format!(
        "{MINIMAL}\n[alerts]\nevaluation_interval = \"10s\"\ndashboard_url = \"https://grafana.example.gov.vn/d/docflow\"\n\
         [alerts.smtp]\nurl = \"smtp://mail.example.gov.vn:587?tls=required\"\nfrom = \"docflow@example.gov.vn\"\n\
         to = [\"vanphong@example.gov.vn\", \"Chánh Văn phòng <cvp@example.gov.vn>\"]\nusername = \"docflow\"\n\
         password_file = \"{}\"\ntimeout = \"20s\"\n{rules}",
        pw.display()
    )
}

const RULES: &str = r#"
[[alerts.rules]]
name = "outgoing-30d"
direction = "outgoing"
window = "30d"
below = 1.0
for = "1h"
min_documents = 5
repeat_interval = "24h"
[[alerts.rules]]
name = "exchange-feed-stale"
stale_source = "exchange"
after = "48h"
"#;

#[test]
fn alert_rules_and_smtp_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp");
    std::fs::write(&pw, "secret\n").unwrap();
    let c = Config::parse(Path::new("d.toml"), &alerts(&pw, RULES)).unwrap();
    let a = c.alerts.unwrap();
    assert_eq!(a.evaluation_interval, Duration::from_secs(10));
    assert_eq!(a.smtp.host, "mail.example.gov.vn");
    assert_eq!(a.smtp.port, 587);
    assert_eq!(a.smtp.security, SmtpSecurity::StartTlsRequired);
    assert_eq!(a.smtp.to.len(), 2);
    assert_eq!(a.smtp.timeout, Duration::from_secs(20));
    assert_eq!(a.rules.len(), 2);
    match &a.rules[0].condition {
        AlertCondition::Ratio {
            window,
            below,
            for_duration,
            min_documents,
            ..
        } => {
            assert_eq!(*window, crate::model::Window::Days30);
            assert_eq!(*below, 1.0);
            assert_eq!(*for_duration, Duration::from_secs(3600));
            assert_eq!(*min_documents, 5);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&a.rules[1].condition, AlertCondition::Stale { source, after }
        if source == "exchange" && *after == Duration::from_secs(48 * 3600))
    );
    assert_eq!(a.rules[1].repeat_interval, Duration::from_secs(24 * 3600));

    // A single recipient may be a plain string; a whole-number threshold is fine.
    let text = alerts(&pw, &RULES.replace("below = 1.0", "below = 1")).replace(
        "to = [\"vanphong@example.gov.vn\", \"Chánh Văn phòng <cvp@example.gov.vn>\"]",
        "to = \"vanphong@example.gov.vn\"",
    );
    let a = Config::parse(Path::new("d.toml"), &text)
        .unwrap()
        .alerts
        .unwrap();
    assert_eq!(a.smtp.to, ["vanphong@example.gov.vn"]);
    assert!(matches!(a.rules[0].condition, AlertCondition::Ratio { below, .. } if below == 1.0));
}

#[test]
fn smtp_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp");
    std::fs::write(&pw, "secret").unwrap();
    for (url, host, port, security) in [
        (
            "smtps://mail.example.gov.vn",
            "mail.example.gov.vn",
            465,
            SmtpSecurity::Wrapper,
        ),
        (
            "smtp://127.0.0.1:2525",
            "127.0.0.1",
            2525,
            SmtpSecurity::None,
        ),
        (
            "smtp://mail.example.gov.vn?tls=opportunistic",
            "mail.example.gov.vn",
            587,
            SmtpSecurity::StartTlsOpportunistic,
        ),
    ] {
        let text = alerts(&pw, RULES).replace("smtp://mail.example.gov.vn:587?tls=required", url);
        let s = Config::parse(Path::new("d.toml"), &text)
            .unwrap()
            .alerts
            .unwrap()
            .smtp;
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            (host, port, security),
            "{url}"
        );
    }
}

#[test]
fn bad_alert_config_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp");
    std::fs::write(&pw, "secret").unwrap();
    let good = alerts(&pw, RULES);
    let cases = [
        (
            "stale_source = \"exchange\"",
            "stale_source = \"exchang\"",
            "alerts.rules.stale_source",
            "unknown source \"exchang\"",
        ),
        (
            "smtp://mail.example.gov.vn:587?tls=required",
            "http://mail.example.gov.vn",
            "alerts.smtp.url",
            "bad SMTP url",
        ),
        (
            "smtp://mail.example.gov.vn:587?tls=required",
            "smtp://mail.example.gov.vn?tls=maybe",
            "alerts.smtp.url",
            "tls=maybe",
        ),
        (
            "window = \"30d\"",
            "window = \"quarter\"",
            "alerts.rules.window",
            "unknown window",
        ),
        (
            "below = 1.0",
            "below = 95.0",
            "alerts.rules.below",
            "(0, 1]",
        ),
        (
            "for = \"1h\"",
            "for = \"soon\"",
            "alerts.rules.for",
            "bad duration",
        ),
        (
            "direction = \"outgoing\"",
            "direction = \"sideways\"",
            "alerts.rules.direction",
            "unknown direction",
        ),
        (
            "\"vanphong@example.gov.vn\",",
            "\"vanphong at example\",",
            "alerts.smtp.to",
            "bad address",
        ),
        (
            "after = \"48h\"",
            "after = \"48h\"\nwindow = \"day\"",
            "alerts.rules.stale_source",
            "not `window`",
        ),
        (
            "name = \"exchange-feed-stale\"",
            "name = \"outgoing-30d\"",
            "alerts.rules.name",
            "duplicate rule name",
        ),
        (
            "timeout = \"20s\"",
            "timeout = \"20s\"\nretries = 3",
            "alerts.smtp.retries",
            "unknown field",
        ),
    ];
    for (from, to, key, message) in cases {
        assert!(good.contains(from), "{from}");
        let e = err(&good.replacen(from, to, 1));
        assert!(e.starts_with("docflow.toml:"), "{e}");
        assert!(
            e.contains(&format!("key `{key}`")) && e.contains(message),
            "{from} -> {to}: {e}"
        );
    }
    // A missing password file is named with its line.
    let e = err(&alerts(&dir.path().join("missing"), RULES));
    let line = alerts(&pw, RULES)
        .lines()
        .position(|l| l.starts_with("password_file"))
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "docflow.toml:{line}: key `alerts.smtp.password_file`"
        )),
        "{e}"
    );
    assert!(e.contains("cannot read password file"), "{e}");
    // Rules without a mail server.
    let e = err(&format!("{MINIMAL}\n[alerts]\n{RULES}"));
    assert!(e.contains("need [alerts.smtp]"), "{e}");
}

#[test]
fn the_shipped_alerts_example_is_valid_once_its_password_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp");
    std::fs::write(&pw, "secret").unwrap();
    let text = include_str!("../../config/alerts.example.toml").replace(
        "/run/credentials/docflowd.service/smtp",
        &pw.display().to_string(),
    );
    let c = Config::parse(Path::new("/etc/docflow/docflow.toml"), &text).unwrap();
    assert!(c.alerts.unwrap().rules.len() >= 2);
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../config/docflow.example.toml");
    let c = Config::parse(Path::new("/etc/docflow/docflow.toml"), text).unwrap();
    assert_eq!(c.sources.len(), 2);
    assert!(matches!(
        &c.sources[1].input,
        Input::Files(f) if f.format == RecordFormat::Csv { delimiter: b';' }
    ));
    // Its commented edXML source, uncommented, is valid too.
    let c = with_uncommented(text, "truc-lien-thong");
    assert_eq!(edxml_input(&c, 2).2, 128 << 20);
    // And its commented PDF source.
    let c = with_uncommented(text, "signed-pdfs");
    assert!(matches!(&c.sources[2].input, Input::PdfDir(_)));
}

/// The example config with its commented `[[sources]]` block named `name` uncommented.
fn with_uncommented(text: &str, name: &str) -> Config {
    let start = text
        .find(&format!("# [[sources]]\n# name = \"{name}\""))
        .unwrap();
    let block: String = text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    Config::parse(
        Path::new("/etc/docflow/docflow.toml"),
        &format!("{text}\n{block}"),
    )
    .unwrap()
}

const HTTP: &str = r#"
[agency]
code = "H40.27.01"

[storage]
path = "/tmp/x"

[[sources]]
name = "hub"
kind = "exchange"
url = "https://hub.example.gov.vn/api/v1/exchange"
"#;

#[test]
fn an_http_source_gets_the_documented_defaults() {
    let c = Config::parse(Path::new("/etc/docflow/d.toml"), HTTP).unwrap();
    let h = http(&c, 0);
    assert_eq!(h.url, "https://hub.example.gov.vn/api/v1/exchange");
    assert_eq!(h.cursor_param, "cursor");
    assert_eq!(h.events_pointer, "/events");
    assert_eq!(h.next_cursor_pointer, "/next_cursor");
    assert_eq!(h.page_size, None);
    assert_eq!(h.timeout, DEFAULT_HTTP_TIMEOUT);
    assert_eq!(h.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert_eq!(h.auth, HttpAuth::None);
    assert_eq!(c.sources[0].input.format_name(), "json");
}

#[test]
fn http_keys_are_read_and_secret_files_resolved() {
    let text = format!(
        "{HTTP}page_size = 500\ntimeout = \"5s\"\ncursor_param = \"after\"\nevents_field = \"/data/items\"\n\
         next_cursor_field = \"next\"\nusername = \"docflow\"\npassword_file = \"secrets/hub\"\n\
         max_response_bytes = \"2MiB\"\n[sources.headers]\nX-Agency = \"H40.27.01\"\n"
    );
    let c = Config::parse(Path::new("/etc/docflow/d.toml"), &text).unwrap();
    let h = http(&c, 0);
    assert_eq!(h.page_size, Some(500));
    assert_eq!(h.timeout, Duration::from_secs(5));
    assert_eq!(h.cursor_param, "after");
    assert_eq!(h.events_pointer, "/data/items");
    assert_eq!(h.next_cursor_pointer, "/next");
    assert_eq!(h.max_response_bytes, 2 << 20);
    assert_eq!(h.headers, vec![("X-Agency".into(), "H40.27.01".into())]);
    assert_eq!(
        h.auth,
        HttpAuth::Basic {
            username: "docflow".into(),
            password_file: PathBuf::from("/etc/docflow/secrets/hub"),
        }
    );
}

#[test]
fn bad_http_sources_are_refused_at_their_key() {
    let cases = [
        (
            "path = \"/x/*.jsonl\"\n",
            ":12: key `sources.path`",
            "not both",
        ),
        (
            "page_size = 0\n",
            ":12: key `sources.page_size`",
            "positive",
        ),
        (
            "timeout = \"soon\"\n",
            ":12: key `sources.timeout`",
            "bad duration",
        ),
        ("format = \"csv\"\n", ":12: key `sources.format`", "JSON"),
        (
            "events_field = \"/a~2\"\n",
            ":12: key `sources.events_field`",
            "pointer",
        ),
        (
            "password_file = \"pw\"\n",
            ":12: key `sources.password_file`",
            "username",
        ),
        (
            "username = \"u\"\n",
            ":12: key `sources.username`",
            "password_file",
        ),
        (
            "bearer_token_file = \"t\"\nusername = \"u\"\npassword_file = \"p\"\n",
            ":12: key `sources.bearer_token_file`",
            "not both",
        ),
        (
            "max_response_bytes = 10\n",
            ":12: key `sources.max_response_bytes`",
            "at least",
        ),
        (
            "ca_file = \"/nonexistent/ca.pem\"\n",
            ":12: key `sources.ca_file`",
            "cannot read",
        ),
        (
            "[sources.headers]\nAuthorization = \"Bearer abc\"\n",
            ":13: key `sources.headers.Authorization`",
            "no secrets",
        ),
    ];
    for (extra, at, message) in cases {
        let e = err(&format!("{HTTP}{extra}"));
        assert!(e.contains(at) && e.contains(message), "{extra:?}: {e}");
        assert!(!e.contains("Bearer abc"), "a secret is never echoed: {e}");
    }
    let e = err(&HTTP.replace("https://hub", "ftp://hub"));
    assert!(e.contains(":11: key `sources.url`"), "{e}");
    let e = err(&HTTP.replace("https://hub", "https://u:secret@hub"));
    assert!(
        e.contains("no credentials") && !e.contains("secret@"),
        "{e}"
    );
    let e = err(&MINIMAL.replace("format = \"jsonl\"\n", ""));
    assert!(
        e.contains("key `sources.name`") && e.contains("needs `format`"),
        "{e}"
    );
    let e = err(&HTTP.replace("url = \"https://hub.example.gov.vn/api/v1/exchange\"\n", ""));
    assert!(e.contains("needs `path`") && e.contains("or `url`"), "{e}");
    let e = err(&format!("{MINIMAL}timeout = \"5s\"\n"));
    assert!(
        e.contains("key `sources.timeout`") && e.contains("only to an HTTP"),
        "{e}"
    );
}

#[test]
fn secrets_over_plain_http_need_allow_insecure_http() {
    let plain = HTTP.replace("https://hub.example.gov.vn", "http://hub.example.gov.vn");
    let loopback = HTTP.replace("https://hub.example.gov.vn", "http://127.0.0.1:8080");
    let refused = [
        (
            plain.clone(),
            "bearer_token_file = \"t\"\n",
            ":12: key `sources.bearer_token_file`",
        ),
        (
            plain.clone(),
            "username = \"u\"\npassword_file = \"p\"\n",
            ":13: key `sources.password_file`",
        ),
        (
            loopback.clone(),
            "bearer_token_file = \"t\"\n",
            ":12: key `sources.bearer_token_file`",
        ),
    ];
    for (base, extra, at) in refused {
        let e = err(&format!("{base}{extra}"));
        assert!(
            e.contains(at) && e.contains("allow_insecure_http = true"),
            "{extra:?}: {e}"
        );
    }
    let e = err(&HTTP.replace(
        "https://hub.example.gov.vn/api/v1/exchange",
        "http://hub.example.gov.vn/feed?agency=H40&api_key=s3cr3t",
    ));
    assert!(
        e.contains(":11: key `sources.url`") && e.contains("allow_insecure_http"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "a secret is never echoed: {e}");
    for name in [
        "X-API-Key",
        "x-auth-token",
        "PRIVATE-TOKEN",
        "X-Client-Secret",
        "Cookie",
        "X-Hub-Signature",
        "Proxy-Auth",
    ] {
        let e = err(&format!(
            "{plain}[sources.headers]\nX-Agency = \"H40\"\n\"{name}\" = \"abc\"\n"
        ));
        let at = format!(":14: key `sources.headers.{name}`");
        assert!(
            e.contains(&at) && e.contains("allow_insecure_http"),
            "{name}: {e}"
        );
        assert!(!e.contains("abc"), "a secret is never echoed: {e}");
    }
    let parse = |text: &str| Config::parse(Path::new("docflow.toml"), text);
    // Headers that are no credential, https, or the explicit opt-out: accepted.
    let c = parse(&format!(
        "{plain}[sources.headers]\nX-Agency = \"H40\"\nAccept-Language = \"vi\"\n"
    ))
    .unwrap();
    assert!(!http(&c, 0).allow_insecure_http);
    parse(&format!(
        "{HTTP}bearer_token_file = \"t\"\n[sources.headers]\nX-API-Key = \"k\"\n"
    ))
    .unwrap();
    for base in [&plain, &loopback] {
        let c = parse(&format!(
            "{base}bearer_token_file = \"t\"\nallow_insecure_http = true\n\
             [sources.headers]\nX-API-Key = \"k\"\n"
        ))
        .unwrap();
        let http = http(&c, 0);
        assert!(http.allow_insecure_http && http.sends_secrets());
    }
    let e = err(&format!(
        "{plain}bearer_token_file = \"t\"\nallow_insecure_http = false\n"
    ));
    assert!(e.contains("key `sources.bearer_token_file`"), "{e}");
    let e = err(&format!("{MINIMAL}allow_insecure_http = true\n"));
    assert!(
        e.contains("key `sources.allow_insecure_http`") && e.contains("only to an HTTP"),
        "{e}"
    );
}

#[test]
fn a_bad_url_is_shown_without_its_secrets() {
    let e = err(&HTTP.replace(
        "https://hub.example.gov.vn/api/v1/exchange",
        "https://hub.example.gov.vn:99999/feed?agency=H40&access_token=s3cr3t",
    ));
    assert!(e.contains(":11: key `sources.url`"), "{e}");
    assert!(
        e.contains("agency=H40&access_token=REDACTED") && !e.contains("s3cr3t"),
        "{e}"
    );
}

#[test]
fn web_config_file_is_loaded_relative_to_the_config_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docflow.toml");
    let with_web = MINIMAL.replace(
        "[storage]",
        "[server]\nweb_config_file = \"web.yml\"\n\n[storage]",
    );
    let e = Config::parse(&path, &with_web).unwrap_err().to_string();
    assert!(
        e.contains(":7: key `server.web_config_file`") && e.contains("web.yml"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("web.yml"),
        "basic_auth_users:\n  u: not-a-hash\n",
    )
    .unwrap();
    let e = Config::parse(&path, &with_web).unwrap_err().to_string();
    assert!(e.contains("basic_auth_users.u"), "{e}");
    std::fs::write(dir.path().join("web.yml"), "").unwrap();
    let c = Config::parse(&path, &with_web).unwrap();
    assert!(c.server.web.is_some_and(|w| !w.tls() && !w.basic_auth()));
    assert!(Config::parse(&path, MINIMAL).unwrap().server.web.is_none());
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(locate::parse_size("64MiB"), Some(64 << 20));
    assert_eq!(locate::parse_size("1 GiB"), Some(1 << 30));
    assert_eq!(locate::parse_size("4096"), Some(4096));
    assert_eq!(locate::parse_size("lots"), None);
}
