//! `docflowd demo` and `docflowd generate`: a synthetic commune feed written
//! to a local directory, and the daemon run on it with live appends.

pub mod generator;

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use generator::{generate, generate_with, GenOptions, Generator, SignatureFormat, CSV_FIELD_MAP};

/// Options of `docflowd demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's logs, config and store (wiped and recreated).
    #[arg(long, default_value = "docflow-demo")]
    pub dir: PathBuf,
    /// Address of the demo's HTTP server.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Exchange events of history to generate (about half as many documents).
    #[arg(long, default_value_t = 6000)]
    pub events: usize,
    /// Seconds between two live documents (0 = no live appends).
    #[arg(long, default_value_t = 5)]
    pub live_every: u64,
}

/// Options of `docflowd generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Output directory (exchange.jsonl, signatures.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Exchange events to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history the documents spread over, ending now.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Add bad lines, duplicates and NFD text as in the demo.
    #[arg(long)]
    pub noise: bool,
}

/// Writes `exchange.jsonl` and `signatures.jsonl` for benchmarks.
pub fn generate_cmd(args: &GenerateArgs) -> anyhow::Result<()> {
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
fn demo_config(dir: &Path, listen: SocketAddr) -> String {
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
format = "jsonl"
path = "{logs}/exchange*.jsonl"
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

/// Generates the feed, runs the daemon on it and keeps appending live documents.
pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
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
        start: now - 150 * 86_400,
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
    let config_path = dir.join("docflow.toml");
    fs::write(&config_path, demo_config(&dir, args.listen))?;
    let config = Config::load(&config_path)?;

    if args.live_every > 0 {
        let stop = shutdown.clone();
        let every = Duration::from_secs(args.live_every);
        let logs = logs.clone();
        tokio::task::spawn_blocking(move || live_appends(&logs, generator, every, &stop));
    }
    let docs = stats.documents;
    crate::daemon::run(config, shutdown, move |addr| {
        println!(
            "\ndocflowd demo: {docs} synthetic documents of a commune office in {}\n\
             (a few bad lines and duplicates included; a new document every few seconds)\n\n\
             Open:\n  http://{addr}/                        landing page\n  \
             http://{addr}/api/v1/report?period={year}   report for the year (Decree 09/2019 cut-off)\n  \
             http://{addr}/api/v1/documents?class=electronic_unsigned   documents still missing a signature\n  \
             http://{addr}/api/v1/status            sources\n  \
             http://{addr}/metrics                  Prometheus metrics\n\n\
             Config: {}\nCtrl-C to stop.\n",
            logs.display(),
            config_path.display(),
            year = chrono::Utc::now().format("%Y"),
        );
    })
    .await
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
        let text = demo_config(dir, "127.0.0.1:9464".parse().unwrap());
        let c = Config::parse(&dir.join("docflow.toml"), &text).unwrap();
        assert_eq!(c.sources.len(), 3);
        assert_eq!(c.sources[1].csv_delimiter, b';');
    }
}
