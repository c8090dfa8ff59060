//! `docflowd demo` and `docflowd generate`: a synthetic commune feed written
//! to a local directory, and the daemon run on it with live appends.

mod generator;

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use docflow::config::Config;
use generator::{generate, generate_with, GenOptions, Generator, SignatureFormat, CSV_FIELD_MAP};

/// Options of `docflowd demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DemoArgs {
    /// Directory for the demo's logs, config and store (wiped and recreated).
    #[arg(long, default_value = "docflow-demo")]
    pub(crate) dir: PathBuf,
    /// Address of the demo's HTTP server.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub(crate) listen: SocketAddr,
    /// Exchange events of history to generate (about half as many documents).
    #[arg(long, default_value_t = 6000)]
    pub(crate) events: usize,
    /// Seconds between two live documents (0 = no live appends).
    #[arg(long, default_value_t = 5)]
    pub(crate) live_every: u64,
    /// Serve the exchange log as an HTTP feed (README: "HTTP feed sources") and read it through an HTTP source.
    #[arg(long)]
    pub(crate) http: bool,
}

/// Options of `docflowd generate`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Output directory (exchange.jsonl, signatures.jsonl).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Exchange events to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) events: usize,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Days of history the documents spread over, ending now.
    #[arg(long, default_value_t = 365)]
    pub(crate) days: i64,
    /// Add bad lines, duplicates and NFD text as in the demo.
    #[arg(long)]
    pub(crate) noise: bool,
}

/// Writes `exchange.jsonl` and `signatures.jsonl` for benchmarks.
pub(crate) fn generate_cmd(args: &GenerateArgs) -> anyhow::Result<()> {
    fs::create_dir_all(&args.out)?;
    let now = chrono::Utc::now().timestamp();
    let opts = GenOptions {
        seed: args.seed,
        start: now - args.days * 86_400,
        end: now,
        exchange_events: args.events,
        realistic_noise: args.noise,
    };
    let mut ex = BufWriter::new(fs::File::create(args.out.join("exchange.jsonl"))?);
    let mut sg = BufWriter::new(fs::File::create(args.out.join("signatures.jsonl"))?);
    let stats = generate(&opts, &mut ex, &mut sg, SignatureFormat::Jsonl)?;
    ex.flush()?;
    sg.flush()?;
    println!(
        "{} documents, {} exchange events, {} signature events in {}",
        stats.documents,
        stats.exchange_events,
        stats.signature_events,
        args.out.display()
    );
    Ok(())
}

/// The demo's config file text.
fn demo_config(dir: &Path, listen: SocketAddr, feed: Option<SocketAddr>) -> String {
    let exchange = match feed {
        None => format!(
            "format = \"jsonl\"\npath = \"{}/exchange*.jsonl\"",
            dir.join("logs").display()
        ),
        Some(addr) => format!(
            "# The exchange log served by the demo's own HTTP feed (`demo --http`).\n\
             url = \"http://{addr}/feed/exchange\"\npage_size = 500"
        ),
    };
    let mut fields = String::new();
    for (canonical, header) in CSV_FIELD_MAP {
        fields.push_str(&format!("{canonical} = \"{header}\"\n"));
    }
    format!(
        r#"# Written by `docflowd demo`; see config/docflow.example.toml for every key.
[agency]
code = "H40.27.01"
name = "UBND xã Hương Bình (demo)"
timezone = "Asia/Ho_Chi_Minh"

[storage]
path = "{store}"

[server]
listen = "{listen}"

[[sources]]
name = "exchange"
kind = "exchange"
{exchange}
poll_interval = "2s"

# The signing service's export: CSV with a BOM, ';' and Vietnamese headers.
[[sources]]
name = "ca-export"
kind = "signature"
format = "csv"
path = "{logs}/chu-ky-so*.csv"
csv_delimiter = ";"
[sources.fields]
{fields}
# Signatures made since the export, as JSON Lines.
[[sources]]
name = "signatures"
kind = "signature"
format = "jsonl"
path = "{logs}/signatures*.jsonl"
poll_interval = "2s"
"#,
        store = dir.join("store").display(),
        logs = dir.join("logs").display(),
    )
}

/// Days of synthetic history behind the demo.
const DEMO_HISTORY_DAYS: i64 = 400;

