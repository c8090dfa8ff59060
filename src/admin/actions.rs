//! The admin actions: export streams a copy of the store taken between two
//! commits (so a slow reader never holds up ingestion or shutdown); import
//! reads a snapshot into a staging store inside the store directory and,
//! once it is complete and checked, hands it to the daemon to restart on.

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{AdminState, Who};
use crate::config::Config;
use crate::store::snapshot::{ImportRules, Summary};
use crate::store::{keys, swap, Settings, Store};

/// Reads a snapshot into a new store at `staged` (a staging directory inside
/// the store directory): checked as untrusted input, alert state taken from
/// `carry_from` (the live store) instead of the snapshot, per-day counts
/// recounted from the documents. On error nothing is left at `staged`.
pub(crate) fn stage_import(
    config: &Config,
    staged: &Path,
    input: impl BufRead,
    carry_from: Option<&Store>,
) -> anyhow::Result<Summary> {
    swap::discard(staged);
    let result = (|| -> anyhow::Result<Summary> {
        let mut store = Store::open(staged, config.storage.cache_capacity)?;
        let rules = ImportRules {
            agency: config.agency.code.clone(),
            max_bytes: config.storage.max_import_size,
        };
        let summary = store.import(input, &rules)?;
        if let Some(live) = carry_from {
            for prefix in keys::ALERT_PREFIXES {
                store.put_raw(&live.raw_with_prefix(prefix)?)?;
            }
        }
        let settings = Settings {
            timezone: config.agency.timezone.name().to_string(),
            required_roles: config.required_roles,
        };
        let (tz, roles) = (config.agency.timezone, config.required_roles);
        store.recount(&settings, |doc| crate::aggregate::Slot::of(doc, tz, roles))?;
        store.flush()?;
        Ok(summary)
    })();
    if result.is_err() {
        swap::discard(staged);
    }
    result
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `GET /api/v1/export`: the store as a snapshot.
pub(super) async fn export(
    State(s): State<AdminState>,
    Extension(who): Extension<Who>,
) -> Response {
    let (store, dir, stop) = (
        s.store.clone(),
        s.config.storage.path.clone(),
        s.stop.clone(),
    );
    let spooled =
        tokio::task::spawn_blocking(move || store.spool(&dir, &|| stop.is_cancelled())).await;
    let spool = match spooled {
        Ok(Ok(spool)) => spool,
        Ok(Err(e)) => {
            s.audit(&who, "export", "failed", &e.to_string());
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("export failed: {e}"),
            );
        }
        Err(e) => {
            s.audit(&who, "export", "failed", &e.to_string());
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut header_fields = serde_json::Map::new();
    header_fields.insert("agency".into(), json!(s.config.agency.code));
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        match spool.export(header_fields, &mut w) {
            Ok(summary) => s.audit(&who, "export", "ok", &format!("{summary:?}")),
            Err(e) => {
                // The client sees a cut body: the snapshot has no end line.
                s.audit(&who, "export", "failed", &e.to_string());
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/jsonl; charset=utf-8")],
        axum::body::Body::new(ChannelBody(rx)),
    )
        .into_response()
}

/// `POST /api/v1/import`: body = a snapshot; the daemon restarts on it.
pub(super) async fn import(
    State(s): State<AdminState>,
    Extension(who): Extension<Who>,
    body: axum::body::Body,
) -> Response {
    if s.importing.swap(true, Ordering::SeqCst) {
        s.audit(&who, "import", "refused", "another import is running");
        return error(StatusCode::CONFLICT, "another import is running".into());
    }
    let staged = swap::staging_dir(&s.config.storage.path, "import");
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let task = {
        let (config, staged, live) = (s.config.clone(), staged.clone(), s.store.clone());
        tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::new(ChannelReader {
                rx,
                current: bytes::Bytes::new(),
            });
            stage_import(&config, &staged, reader, Some(&live)).map_err(|e| format!("{e:#}"))
        })
    };
    let fed = feed(body, tx, s.config.storage.max_import_size).await;
    let result = match task.await {
        Ok(Ok(summary)) => match fed {
            Ok(()) => Ok(summary),
            Err(e) => {
                swap::discard(&staged);
                Err(e)
            }
        },
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(summary) => {
            s.audit(&who, "import", "ok", &format!("{summary:?}"));
            s.restart.request(staged);
            let closed = s.tcp_closed.cancelled();
            if tokio::time::timeout(std::time::Duration::from_secs(5), closed)
                .await
                .is_err()
            {
                tracing::warn!("the listener did not stop accepting within 5 s of the import");
            }
            Json(json!({"imported": summary, "restarting": true})).into_response()
        }
        Err(e) => {
            s.importing.store(false, Ordering::SeqCst);
            s.audit(&who, "import", "failed", &e);
            error(StatusCode::BAD_REQUEST, e)
        }
    }
}

/// `POST /api/v1/verify`: the full check, beside the writer (holding commits
/// at most half the time); damage found is reported like a scrub's.
pub(super) async fn verify(
    State(s): State<AdminState>,
    Extension(who): Extension<Who>,
) -> Response {
    let (store, stop) = (s.store.clone(), s.stop.clone());
    let ran = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.verify(&crate::store::verify::VerifyOptions {
                lock_share: 0.5,
                stop: &|| stop.is_cancelled(),
                progress: &|_| {},
                deep: None,
            })
        }))
    })
    .await;
    match ran {
        Ok(Ok(Ok(Some(r)))) => {
            s.audit(
                &who,
                "verify",
                "ok",
                &format!("{} keys, {} pages", r.keys, r.pages),
            );
            Json(json!({"sound": true, "keys": r.keys, "pages": r.pages, "elapsed_ms": r.elapsed.as_millis() as u64})).into_response()
        }
        Ok(Ok(Ok(None))) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopped before the check finished".into(),
        ),
        Ok(Ok(Err(e))) => {
            s.audit(&who, "verify", "failed", &e.to_string());
            if e.is_damage() {
                s.health.health.report_damage(&e.to_string());
            }
            Json(json!({"sound": false, "error": e.to_string()})).into_response()
        }
        Ok(Err(_)) | Err(_) => {
            let what = "the store panicked while being read";
            s.audit(&who, "verify", "failed", what);
            s.health.health.report_damage(what);
            Json(json!({"sound": false, "error": what})).into_response()
        }
    }
}

