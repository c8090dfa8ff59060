//! Commands other than `run`: the `report` and `export` clients, which ask
//! the running daemon (sled allows one process) and open the store
//! themselves only when no daemon holds it, and `import`.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::config::Config;
use crate::report::{Report, ReportRange};
use crate::store::StoreError;

/// The query string of a report request (`?period=2026-H1`); empty for all time.
fn query(range: &ReportRange) -> String {
    let mut q = Vec::new();
    if let Some(p) = &range.period {
        q.push(format!("period={p}"));
    } else {
        if let Some(f) = range.from {
            q.push(format!("from={f}"));
        }
        if let Some(t) = range.to {
            q.push(format!("to={t}"));
        }
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// The report, from the running daemon or, if none runs, from the store.
pub fn fetch_report(config: &Config, range: &ReportRange) -> anyhow::Result<Report> {
    if let Some(web) = &config.server.web {
        // The CLI holds no password (the web config has only bcrypt hashes) and
        // speaks plain HTTP: read the store, which works while no daemon runs.
        return report_from_store(config, range, || {
            format!(
                "the store is held by a running docflowd whose API at {} needs {} (server.web_config_file = {}); \
                 docflowd report cannot log in. Ask the API instead, e.g. \
                 curl {}-u USER {}://{}/api/v1/report{}",
                config.server.listen,
                crate::web::describe(Some(web)),
                web.file.display(),
                if web.tls() { "--cacert CA.pem " } else { "" },
                if web.tls() { "https" } else { "http" },
                config.server.listen,
                query(range)
            )
        });
    }
    if let Some(report) = report_from_daemon(config, range)? {
        return Ok(report);
    }
    report_from_store(config, range, || {
        format!(
            "the store is held by a running docflowd, but its API at {} does not answer",
            config.server.listen
        )
    })
}

/// The running daemon's report; `None` when no daemon answers on `server.listen`.
fn report_from_daemon(config: &Config, range: &ReportRange) -> anyhow::Result<Option<Report>> {
    let listen = config.server.listen;
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!("http://{listen}/api/v1/report{}", query(range));
    let Ok(response) = client.get(url).send() else {
        return Ok(None);
    };
    let status = response.status();
    let Ok(body) = response.text() else {
        return Ok(None);
    };
    if status != reqwest::StatusCode::OK {
        bail!(
            "daemon at {listen} answered {}: {}",
            status.as_u16(),
            body.trim()
        );
    }
    serde_json::from_str(&body)
        .map(Some)
        .context("daemon sent an unreadable report")
}

/// The report read from the store itself, which no daemon may hold:
/// `held` says what to do when one does.
fn report_from_store(
    config: &Config,
    range: &ReportRange,
    held: impl FnOnce() -> String,
) -> anyhow::Result<Report> {
    let aggregates = match crate::state::open_store(config) {
        Ok((_, aggregates)) => aggregates,
        Err(e)
            if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::Locked { .. })
            ) =>
        {
            bail!("{}", held())
        }
        Err(e) => return Err(e),
    };
    Ok(crate::report::for_config(config, range, &aggregates))
}

/// Writes a snapshot of the store to `out`: from the running daemon (its
/// admin socket), or from the store itself when no daemon runs.
pub fn export(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let mut buffered = std::io::BufWriter::new(out);
    if let Some(client) = crate::admin::client::connect(config)? {
        return crate::admin::client::export(&client, config, &mut buffered);
    }
    let store = match crate::store::Store::open(&config.storage.path, config.storage.cache_capacity)
    {
        Ok(s) => s,
        Err(e @ StoreError::Locked { .. }) => bail!(
            "{e}, but its admin socket {} does not answer",
            crate::admin::socket_path(config).display()
        ),
        Err(e) => return Err(e.into()),
    };
    let mut header = serde_json::Map::new();
    header.insert("agency".into(), Value::from(config.agency.code.clone()));
    let summary = store.export(header, &mut buffered)?;
    buffered.flush()?;
    tracing::info!(?summary, "snapshot written");
    Ok(())
}

