//! `docflowd`: parses arguments and calls the library; `demo` and `generate`
//! run the synthetic feed of [`demo`], which only this binary needs.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use docflow::config::Config;
use docflow::report::{render, ReportFormat, ReportRange};

/// mimalloc: the writer allocates and frees many small strings per event,
/// where glibc's malloc took a third of its time (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed by the writer goes back to the system at once instead of
/// after 10 ms: with batches freed every few milliseconds, the delay kept
/// ~50 MiB more resident while ingesting, for no measurable speed.
fn tune_allocator() {
    // SAFETY: mi_option_set only stores an integer option; it is called
    // before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

#[derive(Parser)]
#[command(
    name = "docflowd",
    version,
    about = "Monitors electronic, digitally signed document exchange (Decision 534/QĐ-TTg)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check a config file without starting.
    CheckConfig {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print a period report (asks the running daemon).
    Report {
        #[arg(short, long)]
        config: PathBuf,
        /// 2026-03, 2026-Q1, 2026-H1 or 2026 (Decree 09/2019 cut-off dates).
        #[arg(long)]
        period: Option<String>,
        /// First local date, YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// Last local date, YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// Send one test alert mail through the configured SMTP server.
    AlertTest {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Rebuild the store by re-reading every source from the beginning (daemon stopped).
    Rebuild {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Write a snapshot of the store (JSON Lines) to stdout; works while the daemon runs.
    Export {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Read a snapshot from stdin: through the running daemon (which restarts on it), or into an empty store.
    Import {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check the whole store against its last commit (through the running daemon, or the store itself).
    Verify {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Verify the signatures of PDF files as a PDF source would (no store): one JSON line per file.
    CheckPdf {
        #[arg(short, long)]
        config: PathBuf,
        /// The source whose trust and role rules apply (needed when several verify PDFs).
        #[arg(long)]
        source: Option<String>,
        /// Ignore the configured CRLs.
        #[arg(long)]
        without_crls: bool,
        /// Files or quoted globs.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Generate a synthetic feed and run the daemon on it.
    Demo(demo::DemoArgs),
    /// Write a synthetic corpus (for benchmarks): exchange.jsonl and signatures.jsonl.
    Generate(demo::GenerateArgs),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // sled repeats every store error docflowd reports itself (RUST_LOG=info,sled=warn shows them).
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sled=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("DOCFLOW_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Time from SIGTERM to the process's end at most, whatever is stuck
/// (below the unit's `TimeoutStopSec=30s`).
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

/// Cancels `token` on SIGTERM or SIGINT; past [`SHUTDOWN_DEADLINE`] the
/// process exits with status 1 without waiting for anything.
fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        token.cancel();
        std::thread::spawn(|| {
            std::thread::sleep(SHUTDOWN_DEADLINE);
            tracing::error!(
                deadline_s = SHUTDOWN_DEADLINE.as_secs(),
                "shutdown did not finish in time; exiting without waiting"
            );
            std::process::exit(1);
        });
    });
}

/// Panics (sled has some on damaged files) are logged as one ERROR line;
/// the code that catches them reports the store as damaged.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        tracing::error!(thread = thread.name().unwrap_or("unnamed"), panic = %info, "internal error");
    }));
}

/// Blocking threads of the daemon's runtime at most: well under the unit's
/// `TasksMax`, so a burst of requests cannot fail a thread creation.
const MAX_BLOCKING_THREADS: usize = 64;

fn daemon_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_logging();
    log_panics();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docflowd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let config_file = match &cli.command {
        Command::Run { config }
        | Command::Report { config, .. }
        | Command::Rebuild { config }
        | Command::Verify { config }
        | Command::Export { config }
        | Command::Import { config } => Some(config.clone()),
        _ => None,
    };
    let result = run_command(cli);
    // Store errors name the store and the remedy, whichever command met them.
    match (result, config_file.and_then(|f| Config::load(&f).ok())) {
        (Err(e), Some(config)) => Err(docflow::cli::explain(&config, e)),
        (result, _) => result,
    }
}

fn run_command(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            std::net::TcpListener::bind((c.server.listen.ip(), 0)).with_context(|| {
                format!(
                    "{}: address {} is not on this host",
                    c.server.listen_location,
                    c.server.listen.ip()
                )
            })?;
            let rules = c.alerts.as_ref().map_or(0, |a| a.rules.len());
            println!(
                "{}: OK ({} sources, {rules} alert rules)",
                config.display(),
                c.sources.len()
            );
            Ok(())
        }
        Command::Run { config } => {
            let c = Config::load(&config)?;
            let rt = daemon_runtime()?;
            rt.block_on(async {
                let token = CancellationToken::new();
                cancel_on_signals(token.clone());
                docflow::daemon::run(c, token, |_| {}).await
            })
        }
        Command::Report {
            config,
            period,
            from,
            to,
            format,
        } => {
            let c = Config::load(&config)?;
            let range = ReportRange::parse(period.as_deref(), from.as_deref(), to.as_deref())
                .map_err(anyhow::Error::msg)?;
            let report = docflow::cli::fetch_report(&c, &range)?;
            print!("{}", render(&report, format, &c.agency.name));
            Ok(())
        }
        Command::Demo(args) => {
            let rt = daemon_runtime()?;
            rt.block_on(async {
                let token = CancellationToken::new();
                cancel_on_signals(token.clone());
                demo::run(args, token).await
            })
        }
        Command::AlertTest { config } => {
            let c = Config::load(&config)?;
            let rt = tokio::runtime::Runtime::new()?;
            let sent = rt
                .block_on(docflow::alerts::send_test(&c))
                .map_err(|e| anyhow::anyhow!("test mail not sent: {e}"))?;
            println!("{sent}");
            Ok(())
        }
        Command::Generate(args) => demo::generate_cmd(&args),
        Command::Rebuild { config } => {
            let c = Config::load(&config)?;
            let r = docflow::rebuild::rebuild(&c)?;
            for (name, accepted, duplicate, invalid) in &r.sources {
                println!("{name}: {accepted} accepted, {duplicate} duplicate, {invalid} invalid");
            }
            println!(
                "store {} rebuilt in {:.1} s ({} alert state keys carried over)",
                c.storage.path.display(),
                r.elapsed.as_secs_f64(),
                r.carried
            );
            Ok(())
        }
        Command::Verify { config } => {
            let c = Config::load(&config)?;
            let report = docflow::cli::verify(&c)?;
            println!("{report}");
            Ok(())
        }
        Command::CheckPdf {
            config,
            source,
            without_crls,
            files,
        } => check_pdf(&config, source.as_deref(), without_crls, &files),
        Command::Export { config } => {
            let c = Config::load(&config)?;
            docflow::cli::export(&c, &mut std::io::stdout().lock())
        }
        Command::Import { config } => {
            let c = Config::load(&config)?;
            let answer = docflow::cli::import(&c, std::io::stdin())?;
            eprintln!(
                "imported into {}: {}",
                c.storage.path.display(),
                answer["imported"]
            );
            Ok(())
        }
    }
}

/// `docflowd check-pdf`: JSON lines on stdout, the closing summary on stderr.
fn check_pdf(
    config: &std::path::Path,
    source: Option<&str>,
    without_crls: bool,
    files: &[String],
) -> anyhow::Result<()> {
    let c = Config::load(config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let s = docflow::pdf_check::check_pdfs(&c, source, files, without_crls, &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "{} files ({} rejected), {} signatures ({} valid) in {:.3} s: {:.0} files/s, peak RSS {} KiB",
        s.files,
        s.rejected,
        s.signatures,
        s.valid,
        s.seconds,
        s.files as f64 / s.seconds.max(1e-9),
        s.peak_rss_kib.map_or("?".to_string(), |k| k.to_string()),
    );
    Ok(())
}