/// Longest wait for the next piece of an import's body.
const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends the request body's chunks to the import until it ends. Once the
/// import stops reading (it refused the snapshot; its error is reported),
/// the rest is read and dropped up to `cap` bytes, so that the client, still
/// sending, receives the reason instead of a broken pipe.
async fn feed(
    mut body: axum::body::Body,
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    cap: u64,
) -> Result<(), String> {
    let mut tx = Some(tx);
    let mut dropped = 0u64;
    loop {
        let next = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        });
        let frame = match tokio::time::timeout(BODY_IDLE, next).await {
            Ok(frame) => frame,
            Err(_) => {
                return Err(format!(
                    "no data for {} s: the upload stalled",
                    BODY_IDLE.as_secs()
                ))
            }
        };
        match frame {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("reading the snapshot: {e}")),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                match &tx {
                    Some(sender) => {
                        if sender.send(data).await.is_err() {
                            tx = None;
                        }
                    }
                    None => {
                        dropped += data.len() as u64;
                        if dropped > cap {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// A response body fed by a channel of chunks.
struct ChannelBody(tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(|v| http_body::Frame::data(bytes::Bytes::from(v)))))
    }
}

/// Writes into the channel of a [`ChannelBody`] in chunks; fails once the
/// connection is gone (the server drops a client that stops reading).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        }
        Ok(())
    }
}

/// Reads a request body as a blocking `Read`, fed by the async handler.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
