//! Checks every request on the TCP listener passes before any handler: its
//! `Host` must name this server (a DNS-rebinding page sends its own domain),
//! and read endpoints take no body.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

/// The host names a request may be addressed to.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts {
    /// Lower-case names without port: `localhost`, this machine's name, `server.allowed_hosts`.
    names: HashSet<String>,
}

impl AllowedHosts {
    /// `localhost`, this machine's host name (short and as configured) and `extra`.
    /// IP literals are always accepted: rebinding needs a name.
    pub(crate) fn new(extra: &[String]) -> AllowedHosts {
        let mut names: HashSet<String> = ["localhost".to_string()].into();
        if let Some(host) = hostname() {
            if let Some((short, _)) = host.split_once('.') {
                names.insert(short.to_string());
            }
            names.insert(host);
        }
        names.extend(
            extra
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()),
        );
        AllowedHosts { names }
    }

    /// Whether a `Host` header value names this server.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        // `[::1]:9464`, `[::1]`, `10.0.0.5:9464`, `name:9464`, `name`.
        let name = if let Some(rest) = host.strip_prefix('[') {
            match rest.split_once(']') {
                Some((ip, _)) => ip,
                None => return false,
            }
        } else {
            host.rsplit_once(':').map_or(host, |(n, _)| n)
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        self.names
            .contains(&name.trim_end_matches('.').to_ascii_lowercase())
    }
}

/// This machine's host name, lower case.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
}

/// What the Host check needs.
#[derive(Clone)]
pub(crate) struct HostCheck {
    pub(crate) allowed: Arc<AllowedHosts>,
    pub listen: SocketAddr,
}

/// Middleware: 421 for a request whose `Host` names another server.
/// Requests without `Host` (HTTP/1.0 tools) pass: browsers always send it.
pub(crate) async fn check_host(
    State(check): State<HostCheck>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string());
    match host {
        Some(h) if !check.allowed.allows(&h) => {
            warn!(host = %h, listen = %check.listen, "request for another host refused (add it to server.allowed_hosts if it names this server)");
            (
                StatusCode::MISDIRECTED_REQUEST,
                format!("Host {h:?} is not a name of this server (server.allowed_hosts)\n"),
            )
                .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Middleware: 413 for a request with a body (the read endpoints take none).
pub(crate) async fn refuse_body(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|n| n.parse::<u64>().ok()) != Some(0));
    if has_body {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            "this endpoint takes no request body\n",
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_this_server_and_ip_literals_pass_other_names_do_not() {
        let a = AllowedHosts::new(&["Docflow.Xa-An.gov.vn.".to_string()]);
        for ok in [
            "127.0.0.1:9464",
            "10.1.2.3",
            "[::1]:9464",
            "[::1]",
            "localhost:9464",
            "LOCALHOST",
            "docflow.xa-an.gov.vn:9464",
            "docflow.xa-an.gov.vn.",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "rebind.evil.example",
            "rebind.evil.example:9464",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "[::1",
            "",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }
}
