//! The keys of an HTTP feed source (README "HTTP feed sources"): URL, paging,
//! headers, credentials from files, TLS, and the refusal of secrets over
//! plain http.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::locate::{byte_size, duration_at_least, resolve, ConfigError, Locator};
use super::raw::RawSource;
use super::secrets::{is_secret_name, redact_url};

/// An HTTP feed source's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub url: String,
    /// Whole-request timeout (connect, headers and body).
    pub(crate) timeout: Duration,
    /// Sent as `limit=` when set.
    pub page_size: Option<u32>,
    pub(crate) cursor_param: String,
    /// JSON pointers (RFC 6901) to the events array and the next cursor.
    pub(crate) events_pointer: String,
    pub(crate) next_cursor_pointer: String,
    /// Extra request headers (never `Authorization`: see `auth`).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) auth: HttpAuth,
    /// PEM bundle of extra trusted CA certificates.
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) max_response_bytes: u64,
    /// Credentials and secret-looking headers may go to an `http://` URL.
    pub(crate) allow_insecure_http: bool,
}

impl HttpConfig {
    /// Whether requests carry credentials, or a header or query parameter that looks like one.
    pub(crate) fn sends_secrets(&self) -> bool {
        self.auth != HttpAuth::None
            || reqwest::Url::parse(&self.url).is_ok_and(|u| query_has_secret(&u))
            || self.headers.iter().any(|(name, _)| is_secret_name(name))
    }
}

/// How an HTTP feed source authenticates; secrets live in files, read at each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuth {
    None,
    Bearer {
        token_file: PathBuf,
    },
    Basic {
        username: String,
        password_file: PathBuf,
    },
}

/// Default `timeout` of an HTTP feed request.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `max_response_bytes` of an HTTP feed page.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Validates the keys of a source with `url =`.
pub(super) fn validate_http(
    s: &RawSource,
    u: &Spanned<String>,
    loc: &Locator,
    base: &Path,
) -> Result<HttpConfig, ConfigError> {
    let url = feed_url(u, loc)?;
    let timeout = match &s.timeout {
        None => DEFAULT_HTTP_TIMEOUT,
        Some(t) => duration_at_least(t, loc, "30s", "timeout", Duration::from_millis(100))?,
    };
    let page_size = match &s.page_size {
        None => None,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v > 0 => Some(v),
            _ => return Err(loc.error_at(n, "page_size must be a positive integer")),
        },
    };
    let cursor_param = match &s.cursor_param {
        None => "cursor".to_string(),
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(loc.error_at(c, "must not be empty"))
        }
        Some(c) => c.get_ref().trim().to_string(),
    };
    let events_pointer = match &s.events_field {
        None => "/events".to_string(),
        Some(f) => json_pointer(f, loc)?,
    };
    let next_cursor_pointer = match &s.next_cursor_field {
        None => "/next_cursor".to_string(),
        Some(f) => json_pointer(f, loc)?,
    };
    let headers = headers(s, loc)?;
    let auth = auth(s, loc, base)?;
    let ca_file = match &s.ca_file {
        None => None,
        Some(c) => Some(ca_file(c, loc, base)?),
    };
    let max_response_bytes = match &s.max_response_bytes {
        None => DEFAULT_MAX_RESPONSE_BYTES,
        Some(v) => byte_size(v, "max_response_bytes", "\"16MiB\" or 1048576", loc)?,
    };
    let allow_insecure_http = s.allow_insecure_http.as_ref().is_some_and(|a| *a.get_ref());
    if url.scheme() == "http" && !allow_insecure_http {
        refuse_secrets_in_clear(s, u, &url, loc)?;
    }
    Ok(HttpConfig {
        url: url.to_string(),
        timeout,
        page_size,
        cursor_param,
        events_pointer,
        next_cursor_pointer,
        headers,
        auth,
        ca_file,
        max_response_bytes,
        allow_insecure_http,
    })
}

/// An http(s) URL without credentials in it; errors show it redacted.
fn feed_url(u: &Spanned<String>, loc: &Locator) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(u.get_ref().trim())
        .map_err(|e| loc.error_at(u, format!("bad URL {:?}: {e}", redact_url(u.get_ref()))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(loc.error_at(u, "the URL must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(loc.error_at(
            u,
            "no credentials in the URL: use `username` + `password_file` or `bearer_token_file`",
        ));
    }
    Ok(url)
}

/// `[sources.headers]`: valid names and values, never an `Authorization`.
fn headers(s: &RawSource, loc: &Locator) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    let Some(table) = &s.headers else {
        return Ok(headers);
    };
    for (name, value) in table.get_ref() {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| loc.error_at(value, format!("bad header name {name:?}")))?;
        if header == reqwest::header::AUTHORIZATION
            || header == reqwest::header::PROXY_AUTHORIZATION
        {
            return Err(loc.error_at(
                value,
                "no secrets in the config: use `bearer_token_file` or `username` + `password_file`",
            ));
        }
        reqwest::header::HeaderValue::from_str(value.get_ref())
            .map_err(|_| loc.error_at(value, "bad header value (visible ASCII only)"))?;
        headers.push((name.clone(), value.get_ref().clone()));
    }
    Ok(headers)
}

