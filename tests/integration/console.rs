//! The web console (README, "Web console") in a real headless Chromium,
//! driven over WebDriver (chromedriver + fantoccini), against the real
//! binary on the known corpus: each page shows the API's numbers for the
//! same query, filters and paging links lead where they say, log values are
//! text, and nothing is fetched from another host.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; `.ci/run`
//! installs them. Screenshots go to `CARGO_TARGET_TMPDIR` (out of git).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::common::*;
use crate::corpus::run_on_corpus;

/// A subject no page may run or render as markup.
const HOSTILE_SUBJECT: &str = r#"<script>document.title='pwned'</script><img src=/x onerror=alert(1)><b>đậm</b> & "trích yếu""#;
const HOSTILE_UNIT: &str = "<i>Phòng</i> Tư pháp";

/// chromedriver and a session of headless Chromium it drives.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let addr = tool_addr();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver not runnable ({e}): install the Debian packages `chromium chromium-driver`"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--lang=vi-VN", "--window-size=1366,768", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-default-apps",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a WebDriver session of Chromium");
        Browser {
            driver,
            client,
            _profile: profile,
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// Clicks the first element `css` names, as a user would, and waits for
    /// the page it loads: WebDriver's click may return before the browser
    /// has even left the old page, which then answers the next look-up.
    async fn click(&self, css: &str) {
        self.script("window.docflowOldPage = true; return null")
            .await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A script run while the page changes may fail: that is "not yet".
            let loaded = self
                .client
                .execute(
                    "return window.docflowOldPage === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} loaded no new page within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Chooses the option `value` of the select box `css`.
    async fn choose(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await.expect(css) {
            out.push(e.text().await.expect("text").trim().to_string());
        }
        out
    }

    async fn text(&self, css: &str) -> String {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.text().await.expect("text").trim().to_string()
    }

    async fn script(&self, js: &str) -> Value {
        self.client
            .execute(js, vec![])
            .await
            .unwrap_or_else(|e| panic!("{js}: {e}"))
    }

    /// Every page must be Vietnamese, titled, and load only from `origin`.
    async fn check_page(&self, origin: &str, title: &str) {
        assert_eq!(
            self.script("return document.documentElement.lang").await,
            "vi"
        );
        let page_title = self.client.title().await.unwrap();
        assert!(
            page_title.starts_with(title) && page_title.contains("UBND xã Hương Bình (test)"),
            "title {page_title:?}"
        );
        let loaded = self.script("return performance.getEntries().filter(e => e.entryType == 'navigation' || e.entryType == 'resource').map(e => e.name)").await;
        for url in loaded.as_array().unwrap() {
            let url = url.as_str().unwrap();
            assert!(
                url.starts_with(origin),
                "{title}: loaded {url} from another host"
            );
        }
        // Attributes that make a browser fetch something, whatever it loaded.
        let sources = self
            .script("return [...document.querySelectorAll('[src],link[href],[srcset],object[data]')].map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('srcset') || e.getAttribute('data'))")
            .await;
        for s in sources.as_array().unwrap() {
            let s = s.as_str().unwrap();
            assert!(
                s.starts_with('/') && !s.starts_with("//"),
                "{title}: refers to {s}"
            );
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert_eq!(&png[1..4], b"PNG");
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

/// `92,5 %` → 92.5; `—` → None.
fn vi_percent(s: &str) -> Option<f64> {
    let n = s.trim().strip_suffix('%')?.trim().replace(',', ".");
    Some(n.parse().unwrap_or_else(|_| panic!("not a percent: {s:?}")))
}

/// `1.234` → 1234.
fn vi_count(s: &str) -> u64 {
    s.trim()
        .replace('.', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {s:?}"))
}

/// The API's ratio as a page writes it: one decimal of a percent.
fn api_percent(ratio: &Value) -> Option<f64> {
    ratio.as_f64().map(|r| (r * 1000.0).round() / 10.0)
}

fn compliant_and_counted(counts: &Value) -> (u64, u64) {
    let n = |k: &str| counts[k].as_u64().unwrap();
    (n("electronic_signed"), n("total") - n("secret_exempt"))
}

/// A GET that returns the head too (for headers).
fn raw_get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    (
        String::from_utf8_lossy(&raw[..split]).to_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

/// The corpus, plus a document whose subject and unit are markup.
fn corpus_with_a_hostile_document(env: &Env) -> Daemon {
    let d = run_on_corpus(env);
    let hostile = json!({
        "event_id": "ex-hostile-1", "time": "2026-03-12T09:00:00+07:00", "doc_id": "HOSTILE-1",
        "direction": "đi", "channel": "điện tử", "unit": HOSTILE_UNIT, "doc_number": "99/<b>TB</b>",
        "doc_type": "Thông báo", "subject": HOSTILE_SUBJECT, "counterpart": "UBND huyện"
    });
    env.append(
        "exchange.jsonl",
        &format!(
            "{hostile}\n{{\"event_id\": \"ex-bad-1\", \"time\": \"2026-03-12T09:00:00+07:00\"}}\n"
        ),
    );
    d.wait_status(CATCH_UP, "the hostile document", |s| {
        s["sources"].as_array().unwrap().iter().any(|src| {
            src["name"] == "exchange"
                && src["events"]["invalid"].as_u64().unwrap_or(0) >= 1
                && src["caught_up"] == true
        })
    });
    d
}

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Runtime::new().unwrap().block_on(test);
}

#[test]
#[ignore = "needs chromium"]
fn the_overview_shows_the_api_ratios_and_loads_nothing_from_another_host() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let origin = format!("http://{}", d.addr);
    run(async {
        let b = Browser::start().await;
        b.goto(&format!("{origin}/")).await;
        b.check_page(&origin, "Tổng quan").await;
        // The last column is all time: the API's report without a range.
        let all = d.report("");
        for (row, direction) in [(0, "outgoing"), (1, "incoming")] {
            let cell = format!("table.ratios tr[data-direction='{row}'] td:last-child");
            let ratio = b.text(&format!("{cell} .ratio")).await;
            assert_eq!(
                vi_percent(&ratio),
                api_percent(&all[direction]["compliance_ratio"]),
                "{direction}"
            );
            let sub = b.text(&format!("{cell} .sub")).await;
            let (signed, counted) = sub
                .trim_end_matches(" văn bản")
                .split_once(" / ")
                .expect(&sub);
            assert_eq!(
                (vi_count(signed), vi_count(counted)),
                compliant_and_counted(&all[direction]),
                "{direction}"
            );
        }
        // Twelve Decree 09 months, each the API's report of that period.
        let periods = b.script("return [...document.querySelectorAll('table.months thead a')].map(a => new URL(a.href).searchParams.get('period'))").await;
        let periods: Vec<String> = periods
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert_eq!(periods.len(), 12);
        let outgoing = b.texts("table.months tbody tr:nth-child(1) td").await;
        let incoming = b.texts("table.months tbody tr:nth-child(2) td").await;
        let mut bars = 0;
        for (i, period) in periods.iter().enumerate() {
            let r = d.report(&format!("period={period}"));
            assert_eq!(
                vi_percent(&outgoing[i]),
                api_percent(&r["outgoing"]["compliance_ratio"]),
                "{period} outgoing"
            );
            assert_eq!(
                vi_percent(&incoming[i]),
                api_percent(&r["incoming"]["compliance_ratio"]),
                "{period} incoming"
            );
            bars += usize::from(vi_percent(&outgoing[i]).is_some())
                + usize::from(vi_percent(&incoming[i]).is_some());
        }
        let drawn = b
            .script("return document.querySelectorAll('svg.chart rect').length")
            .await;
        assert_eq!(
            drawn.as_u64().unwrap() as usize,
            bars,
            "one bar per month and direction with documents"
        );
        // Page weight: the navigation and what it loaded.
        let weight = b
            .script("return performance.getEntries().filter(e => e.entryType == 'navigation' || e.entryType == 'resource').map(e => [e.name, e.transferSize, e.decodedBodySize])")
            .await;
        eprintln!("page weight of /: {weight}");
        b.screenshot("overview-1366").await;
        // Readable on a phone: nothing wider than the screen.
        b.client.set_window_size(390, 844).await.unwrap();
        let (scroll, inner) = (
            b.script("return document.documentElement.scrollWidth")
                .await,
            b.script("return window.innerWidth").await,
        );
        assert!(
            scroll.as_u64() <= inner.as_u64(),
            "the page scrolls sideways on a phone: {scroll} > {inner}"
        );
        b.screenshot("overview-phone").await;
        b.close().await;
    });
    let (head, _) = raw_get(d.addr, "/");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
}

/// The rows of the report table: label → six cells.
async fn report_rows(b: &Browser) -> Vec<(String, Vec<String>)> {
    let rows = b
        .script("return [...document.querySelectorAll('table.report tbody tr')].map(tr => [tr.querySelector('th').textContent, [...tr.querySelectorAll('td')].map(td => td.textContent)])")
        .await;
    serde_json::from_value(rows).unwrap()
}

/// Cells of a report row equal the API's counts of that line.
fn assert_line(label: &str, cells: &[String], api: &Value) {
    let n = |k: &str| api[k].as_u64().unwrap();
    let want = [
        n("total"),
        n("electronic_signed"),
        n("electronic_unsigned"),
        n("paper"),
        n("secret_exempt"),
    ];
    let got: Vec<u64> = cells[..5].iter().map(|c| vi_count(c)).collect();
    assert_eq!(got, want, "{label}");
    assert_eq!(
        vi_percent(&cells[5]),
        api_percent(&api["compliance_ratio"]),
        "{label}"
    );
}

#[test]
#[ignore = "needs chromium"]
fn the_report_picked_in_the_form_has_the_api_numbers_and_downloads_the_same() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let origin = format!("http://{}", d.addr);
    run(async {
        let b = Browser::start().await;
        b.goto(&format!("{origin}/report")).await;
        b.check_page(&origin, "Báo cáo").await;
        b.choose("select[name=period]", "2026-H1").await;
        // A click (not a script's submit): the browser sends the form and loads the answer.
        b.click("form.filters button[type=submit]").await;
        let url = b.client.current_url().await.unwrap();
        assert_eq!(
            url.query_pairs()
                .find(|(k, _)| k == "period")
                .map(|(_, v)| v.to_string())
                .as_deref(),
            Some("2026-H1")
        );
        let api = d.report("period=2026-H1");
        let rows = report_rows(&b).await;
        assert_eq!(
            rows.len(),
            2 + 2 * api["by_unit"].as_array().unwrap().len(),
            "one line per direction and per unit and direction"
        );
        assert_line(&rows[0].0, &rows[0].1, &api["outgoing"]);
        assert_line(&rows[1].0, &rows[1].1, &api["incoming"]);
        for (i, unit) in api["by_unit"].as_array().unwrap().iter().enumerate() {
            let name = unit["unit"].as_str().unwrap();
            let (out, inc) = (&rows[2 + 2 * i], &rows[3 + 2 * i]);
            assert!(
                name.is_empty() || out.0.starts_with(name),
                "{} is {name}",
                out.0
            );
            assert_line(&out.0, &out.1, &unit["outgoing"]);
            assert_line(&inc.0, &inc.1, &unit["incoming"]);
        }
        let csv_link = b
            .script(
                "return document.querySelector('a[href^=\"/report.csv\"]').getAttribute('href')",
            )
            .await;
        let xlsx_link = b
            .script(
                "return document.querySelector('a[href^=\"/report.xlsx\"]').getAttribute('href')",
            )
            .await;
        b.screenshot("report").await;
        b.close().await;
        // The downloads are the same report.
        let (head, csv) = raw_get(d.addr, csv_link.as_str().unwrap());
        assert!(
            head.contains("text/csv") && head.contains("bao-cao-2026-h1.csv"),
            "{head}"
        );
        assert!(csv.starts_with("\u{feff}".as_bytes()), "a BOM for Excel");
        let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
        let outgoing = csv
            .lines()
            .find(|l| l.starts_with("Văn bản đi,"))
            .expect(&csv);
        let n = |k: &str| api["outgoing"][k].as_u64().unwrap().to_string();
        assert!(
            outgoing.starts_with(&format!(
                "Văn bản đi,{},{}",
                n("total"),
                n("electronic_signed")
            )),
            "{outgoing}"
        );
        let (head, xlsx) = raw_get(d.addr, xlsx_link.as_str().unwrap());
        assert!(
            head.contains("spreadsheetml") && head.contains("bao-cao-2026-h1.xlsx"),
            "{head}"
        );
        assert_eq!(&xlsx[..2], b"PK");
    });
}

/// The doc_ids of the API's documents for `query`, page by page.
fn api_pages(d: &Daemon, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = format!("/api/v1/documents?{query}");
    loop {
        let page = d.json(&path);
        pages.push(
            page["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["doc_id"].as_str().unwrap().to_string())
                .collect(),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/documents?{query}&cursor={}", url_encode(c)),
            None => return pages,
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
#[ignore = "needs chromium"]
fn documents_follow_the_filter_and_the_paging_links_and_a_document_says_why() {
    let env = Env::exchange_and_signatures();
    let d = run_on_corpus(&env);
    let origin = format!("http://{}", d.addr);
    run(async {
        let b = Browser::start().await;
        b.goto(&format!("{origin}/documents?limit=2")).await;
        b.check_page(&origin, "Văn bản").await;
        b.choose("select[name=class]", "electronic_unsigned").await;
        // A click (not a script's submit): the browser sends the form and loads the answer.
        b.click("form.filters button[type=submit]").await;
        let want = api_pages(&d, "class=electronic_unsigned&limit=2");
        assert!(
            want.len() >= 2,
            "the corpus has more than one page of unsigned documents"
        );
        for (i, page) in want.iter().enumerate() {
            let ids = b.script("return [...document.querySelectorAll('table.documents tbody a')].map(a => decodeURIComponent(a.getAttribute('href').split('/').pop()))").await;
            let url = b.client.current_url().await.unwrap();
            assert_eq!(
                &serde_json::from_value::<Vec<String>>(ids).unwrap(),
                page,
                "page {} at {url}",
                i + 1
            );
            if i + 1 < want.len() {
                b.click("a[rel=next]").await;
            } else {
                assert!(
                    b.client.find(Locator::Css("a[rel=next]")).await.is_err(),
                    "no next link on the last page"
                );
            }
        }
        // The first document of the filter: its page says which signature is missing.
        b.click("a[rel=first]").await;
        let first =
            d.json("/api/v1/documents?class=electronic_unsigned&limit=1")["documents"][0].clone();
        b.click("table.documents tbody a").await;
        b.check_page(&origin, "Văn bản").await;
        assert_eq!(
            b.text("dl.facts code").await,
            first["doc_id"].as_str().unwrap()
        );
        let have: Vec<&str> = first["signature_roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let roles = b.script("return [...document.querySelectorAll('main table tbody tr')].map(tr => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])").await;
        let roles: Vec<(String, String)> = serde_json::from_value(roles).unwrap();
        assert!(!roles.is_empty());
        for (role, state) in &roles {
            let api_has = if role.contains("cơ quan") {
                have.contains(&"organization")
            } else {
                have.contains(&"person")
            };
            assert_eq!(
                state.starts_with("Có"),
                api_has,
                "{role}: {state}, API roles {have:?}"
            );
        }
        let reasons = b.texts("ul.reasons li").await;
        assert_eq!(
            reasons.len(),
            roles.iter().filter(|(_, s)| !s.starts_with("Có")).count(),
            "one reason per missing signature: {reasons:?}"
        );
        b.screenshot("document").await;
        b.close().await;
    });
}

#[test]
#[ignore = "needs chromium"]
fn a_hostile_subject_and_unit_are_shown_as_text_on_every_page() {
    let env = Env::exchange_and_signatures();
    let d = corpus_with_a_hostile_document(&env);
    let origin = format!("http://{}", d.addr);
    run(async {
        let b = Browser::start().await;
        b.goto(&format!("{origin}/documents?q={}", url_encode("trích yếu")))
            .await;
        assert_eq!(
            b.texts("table.documents td.subject").await,
            [HOSTILE_SUBJECT]
        );
        assert_eq!(
            b.texts("table.documents tbody td:nth-child(4)").await,
            [HOSTILE_UNIT]
        );
        b.click("table.documents tbody a").await;
        assert_eq!(b.text("dd.subject").await, HOSTILE_SUBJECT);
        for page in [
            "/documents?q=HOSTILE",
            "/",
            "/report?period=2026-Q1",
            "/sources",
        ] {
            b.goto(&format!("{origin}{page}")).await;
            let markup = b.script("return document.querySelectorAll('main script, main img, main b, main i').length").await;
            assert_eq!(markup, 0, "{page}: markup from the log was rendered");
            assert!(
                !b.client.title().await.unwrap().contains("pwned"),
                "{page}: a script ran"
            );
        }
        // The unit is in the report's table, as text.
        b.goto(&format!("{origin}/report?period=2026-Q1")).await;
        assert!(report_rows(&b)
            .await
            .iter()
            .any(|(label, _)| label.starts_with(HOSTILE_UNIT)));
        b.close().await;
    });
}

#[test]
#[ignore = "needs chromium"]
fn the_sources_page_shows_the_rejected_line_and_why_and_the_alerts_page_says_none_configured() {
    let env = Env::exchange_and_signatures();
    let d = corpus_with_a_hostile_document(&env);
    let origin = format!("http://{}", d.addr);
    let rejected = rejected_lines(&env.rejected("exchange"));
    let last = rejected.last().expect("a rejected line");
    run(async {
        let b = Browser::start().await;
        b.goto(&format!("{origin}/sources")).await;
        b.check_page(&origin, "Nguồn dữ liệu").await;
        let first_row = b
            .texts("section#exchange table.rejected tbody tr:first-child td")
            .await;
        let line = last["line"].as_u64().unwrap();
        assert!(
            first_row[0].ends_with(&format!("dòng {line}")),
            "{first_row:?}: the newest rejected line ({line}) comes first"
        );
        assert!(
            first_row[1].contains("Thiếu trường bắt buộc")
                && first_row[1].contains(last["reason"].as_str().unwrap()),
            "{first_row:?}"
        );
        assert!(first_row[2].contains("ex-bad-1"));
        let summary = b.text("section#exchange dl").await;
        let invalid = d.status()["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "exchange")
            .unwrap()["events"]["invalid"]
            .as_u64()
            .unwrap();
        assert!(summary.contains(&format!("{invalid} bị loại")), "{summary}");
        b.screenshot("sources").await;
        b.goto(&format!("{origin}/alerts")).await;
        b.check_page(&origin, "Cảnh báo").await;
        assert!(b
            .text("main")
            .await
            .contains("Chưa cấu hình quy tắc cảnh báo nào"));
        b.close().await;
    });
}
