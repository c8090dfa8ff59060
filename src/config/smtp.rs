//! `[alerts.smtp]` (README "Alerts"): the mail server, how the connection is
//! secured, the envelope and the credentials (password from a file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::{parse_duration_at, resolve, ConfigError, Locator};
use super::raw::RawSmtp;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://` without `tls`: plain text (only sensible on a local relay).
    None,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    StartTlsOpportunistic,
    /// `smtp://…?tls=required`: STARTTLS or no mail.
    StartTlsRequired,
    /// `smtps://`: TLS from the first byte.
    Wrapper,
}

/// The mail server and the envelope.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The url as written, for messages.
    pub url: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: SmtpSecurity,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) username: Option<String>,
    /// Read at each connection, so a rotated credential needs no restart.
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) timeout: Duration,
    /// PEM file of the CA that signed a private mail server's certificate.
    pub(crate) ca_file: Option<PathBuf>,
}

/// Where to connect, read from `url`.
struct Server<'a> {
    host: &'a str,
    port: u16,
    security: SmtpSecurity,
}

pub(super) fn validate_smtp(
    s: &RawSmtp,
    base: &Path,
    loc: &Locator,
) -> Result<SmtpConfig, ConfigError> {
    let url = s.url.get_ref().trim();
    let server = server(s, url, loc)?;
    let from = s.from.get_ref().trim();
    from.parse::<lettre::message::Mailbox>()
        .map_err(|e| loc.error_at(&s.from, format!("bad address {from:?}: {e}")))?;
    if s.to.get_ref().list().is_empty() {
        return Err(loc.error_at(&s.to, "at least one recipient"));
    }
    for t in s.to.get_ref().list() {
        t.trim()
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| loc.error_at(&s.to, format!("bad address {t:?}: {e}")))?;
    }
    let (username, password_file) = credentials(s, base, loc)?;
    let timeout = match &s.timeout {
        None => Duration::from_secs(30),
        Some(t) => parse_duration_at(t, loc, "30s")?,
    };
    let ca_file = ca_file(s, server.security, base, loc)?;
    Ok(SmtpConfig {
        url: url.to_string(),
        host: server.host.to_string(),
        port: server.port,
        security: server.security,
        from: from.to_string(),
        to: s
            .to
            .get_ref()
            .list()
            .iter()
            .map(|t| t.trim().to_string())
            .collect(),
        username,
        password_file,
        timeout,
        ca_file,
    })
}

/// `smtp://host[:port][?tls=required|opportunistic]` or `smtps://host[:port]`.
fn server<'a>(s: &RawSmtp, url: &'a str, loc: &Locator) -> Result<Server<'a>, ConfigError> {
    let bad_url = |why: &str| {
        loc.error_at(
            &s.url,
            format!("bad SMTP url {url:?}: {why} (e.g. \"smtp://mail.example.gov.vn:587?tls=required\" or \"smtps://mail.example.gov.vn\")"),
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad_url("no scheme"))?;
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority.trim_end_matches('/');
    if authority.contains('@') {
        return Err(bad_url(
            "put the user in `username` and the password in `password_file`, not in the url",
        ));
    }
    let mut tls = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("tls", v)) => tls = Some(v),
            _ => {
                return Err(bad_url(&format!(
                    "unknown parameter {pair:?} (only tls=required|opportunistic)"
                )))
            }
        }
    }
    let (security, default_port) = match (scheme, tls) {
        ("smtp", None) => (SmtpSecurity::None, 25),
        ("smtp", Some("required")) => (SmtpSecurity::StartTlsRequired, 587),
        ("smtp", Some("opportunistic")) => (SmtpSecurity::StartTlsOpportunistic, 587),
        ("smtp", Some(other)) => {
            return Err(bad_url(&format!("tls={other} (required, opportunistic)")))
        }
        ("smtps", None) => (SmtpSecurity::Wrapper, 465),
        ("smtps", Some(_)) => {
            return Err(bad_url("smtps:// is always TLS; `tls=` applies to smtp://"))
        }
        (other, _) => return Err(bad_url(&format!("scheme {other:?} (smtp, smtps)"))),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad_url("bad port"))?;
            (h, port)
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad_url("no host"));
    }
    Ok(Server {
        host,
        port,
        security,
    })
}

/// `username` and `password_file`: both or neither; the file must be readable now.
fn credentials(
    s: &RawSmtp,
    base: &Path,
    loc: &Locator,
) -> Result<(Option<String>, Option<PathBuf>), ConfigError> {
    let password_file = match &s.password_file {
        None => None,
        Some(p) => {
            let path = resolve(base, p.get_ref());
            std::fs::read(&path).map_err(|e| {
                loc.error_at(
                    p,
                    format!("cannot read password file {}: {e}", path.display()),
                )
            })?;
            Some(path)
        }
    };
    let username = s.username.as_ref().map(|u| u.get_ref().trim().to_string());
    match (&s.username, &s.password_file) {
        (Some(u), None) => Err(loc.error_at(u, "username needs password_file")),
        (None, Some(p)) => Err(loc.error_at(p, "password_file needs username")),
        _ => Ok((username, password_file)),
    }
}

/// `ca_file`: a readable PEM certificate, only with TLS.
fn ca_file(
    s: &RawSmtp,
    security: SmtpSecurity,
    base: &Path,
    loc: &Locator,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(c) = &s.ca_file else {
        return Ok(None);
    };
    let path = resolve(base, c.get_ref());
    let pem = std::fs::read(&path)
        .map_err(|e| loc.error_at(c, format!("cannot read CA file {}: {e}", path.display())))?;
    lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|e| {
        loc.error_at(
            c,
            format!("{} is not a PEM certificate: {e}", path.display()),
        )
    })?;
    if security == SmtpSecurity::None {
        return Err(loc.error_at(
            c,
            "ca_file needs TLS: use smtps:// or smtp://…?tls=required",
        ));
    }
    Ok(Some(path))
}
