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

use crate::model::Role;
use crate::model::SourceKind;
use crate::parse::normalize::{AliasField, Aliases};
use crate::parse::record::{Field, FieldMap};

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
    alerts: Option<RawAlerts>,
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
    max_import_size: Option<Spanned<String>>,
    on_damage: Option<Spanned<String>>,
    scrub_interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    web_config_file: Option<Spanned<String>>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    max_connections: Option<Spanned<i64>>,
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
    allow_insecure_http: Option<Spanned<bool>>,
    /// edXML: how long a file's size and mtime must stay unchanged before it is read.
    settle: Option<Spanned<String>>,
    /// edXML: larger files are rejected unread.
    max_file_size: Option<Spanned<toml::Value>>,
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
    /// The parsed TOML document, to tell what a reload changes.
    pub raw: toml::Table,
    /// Alert rules and mail settings (SPEC §6); `None` when no rule is configured.
    pub alerts: Option<AlertsConfig>,
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
    /// Largest snapshot `docflowd import` reads.
    pub max_import_size: u64,
    /// What the daemon does with a store that fails a check.
    pub on_damage: OnDamage,
    /// Time between background full checks (`None`: never, only at start).
    pub scrub_interval: Option<Duration>,
}

/// What the daemon does when the store fails a check (it never serves
/// numbers from it either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDamage {
    /// Rebuild from the logs beside it, keep it for inspection, swap.
    Rebuild,
    /// Wait for the operator (503 everywhere).
    Refuse,
}

/// Default `storage.scrub_interval`.
pub const DEFAULT_SCRUB_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// Where `server.listen` stands in the file, for bind errors at start.
    pub listen_location: String,
    /// TLS and basic auth from `server.web_config_file` (exporter-toolkit format).
    pub web: Option<std::sync::Arc<crate::web::WebConfig>>,
    /// Host names requests may name besides `localhost`, this machine's name and IP literals.
    pub allowed_hosts: Vec<String>,
    /// Connections open at once on `listen`.
    pub max_connections: usize,
}

/// Input format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    /// A directory of edXML messages, one per file (QCVN 102:2016/BTTTT).
    Edxml,
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
    /// edXML: quiet time before a new file is read (it may still be being written).
    pub settle: Duration,
    /// edXML: larger files are rejected without being read.
    pub max_file_size: u64,
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
    /// Credentials and secret-looking headers may go to an `http://` URL.
    pub allow_insecure_http: bool,
}

