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
    web_config_file: Option<Spanned<String>>,
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
    format: Spanned<String>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    csv_delimiter: Option<Spanned<String>>,
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
    /// TLS and basic auth from `server.web_config_file` (exporter-toolkit format).
    pub web: Option<std::sync::Arc<crate::web::WebConfig>>,
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
}

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
        let mut source = validate_source(s, loc)?;
        source.path = resolve(&base, &source.path).to_string_lossy().into_owned();
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
            web,
        },
        required_roles,
        sources,
        raw: toml::Table::new(),
    })
}

fn validate_source(s: &RawSource, loc: &Locator) -> Result<SourceConfig, ConfigError> {
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
    let format = match s.format.get_ref().as_str() {
        "jsonl" => Format::Jsonl,
        "csv" => Format::Csv,
        other => {
            return Err(loc.error_at(&s.format, format!("unknown format {other:?} (jsonl, csv)")))
        }
    };
    let path = match (&s.path, &s.url) {
        (Some(p), None) => {
            glob::Pattern::new(p.get_ref())
                .map_err(|e| loc.error_at(p, format!("bad glob {:?}: {e}", p.get_ref())))?;
            if p.get_ref().trim().is_empty() {
                return Err(loc.error_at(p, "empty path"));
            }
            p.get_ref().clone()
        }
        (_, Some(u)) => {
            return Err(loc.error_at(
                u,
                "HTTP feed sources are not supported by this version of docflowd; use `path`",
            ))
        }
        (None, None) => {
            return Err(loc.error_at(&s.name, "a source needs `path` (a glob of files)"));
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
