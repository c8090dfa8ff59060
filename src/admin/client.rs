//! The CLI's side of the admin socket: `docflowd export` and `import` talk
//! to the running daemon through it (reqwest over a Unix socket).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::config::Config;

/// Host part of the URLs sent over the socket (never resolved).
const BASE: &str = "http://docflowd";

/// A client of the daemon's admin socket, if a daemon answers on it.
pub(crate) fn connect(config: &Config) -> anyhow::Result<Option<reqwest::blocking::Client>> {
    let path = super::socket_path(config);
    if !path.exists() {
        return Ok(None);
    }
    let client = reqwest::blocking::Client::builder()
        .unix_socket(path.as_path())
        .timeout(None)
        .build()
        .context("cannot build the admin client")?;
    match client.get(format!("{BASE}/admin/healthz")).send() {
        Ok(r) if r.status().is_success() => Ok(Some(client)),
        Ok(r) => bail!("{}", refused(&path, r)),
        Err(e) => match io_kind(&e) {
            Some(std::io::ErrorKind::PermissionDenied) => bail!(
                "cannot use the admin socket {}: permission denied; run the command as the user docflowd runs as (e.g. sudo -u docflow docflowd …)",
                path.display()
            ),
            // A socket left by a daemon that was killed: nobody is there.
            Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => Ok(None),
            _ => Err(e).with_context(|| format!("admin socket {}", path.display())),
        },
    }
}

fn io_kind(e: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// The daemon's refusal in one line: status and its `error` message.
fn refused(path: &Path, r: reqwest::blocking::Response) -> String {
    let status = r.status();
    let body = r.text().unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(body);
    format!(
        "the daemon at {} refused ({status}): {}",
        path.display(),
        message.trim()
    )
}

/// Streams the daemon's snapshot to `out`.
pub(crate) fn export(
    client: &reqwest::blocking::Client,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut r = client
        .get(format!("{BASE}/api/v1/export"))
        .send()
        .context("export through the admin socket")?;
    if !r.status().is_success() {
        bail!("{}", refused(&super::socket_path(config), r));
    }
    r.copy_to(out).context("the snapshot stream broke off")?;
    out.flush()?;
    Ok(())
}

/// Sends a snapshot to the daemon, which restarts on it; its answer.
pub(crate) fn import(
    client: &reqwest::blocking::Client,
    config: &Config,
    input: impl std::io::Read + Send + 'static,
) -> anyhow::Result<Value> {
    let r = client
        .post(format!("{BASE}/api/v1/import"))
        .header(reqwest::header::CONTENT_TYPE, "application/jsonl")
        .body(reqwest::blocking::Body::new(input))
        .send()
        .context("import through the admin socket")?;
    if !r.status().is_success() {
        bail!("{}", refused(&super::socket_path(config), r));
    }
    r.json().context("unreadable answer from the daemon")
}

/// Asks the daemon to check its store; its answer.
pub(crate) fn verify(client: &reqwest::blocking::Client, config: &Config) -> anyhow::Result<Value> {
    let r = client
        .post(format!("{BASE}/api/v1/verify"))
        .send()
        .context("verify through the admin socket")?;
    if !r.status().is_success() {
        bail!("{}", refused(&super::socket_path(config), r));
    }
    r.json().context("unreadable answer from the daemon")
}