impl HttpConfig {
    /// Whether requests carry credentials, or a header or query parameter that looks like one.
    pub fn sends_secrets(&self) -> bool {
        self.auth != HttpAuth::None
            || reqwest::Url::parse(&self.url).is_ok_and(|u| query_has_secret(&u))
            || self
                .headers
                .iter()
                .any(|(name, _)| crate::sources::http::is_secret_name(name))
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

/// Default `max_file_size` of an edXML source.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// Default sled cache: small enough for a commune server, large enough for ingest.
pub const DEFAULT_CACHE_CAPACITY: u64 = 16 * 1024 * 1024;

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
        let mut config = validate(raw, path, &loc)?;
        config.raw = toml::from_str(text).unwrap_or_default();
        Ok(config)
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
    let max_import_size = match &raw.storage.max_import_size {
        None => crate::store::snapshot::DEFAULT_MAX_IMPORT_BYTES,
        Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
            loc.error_at(s, format!("bad size {:?} (e.g. \"64GiB\")", s.get_ref()))
        })?,
    };
    let on_damage = match raw
        .storage
        .on_damage
        .as_ref()
        .map(|s| (s, s.get_ref().as_str()))
    {
        None | Some((_, "rebuild")) => OnDamage::Rebuild,
        Some((_, "refuse")) => OnDamage::Refuse,
        Some((s, other)) => {
            return Err(loc.error_at(s, format!("unknown on_damage {other:?} (rebuild, refuse)")))
        }
    };
    let scrub_interval = match &raw.storage.scrub_interval {
        None => Some(DEFAULT_SCRUB_INTERVAL),
        Some(s) if matches!(s.get_ref().trim(), "off" | "0") => None,
        Some(s) => Some(humantime::parse_duration(s.get_ref()).map_err(|e| {
            loc.error_at(
                s,
                format!(
                    "bad duration {:?} ({e}; e.g. \"7d\", or \"off\")",
                    s.get_ref()
                ),
            )
        })?),
    };
    let max_connections = match &raw.server.max_connections {
        None => crate::server::DEFAULT_MAX_CONNECTIONS,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(n @ 1..=65_536) => n,
            _ => return Err(loc.error_at(n, "must be between 1 and 65536")),
        },
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
    let parent = path.parent().unwrap_or(Path::new("."));
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let web = match &raw.server.web_config_file {
        None => None,
        Some(f) => {
            let file = resolve(&base, f.get_ref());
            let web = crate::web::WebConfig::load(&file).map_err(|e| loc.error_at(f, e))?;
            Some(std::sync::Arc::new(web))
        }
    };
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
    let alerts = match &raw.alerts {
        None => None,
        Some(a) => validate_alerts(a, &base, &sources, loc)?,
    };
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
            max_import_size,
            on_damage,
            scrub_interval,
        },
        server: Server {
            listen,
            listen_location,
            web,
            allowed_hosts: raw.server.allowed_hosts.clone(),
            max_connections,
        },
        required_roles,
        sources,
        raw: toml::Table::new(),
        alerts,
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
            "edxml" => Format::Edxml,
            other => {
                return Err(loc.error_at(f, format!("unknown format {other:?} (jsonl, csv, edxml)")))
            }
        },
        (None, None) if s.path.is_some() => {
            return Err(loc.error_at(&s.name, "a file source needs `format` (jsonl, csv, edxml)"))
        }
        (None, None) => Format::Jsonl, // refused below: neither `path` nor `url`
    };
    if format == Format::Edxml && kind != SourceKind::Exchange {
        return Err(loc.error_at(
            &s.kind,
            "format = \"edxml\" reads exchange messages: kind must be \"exchange\"",
        ));
    }
    if format == Format::Edxml {
        if let Some(f) = s.fields.values().next() {
            return Err(loc.error_at(f, "fields do not apply to format = \"edxml\""));
        }
        if let Some(a) = s.aliases.values().flat_map(|t| t.values()).next() {
            return Err(loc.error_at(a, "aliases do not apply to format = \"edxml\""));
        }
    }
    let settle = match &s.settle {
        None => Duration::from_secs(2),
        Some(p) if format != Format::Edxml => {
            return Err(loc.error_at(p, "settle applies only to format = \"edxml\""))
        }
        Some(p) => humantime::parse_duration(p.get_ref()).map_err(|e| {
            loc.error_at(
                p,
                format!("bad duration {:?}: {e} (e.g. \"2s\")", p.get_ref()),
            )
        })?,
    };
    let max_file_size = match &s.max_file_size {
        None => DEFAULT_MAX_FILE_SIZE,
        Some(v) if format != Format::Edxml => {
            return Err(loc.error_at(v, "max_file_size applies only to format = \"edxml\""))
        }
        Some(v) => byte_size(v, "max_file_size", "\"128MiB\" or 134217728", loc)?,
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
            let literal = !p.get_ref().contains(['*', '?', '[']);
            if format == Format::Edxml && literal {
                // A directory of messages: its *.edxml and *.xml files.
                format!("{}/*", p.get_ref().trim_end_matches('/'))
            } else {
                p.get_ref().clone()
            }
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
        settle,
        max_file_size,
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

fn validate_http(
    s: &RawSource,
    u: &Spanned<String>,
    loc: &Locator,
    base: &Path,
) -> Result<HttpConfig, ConfigError> {
    let url = reqwest::Url::parse(u.get_ref().trim()).map_err(|e| {
        loc.error_at(
            u,
            format!(
                "bad URL {:?}: {e}",
                crate::sources::http::redact_url(u.get_ref())
            ),
        )
    })?;
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
            .find(|(name, _)| crate::sources::http::is_secret_name(name))
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
    url.query_pairs()
        .any(|(name, _)| crate::sources::http::is_secret_name(&name))
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

/// A byte size of at least 1 KiB: an integer, or a string for [`parse_size`].
fn byte_size(
    v: &Spanned<toml::Value>,
    key: &str,
    example: &str,
    loc: &Locator,
) -> Result<u64, ConfigError> {
    let n = match v.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(t) => parse_size(t),
        _ => None,
    };
    match n {
        Some(n) if n >= 1024 => Ok(n),
        _ => Err(loc.error_at(
            v,
            format!("{key} must be a size of at least 1KiB (e.g. {example})"),
        )),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    evaluation_interval: Option<Spanned<String>>,
    smtp: Option<Spanned<RawSmtp>>,
    dashboard_url: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    url: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<Recipients>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

/// `to = "a@x"` or `to = ["a@x", "b@x"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    fn list(&self) -> &[String] {
        match self {
            Recipients::One(s) => std::slice::from_ref(s),
            Recipients::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    direction: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    below: Option<Spanned<f64>>,
    #[serde(rename = "for")]
    for_duration: Option<Spanned<String>>,
    min_documents: Option<Spanned<u64>>,
    repeat_interval: Option<Spanned<String>>,
    stale_source: Option<Spanned<String>>,
    after: Option<Spanned<String>>,
}

/// Alerting (SPEC §6): how often rules are evaluated, where mail goes, the rules.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub evaluation_interval: Duration,
    pub smtp: SmtpConfig,
    /// Link put in every mail (the Grafana dashboard or docflowd's own page).
    pub dashboard_url: Option<String>,
    pub rules: Vec<AlertRule>,
}

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
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    /// Read at each connection, so a rotated credential needs no restart.
    pub password_file: Option<PathBuf>,
    pub timeout: Duration,
    /// PEM file of the CA that signed a private mail server's certificate.
    pub ca_file: Option<PathBuf>,
}

/// One alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub condition: AlertCondition,
    /// At most one reminder per this interval while firing.
    pub repeat_interval: Duration,
}

