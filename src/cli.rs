//! Commands other than `run`: the `report` client, which asks the running
//! daemon (sled allows one process) and opens the store itself only when no
//! daemon holds it.

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
    if let Some(web) = &config.server.web {
        // The CLI holds no password (the web config has only bcrypt hashes) and
        // speaks plain HTTP: read the store, which works while no daemon runs.
        return match crate::daemon::open_store(config) {
            Ok((_, aggregates)) => Ok(build(&config.agency.code, range, &aggregates)),
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
