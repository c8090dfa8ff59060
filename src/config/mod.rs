//! Configuration: the raw TOML shape (serde, `deny_unknown_fields`) and its
//! validation into a typed [`Config`], in one step; every error names file,
//! line and key.
//!
//! What was typed (`raw`) is kept apart from what it means; the validation is
//! split by concern: `storage` (agency, storage, server, classify), `source`
//! (files, edXML directories) with `http` and `secrets` (HTTP feeds),
//! `alerts` with `smtp`; `locate` turns spans into `file:line: key` errors.

mod alerts;
mod http;
mod locate;
mod pdf;
mod raw;
mod secrets;
mod smtp;
mod source;
mod storage;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use alerts::{AlertCondition, AlertRule, AlertsConfig};
pub use http::{HttpAuth, HttpConfig, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
pub use locate::ConfigError;
pub use pdf::{PdfInput, PdfVerify};
pub use secrets::redact_url;
pub use smtp::{SmtpConfig, SmtpSecurity};
pub use source::{EdxmlInput, FeedInput, FileInput, Input, SourceConfig, DEFAULT_MAX_FILE_SIZE};
#[cfg(test)]
pub(crate) use storage::DEFAULT_CACHE_CAPACITY;
pub(crate) use storage::{Agency, OnDamage, Server, Storage};

use locate::Locator;
use raw::RawConfig;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) file: PathBuf,
    pub agency: Agency,
    pub storage: Storage,
    pub server: Server,
    /// Bit mask of the signature roles a document needs (README "Classification").
    pub(crate) required_roles: u8,
    pub sources: Vec<SourceConfig>,
    /// The parsed TOML document, to tell what a reload changes.
    pub(crate) raw: toml::Table,
    /// Alert rules and mail settings (README "Alerts"); `None` when no rule is configured.
    pub alerts: Option<AlertsConfig>,
}

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
        let mut config = validate(&raw, path, &loc)?;
        config.raw = toml::from_str(text).unwrap_or_default();
        Ok(config)
    }
}

/// The one validation step: raw TOML to a typed [`Config`]. Relative paths
/// are relative to the config file's directory.
fn validate(raw: &RawConfig, path: &Path, loc: &Locator) -> Result<Config, ConfigError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let agency = storage::agency(&raw.agency, loc)?;
    let storage = storage::storage(&raw.storage, &base, loc)?;
    let server = storage::server(&raw.server, &base, loc)?;
    let required_roles = storage::required_roles(&raw.classify, loc)?;
    let mut sources: Vec<SourceConfig> = Vec::new();
    for s in &raw.sources {
        let source = source::validate_source(s, loc, &base)?;
        if sources.iter().any(|o| o.name == source.name) {
            return Err(loc.error_at(&s.name, format!("duplicate source name {:?}", source.name)));
        }
        sources.push(source);
    }
    let alerts = match &raw.alerts {
        None => None,
        Some(a) => alerts::validate_alerts(a, &base, &sources, loc)?,
    };
    Ok(Config {
        file: path.to_path_buf(),
        agency,
        storage,
        server,
        required_roles,
        sources,
        raw: toml::Table::new(),
        alerts,
    })
}