/// What makes a rule fire.
#[derive(Debug, Clone)]
pub enum AlertCondition {
    /// Fires while the compliance ratio of `direction` over `window` is below
    /// `below` for `for_duration`, with at least `min_documents` in the denominator.
    Ratio {
        direction: crate::model::Direction,
        window: crate::model::Window,
        below: f64,
        for_duration: Duration,
        min_documents: u64,
    },
    /// Fires when `source` has accepted no new event for `after`.
    Stale { source: String, after: Duration },
}

fn parse_duration_at(
    d: &Spanned<String>,
    loc: &Locator,
    example: &str,
) -> Result<Duration, ConfigError> {
    humantime::parse_duration(d.get_ref()).map_err(|e| {
        loc.error_at(
            d,
            format!("bad duration {:?}: {e} (e.g. \"{example}\")", d.get_ref()),
        )
    })
}

fn validate_alerts(
    raw: &RawAlerts,
    base: &Path,
    sources: &[SourceConfig],
    loc: &Locator,
) -> Result<Option<AlertsConfig>, ConfigError> {
    let evaluation_interval = match &raw.evaluation_interval {
        None => Duration::from_secs(30),
        Some(d) => {
            let v = parse_duration_at(d, loc, "30s")?;
            if v < Duration::from_millis(100) {
                return Err(loc.error_at(d, "evaluation_interval must be at least 100ms"));
            }
            v
        }
    };
    let dashboard_url = match &raw.dashboard_url {
        None => None,
        Some(u) => {
            let v = u.get_ref().trim();
            if !(v.starts_with("http://") || v.starts_with("https://"))
                || v.contains(char::is_whitespace)
            {
                return Err(loc.error_at(u, "dashboard_url must be an http:// or https:// URL"));
            }
            Some(v.to_string())
        }
    };
    let mut rules: Vec<AlertRule> = Vec::new();
    for r in &raw.rules {
        let rule = validate_rule(r, sources, loc)?;
        if rules.iter().any(|o| o.name == rule.name) {
            return Err(loc.error_at(
                &r.get_ref().name,
                format!("duplicate rule name {:?}", rule.name),
            ));
        }
        rules.push(rule);
    }
    let smtp = match &raw.smtp {
        Some(s) => validate_smtp(s.get_ref(), base, loc)?,
        None if rules.is_empty() => return Ok(None),
        None => {
            return Err(loc.error_at(
                &raw.rules[0],
                "alert rules need [alerts.smtp] (url, from, to) to send their mail",
            ))
        }
    };
    Ok(Some(AlertsConfig {
        evaluation_interval,
        smtp,
        dashboard_url,
        rules,
    }))
}

