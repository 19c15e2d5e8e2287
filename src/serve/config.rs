//! Server settings, validated once from flags / environment variables.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::DeviceSpec;
use crate::predict::Engine;

/// What to do with a text longer than the model's sequence length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnLongText {
    /// Cut it with the model's truncation strategy (what training did).
    #[default]
    Truncate,
    /// Answer 400 naming the instance.
    Reject,
}

impl std::fmt::Display for OnLongText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Truncate => "truncate",
            Self::Reject => "reject",
        })
    }
}

impl FromStr for OnLongText {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "truncate" => Ok(Self::Truncate),
            "reject" => Ok(Self::Reject),
            other => Err(format!("`{other}`: expected truncate or reject")),
        }
    }
}

/// The port `bertkit serve` listens on without `--port` or `AIP_HTTP_PORT` (TF Serving's REST
/// port, and what `deploy/` declares).
pub const DEFAULT_PORT: u16 = 8080;

/// How the server runs: [`ServeConfig::new`] gives `bertkit serve`'s defaults (its flags' defaults
/// are read from it), and [`ServeConfig::validate`] checks a config once before it serves.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    pub model_dir: PathBuf,
    /// The `{name}` in `/v1/models/{name}:predict`.
    pub model_name: String,
    pub host: IpAddr,
    pub port: u16,
    /// Extra predict/health routes (Vertex's `AIP_PREDICT_ROUTE`, `AIP_HEALTH_ROUTE`).
    pub predict_route: Option<String>,
    pub health_route: Option<String>,
    pub max_batch_size: usize,
    pub max_wait: Duration,
    /// Requests held at once (from admission to answer) before new ones get 429.
    pub queue_capacity: usize,
    pub max_instances: usize,
    pub max_body_bytes: usize,
    pub on_long_text: OnLongText,
    /// Required as `Authorization: Bearer KEY` on every route but health, when set.
    pub api_key: Option<String>,
    /// `/metrics` answers without the API key (a Prometheus scraper inside the cluster).
    pub metrics_public: bool,
    /// Open connections at most; more wait to be accepted.
    pub max_connections: usize,
    /// A connection that has not sent a whole request head within this is closed (idle
    /// keep-alive connections too).
    pub header_timeout: Duration,
    /// Least time between two 429s on one connection (zero: none), see `listen.rs`.
    pub refusal_pace: Duration,
    /// A request body not received within this gets 408.
    pub body_timeout: Duration,
    /// A request not answered within this (queue wait and scoring) gets 504, and the worker
    /// skips it if it has not started on it.
    pub request_timeout: Duration,
    /// Inference engine, resolved for the device (see [`Engine::resolve`]).
    pub engine: Engine,
    /// Binary and multi-label models: overrides the probability at which the positive class
    /// (each label) is predicted; a softmax model refuses one at load.
    pub threshold: Option<f32>,
}

/// A [`ServeConfig`] the server cannot run with, naming the field.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A count of 0 would serve nothing (or, for `max_batch_size`, quietly run batches of one).
    #[error("{0} must be at least 1, got 0")]
    ZeroCount(&'static str),
    #[error("{0} must be a positive duration, got 0")]
    ZeroTimeout(&'static str),
    #[error("max_body_bytes {0} is too small: a request needs at least 64 bytes")]
    BodyTooSmall(usize),
    #[error("route `{0}` must start with /")]
    Route(String),
    #[error("threshold {0} is not a probability in (0, 1)")]
    Threshold(f32),
    #[error("model name `{0}` must be non-empty without / or :")]
    ModelName(String),
}

impl ServeConfig {
    /// `model_dir` served as `model_name` with `bertkit serve`'s defaults: on 127.0.0.1:8080, no
    /// extra routes, batches of up to 32 instances run as soon as the model is free, 64 requests
    /// held and 64 instances per request at most, 1 MiB bodies, long texts truncated, no API key,
    /// 512 connections, 10 s for a request's headers, 30 s for its body and 60 s for its answer,
    /// repeated 429s paced 100 ms apart, the `auto` engine on the CPU and the model's threshold.
    pub fn new(model_dir: impl Into<PathBuf>, model_name: impl Into<String>) -> Self {
        Self {
            model_dir: model_dir.into(),
            model_name: model_name.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            predict_route: None,
            health_route: None,
            max_batch_size: 32,
            max_wait: Duration::ZERO,
            queue_capacity: 64,
            max_instances: 64,
            max_body_bytes: 1 << 20,
            on_long_text: OnLongText::Truncate,
            api_key: None,
            metrics_public: false,
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            refusal_pace: Duration::from_millis(100),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            engine: Engine::Auto.resolve(DeviceSpec::Cpu),
            threshold: None,
        }
    }

    /// Checks the settings once, before anything binds or loads: [`super::serve`] runs it, and
    /// the CLI has already refused each bad flag by name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("max_batch_size", self.max_batch_size),
            ("queue_capacity", self.queue_capacity),
            ("max_instances", self.max_instances),
            ("max_connections", self.max_connections),
        ];
        if let Some((field, _)) = counts.into_iter().find(|&(_, n)| n == 0) {
            return Err(ConfigError::ZeroCount(field));
        }
        let timeouts =
            [("header_timeout", self.header_timeout), ("body_timeout", self.body_timeout), ("request_timeout", self.request_timeout)];
        if let Some((field, _)) = timeouts.into_iter().find(|(_, t)| t.is_zero()) {
            return Err(ConfigError::ZeroTimeout(field));
        }
        if self.max_body_bytes < 64 {
            return Err(ConfigError::BodyTooSmall(self.max_body_bytes));
        }
        if let Some(route) = [&self.predict_route, &self.health_route].into_iter().flatten().find(|r| !r.starts_with('/')) {
            return Err(ConfigError::Route(route.clone()));
        }
        if let Some(t) = self.threshold
            && !(t > 0.0 && t < 1.0)
        {
            return Err(ConfigError::Threshold(t));
        }
        if self.model_name.is_empty() || self.model_name.contains('/') || self.model_name.contains(':') {
            return Err(ConfigError::ModelName(self.model_name.clone()));
        }
        Ok(())
    }
}
