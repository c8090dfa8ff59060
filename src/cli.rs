//! Commands other than `run`: the `report` and `export` clients, which ask
//! the running daemon (sled allows one process) and open the store
//! themselves only when no daemon holds it, and `import`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::config::Config;
use crate::report::{build, ReportRange};
use crate::store::StoreError;

/// A plain HTTP/1.0 GET on loopback; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

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

/// The report read from the store (no daemon may hold it).
fn report_from_store(config: &Config, range: &ReportRange) -> anyhow::Result<Value> {
    let (_, aggregates) = crate::daemon::open_store(config)?;
    let mut report = build(&config.agency.code, range, &aggregates);
    if crate::report::has_edxml_source(config) {
        crate::report::add_rejected_by_receiver(&mut report, range, &aggregates);
    }
    Ok(report)
}

/// The report, from the running daemon or, if none runs, from the store.
pub fn fetch_report(config: &Config, range: &ReportRange) -> anyhow::Result<Value> {
    if let Some(web) = &config.server.web {
        // The CLI holds no password (the web config has only bcrypt hashes) and
        // speaks plain HTTP: read the store, which works while no daemon runs.
        return match report_from_store(config, range) {
            Ok(report) => Ok(report),
            Err(e)
                if matches!(
                    e.downcast_ref::<StoreError>(),
                    Some(StoreError::Locked { .. })
                ) =>
            {
                bail!(
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
            }
            Err(e) => Err(e),
        };
    }
    let path = format!("/api/v1/report{}", query(range));
    match http_get(config.server.listen, &path) {
        Ok((200, body)) => {
            return serde_json::from_str(&body).context("daemon sent an unreadable report")
        }
        Ok((status, body)) => bail!(
            "daemon at {} answered {status}: {}",
            config.server.listen,
            body.trim()
        ),
        Err(_) => {}
    }
    match report_from_store(config, range) {
        Ok(report) => Ok(report),
        Err(e)
            if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::Locked { .. })
            ) =>
        {
            bail!(
                "the store is held by a running docflowd, but its API at {} does not answer",
                config.server.listen
            )
        }
        Err(e) => Err(e),
    }
}

/// Streams the body of a GET to `out`; the status, or `None` if nothing listens.
fn http_get_to(addr: SocketAddr, path: &str, out: &mut impl Write) -> anyhow::Result<Option<u16>> {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Ok(None);
    };
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut r = std::io::BufReader::new(s);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut r, &mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let status = head
        .first()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        let mut body = String::new();
        let _ = r.read_to_string(&mut body);
        bail!("daemon at {addr} answered {status}: {}", body.trim());
    }
    std::io::copy(&mut r, out)?;
    Ok(Some(status))
}

/// Writes a snapshot of the store to `out`: from the running daemon, or
/// from the store itself when no daemon runs.
pub fn export(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let mut buffered = std::io::BufWriter::new(out);
    if http_get_to(config.server.listen, "/api/v1/export", &mut buffered)?.is_some() {
        buffered.flush()?;
        return Ok(());
    }
    let store = match crate::store::Store::open(&config.storage.path, config.storage.cache_capacity)
    {
        Ok(s) => s,
        Err(e @ StoreError::Locked { .. }) => bail!(
            "{e}, but its API at {} does not answer",
            config.server.listen
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

/// Sends a snapshot to the running daemon (`POST /api/v1/import`, chunked);
/// `None` if no daemon listens.
fn post_import(addr: SocketAddr, mut input: impl std::io::Read) -> anyhow::Result<Option<Value>> {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Ok(None);
    };
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut w = std::io::BufWriter::new(s.try_clone()?);
    write!(
        w,
        "POST /api/v1/import HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/jsonl\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        write!(w, "{n:x}\r\n")?;
        w.write_all(&buf[..n])?;
        w.write_all(b"\r\n")?;
    }
    w.write_all(b"0\r\n\r\n")?;
    w.flush()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // The body may be chunked: keep the JSON object between the first `{` and the last `}`.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => &body[a..=b],
        _ => body.trim(),
    };
    if status != 200 {
        bail!("daemon at {addr} refused the snapshot ({status}): {json}");
    }
    Ok(Some(serde_json::from_str(json).unwrap_or(Value::Null)))
}

/// Reads a snapshot: through the running daemon, which restarts on the
/// imported store, or, when none runs, into the (new or empty) store.
pub fn import(config: &Config, mut input: impl std::io::BufRead) -> anyhow::Result<Value> {
    // Is a daemon there? Ask without sending anything yet.
    if http_get(config.server.listen, "/healthz").is_ok() {
        return post_import(config.server.listen, &mut input)?
            .context("the daemon stopped answering during the import");
    }
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let mut store = crate::store::Store::open(&config.storage.path, config.storage.cache_capacity)?;
    let summary = store.import(input)?;
    Ok(serde_json::json!({ "imported": summary }))
}