fn validate_rule(
    raw: &Spanned<RawRule>,
    sources: &[SourceConfig],
    loc: &Locator,
) -> Result<AlertRule, ConfigError> {
    let r = raw.get_ref();
    let name = r.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(loc.error_at(
            &r.name,
            "rule name must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    let repeat_interval = match &r.repeat_interval {
        None => Duration::from_secs(24 * 3600),
        Some(d) => {
            let v = parse_duration_at(d, loc, "24h")?;
            if v < Duration::from_secs(1) {
                return Err(loc.error_at(d, "repeat_interval must be at least 1s"));
            }
            v
        }
    };
    let condition = match &r.stale_source {
        Some(source) => {
            let ratio_keys = [
                r.direction.as_ref().map(|_| "direction"),
                r.window.as_ref().map(|_| "window"),
                r.below.as_ref().map(|_| "below"),
                r.for_duration.as_ref().map(|_| "for"),
                r.min_documents.as_ref().map(|_| "min_documents"),
            ];
            if let Some(k) = ratio_keys.into_iter().flatten().next() {
                return Err(loc.error_at(
                    source,
                    format!(
                        "a stale_source rule takes only `after` and `repeat_interval`, not `{k}`"
                    ),
                ));
            }
            if !sources.iter().any(|s| s.name == *source.get_ref()) {
                let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                return Err(loc.error_at(
                    source,
                    format!(
                        "unknown source {:?} (configured: {})",
                        source.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            let after = match &r.after {
                Some(a) => parse_duration_at(a, loc, "48h")?,
                None => {
                    return Err(
                        loc.error_at(source, "a stale_source rule needs `after` (e.g. \"48h\")")
                    )
                }
            };
            if after < Duration::from_secs(1) {
                if let Some(a) = &r.after {
                    return Err(loc.error_at(a, "after must be at least 1s"));
                }
            }
            AlertCondition::Stale {
                source: source.get_ref().clone(),
                after,
            }
        }
        None => {
            if let Some(a) = &r.after {
                return Err(loc.error_at(a, "`after` applies only to stale_source rules"));
            }
            let direction = match &r.direction {
                None => return Err(loc.error_at(
                    &r.name,
                    "a ratio rule needs `direction` (outgoing, incoming), or use `stale_source`",
                )),
                Some(d) => {
                    crate::model::Direction::from_canonical(d.get_ref()).ok_or_else(|| {
                        loc.error_at(
                            d,
                            format!("unknown direction {:?} (outgoing, incoming)", d.get_ref()),
                        )
                    })?
                }
            };
            let window = match &r.window {
                None => {
                    return Err(loc.error_at(
                        &r.name,
                        "a ratio rule needs `window` (day, 7d, 30d, month, year, all)",
                    ))
                }
                Some(w) => crate::model::Window::from_label(w.get_ref()).ok_or_else(|| {
                    loc.error_at(
                        w,
                        format!(
                            "unknown window {:?} (day, 7d, 30d, month, year, all)",
                            w.get_ref()
                        ),
                    )
                })?,
            };
            let below = match &r.below {
                None => {
                    return Err(
                        loc.error_at(&r.name, "a ratio rule needs `below` (a ratio, e.g. 1.0)")
                    )
                }
                Some(b) => {
                    let v = *b.get_ref();
                    if !(v > 0.0 && v <= 1.0) {
                        return Err(loc.error_at(b, "below must be a ratio in (0, 1], e.g. 0.95"));
                    }
                    v
                }
            };
            let for_duration = match &r.for_duration {
                None => Duration::ZERO,
                Some(d) => parse_duration_at(d, loc, "1h")?,
            };
            let min_documents = r.min_documents.as_ref().map_or(1, |m| *m.get_ref()).max(1);
            AlertCondition::Ratio {
                direction,
                window,
                below,
                for_duration,
                min_documents,
            }
        }
    };
    Ok(AlertRule {
        name,
        condition,
        repeat_interval,
    })
}

fn validate_smtp(s: &RawSmtp, base: &Path, loc: &Locator) -> Result<SmtpConfig, ConfigError> {
    let url = s.url.get_ref().trim();
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
    match (&username, &password_file) {
        (Some(_), None) => {
            if let Some(u) = &s.username {
                return Err(loc.error_at(u, "username needs password_file"));
            }
        }
        (None, Some(_)) => {
            if let Some(p) = &s.password_file {
                return Err(loc.error_at(p, "password_file needs username"));
            }
        }
        _ => {}
    }
    let timeout = match &s.timeout {
        None => Duration::from_secs(30),
        Some(t) => parse_duration_at(t, loc, "30s")?,
    };
    let ca_file = match &s.ca_file {
        None => None,
        Some(c) => {
            let path = resolve(base, c.get_ref());
            let pem = std::fs::read(&path).map_err(|e| {
                loc.error_at(c, format!("cannot read CA file {}: {e}", path.display()))
            })?;
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
            Some(path)
        }
    };
    Ok(SmtpConfig {
        url: url.to_string(),
        host: host.to_string(),
        port,
        security,
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
    fn edxml_sources_read_a_directory_of_exchange_messages() {
        let edxml = MINIMAL
            .replace("format = \"jsonl\"", "format = \"edxml\"")
            .replace("/var/log/vanban/exchange*.jsonl", "/var/lib/truc/archive/");
        let c = Config::parse(Path::new("d.toml"), &edxml).unwrap();
        assert_eq!(c.sources[0].format, Format::Edxml);
        assert_eq!(c.sources[0].path, "/var/lib/truc/archive/*");
        assert_eq!(c.sources[0].settle, Duration::from_secs(2));
        let e = err(&edxml.replace("kind = \"exchange\"", "kind = \"signature\""));
        assert!(
            e.contains("docflow.toml:11")
                && e.contains("`sources.kind`")
                && e.contains("kind must be \"exchange\""),
            "{e}"
        );
        let e = err(&MINIMAL.replace("format = \"jsonl\"", "format = \"jsonl\"\nsettle = \"1s\""));
        assert!(e.contains("settle applies only"), "{e}");
        let e = err(&edxml.replace(
            "format = \"edxml\"",
            "format = \"edxml\"\nsettle = \"soon\"",
        ));
        assert!(e.contains("bad duration"), "{e}");
    }

    #[test]
    fn edxml_max_file_size_is_a_byte_size_for_edxml_sources_only() {
        let edxml = MINIMAL
            .replace("format = \"jsonl\"", "format = \"edxml\"")
            .replace("/var/log/vanban/exchange*.jsonl", "/var/lib/truc/archive/");
        let c = Config::parse(Path::new("d.toml"), &edxml).unwrap();
        assert_eq!(c.sources[0].max_file_size, DEFAULT_MAX_FILE_SIZE);
        let with = |line: &str| {
            edxml.replace("format = \"edxml\"", &format!("format = \"edxml\"\n{line}"))
        };
        for (line, bytes) in [
            ("max_file_size = \"512MiB\"", 512 << 20),
            ("max_file_size = \"1 GiB\"", 1 << 30),
            ("max_file_size = 4096", 4096),
        ] {
            let c = Config::parse(Path::new("d.toml"), &with(line)).unwrap();
            assert_eq!(c.sources[0].max_file_size, bytes, "{line}");
        }
        for (line, expected) in [
            ("max_file_size = \"lots\"", "at least 1KiB"),
            ("max_file_size = 100", "at least 1KiB"),
            ("max_file_size = -1", "at least 1KiB"),
            ("max_file_size = true", "at least 1KiB"),
        ] {
            let e = err(&with(line));
            assert!(
                e.contains("docflow.toml:13")
                    && e.contains("`sources.max_file_size`")
                    && e.contains(expected),
                "{line}: {e}"
            );
        }
        let e = err(&MINIMAL.replace(
            "format = \"jsonl\"",
            "format = \"jsonl\"\nmax_file_size = \"1MiB\"",
        ));
        assert!(
            e.contains("`sources.max_file_size`")
                && e.contains("applies only to format = \"edxml\""),
            "{e}"
        );
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
            Some(crate::model::Channel::Electronic)
        );
        let e = err(&format!("{MINIMAL}[sources.fields]\nrole = \"Vai trò\"\n"));
        assert!(e.contains("unknown field \"role\""), "{e}");
        let e = err(&format!(
            "{MINIMAL}[sources.aliases.channel]\n\"fax\" = \"telepathy\"\n"
        ));
        assert!(e.contains("key `sources.aliases.channel.fax`"), "{e}");
    }

    #[test]
    fn empty_alerts_table_means_no_alerts() {
        let c = Config::parse(Path::new("d.toml"), &format!("{MINIMAL}\n[alerts]\n")).unwrap();
        assert!(c.alerts.is_none());
    }

    /// An `[alerts]` block whose password file is `pw`.
    fn alerts(pw: &Path, rules: &str) -> String {
        format!(
            "{MINIMAL}\n[alerts]\nevaluation_interval = \"10s\"\ndashboard_url = \"https://grafana.example.gov.vn/d/docflow\"\n\
             [alerts.smtp]\nurl = \"smtp://mail.example.gov.vn:587?tls=required\"\nfrom = \"docflow@example.gov.vn\"\n\
             to = [\"vanphong@example.gov.vn\", \"Chánh Văn phòng <cvp@example.gov.vn>\"]\nusername = \"docflow\"\n\
             password_file = \"{}\"\ntimeout = \"20s\"\n{rules}",
            pw.display()
        )
    }

    const RULES: &str = r#"
[[alerts.rules]]
name = "outgoing-30d"
direction = "outgoing"
window = "30d"
below = 1.0
for = "1h"
min_documents = 5
repeat_interval = "24h"
[[alerts.rules]]
name = "exchange-feed-stale"
stale_source = "exchange"
after = "48h"
"#;

    #[test]
    fn alert_rules_and_smtp_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp");
        std::fs::write(&pw, "secret\n").unwrap();
        let c = Config::parse(Path::new("d.toml"), &alerts(&pw, RULES)).unwrap();
        let a = c.alerts.unwrap();
        assert_eq!(a.evaluation_interval, Duration::from_secs(10));
        assert_eq!(a.smtp.host, "mail.example.gov.vn");
        assert_eq!(a.smtp.port, 587);
        assert_eq!(a.smtp.security, SmtpSecurity::StartTlsRequired);
        assert_eq!(a.smtp.to.len(), 2);
        assert_eq!(a.smtp.timeout, Duration::from_secs(20));
        assert_eq!(a.rules.len(), 2);
        match &a.rules[0].condition {
            AlertCondition::Ratio {
                window,
                below,
                for_duration,
                min_documents,
                ..
            } => {
                assert_eq!(*window, crate::model::Window::Days30);
                assert_eq!(*below, 1.0);
                assert_eq!(*for_duration, Duration::from_secs(3600));
                assert_eq!(*min_documents, 5);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&a.rules[1].condition, AlertCondition::Stale { source, after }
            if source == "exchange" && *after == Duration::from_secs(48 * 3600))
        );
        assert_eq!(a.rules[1].repeat_interval, Duration::from_secs(24 * 3600));

        // A single recipient may be a plain string; a whole-number threshold is fine.
        let text = alerts(&pw, &RULES.replace("below = 1.0", "below = 1")).replace(
            "to = [\"vanphong@example.gov.vn\", \"Chánh Văn phòng <cvp@example.gov.vn>\"]",
            "to = \"vanphong@example.gov.vn\"",
        );
        let a = Config::parse(Path::new("d.toml"), &text)
            .unwrap()
            .alerts
            .unwrap();
        assert_eq!(a.smtp.to, ["vanphong@example.gov.vn"]);
        assert!(
            matches!(a.rules[0].condition, AlertCondition::Ratio { below, .. } if below == 1.0)
        );
    }

    #[test]
    fn smtp_url_forms() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp");
        std::fs::write(&pw, "secret").unwrap();
        for (url, host, port, security) in [
            (
                "smtps://mail.example.gov.vn",
                "mail.example.gov.vn",
                465,
                SmtpSecurity::Wrapper,
            ),
            (
                "smtp://127.0.0.1:2525",
                "127.0.0.1",
                2525,
                SmtpSecurity::None,
            ),
            (
                "smtp://mail.example.gov.vn?tls=opportunistic",
                "mail.example.gov.vn",
                587,
                SmtpSecurity::StartTlsOpportunistic,
            ),
        ] {
            let text =
                alerts(&pw, RULES).replace("smtp://mail.example.gov.vn:587?tls=required", url);
            let s = Config::parse(Path::new("d.toml"), &text)
                .unwrap()
                .alerts
                .unwrap()
                .smtp;
            assert_eq!(
                (s.host.as_str(), s.port, s.security),
                (host, port, security),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_alert_config_is_refused_at_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp");
        std::fs::write(&pw, "secret").unwrap();
        let good = alerts(&pw, RULES);
        let cases = [
            (
                "stale_source = \"exchange\"",
                "stale_source = \"exchang\"",
                "alerts.rules.stale_source",
                "unknown source \"exchang\"",
            ),
            (
                "smtp://mail.example.gov.vn:587?tls=required",
                "http://mail.example.gov.vn",
                "alerts.smtp.url",
                "bad SMTP url",
            ),
            (
                "smtp://mail.example.gov.vn:587?tls=required",
                "smtp://mail.example.gov.vn?tls=maybe",
                "alerts.smtp.url",
                "tls=maybe",
            ),
            (
                "window = \"30d\"",
                "window = \"quarter\"",
                "alerts.rules.window",
                "unknown window",
            ),
            (
                "below = 1.0",
                "below = 95.0",
                "alerts.rules.below",
                "(0, 1]",
            ),
            (
                "for = \"1h\"",
                "for = \"soon\"",
                "alerts.rules.for",
                "bad duration",
            ),
            (
                "direction = \"outgoing\"",
                "direction = \"sideways\"",
                "alerts.rules.direction",
                "unknown direction",
            ),
            (
                "\"vanphong@example.gov.vn\",",
                "\"vanphong at example\",",
                "alerts.smtp.to",
                "bad address",
            ),
            (
                "after = \"48h\"",
                "after = \"48h\"\nwindow = \"day\"",
                "alerts.rules.stale_source",
                "not `window`",
            ),
            (
                "name = \"exchange-feed-stale\"",
                "name = \"outgoing-30d\"",
                "alerts.rules.name",
                "duplicate rule name",
            ),
            (
                "timeout = \"20s\"",
                "timeout = \"20s\"\nretries = 3",
                "alerts.smtp.retries",
                "unknown field",
            ),
        ];
        for (from, to, key, message) in cases {
            assert!(good.contains(from), "{from}");
            let e = err(&good.replacen(from, to, 1));
            assert!(e.starts_with("docflow.toml:"), "{e}");
            assert!(
                e.contains(&format!("key `{key}`")) && e.contains(message),
                "{from} -> {to}: {e}"
            );
        }
        // A missing password file is named with its line.
        let e = err(&alerts(&dir.path().join("missing"), RULES));
        let line = alerts(&pw, RULES)
            .lines()
            .position(|l| l.starts_with("password_file"))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!(
                "docflow.toml:{line}: key `alerts.smtp.password_file`"
            )),
            "{e}"
        );
        assert!(e.contains("cannot read password file"), "{e}");
        // Rules without a mail server.
        let e = err(&format!("{MINIMAL}\n[alerts]\n{RULES}"));
        assert!(e.contains("need [alerts.smtp]"), "{e}");
    }

    #[test]
    fn the_shipped_alerts_example_is_valid_once_its_password_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp");
        std::fs::write(&pw, "secret").unwrap();
        let text = include_str!("../config/alerts.example.toml").replace(
            "/run/credentials/docflowd.service/smtp",
            &pw.display().to_string(),
        );
        let c = Config::parse(Path::new("/etc/docflow/docflow.toml"), &text).unwrap();
        assert!(c.alerts.unwrap().rules.len() >= 2);
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../config/docflow.example.toml");
        let c = Config::parse(Path::new("/etc/docflow/docflow.toml"), text).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[1].csv_delimiter, b';');
        // Its commented edXML source, uncommented, is valid too.
        let start = text
            .find("# [[sources]]\n# name = \"truc-lien-thong\"")
            .unwrap();
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
            .collect();
        let c = Config::parse(
            Path::new("/etc/docflow/docflow.toml"),
            &format!("{text}\n{block}"),
        )
        .unwrap();
        assert_eq!(c.sources[2].format, Format::Edxml);
        assert_eq!(c.sources[2].max_file_size, 128 << 20);
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
    fn secrets_over_plain_http_need_allow_insecure_http() {
        let plain = HTTP.replace("https://hub.example.gov.vn", "http://hub.example.gov.vn");
        let loopback = HTTP.replace("https://hub.example.gov.vn", "http://127.0.0.1:8080");
        let refused = [
            (
                plain.clone(),
                "bearer_token_file = \"t\"\n",
                ":12: key `sources.bearer_token_file`",
            ),
            (
                plain.clone(),
                "username = \"u\"\npassword_file = \"p\"\n",
                ":13: key `sources.password_file`",
            ),
            (
                loopback.clone(),
                "bearer_token_file = \"t\"\n",
                ":12: key `sources.bearer_token_file`",
            ),
        ];
        for (base, extra, at) in refused {
            let e = err(&format!("{base}{extra}"));
            assert!(
                e.contains(at) && e.contains("allow_insecure_http = true"),
                "{extra:?}: {e}"
            );
        }
        let e = err(&HTTP.replace(
            "https://hub.example.gov.vn/api/v1/exchange",
            "http://hub.example.gov.vn/feed?agency=H40&api_key=s3cr3t",
        ));
        assert!(
            e.contains(":11: key `sources.url`") && e.contains("allow_insecure_http"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "a secret is never echoed: {e}");
        for name in [
            "X-API-Key",
            "x-auth-token",
            "PRIVATE-TOKEN",
            "X-Client-Secret",
            "Cookie",
            "X-Hub-Signature",
            "Proxy-Auth",
        ] {
            let e = err(&format!(
                "{plain}[sources.headers]\nX-Agency = \"H40\"\n\"{name}\" = \"abc\"\n"
            ));
            let at = format!(":14: key `sources.headers.{name}`");
            assert!(
                e.contains(&at) && e.contains("allow_insecure_http"),
                "{name}: {e}"
            );
            assert!(!e.contains("abc"), "a secret is never echoed: {e}");
        }
        let parse = |text: &str| Config::parse(Path::new("docflow.toml"), text);
        // Headers that are no credential, https, or the explicit opt-out: accepted.
        let c = parse(&format!(
            "{plain}[sources.headers]\nX-Agency = \"H40\"\nAccept-Language = \"vi\"\n"
        ))
        .unwrap();
        assert!(!c.sources[0].http.as_ref().unwrap().allow_insecure_http);
        parse(&format!(
            "{HTTP}bearer_token_file = \"t\"\n[sources.headers]\nX-API-Key = \"k\"\n"
        ))
        .unwrap();
        for base in [&plain, &loopback] {
            let c = parse(&format!(
                "{base}bearer_token_file = \"t\"\nallow_insecure_http = true\n\
                 [sources.headers]\nX-API-Key = \"k\"\n"
            ))
            .unwrap();
            let http = c.sources[0].http.as_ref().unwrap();
            assert!(http.allow_insecure_http && http.sends_secrets());
        }
        let e = err(&format!(
            "{plain}bearer_token_file = \"t\"\nallow_insecure_http = false\n"
        ));
        assert!(e.contains("key `sources.bearer_token_file`"), "{e}");
        let e = err(&format!("{MINIMAL}allow_insecure_http = true\n"));
        assert!(
            e.contains("key `sources.allow_insecure_http`") && e.contains("only to an HTTP"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_url_is_shown_without_its_secrets() {
        let e = err(&HTTP.replace(
            "https://hub.example.gov.vn/api/v1/exchange",
            "https://hub.example.gov.vn:99999/feed?agency=H40&access_token=s3cr3t",
        ));
        assert!(e.contains(":11: key `sources.url`"), "{e}");
        assert!(
            e.contains("agency=H40&access_token=REDACTED") && !e.contains("s3cr3t"),
            "{e}"
        );
    }

    #[test]
    fn web_config_file_is_loaded_relative_to_the_config_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docflow.toml");
        let with_web = MINIMAL.replace(
            "[storage]",
            "[server]\nweb_config_file = \"web.yml\"\n\n[storage]",
        );
        let e = Config::parse(&path, &with_web).unwrap_err().to_string();
        assert!(
            e.contains(":7: key `server.web_config_file`") && e.contains("web.yml"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("web.yml"),
            "basic_auth_users:\n  u: not-a-hash\n",
        )
        .unwrap();
        let e = Config::parse(&path, &with_web).unwrap_err().to_string();
        assert!(e.contains("basic_auth_users.u"), "{e}");
        std::fs::write(dir.path().join("web.yml"), "").unwrap();
        let c = Config::parse(&path, &with_web).unwrap();
        assert!(c.server.web.is_some_and(|w| !w.tls() && !w.basic_auth()));
        assert!(Config::parse(&path, MINIMAL).unwrap().server.web.is_none());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
    }
}
