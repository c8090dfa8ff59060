//! TLS and basic authentication of the HTTP server, configured by a Prometheus
//! exporter-toolkit web config file (`server.web_config_file`), swappable at
//! reload: each new connection and request uses the current file's settings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tracing::warn;

/// Successful (user, password) checks remembered, so scrapes skip bcrypt.
const AUTH_CACHE_ENTRIES: usize = 256;
/// Highest bcrypt cost accepted: each check at cost 12 takes ~0.25 s of a
/// core, and a failed login is checked every time.
pub(crate) const MAX_BCRYPT_COST: u32 = 12;
/// Failed logins from one address within [`FAILURE_WINDOW`] before its
/// requests are answered 429 without a password check.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are remembered at most (the oldest are forgotten).
const FAILURE_ADDRESSES: usize = 4096;

/// The file's shape (exporter-toolkit `web-config.yml`, the subset docflowd serves).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// docflow's own key: users of `basic_auth_users` who may import and
    /// export over TLS (remote admin); none by default.
    admin_users: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_auth_type: Option<String>,
    min_version: Option<String>,
}

/// A validated web config: optional TLS, optional basic-auth users.
pub(crate) struct WebConfig {
    pub(crate) file: PathBuf,
    tls: Option<TlsAcceptor>,
    auth: Option<BasicAuth>,
    admin_users: HashSet<String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("file", &self.file)
            .field("tls", &self.tls.is_some())
            .field(
                "basic_auth_users",
                &self.auth.as_ref().map(|a| a.users.len()),
            )
            .finish()
    }
}

/// Users and their bcrypt hashes, with a cache of checks that passed.
struct BasicAuth {
    users: HashMap<String, String>,
    passed: Mutex<HashSet<(String, String)>>,
}

impl BasicAuth {
    fn check(&self, user: &str, password: &str) -> bool {
        let key = (user.to_string(), password.to_string());
        if self
            .passed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return true;
        }
        // An unknown user is checked against a configured hash all the same,
        // so the time taken does not reveal which user names exist.
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => match self.users.values().next() {
                Some(h) => (h.as_str(), false),
                None => return false,
            },
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            let mut passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
            if passed.len() >= AUTH_CACHE_ENTRIES {
                passed.clear();
            }
            passed.insert(key);
        }
        ok
    }
}

impl WebConfig {
    /// Reads and checks the file: certificate and key load, hashes are bcrypt.
    /// Relative paths are relative to the file's directory (as in exporter-toolkit).
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{file}: {e}"))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let err = |key: &str, message: String| format!("{file}: key `{key}`: {message}");
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => {
                let cert_file = base.join(&t.cert_file);
                let key_file = base.join(&t.key_file);
                let certs = CertificateDer::pem_file_iter(&cert_file)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        err(
                            "tls_server_config.cert_file",
                            format!("cannot load {}: {e}", cert_file.display()),
                        )
                    })?;
                if certs.is_empty() {
                    return Err(err(
                        "tls_server_config.cert_file",
                        format!("no certificate in {}", cert_file.display()),
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
                    err(
                        "tls_server_config.key_file",
                        format!("cannot load {}: {e}", key_file.display()),
                    )
                })?;
                match t.client_auth_type.as_deref() {
                    None | Some("NoClientCert") => {}
                    Some(other) => {
                        return Err(err(
                            "tls_server_config.client_auth_type",
                            format!("{other:?} is not supported (only NoClientCert)"),
                        ))
                    }
                }
                let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref()
                {
                    None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
                    Some("TLS13") => &[&rustls::version::TLS13],
                    Some(other) => {
                        return Err(err(
                            "tls_server_config.min_version",
                            format!("{other:?} is not supported (TLS12, TLS13)"),
                        ))
                    }
                };
                let mut config = ServerConfig::builder_with_protocol_versions(versions)
                    .with_no_client_auth()
                    .with_single_cert(certs, key)
                    .map_err(|e| {
                        err(
                            "tls_server_config",
                            format!("certificate and key do not fit: {e}"),
                        )
                    })?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(TlsAcceptor::from(Arc::new(config)))
            }
        };
        let auth = raw
            .basic_auth_users
            .map(|users| check_users(users, &err))
            .transpose()?;
        let admin_users: HashSet<String> =
            raw.admin_users.unwrap_or_default().into_iter().collect();
        if !admin_users.is_empty() {
            if tls.is_none() {
                return Err(err("admin_users", "remote admin needs tls_server_config: admin passwords must not cross the network in clear".into()));
            }
            for user in &admin_users {
                if !auth.as_ref().is_some_and(|a| a.users.contains_key(user)) {
                    return Err(err(
                        "admin_users",
                        format!("{user:?} is not in basic_auth_users"),
                    ));
                }
            }
        }
        Ok(WebConfig {
            file: path.to_path_buf(),
            tls,
            auth,
            admin_users,
        })
    }

    /// The TLS acceptor, when connections must use TLS.
    pub(crate) fn acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.clone()
    }

    /// Whether admin actions are allowed over TLS (`admin_users` set).
    pub(crate) fn remote_admin(&self) -> bool {
        self.tls.is_some() && !self.admin_users.is_empty()
    }

    /// Whether `user` has the admin role.
    pub(crate) fn is_admin(&self, user: &str) -> bool {
        self.admin_users.contains(user)
    }

    /// True when connections must use TLS.
    pub(crate) fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when requests need a user and password.
    pub(crate) fn basic_auth(&self) -> bool {
        self.auth.is_some()
    }
}

