//! Serving: TLS with tokio-rustls, HTTP/1.1 and HTTP/2 with hyper-util's auto builder, routing
//! with warp. Every answer gets the security headers here, and one log line (method, path,
//! status, error code, time), never with a body.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use warp::{Filter, Reply};

use crate::api;
use crate::app::App;
use crate::errors::{ApiError, ErrorCode};
use crate::pages;

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 512;
/// A client has this long to finish the TLS handshake and to send a request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn asset_response(asset: pages::Asset) -> warp::reply::Response {
    let mut r = asset.body.into_response();
    if let Ok(v) = http::HeaderValue::from_str(asset.content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// GET, or HEAD (hyper leaves the body out of a HEAD answer).
fn get_or_head() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::get().or(warp::head()).unify()
}

/// The routes: pages and static files (GET), the API (GET and POST), JSON errors otherwise.
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app = {
        let app = Arc::clone(&app);
        warp::any().map(move || Arc::clone(&app))
    };

    let api_get = warp::get()
        .and(warp::path("api"))
        .and(warp::path::tail())
        .and(with_app.clone())
        .then(|tail: warp::path::Tail, app: Arc<App>| async move {
            match api::get(&app, tail.as_str()).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        });

    let api_post = warp::post()
        .and(warp::path("api"))
        .and(warp::path::tail())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(with_app.clone())
        .then(
            |tail: warp::path::Tail, headers: HeaderMap, body, app: Arc<App>| async move {
                let path = tail.as_str();
                let outcome = async {
                    api::check_post(&app, &headers)?;
                    let body = api::read_body(&headers, body, api::body_limit(path)).await?;
                    api::post(&app, path, &headers, &body).await
                }
                .await;
                match outcome {
                    Ok(answer) => answer.into_response(),
                    Err(e) => e.into_response(),
                }
            },
        );

    let statics = get_or_head()
        .and(warp::path("static"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .map(|name: String| match pages::static_file(&name) {
            Some(asset) => {
                let mut r = asset_response(asset);
                r.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("no-cache"),
                );
                r
            }
            None => api::not_found(),
        });

    let page = warp::get().and(warp::path::full()).and(with_app).map(
        |path: warp::path::FullPath, app: Arc<App>| match pages::page(
            path.as_str(),
            app.outbox.is_some(),
        ) {
            Some(asset) => asset_response(asset),
            None => api::not_found(),
        },
    );

    let other = warp::any().map(|| api::error_response("method-not-allowed"));

    api_get
        .or(api_post)
        .unify()
        .or(statics)
        .unify()
        .or(page)
        .unify()
        .or(other)
        .unify()
}

/// Serves `listener` until `shutdown` completes, then lets requests in flight finish (up to a
/// grace period).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let routes = routes(Arc::clone(&app));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!("{MAX_CONNECTIONS} connections open; one more refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let routes = routes.clone();
        let app = Arc::clone(&app);
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
                let warp_service = TowerToHyperService::new(warp::service(routes.clone()));
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(handle(&app, warp_service, request).await) }
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
                .max_concurrent_streams(32);
            let connection = builder
                .serve_connection(TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running at shutdown were cut off");
        }
    }
}

/// Routes one request, adds the security headers, logs one line.
async fn handle<S>(app: &App, service: S, request: Request<Incoming>) -> warp::reply::Response
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        >,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = match service.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if method == http::Method::HEAD {
        // Headers only (HTTP/2 streams must not carry a body after a HEAD).
        let (parts, _) = response.into_parts();
        let (_, empty) = warp::reply::Response::default().into_parts();
        response = warp::reply::Response::from_parts(parts, empty);
    }
    pages::add_security_headers(response.headers_mut(), &app.csp);
    let code = response
        .extensions()
        .get::<ErrorCode>()
        .map_or("-", |c| c.0);
    tracing::info!(
        %method,
        path = %truncate(&path, 200),
        status = response.status().as_u16(),
        code = %code,
        ms = %format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    response
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// A future that completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called (not when the future is first polled), so a signal sent as soon as the service says
/// it is listening already stops it cleanly.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!("no signal handlers; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Kept for callers that want an error answer outside the routes.
pub fn error(code: &'static str) -> warp::reply::Response {
    ApiError::new(code).into_response()
}
