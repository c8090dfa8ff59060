//! Configuration (SPEC §4): the raw TOML shape (serde, `deny_unknown_fields`)
//! and its validation into a typed [`Config`]; every error names file, line and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use crate::parse::normalize::{AliasField, Aliases, Role};
use crate::parse::record::{Field, FieldMap, SourceKind};

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agency: RawAgency,
    storage: RawStorage,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    classify: RawClassify,
    #[serde(default)]
    sources: Vec<RawSource>,
    alerts: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgency {
    code: String,
    #[serde(default)]
    name: String,
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: PathBuf,
    cache_capacity: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClassify {
    required_signature_roles: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    kind: Spanned<String>,
    format: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    csv_delimiter: Option<Spanned<String>>,
    // HTTP feed sources only (SPEC §3.3).
    timeout: Option<Spanned<String>>,
    page_size: Option<Spanned<i64>>,
    cursor_param: Option<Spanned<String>>,
    events_field: Option<Spanned<String>>,
    next_cursor_field: Option<Spanned<String>>,
    headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    bearer_token_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    max_response_bytes: Option<Spanned<toml::Value>>,
    #[serde(default)]
    fields: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    aliases: BTreeMap<String, BTreeMap<String, Spanned<String>>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub agency: Agency,
    pub storage: Storage,
    pub server: Server,
    /// Bit mask of the signature roles a document needs (SPEC §2.2).
    pub required_roles: u8,
    pub sources: Vec<SourceConfig>,
}

#[derive(Debug, Clone)]
pub struct Agency {
    pub code: String,
    pub name: String,
    pub timezone: Tz,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub path: PathBuf,
    /// sled page cache in bytes.
    pub cache_capacity: u64,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// Where `server.listen` stands in the file, for bind errors at start.
    pub listen_location: String,
}

/// Input format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub format: Format,
    /// Glob naming the files.
    pub path: String,
    pub poll_interval: Duration,
    pub csv_delimiter: u8,
    pub fields: FieldMap,
    pub aliases: Aliases,
    /// Set for an HTTP feed source (`url =`); `path` is then empty.
    pub http: Option<HttpConfig>,
}

/// An HTTP feed source's settings (SPEC §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub url: String,
    /// Whole-request timeout (connect, headers and body).
    pub timeout: Duration,
    /// Sent as `limit=` when set.
    pub page_size: Option<u32>,
    pub cursor_param: String,
    /// JSON pointers (RFC 6901) to the events array and the next cursor.
    pub events_pointer: String,
    pub next_cursor_pointer: String,
    /// Extra request headers (never `Authorization`: see `auth`).
    pub headers: Vec<(String, String)>,
    pub auth: HttpAuth,
    /// PEM bundle of extra trusted CA certificates.
    pub ca_file: Option<PathBuf>,
    pub max_response_bytes: u64,
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

/// Default sled cache: small enough for a commune server, large enough for ingest.
pub const DEFAULT_CACHE_CAPACITY: u64 = 32 * 1024 * 1024;

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validates config text that was read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let loc = Locator {
            file: path.display().to_string(),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            loc.error(span, e.message().trim())
        })?;
        validate(raw, path, &loc)
    }
}