/// A non-empty path, relative to the config file's directory.
fn secret_file(v: &Spanned<String>, loc: &Locator, base: &Path) -> Result<PathBuf, ConfigError> {
    if v.get_ref().trim().is_empty() {
        return Err(loc.error_at(v, "empty path"));
    }
    Ok(resolve(base, v.get_ref().trim()))
}

/// `bearer_token_file`, or `username` + `password_file`, or neither.
fn auth(s: &RawSource, loc: &Locator, base: &Path) -> Result<HttpAuth, ConfigError> {
    Ok(
        match (&s.bearer_token_file, &s.username, &s.password_file) {
            (None, None, None) => HttpAuth::None,
            (Some(t), None, None) => HttpAuth::Bearer {
                token_file: secret_file(t, loc, base)?,
            },
            (Some(t), _, _) => {
                return Err(loc.error_at(
                    t,
                    "use either `bearer_token_file` or `username` + `password_file`, not both",
                ))
            }
            (None, Some(user), Some(pw)) => {
                if user.get_ref().trim().is_empty() || user.get_ref().contains(':') {
                    return Err(loc.error_at(user, "username must be non-empty and without ':'"));
                }
                HttpAuth::Basic {
                    username: user.get_ref().trim().to_string(),
                    password_file: secret_file(pw, loc, base)?,
                }
            }
            (None, Some(user), None) => {
                return Err(loc.error_at(user, "basic auth needs `password_file` too"))
            }
            (None, None, Some(pw)) => {
                return Err(loc.error_at(pw, "`password_file` needs `username`"))
            }
        },
    )
}

/// `ca_file`: a readable PEM bundle with at least one certificate.
fn ca_file(c: &Spanned<String>, loc: &Locator, base: &Path) -> Result<PathBuf, ConfigError> {
    let path = secret_file(c, loc, base)?;
    let pem = std::fs::read(&path)
        .map_err(|e| loc.error_at(c, format!("cannot read {}: {e}", path.display())))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(path),
        _ => Err(loc.error_at(c, format!("{} holds no PEM certificate", path.display()))),
    }
}

/// HTTP-only keys on a file source are mistakes worth naming.
pub(super) fn refuse_http_keys(s: &RawSource, loc: &Locator) -> Result<(), ConfigError> {
    let spans = [
        s.timeout.as_ref().map(Spanned::span),
        s.page_size.as_ref().map(Spanned::span),
        s.cursor_param.as_ref().map(Spanned::span),
        s.events_field.as_ref().map(Spanned::span),
        s.next_cursor_field.as_ref().map(Spanned::span),
        s.headers.as_ref().map(Spanned::span),
        s.bearer_token_file.as_ref().map(Spanned::span),
        s.username.as_ref().map(Spanned::span),
        s.password_file.as_ref().map(Spanned::span),
        s.ca_file.as_ref().map(Spanned::span),
        s.max_response_bytes.as_ref().map(Spanned::span),
        s.allow_insecure_http.as_ref().map(Spanned::span),
    ];
    match spans.into_iter().flatten().next() {
        Some(span) => Err(loc.error(span, "applies only to an HTTP feed source (`url =`)")),
        None => Ok(()),
    }
}

/// A JSON pointer from `events_field` / `next_cursor_field`: a plain key or a pointer.
fn json_pointer(v: &Spanned<String>, loc: &Locator) -> Result<String, ConfigError> {
    let text = v.get_ref();
    if text.is_empty() {
        return Err(loc.error_at(
            v,
            "must not be empty (a key like \"events\" or a JSON pointer like \"/data/items\")",
        ));
    }
    if text.starts_with('/') {
        // RFC 6901: `~` only as `~0` or `~1`.
        let bad_escape = text
            .split('~')
            .skip(1)
            .any(|rest| !(rest.starts_with('0') || rest.starts_with('1')));
        if bad_escape {
            return Err(loc.error_at(
                v,
                format!("bad JSON pointer {text:?}: `~` must be followed by 0 or 1"),
            ));
        }
        Ok(text.clone())
    } else {
        Ok(format!("/{}", text.replace('~', "~0").replace('/', "~1")))
    }
}

/// A source with an `http://` URL: secrets would cross the network unencrypted.
/// Loopback addresses are not exempt: one simple rule, one explicit opt-out.
fn refuse_secrets_in_clear(
    s: &RawSource,
    u: &Spanned<String>,
    url: &reqwest::Url,
    loc: &Locator,
) -> Result<(), ConfigError> {
    let secret_header = s.headers.as_ref().and_then(|table| {
        table
            .get_ref()
            .iter()
            .find(|(name, _)| is_secret_name(name))
            .map(|(_, value)| value.span())
    });
    let spans = [
        s.bearer_token_file.as_ref().map(Spanned::span),
        s.password_file.as_ref().map(Spanned::span),
        secret_header,
        query_has_secret(url).then(|| u.span()),
    ];
    match spans.into_iter().flatten().next() {
        Some(span) => Err(loc.error(
            span,
            "a secret would be sent unencrypted to the plain http:// `url`: use https://, \
             or set `allow_insecure_http = true` on this source to accept that",
        )),
        None => Ok(()),
    }
}

/// Whether a query parameter of `url` looks like a secret (`access_token=`…).
fn query_has_secret(url: &reqwest::Url) -> bool {
    url.query_pairs().any(|(name, _)| is_secret_name(&name))
}
