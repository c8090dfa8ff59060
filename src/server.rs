//! Serving HTTP with limits: a cap on open connections (the oldest connection
//! that is waiting for a request gives its place to a new one), a deadline
//! for each request's headers (which also ends idle keep-alive connections),
//! a deadline for a client that stops reading a response, and a bounded drain
//! at shutdown. The public TCP listener and the local admin socket both use it.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::debug;

use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A connection, plain or TLS.
pub(crate) enum Conn {
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

/// The TLS acceptor of the web config in force, asked at each new
/// connection (`None`: plain HTTP).
pub type TlsNow = Arc<dyn Fn() -> Option<TlsAcceptor> + Send + Sync>;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time a client has to send a request's headers, counted from the
    /// connection or from the previous response: slow and idle clients alike.
    pub(crate) header_timeout: Duration,
    /// Time a response write may wait on a client that does not read.
    pub(crate) write_timeout: Duration,
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// Time open connections get to finish at shutdown.
    pub(crate) drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain: Duration::from_secs(5),
        }
    }
}

/// Default `server.max_connections`: far below the unit's `LimitNOFILE`.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Largest request head (request line and headers) read from a client.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Who is at the other end of a connection, as a request extension.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    Tcp(SocketAddr),
    /// A local process on the admin socket, by its kernel-reported credentials.
    Unix {
        uid: u32,
        pid: Option<i32>,
    },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix {
                uid,
                pid: Some(pid),
            } => write!(f, "uid {uid} (pid {pid})"),
            Peer::Unix { uid, pid: None } => write!(f, "uid {uid}"),
        }
    }
}

/// One open connection in the registry.
struct Slot {
    /// True while the connection waits for a request (no handler and no body running).
    idle: Arc<AtomicBool>,
    evict: CancellationToken,
}

/// The open connections of one listener, oldest first.
struct Registry {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Slot>>,
    /// One permit per socket still open: an evicted connection leaves `open`
    /// at once but holds its socket until its task runs again, which on a
    /// loaded machine can lag behind the accept loop by hundreds of sockets.
    sockets: Arc<tokio::sync::Semaphore>,
}

impl Registry {
    fn new(max: usize) -> Self {
        Registry {
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            sockets: Arc::new(tokio::sync::Semaphore::new(max)),
        }
    }