/// Turns byte spans into `file:line: key` errors.
struct Locator<'a> {
    file: String,
    text: &'a str,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The dotted key at a span: the enclosing `[table]` plus the key on that line.
    fn key_at(&self, span: &Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = &self.text[line_start..line_end];
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            });
        let trimmed = line.trim();
        let key = if trimmed.starts_with('[') {
            trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            let k = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            match table {
                Some(t) if !t.is_empty() => format!("{t}.{k}"),
                _ => k.to_string(),
            }
        };
        key
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line_of(span.start),
            key: self.key_at(&span),
            message: message.into(),
        }
    }

    fn error_at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.error(value.span(), message)
    }

    /// Error for a key that is missing entirely: points at the table header if present.
    fn missing(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: 1,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

fn validate(raw: RawConfig, path: &Path, loc: &Locator) -> Result<Config, ConfigError> {
    if raw.agency.code.trim().is_empty() {
        return Err(loc.missing("agency.code", "must not be empty"));
    }
    let timezone = match &raw.agency.timezone {
        None => chrono_tz::Asia::Ho_Chi_Minh,
        Some(tz) => tz.get_ref().parse::<Tz>().map_err(|_| {
            loc.error_at(
                tz,
                format!(
                    "unknown time zone {:?} (e.g. \"Asia/Ho_Chi_Minh\")",
                    tz.get_ref()
                ),
            )
        })?,
    };
    let cache_capacity = match &raw.storage.cache_capacity {
        None => DEFAULT_CACHE_CAPACITY,
        Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
            loc.error_at(s, format!("bad size {:?} (e.g. \"64MiB\")", s.get_ref()))
        })?,
    };
    let (listen, listen_location) = match &raw.server.listen {
        None => (
            SocketAddr::from(([127, 0, 0, 1], 9464)),
            format!("{}: key `server.listen` (default)", loc.file),
        ),
        Some(l) => {
            let addr = l.get_ref().parse::<SocketAddr>().map_err(|_| {
                loc.error_at(
                    l,
                    format!(
                        "bad listen address {:?} (e.g. \"127.0.0.1:9464\")",
                        l.get_ref()
                    ),
                )
            })?;
            (
                addr,
                format!(
                    "{}:{}: key `server.listen`",
                    loc.file,
                    loc.line_of(l.span().start)
                ),
            )
        }
    };
    let required_roles = match &raw.classify.required_signature_roles {
        None => Role::Person.bit() | Role::Organization.bit(),
        Some(roles) => {
            let mut mask = 0u8;
            for r in roles.get_ref() {
                let role = Aliases::builtin().role(r).ok_or_else(|| {
                    loc.error_at(
                        roles,
                        format!("unknown signature role {r:?} (person, organization)"),
                    )
                })?;
                mask |= role.bit();
            }
            mask
        }
    };
    if let Some(alerts) = &raw.alerts {
        if !alerts.get_ref().is_empty() {
            return Err(loc.error_at(
                alerts,
                "alert rules are not supported by this version of docflowd; leave [alerts] empty",
            ));
        }
    }

    let parent = path.parent().unwrap_or(Path::new("."));
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let mut sources = Vec::new();
    for s in &raw.sources {
        let mut source = validate_source(s, loc, &base)?;
        if source.http.is_none() {
            source.path = resolve(&base, &source.path).to_string_lossy().into_owned();
        }
        if sources.iter().any(|o: &SourceConfig| o.name == source.name) {
            return Err(loc.error_at(&s.name, format!("duplicate source name {:?}", source.name)));
        }
        sources.push(source);
    }
    Ok(Config {
        file: path.to_path_buf(),
        agency: Agency {
            code: raw.agency.code.trim().to_string(),
            name: raw.agency.name.trim().to_string(),
            timezone,
        },
        storage: Storage {
            path: resolve(&base, &raw.storage.path.to_string_lossy()),
            cache_capacity,
        },
        server: Server {
            listen,
            listen_location,
        },
        required_roles,
        sources,
    })
}

