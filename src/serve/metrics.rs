//! Prometheus metrics of one server: requests and errors by route and status, batch sizes, queue
//! depth and latency. A per-server recorder (not the process-global one) so that several routers,
//! as in tests, never share counts.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Recorder, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

#[derive(Clone)]
pub struct ServerMetrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // Static, valid bucket lists: the builder only rejects empty ones.
        let builder = builder
            .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Full("bertkit_batch_size".into()), BATCH_BUCKETS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self { recorder: Arc::new(recorder), handle }
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        with_local_recorder(&*self.recorder as &dyn Recorder, f)
    }

    pub fn request(&self, route: &'static str, status: u16, latency: Duration) {
        self.with(|| {
            metrics::counter!("bertkit_requests_total", "route" => route, "status" => status.to_string()).increment(1);
            if status >= 400 {
                metrics::counter!("bertkit_request_errors_total", "route" => route, "status" => status.to_string()).increment(1);
            }
            metrics::histogram!("bertkit_request_latency_seconds", "route" => route).record(latency.as_secs_f64());
        });
    }

    pub fn batch(&self, size: usize, model_time: Duration) {
        self.with(|| {
            metrics::histogram!("bertkit_batch_size").record(size as f64);
            metrics::histogram!("bertkit_batch_inference_seconds").record(model_time.as_secs_f64());
            metrics::counter!("bertkit_instances_total").increment(size as u64);
        });
    }

    pub fn queue_depth(&self, depth: usize) {
        self.with(|| metrics::gauge!("bertkit_queue_depth").set(depth as f64));
    }

    pub fn rejected(&self) {
        self.with(|| metrics::counter!("bertkit_queue_rejected_total").increment(1));
    }

    /// A batch whose model call panicked (its requests got 500; the worker restarts its model).
    pub fn model_panic(&self) {
        self.with(|| metrics::counter!("bertkit_model_panics_total").increment(1));
    }

    /// The worker built a fresh model after a panic.
    pub fn model_restart(&self) {
        self.with(|| metrics::counter!("bertkit_model_restarts_total").increment(1));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
