//! The read model: what the HTTP API, the metrics and the alerts read while
//! the writer works — per-day counts, the sources' progress, and the health
//! of the store (checks passed, damage found, writes failing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use tracing::info;

use crate::aggregate::Aggregates;
use crate::config::Config;
use crate::sources::SourceHandle;
use crate::store::{Settings, Store};

use tokio_util::sync::CancellationToken;

/// Store health, shared by the writer, the checks and the HTTP handlers.
#[derive(Default)]
pub(crate) struct StoreHealth {
    verified: AtomicBool,
    damaged: CancellationToken,
    what: Mutex<Option<String>>,
}

impl StoreHealth {
    /// The full check of this start passed: documents may be served.
    pub(crate) fn set_verified(&self) {
        self.verified.store(true, Ordering::Relaxed);
    }

    pub(crate) fn verified(&self) -> bool {
        self.verified.load(Ordering::Relaxed)
    }

    /// Records damage (the first report wins) and wakes whoever waits for it.
    pub(crate) fn report_damage(&self, what: &str) {
        let mut slot = self.what.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(what.to_string());
        }
        self.damaged.cancel();
    }

    pub(crate) fn is_damaged(&self) -> bool {
        self.damaged.is_cancelled()
    }

    /// What the damage is, once reported.
    pub(crate) fn damage(&self) -> Option<String> {
        self.what.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves when damage is reported.
    pub(crate) async fn damaged(&self) {
        self.damaged.cancelled().await
    }
}

/// State shared with the HTTP API and metrics.
pub(crate) struct Shared {
    pub(crate) aggregates: RwLock<Aggregates>,
    pub sources: Vec<Arc<SourceHandle>>,
    /// False while the store refuses writes.
    pub(crate) store_ok: AtomicBool,
    /// Writes failing in this process (across restarts of the pipeline).
    pub(crate) writes: Arc<WriteHealth>,
    /// Whether the store passed its checks (documents are served only then).
    pub(crate) health: StoreHealth,
}

impl Shared {
    /// The state of a daemon (or rebuild) starting with `aggregates` and `sources`.
    pub(crate) fn new(
        aggregates: Aggregates,
        sources: Vec<Arc<SourceHandle>>,
        writes: Arc<WriteHealth>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            aggregates: RwLock::new(aggregates),
            sources,
            store_ok: AtomicBool::new(!writes.failing()),
            writes,
            health: Default::default(),
        })
    }
}

/// Whether store writes fail, for the life of the process: a failure is
/// logged at ERROR once, not at each retry or restart of the pipeline.
#[derive(Default)]
pub(crate) struct WriteHealth {
    failing: AtomicBool,
}

impl WriteHealth {
    pub(crate) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Records a failure; whether writes were already failing.
    pub(crate) fn fail(&self) -> bool {
        self.failing.swap(true, Ordering::Relaxed)
    }

    /// Records that writes work; whether they were failing until now.
    pub(crate) fn recovered(&self) -> bool {
        self.failing.swap(false, Ordering::Relaxed)
    }
}

/// Opens the store, checks that its counts are those of its last commit, and
/// brings them in line with the configured settings.
pub(crate) fn open_store(config: &Config) -> anyhow::Result<(Store, crate::aggregate::Aggregates)> {
    std::fs::create_dir_all(&config.storage.path).with_context(|| {
        format!(
            "cannot create storage directory {}",
            config.storage.path.display()
        )
    })?;
    let store = Store::open(&config.storage.path, config.storage.cache_capacity)?;
    store.check_quick()?;
    let settings = Settings {
        timezone: config.agency.timezone.name().to_string(),
        required_roles: config.required_roles,
    };
    let aggregates = match store.settings()? {
        Some(s) if s == settings => store.aggregates()?,
        previous => {
            if previous.is_some() {
                info!("timezone or required signature roles changed: recounting documents");
            }
            let tz = config.agency.timezone;
            let roles = config.required_roles;
            store.recount(&settings, |doc| crate::aggregate::Slot::of(doc, tz, roles))?
        }
    };
    Ok((store, aggregates))
}
