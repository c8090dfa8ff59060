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

/// The report, from the running daemon or, if none runs, from the store.
pub fn fetch_report(config: &Config, range: &ReportRange) -> anyhow::Result<Value> {
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
    match crate::daemon::open_store(config) {
        Ok((_, aggregates)) => Ok(build(&config.agency.code, range, &aggregates)),
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

/// Reads a snapshot into the (new or empty) store of `config`; refuses
/// while a daemon holds the store.
pub fn import(
    config: &Config,
    input: impl std::io::BufRead,
) -> anyhow::Result<crate::store::snapshot::Summary> {
    if let Ok((_, _)) = http_get(config.server.listen, "/healthz") {
        bail!(
            "a docflowd answers at {}: stop it before importing (a snapshot is read into an empty store)",
            config.server.listen
        );
    }
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let mut store = crate::store::Store::open(&config.storage.path, config.storage.cache_capacity)?;
    Ok(store.import(input)?)
}
