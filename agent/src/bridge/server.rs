//! Accepting connections: TLS (rustls, TLS 1.2 and 1.3, ring) with tokio-rustls, HTTP/1.1 and
//! HTTP/2 with hyper-util, routing with warp. Every request passes the Host and Origin checks
//! here, before routing, and every answer to an accepted page carries exact-origin CORS.
//!
//! `serve(listeners, tls, shared, shutdown)` takes bound listeners and a shutdown future, so
//! tests bind port 0 and stop the server when they want (style.md §6).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;
use warp::Reply;

use super::Shared;
use super::error::ApiError;
use super::policy::{Caller, check_host, check_origin, preflight};
use crate::consent::{Decision, decide};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// A client has this long to finish the TLS handshake, and to send a request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The rustls configuration: TLS 1.3 and 1.2, ring, ALPN h2 and http/1.1.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves until `shutdown` completes, then lets requests in flight finish (up to a grace
/// period).
pub async fn serve(
    listeners: Vec<TcpListener>,
    tls: Arc<ServerConfig>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (accepted, mut incoming) = mpsc::channel::<TcpStream>(64);
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let accepted = accepted.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if accepted.send(stream).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(accepted);
    let routes = super::routes::routes(Arc::clone(&shared));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            stream = incoming.recv() => {
                let Some(stream) = stream else { break };
                // At the limit, the newest connection is closed at once: waiting for a slot
                // here would stop the loop from seeing the shutdown signal.
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!("{MAX_CONNECTIONS} connections open; one more refused");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                let routes = routes.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = permit;
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let shared = Arc::clone(&shared);
                        let mut warp_service = warp::service(routes.clone());
                        async move {
                            Ok::<_, Infallible>(
                                handle(&shared, request, |r| warp_service.call(r)).await,
                            )
                        }
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HANDSHAKE_TIMEOUT)
                        .keep_alive(true);
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(32)
                        .keep_alive_interval(Some(Duration::from_secs(30)))
                        .keep_alive_timeout(Duration::from_secs(10));
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    for task in accept_tasks {
        task.abort();
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running at shutdown were cut off");
        }
    }
}

/// The checks every request passes, then routing, then CORS on the answer.
async fn handle<F, Fut>(
    shared: &Shared,
    mut request: Request<Incoming>,
    route: F,
) -> warp::reply::Response
where
    F: FnOnce(Request<Incoming>) -> Fut,
    Fut: Future<Output = Result<warp::reply::Response, Infallible>>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (response, origin) = match admit(shared, &request) {
        Err(e) => (e.into_response(), None),
        Ok(caller) => {
            let origin = match &caller {
                Caller::Page(o) => Some(o.clone()),
                Caller::Local => None,
            };
            if method == Method::OPTIONS {
                (answer_preflight(&request, &caller), origin)
            } else {
                request.extensions_mut().insert(caller);
                let response = match route(request).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                (response, origin)
            }
        }
    };
    let mut response = response;
    let headers = response.headers_mut();
    if let Some(origin) = &origin
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    tracing::info!(
        %method,
        path,
        origin = origin.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Host, Origin and the administrator's deny list.
fn admit(shared: &Shared, request: &Request<Incoming>) -> Result<Caller, ApiError> {
    let authority = request.uri().authority().map(|a| a.as_str());
    check_host(request.headers(), authority, shared.port)?;
    let caller = check_origin(request.headers(), shared.dev_mode)?;
    if let (Caller::Page(origin), Some(kiosk)) = (&caller, &shared.kiosk)
        && !kiosk.serves(origin)
    {
        // Kiosk: only the desk's pages, whatever a dialog or a remembered choice would say.
        tracing::info!(origin = %origin, "origin refused (not a desk page)");
        if let Some(audit) = &shared.audit {
            let event = crate::audit::AuditEvent {
                origin: Some(origin),
                reader: None,
                session: None,
                operation: "origin-refused",
                result: "origin-not-allowed",
                document: None,
            };
            if let Err(e) = audit.record(event) {
                tracing::error!(code = e.code(), error = %e, "audit log not written");
            }
        }
        return Err(ApiError::new(
            "origin-not-allowed",
            format!("{origin} is not one of this desk's pages"),
        ));
    }
    if let Caller::Page(origin) = &caller {
        let parsed = crate::config::parse_origin(origin)
            .map_err(|e| ApiError::new("origin-invalid", e.to_string()))?;
        if let Decision::Denied(_) = decide(&shared.policy, &shared.sites, &parsed) {
            return Err(ApiError::new(
                "origin-denied",
                format!("{origin} is on the administrator's deny list"),
            ));
        }
    }
    Ok(caller)
}

fn answer_preflight(request: &Request<Incoming>, caller: &Caller) -> warp::reply::Response {
    let origin = match caller.origin() {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match preflight(request.headers(), origin) {
        Err(e) => e.into_response(),
        Ok(headers) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
    }
}
