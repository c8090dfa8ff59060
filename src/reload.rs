//! Config reload on SIGHUP (`systemctl reload`): the file is re-read and fully
//! validated; a bad file is refused and the running config kept. The web config
//! (TLS certificate and key, basic-auth users) takes effect at once; every other
//! changed key is named in a warning and waits for a restart, so no state is lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use tracing::{error, info, warn};

use crate::config::Config;
use crate::web::Web;

/// Outcome of the last reload, for `/metrics`.
pub(crate) struct ReloadStatus {
    ok: AtomicBool,
    last_success: AtomicI64,
}

impl Default for ReloadStatus {
    fn default() -> Self {
        ReloadStatus {
            ok: AtomicBool::new(true),
            last_success: AtomicI64::new(chrono::Utc::now().timestamp()),
        }
    }
}

impl crate::metrics::Collect for ReloadStatus {
    /// `docflow_config_last_reload_successful` and its timestamp.
    fn collect(&self, scrape: &crate::metrics::Scrape) {
        scrape
            .gauge(
                "docflow_config_last_reload_successful",
                "1 when the last config reload (SIGHUP) succeeded; 0 while a refused config waits to be fixed.",
            )
            .set(if self.ok.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            });
        scrape
            .gauge(
                "docflow_config_last_reload_success_timestamp_seconds",
                "Time of the last successful config load (start or reload).",
            )
            .set(self.last_success.load(Ordering::Relaxed) as f64);
    }
}

/// Keys applied at reload without a restart.
pub(crate) const LIVE_KEYS: &[&str] = &["server.web_config_file"];

/// Dotted keys whose values differ (tables one level deep, arrays as a whole),
/// leaving out [`LIVE_KEYS`].
pub(crate) fn restart_only_changes(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut changed = Vec::new();
    let mut top: Vec<&String> = old.keys().chain(new.keys()).collect();
    top.sort();
    top.dedup();
    for key in top {
        match (old.get(key), new.get(key)) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let mut inner: Vec<&String> = a.keys().chain(b.keys()).collect();
                inner.sort();
                inner.dedup();
                for k in inner {
                    let dotted = format!("{key}.{k}");
                    if a.get(k) != b.get(k) && !LIVE_KEYS.contains(&dotted.as_str()) {
                        changed.push(dotted);
                    }
                }
            }
            (a, b) if a != b => changed.push(key.clone()),
            _ => {}
        }
    }
    changed
}

/// Holds the config in force and applies new ones.
pub(crate) struct Reloader {
    file: PathBuf,
    running: toml::Table,
    web: Arc<Web>,
    status: Arc<ReloadStatus>,
}

impl Reloader {
    pub(crate) fn new(config: &Config, web: Arc<Web>, status: Arc<ReloadStatus>) -> Reloader {
        Reloader {
            file: config.file.clone(),
            running: config.raw.clone(),
            web,
            status,
        }
    }

    /// Re-reads the file; true when it was accepted.
    pub(crate) fn reload(&mut self) -> bool {
        let new = match Config::load(&self.file) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "config reload refused; the running config stays in force");
                self.status.ok.store(false, Ordering::Relaxed);
                return false;
            }
        };
        self.web.replace(new.server.web.clone());
        info!(
            web = crate::web::describe(new.server.web.as_deref()),
            "config reloaded; web settings applied"
        );
        crate::web::warn_if_weak(new.server.web.as_deref(), new.server.listen);
        for key in restart_only_changes(&self.running, &new.raw) {
            warn!(key = %key, "changed in the config file; takes effect at the next restart");
        }
        // Keep comparing against what actually runs, so the warning repeats
        // until the restart.
        if let Some(server) = new.raw.get("server").and_then(|s| s.get("web_config_file")) {
            let server_table = self
                .running
                .entry("server")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(t) = server_table.as_table_mut() {
                t.insert("web_config_file".into(), server.clone());
            }
        } else if let Some(t) = self
            .running
            .get_mut("server")
            .and_then(|s| s.as_table_mut())
        {
            t.remove("web_config_file");
        }
        self.status.ok.store(true, Ordering::Relaxed);
        self.status
            .last_success
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn changes_are_named_by_dotted_key_and_web_config_is_live() {
        let old = table("[agency]\ncode = \"A\"\nname = \"x\"\n[server]\nlisten = \"127.0.0.1:1\"\n[[sources]]\nname = \"e\"\n");
        let new = table("[agency]\ncode = \"A\"\nname = \"y\"\n[server]\nlisten = \"127.0.0.1:1\"\nweb_config_file = \"w.yml\"\n[[sources]]\nname = \"f\"\n[alerts]\n");
        assert_eq!(
            restart_only_changes(&old, &new),
            vec!["agency.name", "alerts", "sources"]
        );
        assert!(restart_only_changes(&old, &old).is_empty());
    }

    #[test]
    fn status_renders_both_gauges() {
        let s = ReloadStatus::default();
        s.ok.store(false, Ordering::Relaxed);
        let text = crate::metrics::render(&[&s]);
        assert!(
            text.contains("docflow_config_last_reload_successful 0\n"),
            "{text}"
        );
        assert!(text.contains("docflow_config_last_reload_success_timestamp_seconds "));
    }
}
