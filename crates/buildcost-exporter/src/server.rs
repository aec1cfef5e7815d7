//! The HTTP endpoints: `/metrics`, `/healthz`, `/readyz` (axum).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

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
        .with_state(state)
}

/// Serves `router` on `listener` — over HTTPS and behind basic auth when `security` says so —
/// until `shutdown` resolves, then finishes the requests in flight.
///
/// # Errors
/// The server failed.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    security: &HttpSecurity,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let router = security.protect(router);
    let Some(tls) = security.tls.clone() else {
        return axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve);
    };
    let listener = listener.into_std().map_err(Error::Serve)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::from_tcp(listener)
        .acceptor(axum_server::tls_openssl::OpenSSLAcceptor::new(tls))
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .map_err(Error::Serve)
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
        "buildcost {} ({})\n\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness\n",
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
