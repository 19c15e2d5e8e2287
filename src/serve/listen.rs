//! The accept loop: HTTP/1.1 connections served by hyper with a header read timeout (a client
//! that has not sent a whole request head within it, idle keep-alive included, is dropped), at
//! most `--max-connections` open at once (more wait in the kernel's backlog instead of exhausting
//! file descriptors), and graceful shutdown that lets in-flight requests finish. `axum::serve`
//! sets no timer, so its header timeout never fires: slow clients held connections forever.
//!
//! Refusals are paced per connection: a connection refused (429) again within `refusal_pace` of
//! its last refusal gets the new 429 only once that much time has passed. A client that retries
//! at once in a loop otherwise turns a full queue into tens of thousands of refusals a second,
//! whose reading and answering take the cores from the model (measured in docs/benchmarks.md);
//! paced, it retries about as often as the model frees slots. The wait is a timer, not CPU, and
//! a client that backs off on its own, or a request that is admitted, is never delayed.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection limits, from the server's settings.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Least time between two refusals on one connection (zero: no pacing).
    pub refusal_pace: Duration,
}

/// One connection's last refusal, for pacing the next.
#[derive(Default)]
struct Pacing {
    last_refusal: Mutex<Option<Instant>>,
}

impl Pacing {
    /// How long a refusal sent now must wait, and records it as sent then.
    fn delay_refusal(&self, pace: Duration) -> Duration {
        let now = Instant::now();
        let Ok(mut last) = self.last_refusal.lock() else { return Duration::ZERO };
        let wait = last.map_or(Duration::ZERO, |t| (t + pace).saturating_duration_since(now));
        *last = Some(now + wait);
        wait
    }
}

/// `app` for one connection, its refusals paced `pace` apart.
fn paced(
    app: Router,
    pace: Duration,
) -> impl tower::Service<Request<Incoming>, Response = Response, Error = std::convert::Infallible, Future: Send> + Clone {
    let pacing = Arc::new(Pacing::default());
    tower::service_fn(move |req: Request<Incoming>| {
        let (app, pacing) = (app.clone(), pacing.clone());
        async move {
            let resp = tower::ServiceExt::oneshot(app, req).await?;
            if resp.status() == StatusCode::TOO_MANY_REQUESTS && !pace.is_zero() {
                let wait = pacing.delay_refusal(pace);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            Ok(resp)
        }
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open requests.
pub async fn serve_connections(listener: TcpListener, app: Router, limits: ConnectionLimits, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends pass; accepting again at once would spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // axum's Router takes hyper's request body as it is.
        let service = TowerToHyperService::new(paced(app.clone(), limits.refusal_pace));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_that_follows_another_within_the_pace_waits() {
        let pace = Duration::from_millis(200);
        let p = Pacing::default();
        assert_eq!(p.delay_refusal(pace), Duration::ZERO, "a first refusal is sent at once");
        let second = p.delay_refusal(pace);
        assert!(second > Duration::from_millis(150) && second <= pace, "{second:?}");
        // The third is paced from the second's send time, not from its arrival.
        let third = p.delay_refusal(pace);
        assert!(third > pace + Duration::from_millis(150), "{third:?}");
        let calm = Pacing::default();
        *calm.last_refusal.lock().unwrap() = Some(Instant::now() - pace);
        assert_eq!(calm.delay_refusal(pace), Duration::ZERO, "a client that waited the pace is not delayed");
    }
}