/// Reads a snapshot: through the running daemon (its admin socket), which
/// restarts on the imported store, or, when none runs, into the store
/// directory, which must hold no data. Either way the snapshot is read into
/// a staging store first: a refused import leaves nothing behind.
pub fn import(
    config: &Config,
    input: impl std::io::Read + Send + 'static,
) -> anyhow::Result<Value> {
    if let Some(client) = crate::admin::client::connect(config)? {
        return crate::admin::client::import(&client, config, input);
    }
    let path = &config.storage.path;
    let created = !path.exists();
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create storage directory {}", path.display()))?;
    let staged = crate::store::swap::staging_dir(path, "import");
    let result = (|| -> anyhow::Result<Value> {
        if crate::store::Store::exists(path) {
            let store = crate::store::Store::open(path, config.storage.cache_capacity)?;
            if !store.is_empty()? {
                return Err(crate::store::snapshot::SnapshotError::NotEmpty(path.clone()).into());
            }
        }
        let summary =
            crate::admin::stage_import(config, &staged, std::io::BufReader::new(input), None)?;
        crate::store::swap::install(path, &staged, crate::store::swap::Replace::Store)
            .with_context(|| {
                format!(
                    "cannot put the imported store in place in {}",
                    path.display()
                )
            })?;
        Ok(serde_json::json!({ "imported": summary }))
    })();
    if result.is_err() && created {
        // Nothing of a refused import stays: not even the directory it made.
        let _ = std::fs::remove_dir_all(path);
    }
    result
}

/// The full check of the store: by the running daemon (beside its writer),
/// or, when none runs, on the store itself with the per-day counts
/// recounted from the documents and the sha256 log matched against them.
/// A damaged store is an error naming it and the remedy.
pub fn verify(config: &Config) -> anyhow::Result<String> {
    let damaged = |what: &str| {
        anyhow::anyhow!(
            "store {} is damaged ({what}); rebuild it from the logs: docflowd rebuild -c {}",
            config.storage.path.display(),
            config.file.display()
        )
    };
    if let Some(client) = crate::admin::client::connect(config)? {
        let answer = crate::admin::client::verify(&client, config)?;
        if answer["sound"] != true {
            return Err(damaged(answer["error"].as_str().unwrap_or("unknown")));
        }
        return Ok(format!(
            "store {} is sound: {} keys, {} pages checked by the running daemon in {:.1} s",
            config.storage.path.display(),
            answer["keys"],
            answer["pages"],
            answer["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0
        ));
    }
    let checked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<_, StoreError> {
            let store =
                crate::store::Store::open(&config.storage.path, config.storage.cache_capacity)?;
            store.check_quick()?;
            let settings = store.settings()?;
            let tz = settings
                .as_ref()
                .and_then(|s| s.timezone.parse::<chrono_tz::Tz>().ok())
                .unwrap_or(config.agency.timezone);
            let roles = settings.map_or(config.required_roles, |s| s.required_roles);
            let deep = crate::store::verify::DeepCheck {
                slot_of: Box::new(move |doc| crate::aggregate::Slot::of(doc, tz, roles)),
            };
            store.verify(&crate::store::verify::VerifyOptions {
                lock_share: 1.0,
                stop: &|| false,
                progress: &|_| {},
                deep: Some(deep),
            })
        }));
    match checked {
        Ok(Ok(Some(r))) => Ok(format!(
            "store {} is sound: {} keys, {} pages of {} document groups, {} documents checked in {:.1} s (counts recounted from the documents, sha256 log matched)",
            config.storage.path.display(),
            r.keys,
            r.pages,
            r.groups,
            r.documents,
            r.elapsed.as_secs_f64()
        )),
        Ok(Ok(None)) => bail!("the check was stopped"),
        Ok(Err(e)) if e.is_damage() => Err(damaged(&e.detail())),
        Ok(Err(e)) => Err(e.into()),
        Err(panic) => Err(damaged(&format!(
            "the store panicked while being read: {}",
            crate::store::panic_text(&panic)
        ))),
    }
}

/// Turns a store error into the words the README's "A damaged store" uses:
/// the store's path, what failed (a read or a write), and what to do.
pub fn explain(config: &Config, e: anyhow::Error) -> anyhow::Error {
    let Some(store_error) = e.downcast_ref::<StoreError>() else {
        return e;
    };
    let path = config.storage.path.display();
    let rebuild = format!("docflowd rebuild -c {}", config.file.display());
    if store_error.is_damage() {
        return anyhow::anyhow!(
            "store {path} is damaged ({}); rebuild it from the logs: {rebuild}",
            store_error.detail()
        );
    }
    if store_error.is_disk_full() {
        return anyhow::anyhow!("store {path}: the disk is full ({store_error}); free space on its filesystem, then start again");
    }
    match store_error {
        StoreError::Write(_) => anyhow::anyhow!(
            "store {path}: {store_error}; check the disk and the permissions of {path}"
        ),
        _ if e.to_string().contains(&path.to_string()) => e,
        _ => anyhow::anyhow!("store {path}: {e:#}"),
    }
}