/// Generates the feed, runs the daemon on it and keeps appending live documents.
pub(crate) async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    if dir.exists() {
        anyhow::ensure!(
            dir.join(".docflow-demo").exists(),
            "{} exists and was not made by `docflowd demo`; choose another --dir",
            dir.display()
        );
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let logs = dir.join("logs");
    fs::create_dir_all(&logs)?;
    fs::write(dir.join(".docflow-demo"), "made by docflowd demo\n")?;
    let now = chrono::Utc::now().timestamp();
    let opts = GenOptions {
        seed: 2026,
        // Longer than twelve Decree 09 months (and the last full half-year),
        // so every period the console and the README offer has documents.
        start: now - DEMO_HISTORY_DAYS * 86_400,
        end: now - 600,
        exchange_events: args.events,
        realistic_noise: true,
    };
    // One generator for history and live appends, so ids never repeat.
    let mut generator = Generator::new(&opts);
    let stats = {
        let mut ex = BufWriter::new(fs::File::create(logs.join("exchange.jsonl"))?);
        let mut sg = BufWriter::new(fs::File::create(logs.join("chu-ky-so.csv"))?);
        let stats = generate_with(
            &mut generator,
            &opts,
            &mut ex,
            &mut sg,
            SignatureFormat::VietnameseCsv,
        )?;
        ex.flush()?;
        sg.flush()?;
        stats
    };
    fs::write(logs.join("signatures.jsonl"), "")?;
    let feed = if args.http {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/feed/exchange", axum::routing::get(serve_feed))
            .with_state(Arc::new(logs.join("exchange.jsonl")));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "demo: the HTTP feed stopped");
            }
        });
        Some(addr)
    } else {
        None
    };
    let config_path = dir.join("docflow.toml");
    fs::write(&config_path, demo_config(&dir, args.listen, feed))?;
    let config = Config::load(&config_path)?;

    if args.live_every > 0 {
        let stop = shutdown.clone();
        let every = Duration::from_secs(args.live_every);
        let logs = logs.clone();
        tokio::task::spawn_blocking(move || live_appends(&logs, generator, every, &stop));
    }
    let docs = stats.documents;
    let feed_line = feed.map_or(String::new(), |a| {
        format!(
            "  http://{a}/feed/exchange   the exchange log as an HTTP feed (read by the daemon)\n"
        )
    });
    docflow::daemon::run(config, shutdown, move |addr| {
        println!(
            "\ndocflowd demo: {docs} synthetic documents of a commune office in {}\n\
             (a few bad lines and duplicates included; a new document every few seconds)\n\n\
             Open:\n  http://{addr}/                        Tổng quan: the web console (overview)\n  \
             http://{addr}/report?period={year}    Báo cáo: the year's report (Decree 09/2019 cut-off), CSV and .xlsx\n  \
             http://{addr}/documents?class=electronic_unsigned   Văn bản: documents still missing a signature\n  \
             http://{addr}/api/v1/report?period={year}   the same report as JSON (the API)\n  \
             http://{addr}/metrics                  Prometheus metrics\n{feed_line}\n\
             Config: {}\nCtrl-C to stop.\n",
            logs.display(),
            config_path.display(),
            year = chrono::Utc::now().format("%Y"),
        );
    })
    .await
}

/// `GET /feed/exchange?cursor=N&limit=M`: the complete lines of the exchange
/// log from line N as a feed page; lines that are not JSON are served as
/// strings, so the daemon rejects them as it would in a file.
async fn serve_feed(
    axum::extract::State(log): axum::extract::State<Arc<PathBuf>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|c| c.parse().ok())
        .unwrap_or(500)
        .clamp(1, 5000);
    let text = match tokio::fs::read_to_string(log.as_path()).await {
        Ok(t) => t,
        Err(e) => {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the exchange log: {e}"),
            )
                .into_response()
        }
    };
    // Only complete lines: the live appender may be halfway through one.
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    let events: Vec<serde_json::Value> = complete
        .lines()
        .skip(from)
        .take(limit)
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| serde_json::Value::String(l.into())))
        .collect();
    let next = if events.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::String((from + events.len()).to_string())
    };
    axum::Json(serde_json::json!({"events": events, "next_cursor": next})).into_response()
}

/// Appends one new document every `every`, and late signatures when they fall due.
fn live_appends(logs: &Path, mut g: Generator, every: Duration, stop: &CancellationToken) {
    let mut pending: Vec<(i64, String)> = Vec::new();
    let append = |name: &str, lines: &[String]| -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(logs.join(name))?;
        let mut buf = String::new();
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        f.write_all(buf.as_bytes())
    };
    while !stop.is_cancelled() {
        std::thread::sleep(every);
        let now = chrono::Utc::now().timestamp();
        let doc = g.next_document(now);
        // Late signatures arrive within the demo's lifetime, minutes rather than days.
        pending.extend(doc.late_signatures.into_iter().map(|(_, l)| (now + 60, l)));
        let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(t, _)| *t <= now);
        pending = later;
        let due: Vec<String> = due.into_iter().map(|(_, l)| l).collect();
        if append("exchange.jsonl", &doc.exchange).is_err()
            || append("signatures.jsonl", &doc.signatures).is_err()
            || append("signatures.jsonl", &due).is_err()
        {
            tracing::warn!("demo: cannot append to the demo logs; live appends stop");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_a_valid_config() {
        let dir = Path::new("/tmp/docflow-demo-test");
        let text = demo_config(dir, "127.0.0.1:9464".parse().unwrap(), None);
        let c = Config::parse(&dir.join("docflow.toml"), &text).unwrap();
        assert_eq!(c.sources.len(), 3);
        assert!(matches!(
            &c.sources[1].input,
            docflow::config::Input::Files(f)
                if f.format == docflow::parse::RecordFormat::Csv { delimiter: b';' }
        ));
        assert!(!matches!(
            c.sources[0].input,
            docflow::config::Input::HttpFeed(_)
        ));
        let feed = "127.0.0.1:9999".parse().unwrap();
        let text = demo_config(dir, "127.0.0.1:9464".parse().unwrap(), Some(feed));
        let c = Config::parse(&dir.join("docflow.toml"), &text).unwrap();
        let docflow::config::Input::HttpFeed(feed) = &c.sources[0].input else {
            panic!("not an HTTP feed")
        };
        let http = &feed.http;
        assert_eq!(http.url, "http://127.0.0.1:9999/feed/exchange");
        assert_eq!(http.page_size, Some(500));
    }
}
