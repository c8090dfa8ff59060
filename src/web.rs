//! TLS and basic authentication of the HTTP server, configured by a Prometheus
//! exporter-toolkit web config file (`server.web_config_file`), swappable at
//! reload: each new connection and request uses the current file's settings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Successful (user, password) checks remembered, so scrapes skip bcrypt.
const AUTH_CACHE_ENTRIES: usize = 256;

/// The file's shape (exporter-toolkit `web-config.yml`, the subset docflowd serves).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
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
pub struct WebConfig {
    pub file: PathBuf,
    tls: Option<TlsAcceptor>,
    auth: Option<BasicAuth>,
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
        let auth = match raw.basic_auth_users {
            None => None,
            Some(users) => {
                for (user, hash) in &users {
                    if user.contains(':') || user.is_empty() {
                        return Err(err(
                            "basic_auth_users",
                            format!("bad user name {user:?} (non-empty, no ':')"),
                        ));
                    }
                    if bcrypt::verify("", hash).is_err() {
                        return Err(err(
                            &format!("basic_auth_users.{user}"),
                            "not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                                .to_string(),
                        ));
                    }
                }
                Some(BasicAuth {
                    users: users.into_iter().collect(),
                    passed: Mutex::new(HashSet::new()),
                })
            }
        };
        Ok(WebConfig {
            file: path.to_path_buf(),
            tls,
            auth,
        })
    }

    /// True when connections must use TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when requests need a user and password.
    pub fn basic_auth(&self) -> bool {
        self.auth.is_some()
    }
}

/// The web settings in force; replaced as a whole at reload.
#[derive(Default)]
pub struct Web(RwLock<Option<Arc<WebConfig>>>);

impl Web {
    pub fn new(config: Option<Arc<WebConfig>>) -> Web {
        Web(RwLock::new(config))
    }

    pub fn current(&self) -> Option<Arc<WebConfig>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, config: Option<Arc<WebConfig>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

/// Middleware: 401 unless the request carries a user and password of the
/// current `basic_auth_users` (no-op when there are none).
pub async fn require_basic_auth(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    let Some(auth) = web.current().filter(|c| c.auth.is_some()) else {
        return next.run(req).await;
    };
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
        let ok = tokio::task::spawn_blocking(move || {
            auth.auth
                .as_ref()
                .is_some_and(|a| a.check(&user, &password))
        })
        .await
        .unwrap_or(false);
        if ok {
            return next.run(req).await;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"docflowd\"")],
        "Unauthorized\n",
    )
        .into_response()
}

/// A connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The server's listener: accepts TCP, does TLS handshakes in their own tasks
/// (a slow client cannot hold up others) and hands over finished connections.
pub struct WebListener {
    ready: tokio::sync::mpsc::Receiver<(Conn, SocketAddr)>,
    addr: SocketAddr,
}

impl WebListener {
    pub fn new(listener: TcpListener, web: Arc<Web>, stop: CancellationToken) -> WebListener {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and friends: wait rather than spin.
                            debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                match web.current().and_then(|c| c.tls.clone()) {
                    None => {
                        if tx.send((Conn::Plain(stream), peer)).await.is_err() {
                            return;
                        }
                    }
                    Some(acceptor) => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(tls)) => {
                                    let _ = tx.send((Conn::Tls(Box::new(tls)), peer)).await;
                                }
                                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
        });
        WebListener { ready, addr }
    }
}

impl axum::serve::Listener for WebListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task stopped: shutdown is under way, no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Logs what a web config enables (once at start and at each reload).
pub fn describe(config: Option<&WebConfig>) -> &'static str {
    match config.map(|c| (c.tls(), c.basic_auth())) {
        None | Some((false, false)) => "plain HTTP, no authentication",
        Some((true, false)) => "TLS, no authentication",
        Some((false, true)) => "plain HTTP with basic authentication",
        Some((true, true)) => "TLS with basic authentication",
    }
}

/// Warns when basic auth is on without TLS: passwords then cross the network in clear.
pub fn warn_if_weak(config: Option<&WebConfig>, listen: SocketAddr) {
    if let Some(c) = config {
        if c.basic_auth() && !c.tls() && !listen.ip().is_loopback() {
            warn!(file = %c.file.display(), "basic authentication without TLS on a non-loopback address sends passwords in clear");
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