fn validate_source(s: &RawSource, loc: &Locator, base: &Path) -> Result<SourceConfig, ConfigError> {
    let name = s.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(loc.error_at(
            &s.name,
            "source name must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    let kind = match s.kind.get_ref().as_str() {
        "exchange" => SourceKind::Exchange,
        "signature" => SourceKind::Signature,
        other => {
            return Err(loc.error_at(
                &s.kind,
                format!("unknown kind {other:?} (exchange, signature)"),
            ))
        }
    };
    let format = match (&s.format, &s.url) {
        (Some(f), Some(_)) => match f.get_ref().as_str() {
            "json" | "jsonl" => Format::Jsonl,
            other => {
                return Err(loc.error_at(
                    f,
                    format!("an HTTP feed serves JSON: format {other:?} is not possible (json)"),
                ))
            }
        },
        (None, Some(_)) => Format::Jsonl,
        (Some(f), None) => match f.get_ref().as_str() {
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            other => return Err(loc.error_at(f, format!("unknown format {other:?} (jsonl, csv)"))),
        },
        (None, None) if s.path.is_some() => {
            return Err(loc.error_at(&s.name, "a file source needs `format` (jsonl, csv)"))
        }
        (None, None) => Format::Jsonl, // refused below: neither `path` nor `url`
    };
    let path = match (&s.path, &s.url) {
        (Some(p), Some(_)) => {
            return Err(loc.error_at(p, "a source has either `path` or `url`, not both"));
        }
        (Some(p), None) => {
            glob::Pattern::new(p.get_ref())
                .map_err(|e| loc.error_at(p, format!("bad glob {:?}: {e}", p.get_ref())))?;
            if p.get_ref().trim().is_empty() {
                return Err(loc.error_at(p, "empty path"));
            }
            p.get_ref().clone()
        }
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(loc.error_at(
                &s.name,
                "a source needs `path` (a glob of files) or `url` (an HTTP feed)",
            ));
        }
    };
    let http = match &s.url {
        Some(u) => Some(validate_http(s, u, loc, base)?),
        None => {
            refuse_http_keys(s, loc)?;
            None
        }
    };
    let poll_interval = match &s.poll_interval {
        None => Duration::from_secs(5),
        Some(p) => {
            let d = humantime::parse_duration(p.get_ref()).map_err(|e| {
                loc.error_at(
                    p,
                    format!("bad duration {:?}: {e} (e.g. \"5s\")", p.get_ref()),
                )
            })?;
            if d < Duration::from_millis(10) {
                return Err(loc.error_at(p, "poll_interval must be at least 10ms"));
            }
            d
        }
    };
    let csv_delimiter = match &s.csv_delimiter {
        None => b',',
        Some(d) => {
            let v = d.get_ref();
            let v = if v == "\\t" { "\t" } else { v.as_str() };
            if v.len() != 1 || v == "\"" || v == "\n" || v == "\r" {
                return Err(loc.error_at(d, "csv_delimiter must be one ASCII character"));
            }
            v.as_bytes()[0]
        }
    };
    if s.csv_delimiter.is_some() && format != Format::Csv {
        if let Some(d) = &s.csv_delimiter {
            return Err(loc.error_at(d, "csv_delimiter applies only to format = \"csv\""));
        }
    }
    let mut mapping = Vec::new();
    for (canonical, input) in &s.fields {
        let field = Field::from_name(canonical)
            .filter(|f| f.applies_to(kind))
            .ok_or_else(|| {
                loc.error_at(
                    input,
                    format!(
                        "unknown field {canonical:?} for a {} source (known: {})",
                        kind.as_str(),
                        Field::names_for(kind).join(", ")
                    ),
                )
            })?;
        if input.get_ref().trim().is_empty() {
            return Err(loc.error_at(input, "input field name must not be empty"));
        }
        mapping.push((field, input.get_ref().clone()));
    }
    let fields = FieldMap::new(kind, &mapping);
    let mut aliases = Aliases::builtin();
    for (field_name, table) in &s.aliases {
        let field = AliasField::from_name(field_name);
        for (alias, canonical) in table {
            let field = field.ok_or_else(|| {
                loc.error_at(
                    canonical,
                    format!(
                        "aliases for unknown field {field_name:?} (direction, channel, confidentiality, role)"
                    ),
                )
            })?;
            aliases
                .add(field, alias, canonical.get_ref())
                .map_err(|e| loc.error_at(canonical, e))?;
        }
    }
    Ok(SourceConfig {
        name,
        kind,
        format,
        path,
        poll_interval,
        csv_delimiter,
        fields,
        aliases,
        http,
    })
}

