//! What was typed: the TOML shape of the config file, read by serde with
//! `deny_unknown_fields`, every value kept with its span for error messages.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) agency: RawAgency,
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) classify: RawClassify,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    pub(super) alerts: Option<RawAlerts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgency {
    pub(super) code: String,
    #[serde(default)]
    pub(super) name: String,
    pub(super) timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) path: PathBuf,
    pub(super) cache_capacity: Option<Spanned<String>>,
    pub(super) max_import_size: Option<Spanned<String>>,
    pub(super) on_damage: Option<Spanned<String>>,
    pub(super) scrub_interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) web_config_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    pub(super) max_connections: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClassify {
    pub(super) required_signature_roles: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) format: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) poll_interval: Option<Spanned<String>>,
    pub(super) csv_delimiter: Option<Spanned<String>>,
    // HTTP feed sources only (README "HTTP feed sources").
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) page_size: Option<Spanned<i64>>,
    pub(super) cursor_param: Option<Spanned<String>>,
    pub(super) events_field: Option<Spanned<String>>,
    pub(super) next_cursor_field: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) bearer_token_file: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) max_response_bytes: Option<Spanned<toml::Value>>,
    pub(super) allow_insecure_http: Option<Spanned<bool>>,
    /// edXML: how long a file's size and mtime must stay unchanged before it is read.
    pub(super) settle: Option<Spanned<String>>,
    /// edXML: larger files are rejected unread.
    pub(super) max_file_size: Option<Spanned<toml::Value>>,
    /// edXML: verify the PDF attachments' signatures too.
    pub(super) verify_attachments: Option<Spanned<bool>>,
    /// PDF verification (format = "pdf", or edXML with verify_attachments).
    pub(super) trust_anchors: Option<Spanned<Vec<String>>>,
    pub(super) intermediates: Option<Spanned<Vec<String>>>,
    pub(super) crl_files: Option<Spanned<Vec<String>>>,
    pub(super) allow_sha1: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) role_rules: Vec<RawRoleRule>,
    #[serde(default)]
    pub(super) fields: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) aliases: BTreeMap<String, BTreeMap<String, Spanned<String>>>,
}

/// `[[sources.role_rules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoleRule {
    pub(super) role: Spanned<String>,
    pub(super) subject_matches: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    pub(super) evaluation_interval: Option<Spanned<String>>,
    pub(super) smtp: Option<Spanned<RawSmtp>>,
    pub(super) dashboard_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) url: Spanned<String>,
    pub(super) from: Spanned<String>,
    pub(super) to: Spanned<Recipients>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
}

/// `to = "a@x"` or `to = ["a@x", "b@x"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    pub(super) fn list(&self) -> &[String] {
        match self {
            Recipients::One(s) => std::slice::from_ref(s),
            Recipients::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: Spanned<String>,
    pub(super) direction: Option<Spanned<String>>,
    pub(super) window: Option<Spanned<String>>,
    pub(super) below: Option<Spanned<f64>>,
    #[serde(rename = "for")]
    pub(super) for_duration: Option<Spanned<String>>,
    pub(super) min_documents: Option<Spanned<u64>>,
    pub(super) repeat_interval: Option<Spanned<String>>,
    pub(super) stale_source: Option<Spanned<String>>,
    pub(super) after: Option<Spanned<String>>,
}
