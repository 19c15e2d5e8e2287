//! The prediction server: TF Serving / Vertex AI and Open Inference Protocol (V2) request and
//! response shapes, a dynamic-batching model worker with a bounded queue, Prometheus metrics, and
//! the axum HTTP surface. It depends on the exported model folder and the predictor, never on
//! training.

mod app;
mod batcher;
mod config;
mod error;
mod listen;
mod metrics;
mod openapi;
mod priority;
mod request;
mod server;
mod v2;
mod v2_request;
mod worker;

pub use app::{AppState, LoadedModel, router};
pub use batcher::{Batcher, BatcherConfig, Model, Restart, SubmitError};
pub use config::{ConfigError, DEFAULT_PORT, OnLongText, ServeConfig};
pub use metrics::ServerMetrics;
pub use openapi::document as openapi_document;
pub use error::ApiError;
pub use request::{Instances, parse_instances};
pub use server::{ServeError, load_model, load_model_with, serve, serve_blocking};