/// HTTP-only keys on a file source are mistakes worth naming.
fn refuse_http_keys(s: &RawSource, loc: &Locator) -> Result<(), ConfigError> {
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

fn validate_http(
    s: &RawSource,
    u: &Spanned<String>,
    loc: &Locator,
    base: &Path,
) -> Result<HttpConfig, ConfigError> {
    let url = reqwest::Url::parse(u.get_ref().trim())
        .map_err(|e| loc.error_at(u, format!("bad URL {:?}: {e}", u.get_ref())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(loc.error_at(u, "the URL must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(loc.error_at(
            u,
            "no credentials in the URL: use `username` + `password_file` or `bearer_token_file`",
        ));
    }
    let timeout = match &s.timeout {
        None => DEFAULT_HTTP_TIMEOUT,
        Some(t) => {
            let d = humantime::parse_duration(t.get_ref()).map_err(|e| {
                loc.error_at(
                    t,
                    format!("bad duration {:?}: {e} (e.g. \"30s\")", t.get_ref()),
                )
            })?;
            if d < Duration::from_millis(100) {
                return Err(loc.error_at(t, "timeout must be at least 100ms"));
            }
            d
        }
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
    let mut headers = Vec::new();
    if let Some(table) = &s.headers {
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
    }
    let file = |v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
        if v.get_ref().trim().is_empty() {
            return Err(loc.error_at(v, "empty path"));
        }
        Ok(resolve(base, v.get_ref().trim()))
    };
    let auth = match (&s.bearer_token_file, &s.username, &s.password_file) {
        (None, None, None) => HttpAuth::None,
        (Some(t), None, None) => HttpAuth::Bearer {
            token_file: file(t)?,
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
                password_file: file(pw)?,
            }
        }
        (None, Some(user), None) => {
            return Err(loc.error_at(user, "basic auth needs `password_file` too"))
        }
        (None, None, Some(pw)) => return Err(loc.error_at(pw, "`password_file` needs `username`")),
    };
    let ca_file = match &s.ca_file {
        None => None,
        Some(c) => {
            let path = file(c)?;
            let pem = std::fs::read(&path)
                .map_err(|e| loc.error_at(c, format!("cannot read {}: {e}", path.display())))?;
            match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => {}
                _ => {
                    return Err(
                        loc.error_at(c, format!("{} holds no PEM certificate", path.display()))
                    )
                }
            }
            Some(path)
        }
    };
    let max_response_bytes = match &s.max_response_bytes {
        None => DEFAULT_MAX_RESPONSE_BYTES,
        Some(v) => {
            let n = match v.get_ref() {
                toml::Value::Integer(n) => u64::try_from(*n).ok(),
                toml::Value::String(t) => parse_size(t),
                _ => None,
            };
            match n {
                Some(n) if n >= 1024 => n,
                _ => {
                    return Err(loc.error_at(
                        v,
                        "max_response_bytes must be a size of at least 1KiB (e.g. \"16MiB\" or 1048576)",
                    ))
                }
            }
        }
    };
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
    })
}

/// Relative paths in the config are relative to the config file's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parses "64MiB", "512 MB", "1GiB" or a plain byte count.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[agency]
code = "H40.27.01"
name = "UBND xã Hương Bình"

[storage]
path = "/tmp/x"