    /// Waits until an evicted connection has closed its socket, so the
    /// daemon never holds more than `max` client sockets (plus the one waiting);
    /// `None` when `stop` comes first.
    async fn socket_room(&self, stop: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            _ = stop.cancelled() => None,
            permit = self.sockets.clone().acquire_owned() => permit.ok(),
        }
    }

    /// Registers a new connection; at the cap, evicts the oldest idle one,
    /// or refuses the new one when every connection is busy.
    fn admit(&self, max: usize) -> Option<(u64, Arc<AtomicBool>, CancellationToken)> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= max {
            let oldest_idle = open
                .iter()
                .find(|(_, s)| s.idle.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(slot) = open.remove(&oldest_idle) {
                slot.evict.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let idle = Arc::new(AtomicBool::new(true));
        let evict = CancellationToken::new();
        open.insert(
            id,
            Slot {
                idle: idle.clone(),
                evict: evict.clone(),
            },
        );
        Some((id, idle, evict))
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// Serves `router` on the TCP listener (TLS per the current web config)
/// until `stop`; `closed` is cancelled once no new connection is accepted
/// (connections then wait in the listener's backlog for the next server).
pub(crate) async fn serve_tcp(
    listener: Arc<TcpListener>,
    tls_now: TlsNow,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    closed: CancellationToken,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, addr) = tokio::select! {
            _ = stop.cancelled() => break,
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
        let Some(admitted) = registry.admit(limits.max_connections) else {
            debug!(peer = %addr, "connection refused: every connection is busy");
            continue;
        };
        let Some(socket) = registry.socket_room(&stop).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let tls = tls_now();
        let (router, registry, stop) = (router.clone(), registry.clone(), stop.clone());
        tracker.spawn(async move {
            let _socket = socket;
            let id = admitted.0;
            let conn = match tls {
                None => Some(Conn::Plain(stream)),
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    tokio::select! {
                        _ = admitted.2.cancelled() => None,
                        r = handshake => match r {
                            Ok(Ok(tls)) => Some(Conn::Tls(Box::new(tls))),
                            Ok(Err(e)) => { debug!(peer = %addr, error = %e, "TLS handshake failed"); None }
                            Err(_) => { debug!(peer = %addr, "TLS handshake timed out"); None }
                        },
                    }
                }
            };
            if let Some(conn) = conn {
                serve_connection(conn, Peer::Tcp(addr), router, limits, admitted, stop).await;
            }
            registry.remove(id);
        });
    }
    closed.cancel();
    tracker.close();
    let _ = tokio::time::timeout(limits.drain + Duration::from_secs(1), tracker.wait()).await;
}

/// Serves `router` on the admin socket until `stop`; each request carries the
/// peer's credentials.
pub(crate) async fn serve_unix(
    listener: Arc<UnixListener>,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    debug!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(cred) = stream.peer_cred() else {
            continue;
        };
        let peer = Peer::Unix {
            uid: cred.uid(),
            pid: cred.pid(),
        };
        let Some(admitted) = registry.admit(limits.max_connections) else {
            continue;
        };
        let Some(socket) = registry.socket_room(&stop).await else {
            break;
        };
        let (router, registry, stop) = (router.clone(), registry.clone(), stop.clone());
        tracker.spawn(async move {
            let _socket = socket;
            let id = admitted.0;
            serve_connection(stream, peer, router, limits, admitted, stop).await;
            registry.remove(id);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(limits.drain + Duration::from_secs(1), tracker.wait()).await;
}

/// Runs one HTTP/1.1 connection until it ends, is evicted, or `stop` plus the drain time.
async fn serve_connection<I>(
    io: I,
    peer: Peer,
    router: Router,
    limits: Limits,
    (_, idle, evict): (u64, Arc<AtomicBool>, CancellationToken),
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        idle.store(false, Ordering::Relaxed);
        let (router, idle) = (router.clone(), idle.clone());
        async move {
            let response = router.oneshot(req.map(Body::new)).await?;
            // Idle again once the body is written (or dropped), not when the
            // handler returns: an export streams long after that.
            Ok::<_, std::convert::Infallible>(
                response.map(|body| Body::new(MarkIdleAtEnd { body, idle })),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(
        TokioIo::new(WriteDeadline::new(io, limits.write_timeout)),
        service,
    );
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = evict.cancelled() => return,
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.drain, conn).await;
}

/// A response body that marks its connection idle when it ends or is dropped.
struct MarkIdleAtEnd {
    body: Body,
    idle: Arc<AtomicBool>,
}

impl Drop for MarkIdleAtEnd {
    fn drop(&mut self) {
        self.idle.store(true, Ordering::Relaxed);
    }
}

impl http_body::Body for MarkIdleAtEnd {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            self.idle.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Fails a write (and so drops the connection) that a client leaves pending
/// for longer than the deadline.
struct WriteDeadline<I> {
    io: I,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    fn new(io: I, limit: Duration) -> Self {
        WriteDeadline {
            io,
            limit,
            timer: None,
        }
    }

    /// After a pending write: arms the timer, and errors once it has fired.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Error {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"),
            Poll::Pending => io::Error::new(io::ErrorKind::WouldBlock, ""),
        }
    }

    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let e = self.check(cx);
                if e.kind() == io::ErrorKind::TimedOut {
                    Poll::Ready(Err(e))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.timer = None;
                ready
            }
        }
    }
}

use std::future::Future;

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.after_write(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_gives_way_and_busy_ones_stay() {
        let r = Registry::new(2);
        let a = r.admit(2).unwrap();
        let b = r.admit(2).unwrap();
        a.1.store(false, Ordering::Relaxed); // a is serving a request
        let c = r.admit(2).expect("b, idle, makes room");
        assert!(b.2.is_cancelled() && !a.2.is_cancelled());
        c.1.store(false, Ordering::Relaxed);
        assert!(r.admit(2).is_none(), "all busy: the new one is refused");
        r.remove(a.0);
        assert!(r.admit(2).is_some());
    }

    #[tokio::test]
    async fn an_evicted_connection_counts_against_the_cap_until_its_socket_is_closed() {
        let (r, stop) = (Registry::new(2), CancellationToken::new());
        let _a = r.admit(2).unwrap();
        let first = r.socket_room(&stop).await.unwrap();
        let _b = r.admit(2).unwrap();
        let _second = r.socket_room(&stop).await.unwrap();
        let _c = r.admit(2).expect("a, idle, gives way");
        let wait = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(wait, r.socket_room(&stop))
                .await
                .is_err(),
            "a third socket while a's is still open"
        );
        drop(first); // a's task has closed its socket
        assert!(tokio::time::timeout(wait, r.socket_room(&stop))
            .await
            .is_ok());
    }
}
