use super::*;
use std::path::PathBuf;

fn facts(notice: Notice) -> MailFacts {
    MailFacts {
        agency_name: "UBND xã Hương Bình".into(),
        agency_code: "H40.27.01".into(),
        rule: "outgoing-30d".into(),
        notice,
        at: 1_781_400_000,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        dashboard_url: Some("https://grafana.example.gov.vn/d/docflow?a=1&b=2".into()),
        detail: Detail::Ratio(RatioFacts {
            direction: Direction::Outgoing,
            window: Window::Days30,
            range: Some((
                NaiveDate::from_ymd_opt(2026, 5, 16).unwrap(),
                NaiveDate::from_ymd_opt(2026, 6, 14).unwrap(),
            )),
            below: 1.0,
            min_documents: 5,
            counts: ClassCounts {
                electronic_signed: 1110,
                electronic_unsigned: 80,
                paper: 10,
                secret_exempt: 3,
            },
            documents: vec![DocLine {
                number: "245/KH-UBND".into(),
                subject: "Kế hoạch <khẩn> & \"mật\"".into(),
                unit: "Văn phòng".into(),
                class: Class::ElectronicUnsigned,
            }],
        }),
    }
}

#[test]
fn vietnamese_numbers() {
    assert_eq!(crate::vi::percent(0.925), "92,5 %");
    assert_eq!(crate::vi::percent(1.0), "100,0 %");
    assert_eq!(vi_threshold(1.0), "100 %");
    assert_eq!(vi_threshold(0.925), "92,5 %");
    assert_eq!(crate::vi::count(1234567), "1.234.567");
    assert_eq!(crate::vi::count(999), "999");
}

#[test]
fn firing_mail_names_ratio_window_threshold_counts_and_documents() {
    let m = render(&facts(Notice::Firing));
    assert_eq!(m.state, "firing");
    // 1110 / (1203 - 3) = 92,5 %
    assert!(
        m.subject.contains("Cảnh báo") && m.subject.contains("92,5 %"),
        "{}",
        m.subject
    );
    assert!(
        m.subject.contains("ngưỡng 100 %") && m.subject.contains("30 ngày"),
        "{}",
        m.subject
    );
    for needle in [
        "Tổng số: 1.203",
        "Điện tử, chưa đủ chữ ký số: 80",
        "Bản giấy: 10",
        "từ 16/05/2026 đến 14/06/2026",
        "245/KH-UBND — Kế hoạch <khẩn> & \"mật\" — Văn phòng",
        "https://grafana.example.gov.vn/d/docflow?a=1&b=2",
    ] {
        assert!(m.text.contains(needle), "{needle} missing in:\n{}", m.text);
    }
    assert!(
        m.html
            .contains("Kế hoạch &lt;khẩn&gt; &amp; &quot;mật&quot;"),
        "{}",
        m.html
    );
    assert!(!m.html.contains("<khẩn>"));
    assert!(m
        .html
        .contains("href=\"https://grafana.example.gov.vn/d/docflow?a=1&amp;b=2\""));
}

#[test]
fn resolved_mail_says_so_without_the_document_list() {
    let mut f = facts(Notice::Resolved);
    if let Detail::Ratio(r) = &mut f.detail {
        r.counts.electronic_unsigned = 0;
        r.counts.paper = 0;
    }
    let m = render(&f);
    assert_eq!(m.state, "resolved");
    assert!(
        m.subject.starts_with("[docflow] Đã khắc phục"),
        "{}",
        m.subject
    );
    assert!(m.text.contains("100,0 %"));
    assert!(!m.text.contains("245/KH-UBND"));
}

#[test]
fn the_message_carries_the_header_and_both_alternatives() {
    let smtp = SmtpConfig {
        url: "smtp://127.0.0.1:2525".into(),
        host: "127.0.0.1".into(),
        port: 2525,
        security: SmtpSecurity::None,
        from: "docflow@example.gov.vn".into(),
        to: vec!["vanphong@example.gov.vn".into()],
        username: None,
        password_file: None,
        timeout: Duration::from_secs(5),
        ca_file: None,
    };
    let m = message(&smtp, &render(&facts(Notice::Firing))).unwrap();
    let raw = String::from_utf8(m.formatted()).unwrap();
    assert!(
        raw.contains("X-Docflow-Alert: outgoing-30d; state=firing\r\n"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"));
    assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
    assert!(raw.contains("Message-ID: <"), "{raw}");
    assert!(raw.contains("text/plain") && raw.contains("text/html"));
}

/// A scripted SMTP server on 127.0.0.1 for one connection: answers each
/// command by its first word from `replies` (default `250 OK`).
fn scripted_server(replies: &'static [(&'static str, &'static str)]) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        out.write_all(b"220 test ESMTP\r\n").unwrap();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply = replies
                .iter()
                .find(|(v, _)| *v == verb)
                .map_or("250 OK\r\n", |(_, r)| r);
            if out.write_all(reply.as_bytes()).is_err() || verb == "QUIT" {
                return;
            }
        }
    });
    port
}

fn local_smtp(port: u16, username: Option<&str>, password_file: Option<PathBuf>) -> SmtpConfig {
    SmtpConfig {
        url: format!("smtp://127.0.0.1:{port}"),
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        from: "docflow@example.gov.vn".into(),
        to: vec!["vanphong@example.gov.vn".into()],
        username: username.map(String::from),
        password_file,
        timeout: Duration::from_secs(5),
        ca_file: None,
    }
}

#[tokio::test]
async fn a_refused_login_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let port = scripted_server(&[
        ("EHLO", "250-test\r\n250 AUTH PLAIN LOGIN\r\n"),
        ("AUTH", "535 5.7.8 Authentication credentials invalid\r\n"),
        ("QUIT", "221 bye\r\n"),
    ]);
    let smtp = local_smtp(port, Some("docflow"), Some(pw));
    let e = send(&smtp, &render(&facts(Notice::Firing)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refused the login"), "{e}");
}

#[tokio::test]
async fn a_server_that_wants_tls_first_is_explained() {
    let port = scripted_server(&[
        ("EHLO", "250-test\r\n250 8BITMIME\r\n"),
        ("MAIL", "530 5.7.0 Must issue a STARTTLS command first\r\n"),
        ("QUIT", "221 bye\r\n"),
    ]);
    let e = send(
        &local_smtp(port, None, None),
        &render(&facts(Notice::Firing)),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("requires TLS before accepting mail: use `?tls=required`"),
        "{e}"
    );
}