[[sources]]
name = "exchange"
kind = "exchange"
format = "jsonl"
path = "/var/log/vanban/exchange*.jsonl"
"#;

    fn err(text: &str) -> String {
        Config::parse(Path::new("docflow.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = Config::parse(Path::new("d.toml"), MINIMAL).unwrap();
        assert_eq!(c.agency.timezone, chrono_tz::Asia::Ho_Chi_Minh);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.required_roles, 3);
        assert_eq!(c.sources[0].poll_interval, Duration::from_secs(5));
        assert_eq!(c.storage.cache_capacity, DEFAULT_CACHE_CAPACITY);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("[storage]\n", "[storage]\ncolour = 1\n");
        let e = err(&text);
        assert!(e.starts_with("docflow.toml:7: key `storage.colour`"), "{e}");
    }

    #[test]
    fn unknown_timezone_is_refused_at_its_line() {
        let text = MINIMAL.replace("[storage]", "timezone = \"Asia/Hanoi\"\n[storage]");
        let e = err(&text);
        assert!(e.contains(":6: key `agency.timezone`"), "{e}");
        assert!(e.contains("Asia/Hanoi"), "{e}");
    }

    #[test]
    fn bad_glob_bad_listen_and_bad_duration_are_refused() {
        let e = err(&MINIMAL.replace("exchange*.jsonl", "exchange[.jsonl"));
        assert!(
            e.contains("key `sources.path`") && e.contains("bad glob"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\n[server]\nlisten = \"localhost\"\n"));
        assert!(e.contains("key `server.listen`"), "{e}");
        let e = err(&format!("{MINIMAL}poll_interval = \"soon\"\n"));
        assert!(e.contains("key `sources.poll_interval`"), "{e}");
    }

    #[test]
    fn field_mapping_and_aliases_are_validated() {
        let ok = format!(
            "{MINIMAL}[sources.fields]\ndoc_id = \"Số ký hiệu\"\n[sources.aliases.channel]\n\"trục liên thông\" = \"electronic\"\n"
        );
        let c = Config::parse(Path::new("d.toml"), &ok).unwrap();
        assert_eq!(
            c.sources[0].aliases.channel("Trục liên thông"),
            Some(crate::parse::normalize::Channel::Electronic)
        );
        let e = err(&format!("{MINIMAL}[sources.fields]\nrole = \"Vai trò\"\n"));
        assert!(e.contains("unknown field \"role\""), "{e}");
        let e = err(&format!(
            "{MINIMAL}[sources.aliases.channel]\n\"fax\" = \"telepathy\"\n"
        ));
        assert!(e.contains("key `sources.aliases.channel.fax`"), "{e}");
    }

    #[test]
    fn empty_alerts_table_is_accepted_but_rules_are_refused() {
        assert!(Config::parse(Path::new("d.toml"), &format!("{MINIMAL}\n[alerts]\n")).is_ok());
        let e = err(&format!(
            "{MINIMAL}\n[alerts]\nevaluation_interval = \"30s\"\n"
        ));
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../config/docflow.example.toml");
        let c = Config::parse(Path::new("/etc/docflow/docflow.toml"), text).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[1].csv_delimiter, b';');
    }

    const HTTP: &str = r#"
[agency]
code = "H40.27.01"

[storage]
path = "/tmp/x"

