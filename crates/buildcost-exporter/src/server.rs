//! The HTTP endpoints: `/metrics`, `/healthz`, `/readyz` (axum).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use axum_server::tls_openssl::OpenSSLAcceptor;

use crate::security::HttpSecurity;
use crate::service::ServiceState;
use crate::{Error, Result};

/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Opens the listener on `addr` (an `IP:port`; port 0 picks a free one).
///
/// # Errors
/// The address is taken or not ours.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_owned(),
        source,
    })
}

/// The routes of the service.
pub fn router(state: Arc<ServiceState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/org", get(crate::api::org))
        .route("/api/v1/teams", get(crate::api::teams))
        .route("/api/v1/teams/{team}", get(crate::api::team))
        .route("/api/v1/openapi.json", get(crate::api::openapi_json))
        .route("/reports/", get(crate::pages::index))
        .route(
            "/reports",
            get(|| async { axum::response::Redirect::permanent("/reports/") }),
        )
        .route("/reports/{week}/", get(crate::pages::week))
        .route("/reports/{week}/{file}", get(crate::pages::report))
        .with_state(state)
}

/// Serves `router` on `listener` — over HTTPS and behind basic auth when `security` says so —
/// until `shutdown` resolves, then finishes the requests in flight (for at most 10 s).
///
/// Every connection is bounded ([`HttpLimits`]): a client must send a request's header within
/// `header_timeout` (else the connection is closed, as a slowloris attack would otherwise keep
/// it open for good), a request is answered within `request_timeout` (its body read included),
/// and beyond `max_connections` open connections a new one is closed at once.
///
/// # Errors
/// The server failed.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    security: &HttpSecurity,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let limits = security.limits.clone();
    let router = security
        .protect(router)
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            answer_within,
        ));
    let tls = security
        .tls
        .clone()
        .map(|tls| OpenSSLAcceptor::new(tls).handshake_timeout(limits.header_timeout));
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a reset before accept: wait a little, go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused,
                    "too many open connections: closing new ones"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The client's address, for the bound on failed logins (a clone of the router is an
        // Arc's; `Router::layer` per connection would box every route again).
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_BUFFER);
            let service = hyper_util::service::TowerToHyperService::new(service);
            let served = match tls {
                None => {
                    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(tls) => {
                    use axum_server::accept::Accept as _;
                    let Ok((stream, service)) = tls.accept(stream, service).await else {
                        return;
                    };
                    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection closed");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
            tracing::warn!("requests still in flight after 10 s: closing them");
        }
    }
    Ok(())
}

/// The largest buffer of one connection (a request header must fit in it): bounds memory.
const MAX_BUFFER: usize = 64 * 1024;

/// Answers 408 when a request (its body read included) is not answered within `limit`.
async fn answer_within(
    State(limit): State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not read and answered within {} s\n",
                limit.as_secs()
            ),
        )
            .into_response(),
    }
}

/// Serves the service's endpoints (see [`serve_router`]).
///
/// # Errors
/// The server failed.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServiceState>,
    security: &HttpSecurity,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_router(listener, router(state), security, shutdown).await
}

async fn index(State(state): State<Arc<ServiceState>>) -> impl IntoResponse {
    format!(
        "buildcost {} ({})\n\n/metrics               Prometheus metrics\n/api/v1/org            the organisation's figures (JSON)\n/api/v1/teams          the teams (JSON)\n/api/v1/teams/{{team}}   one team (JSON)\n/api/v1/openapi.json   the API's OpenAPI 3.1 document\n/reports/              the weekly reports (HTML)\n/healthz               liveness\n/readyz                readiness\n",
        env!("CARGO_PKG_VERSION"),
        state.role().as_str()
    )
}

async fn metrics(State(state): State<Arc<ServiceState>>, headers: HeaderMap) -> Response {
    // Prometheus asks for gzip; the business text was deflated once, when it was published.
    let gzip = accepts_gzip(&headers);
    let body = if gzip {
        state.metrics_gzip()
    } else {
        state.metrics_text().map(String::into_bytes)
    };
    match body {
        Ok(body) if gzip => (
            [
                (header::CONTENT_TYPE, METRICS_CONTENT_TYPE),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            body,
        )
            .into_response(),
        Ok(body) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the metrics: {e}\n"),
            )
                .into_response()
        }
    }
}

/// Whether `Accept-Encoding` lists gzip with a quality above zero (RFC 9110, 12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && parts.all(|p| {
                    p.strip_prefix("q=")
                        .is_none_or(|q| q.parse::<f32>().is_ok_and(|q| q > 0.0))
                })
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<ServiceState>>) -> Response {
    match state.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn gzip_is_accepted_unless_absent_or_given_a_zero_quality() {
        let accepts = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            accepts_gzip(&headers)
        };
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["identity, GZIP"]));
        assert!(accepts(&["deflate", "gzip;q=0.5"]));
        assert!(accepts(&["gzip; q=1"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["deflate, br"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.0"]));
        assert!(!accepts(&["x-gzip"]));
    }
}
