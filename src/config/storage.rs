//! `[agency]`, `[storage]`, `[server]` and `[classify]`: who we are, where
//! the store lives, where we listen, which signatures a document needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::locate::{parse_size, resolve, ConfigError, Locator};
use super::raw::{RawAgency, RawClassify, RawServer, RawStorage};
use crate::model::Role;
use crate::parse::normalize::Aliases;

#[derive(Debug, Clone)]
pub struct Agency {
    pub(crate) code: String,
    pub name: String,
    pub(crate) timezone: Tz,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub path: PathBuf,
    /// sled page cache in bytes.
    pub(crate) cache_capacity: u64,
    /// Largest snapshot `docflowd import` reads.
    pub(crate) max_import_size: u64,
    /// What the daemon does with a store that fails a check.
    pub(crate) on_damage: OnDamage,
    /// Time between background full checks (`None`: never, only at start).
    pub(crate) scrub_interval: Option<Duration>,
}

/// What the daemon does when the store fails a check (it never serves
/// numbers from it either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDamage {
    /// Rebuild from the logs beside it, keep it for inspection, swap.
    Rebuild,
    /// Wait for the operator (503 everywhere).
    Refuse,
}

/// Default `storage.scrub_interval`.
pub(crate) const DEFAULT_SCRUB_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default sled cache: small enough for a commune server, large enough for ingest.
pub(crate) const DEFAULT_CACHE_CAPACITY: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// Where `server.listen` stands in the file, for bind errors at start.
    pub listen_location: String,
    /// TLS and basic auth from `server.web_config_file` (exporter-toolkit format).
    pub(crate) web: Option<Arc<crate::web::WebConfig>>,
    /// Host names requests may name besides `localhost`, this machine's name and IP literals.
    pub(crate) allowed_hosts: Vec<String>,
    /// Connections open at once on `listen`.
    pub(crate) max_connections: usize,
}

pub(super) fn agency(raw: &RawAgency, loc: &Locator) -> Result<Agency, ConfigError> {
    if raw.code.trim().is_empty() {
        return Err(loc.missing("agency.code", "must not be empty"));
    }
    let timezone = match &raw.timezone {
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
    Ok(Agency {
        code: raw.code.trim().to_string(),
        name: raw.name.trim().to_string(),
        timezone,
    })
}

pub(super) fn storage(
    raw: &RawStorage,
    base: &Path,
    loc: &Locator,
) -> Result<Storage, ConfigError> {
    let cache_capacity = match &raw.cache_capacity {
        None => DEFAULT_CACHE_CAPACITY,
        Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
            loc.error_at(s, format!("bad size {:?} (e.g. \"64MiB\")", s.get_ref()))
        })?,
    };
    let max_import_size = match &raw.max_import_size {
        None => crate::store::snapshot::DEFAULT_MAX_IMPORT_BYTES,
        Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
            loc.error_at(s, format!("bad size {:?} (e.g. \"64GiB\")", s.get_ref()))
        })?,
    };
    let on_damage = match raw.on_damage.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "rebuild")) => OnDamage::Rebuild,
        Some((_, "refuse")) => OnDamage::Refuse,
        Some((s, other)) => {
            return Err(loc.error_at(s, format!("unknown on_damage {other:?} (rebuild, refuse)")))
        }
    };
    let scrub_interval = match &raw.scrub_interval {
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
    Ok(Storage {
        path: resolve(base, &raw.path.to_string_lossy()),
        cache_capacity,
        max_import_size,
        on_damage,
        scrub_interval,
    })
}

pub(super) fn server(raw: &RawServer, base: &Path, loc: &Locator) -> Result<Server, ConfigError> {
    let max_connections = match &raw.max_connections {
        None => crate::server::DEFAULT_MAX_CONNECTIONS,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(n @ 1..=65_536) => n,
            _ => return Err(loc.error_at(n, "must be between 1 and 65536")),
        },
    };
    let (listen, listen_location) = match &raw.listen {
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
    let web = match &raw.web_config_file {
        None => None,
        Some(f) => {
            let file = resolve(base, f.get_ref());
            let web = crate::web::WebConfig::load(&file).map_err(|e| loc.error_at(f, e))?;
            Some(Arc::new(web))
        }
    };
    Ok(Server {
        listen,
        listen_location,
        web,
        allowed_hosts: raw.allowed_hosts.clone(),
        max_connections,
    })
}

/// The bit mask of `classify.required_signature_roles` (default: both roles).
pub(super) fn required_roles(raw: &RawClassify, loc: &Locator) -> Result<u8, ConfigError> {
    let Some(roles) = &raw.required_signature_roles else {
        return Ok(Role::Person.bit() | Role::Organization.bit());
    };
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
    Ok(mask)
}