[[sources]]
name = "hub"
kind = "exchange"
url = "https://hub.example.gov.vn/api/v1/exchange"
"#;

    #[test]
    fn an_http_source_gets_the_documented_defaults() {
        let c = Config::parse(Path::new("/etc/docflow/d.toml"), HTTP).unwrap();
        let h = c.sources[0].http.as_ref().unwrap();
        assert_eq!(h.url, "https://hub.example.gov.vn/api/v1/exchange");
        assert_eq!(h.cursor_param, "cursor");
        assert_eq!(h.events_pointer, "/events");
        assert_eq!(h.next_cursor_pointer, "/next_cursor");
        assert_eq!(h.page_size, None);
        assert_eq!(h.timeout, DEFAULT_HTTP_TIMEOUT);
        assert_eq!(h.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert_eq!(h.auth, HttpAuth::None);
        assert_eq!(c.sources[0].format, Format::Jsonl);
    }

    #[test]
    fn http_keys_are_read_and_secret_files_resolved() {
        let text = format!(
            "{HTTP}page_size = 500\ntimeout = \"5s\"\ncursor_param = \"after\"\nevents_field = \"/data/items\"\n\
             next_cursor_field = \"next\"\nusername = \"docflow\"\npassword_file = \"secrets/hub\"\n\
             max_response_bytes = \"2MiB\"\n[sources.headers]\nX-Agency = \"H40.27.01\"\n"
        );
        let c = Config::parse(Path::new("/etc/docflow/d.toml"), &text).unwrap();
        let h = c.sources[0].http.as_ref().unwrap();
        assert_eq!(h.page_size, Some(500));
        assert_eq!(h.timeout, Duration::from_secs(5));
        assert_eq!(h.cursor_param, "after");
        assert_eq!(h.events_pointer, "/data/items");
        assert_eq!(h.next_cursor_pointer, "/next");
        assert_eq!(h.max_response_bytes, 2 << 20);
        assert_eq!(h.headers, vec![("X-Agency".into(), "H40.27.01".into())]);
        assert_eq!(
            h.auth,
            HttpAuth::Basic {
                username: "docflow".into(),
                password_file: PathBuf::from("/etc/docflow/secrets/hub"),
            }
        );
    }

    #[test]
    fn bad_http_sources_are_refused_at_their_key() {
        let cases = [
            (
                "path = \"/x/*.jsonl\"\n",
                ":12: key `sources.path`",
                "not both",
            ),
            (
                "page_size = 0\n",
                ":12: key `sources.page_size`",
                "positive",
            ),
            (
                "timeout = \"soon\"\n",
                ":12: key `sources.timeout`",
                "bad duration",
            ),
            ("format = \"csv\"\n", ":12: key `sources.format`", "JSON"),
            (
                "events_field = \"/a~2\"\n",
                ":12: key `sources.events_field`",
                "pointer",
            ),
            (
                "password_file = \"pw\"\n",
                ":12: key `sources.password_file`",
                "username",
            ),
            (
                "username = \"u\"\n",
                ":12: key `sources.username`",
                "password_file",
            ),
            (
                "bearer_token_file = \"t\"\nusername = \"u\"\npassword_file = \"p\"\n",
                ":12: key `sources.bearer_token_file`",
                "not both",
            ),
            (
                "max_response_bytes = 10\n",
                ":12: key `sources.max_response_bytes`",
                "at least",
            ),
            (
                "ca_file = \"/nonexistent/ca.pem\"\n",
                ":12: key `sources.ca_file`",
                "cannot read",
            ),
            (
                "[sources.headers]\nAuthorization = \"Bearer abc\"\n",
                ":13: key `sources.headers.Authorization`",
                "no secrets",
            ),
        ];
        for (extra, at, message) in cases {
            let e = err(&format!("{HTTP}{extra}"));
            assert!(e.contains(at) && e.contains(message), "{extra:?}: {e}");
            assert!(!e.contains("Bearer abc"), "a secret is never echoed: {e}");
        }
        let e = err(&HTTP.replace("https://hub", "ftp://hub"));
        assert!(e.contains(":11: key `sources.url`"), "{e}");
        let e = err(&HTTP.replace("https://hub", "https://u:secret@hub"));
        assert!(
            e.contains("no credentials") && !e.contains("secret@"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("format = \"jsonl\"\n", ""));
        assert!(
            e.contains("key `sources.name`") && e.contains("needs `format`"),
            "{e}"
        );
        let e = err(&HTTP.replace("url = \"https://hub.example.gov.vn/api/v1/exchange\"\n", ""));
        assert!(e.contains("needs `path`") && e.contains("or `url`"), "{e}");
        let e = err(&format!("{MINIMAL}timeout = \"5s\"\n"));
        assert!(
            e.contains("key `sources.timeout`") && e.contains("only to an HTTP"),
            "{e}"
        );
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
    }
}
