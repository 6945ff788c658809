//! The serving loop: accepts connections (TLS or not), serves each with hyper's HTTP/1 server
//! under the limits of the flags, and shuts down gracefully on SIGTERM or SIGINT.
//!
//! Each connection is a task that runs the connection and, beside it, the clock of its
//! [`Activity`] (idle or header-read timeout), a shed order at the connection cap and the
//! shutdown. On shutdown the listener closes (new connections are refused), idle connections
//! close, requests in flight get `--shutdown-grace` to finish, then the rest are dropped.

use core::future::Future;
use core::pin::pin;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use super::body_deadline::DeadlineBody;
use super::connections::{Activity, Admission, Connections, Due, Watched};
use super::metrics::ListenerMetrics;

/// The limits of the flags (`serve --help` has their defaults).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// From a request's first byte to the end of its headers; also bounds a TLS handshake.
    pub(crate) header_read_timeout: Duration,
    /// From the end of the headers to the end of the body.
    pub(crate) body_read_timeout: Duration,
    /// A connection with no request in flight is closed after it.
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_inflight_joins: usize,
    /// After a shutdown signal, the time requests in flight have to finish.
    pub(crate) shutdown_grace: Duration,
}

/// What every connection's task shares.
struct Shared {
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains the connections.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    metrics: Arc<ListenerMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        router,
        tls,
        limits,
    });
    let connections = Arc::new(Connections::default());
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: the cap is above the limit.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match connections.admit(limits.max_connections, &metrics) {
            Admission::Admitted(admitted) => {
                let (shared, stopping) = (Arc::clone(&shared), stopping.clone());
                tasks.spawn(async move {
                    connection(stream, &shared, &admitted.activity, stopping).await;
                    drop(admitted);
                });
            }
            Admission::Refused => {
                // Counted (ec2_iid_connections_refused_total); one log line per connection
                // would let a flood of them flood the log.
                tracing::debug!(
                    "closed a new connection: --max-connections {} reached, none idle",
                    limits.max_connections
                );
                drop(stream);
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    tracing::info!(
        "shutting down: {} connections open, --shutdown-grace {:?}",
        tasks.len(),
        limits.shutdown_grace
    );
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "closing {} connections still busy after --shutdown-grace",
            tasks.len()
        );
        tasks.shutdown().await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); never if neither can be listened for. The handlers
/// are installed at the call, so that a signal right after `listening on` is not fatal.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = signals else {
            tracing::warn!("cannot listen for SIGTERM and SIGINT: no graceful shutdown");
            return core::future::pending().await;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: no longer accepting connections");
    }
}

/// One connection: the TLS handshake (bounded by the header-read timeout), then HTTP/1.
async fn connection(
    stream: TcpStream,
    shared: &Shared,
    activity: &Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = &shared.tls else {
        return http(stream, shared, activity, stopping, None).await;
    };
    let handshake =
        tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(stream));
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
            Err(_) => return tracing::debug!("TLS handshake not done within --header-read-timeout"),
        },
        // Shed at the cap, or the server stops.
        () = activity.changed() => return,
        _ = stopping.changed() => return,
    };
    let client = ClientCertificate::of(tls.get_ref().1);
    http(tls, shared, activity, stopping, client).await;
}

/// The certificate a client presented in the TLS handshake (the leaf, DER), already verified
/// against the client roots of [`CertReloader::acceptor`](super::tls::CertReloader::acceptor).
/// Each request of the connection carries it as an extension; a handler that needs a client
/// identity reads it and checks it for its own purpose.
#[derive(Clone, Debug)]
pub(crate) struct ClientCertificate(pub(crate) Arc<[u8]>);

impl ClientCertificate {
    fn of(tls: &rustls::ServerConnection) -> Option<Self> {
        let leaf = tls.peer_certificates()?.first()?;
        Some(Self(Arc::from(leaf.as_ref())))
    }
}

/// Serves HTTP/1 on `io` until the client closes, a timeout or a shed order closes it, or the
/// server stops (then in-flight requests finish first).
async fn http<I>(
    io: I,
    shared: &Shared,
    activity: &Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
    client: Option<ClientCertificate>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Watched {
        io,
        activity: Arc::clone(activity),
    });
    let (router, body_timeout) = (shared.router.clone(), shared.limits.body_read_timeout);
    let in_service = Arc::clone(activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = in_service.request();
        let mut request = request.map(|body| DeadlineBody::new(body, body_timeout));
        if let Some(client) = &client {
            request.extensions_mut().insert(client.clone());
        }
        let mut router = router.clone();
        async move {
            let response = router.call(request).await;
            drop(in_flight);
            response
        }
    });
    let mut conn = pin!(
        http1::Builder::new()
            // Our own clocks ([`Activity`]): hyper's would also cut idle keep-alive waits.
            .header_read_timeout(None)
            .serve_connection(io, service)
    );
    let limits = &shared.limits;
    let mut draining = false;
    loop {
        let due = activity.due(
            limits.idle_timeout,
            limits.header_read_timeout,
            Instant::now(),
        );
        let deadline = match due {
            Due::Close => return,
            Due::At(at) => Some(tokio::time::Instant::from_std(at)),
            Due::Busy => None,
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            () = sleep_until(deadline) => {}
            () = activity.changed() => {}
            _ = stopping.changed(), if !draining => {
                draining = true;
                // Closes the connection if idle, else once the request in flight is answered.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => core::future::pending().await,
    }
}