/// Checks basic-auth users: names without `:`, bcrypt hashes of a cost a
/// login can afford.
fn check_users(
    users: BTreeMap<String, String>,
    err: &dyn Fn(&str, String) -> String,
) -> Result<BasicAuth, String> {
    for (user, hash) in &users {
        if user.contains(':') || user.is_empty() {
            return Err(err(
                "basic_auth_users",
                format!("bad user name {user:?} (non-empty, no ':')"),
            ));
        }
        let key = format!("basic_auth_users.{user}");
        match hash.parse::<bcrypt::HashParts>().map(|h| h.get_cost()) {
            Err(_) => {
                return Err(err(
                    &key,
                    "not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                        .to_string(),
                ))
            }
            Ok(c) if c > MAX_BCRYPT_COST => {
                return Err(err(
                    &key,
                    format!("bcrypt cost {c} is over {MAX_BCRYPT_COST}: every login would take seconds of CPU (make a hash with `htpasswd -nBC 10`)"),
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(BasicAuth {
        users: users.into_iter().collect(),
        passed: Mutex::new(HashSet::new()),
    })
}

/// The web settings in force (replaced as a whole at reload) and the failed
/// logins per address (kept across reloads).
#[derive(Default)]
pub(crate) struct Web {
    config: RwLock<Option<Arc<WebConfig>>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Web {
    pub(crate) fn new(config: Option<Arc<WebConfig>>) -> Web {
        Web {
            config: RwLock::new(config),
            failures: Mutex::default(),
        }
    }

    /// The TLS acceptor of the config in force at each call, for the server.
    pub(crate) fn tls_now(self: &Arc<Self>) -> crate::server::TlsNow {
        let web = self.clone();
        Arc::new(move || web.current().and_then(|c| c.acceptor()))
    }

    pub(crate) fn current(&self) -> Option<Arc<WebConfig>> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn replace(&self, config: Option<Arc<WebConfig>>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Whether `ip` failed to log in too often lately.
    fn throttled(&self, ip: IpAddr, now: Instant) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(&ip).is_some_and(|(n, since)| {
            *n >= MAX_FAILURES && now.duration_since(*since) < FAILURE_WINDOW
        })
    }

    fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= FAILURE_ADDRESSES && !failures.contains_key(&ip) {
            failures.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            if failures.len() >= FAILURE_ADDRESSES {
                failures.clear();
            }
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// The user a request logged in as, as a request extension.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser(pub String);

/// Middleware: 401 unless the request carries a user and password of the
/// current `basic_auth_users` (no-op when there are none); 429 for an
/// address that failed too often in the last minute.
pub(crate) async fn require_basic_auth(
    State(web): State<Arc<Web>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(auth) = web.current().filter(|c| c.auth.is_some()) else {
        return next.run(req).await;
    };
    let ip = match req.extensions().get::<crate::server::Peer>() {
        Some(crate::server::Peer::Tcp(addr)) => Some(addr.ip()),
        _ => None,
    };
    if ip.is_some_and(|ip| web.throttled(ip, Instant::now())) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, FAILURE_WINDOW.as_secs().to_string())],
            "Too many failed logins; try again later\n",
        )
            .into_response();
    }
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    if let Some((user, password)) = credentials {
        // bcrypt costs tens of milliseconds: keep it off the async workers.
        let name = user.clone();
        let ok = tokio::task::spawn_blocking(move || {
            auth.auth
                .as_ref()
                .is_some_and(|a| a.check(&user, &password))
        })
        .await
        .unwrap_or(false);
        if ok {
            req.extensions_mut().insert(AuthUser(name));
            return next.run(req).await;
        }
    }
    if let Some(ip) = ip {
        web.record_failure(ip, Instant::now());
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"docflowd\"")],
        "Unauthorized\n",
    )
        .into_response()
}

/// Logs what a web config enables (once at start and at each reload).
pub(crate) fn describe(config: Option<&WebConfig>) -> &'static str {
    match config.map(|c| (c.tls(), c.basic_auth())) {
        None | Some((false, false)) => "plain HTTP, no authentication",
        Some((true, false)) => "TLS, no authentication",
        Some((false, true)) => "plain HTTP with basic authentication",
        Some((true, true)) => "TLS with basic authentication",
    }
}

/// Warns, at every start, about a listener other machines can reach without
/// the protection it needs: no TLS and no authentication lets anyone on the
/// network read every document's subject and the agency's figures; basic
/// authentication without TLS sends passwords in clear.
pub(crate) fn warn_if_weak(config: Option<&WebConfig>, listen: SocketAddr) {
    if listen.ip().is_loopback() {
        return;
    }
    match config {
        Some(c) if c.basic_auth() && !c.tls() => {
            warn!(file = %c.file.display(), %listen, "basic authentication without TLS on a non-loopback address sends passwords in clear");
        }
        Some(c) if c.basic_auth() => {}
        _ => {
            warn!(%listen, "listening beyond this machine without TLS and authentication: anyone on the network can read every document's number and subject; set server.web_config_file (see the README's security model)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let dir = tempfile::tempdir().unwrap();
        let c = WebConfig::load(&write(dir.path(), "web.yml", "")).unwrap();
        assert!(!c.tls() && !c.basic_auth());
    }

    #[test]
    fn bad_files_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = WebConfig::load(&write(
            dir.path(),
            "a.yml",
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
        ))
        .unwrap_err();
        assert!(
            e.contains("key `tls_server_config.cert_file`") && e.contains("missing.crt"),
            "{e}"
        );
        let e = WebConfig::load(&write(
            dir.path(),
            "b.yml",
            "basic_auth_users:\n  prometheus: secret\n",
        ))
        .unwrap_err();
        assert!(
            e.contains("key `basic_auth_users.prometheus`: not a bcrypt hash"),
            "{e}"
        );
        let e = WebConfig::load(&write(
            dir.path(),
            "c.yml",
            "http_server_config:\n  http2: false\n",
        ))
        .unwrap_err();
        assert!(
            e.contains("c.yml") && e.contains("http_server_config"),
            "{e}"
        );
    }

    #[test]
    fn a_bcrypt_cost_over_the_cap_is_refused_naming_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let costly = bcrypt::hash("pw", 4).unwrap().replacen("$04$", "$14$", 1);
        let e = WebConfig::load(&write(
            dir.path(),
            "w.yml",
            &format!("basic_auth_users:\n  prometheus: {costly}\n"),
        ))
        .unwrap_err();
        assert!(
            e.contains("basic_auth_users.prometheus") && e.contains("cost 14"),
            "{e}"
        );
        let fine = bcrypt::hash("pw", 4).unwrap();
        assert!(WebConfig::load(&write(
            dir.path(),
            "v.yml",
            &format!("basic_auth_users:\n  prometheus: {fine}\n")
        ))
        .is_ok());
    }

    #[test]
    fn admin_users_need_tls_and_a_known_user() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let e = WebConfig::load(&write(
            dir.path(),
            "a.yml",
            &format!("basic_auth_users:\n  quantri: {hash}\nadmin_users: [quantri]\n"),
        ))
        .unwrap_err();
        assert!(
            e.contains("admin_users") && e.contains("tls_server_config"),
            "{e}"
        );
    }

    #[test]
    fn failed_logins_are_throttled_per_address_for_a_minute() {
        let web = Web::new(None);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(!web.throttled(a, t0));
            web.record_failure(a, t0);
        }
        assert!(web.throttled(a, t0));
        assert!(!web.throttled(b, t0), "another address is not affected");
        assert!(!web.throttled(a, t0 + FAILURE_WINDOW), "the window ends");
    }

    #[test]
    fn basic_auth_checks_bcrypt_and_caches_only_successes() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth {
            users: HashMap::from([("prometheus".to_string(), hash)]),
            passed: Mutex::new(HashSet::new()),
        };
        assert!(!auth.check("prometheus", "wrong"));
        assert!(!auth.check("nobody", "s3cret"));
        assert!(auth.passed.lock().unwrap().is_empty());
        assert!(auth.check("prometheus", "s3cret"));
        assert_eq!(auth.passed.lock().unwrap().len(), 1);
        assert!(auth.check("prometheus", "s3cret"));
        assert!(!auth.check("prometheus", "s3cret "));
    }
}
