//! `bertkit serve`: a trained model folder becomes a TF Serving / Vertex AI prediction endpoint.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::serve::{OnLongText, ServeConfig, serve_blocking};
use bertkit::predict::Engine;
use clap::Args;

#[derive(Args, Debug)]
pub struct ServeCmd {
    /// A folder written by `bertkit train`.
    #[arg(long, env = "BERTKIT_MODEL")]
    model: PathBuf,
    /// Name in /v1/models/{name}:predict (default: the folder's name).
    #[arg(long, env = "BERTKIT_MODEL_NAME")]
    name: Option<String>,
    /// Address to bind; use 0.0.0.0 inside a container.
    #[arg(long, default_value_t = defaults().host, env = "BERTKIT_HOST")]
    host: IpAddr,
    /// Port (default: $AIP_HTTP_PORT, else 8080).
    #[arg(long, env = "BERTKIT_PORT")]
    port: Option<u16>,
    /// Extra predict route (Vertex AI sets AIP_PREDICT_ROUTE).
    #[arg(long, env = "AIP_PREDICT_ROUTE")]
    predict_route: Option<String>,
    /// Extra health route (Vertex AI sets AIP_HEALTH_ROUTE).
    #[arg(long, env = "AIP_HEALTH_ROUTE")]
    health_route: Option<String>,
    /// Most instances run through the model at once.
    #[arg(long, default_value_t = defaults().max_batch_size, value_parser = super::at_least_one, env = "BERTKIT_MAX_BATCH_SIZE")]
    max_batch_size: usize,
    /// Extra wait for more requests to fill a batch. 0 (default): batch whatever queued while the
    /// model was busy, adding no latency to a lone request.
    #[arg(long, default_value_t = millis(defaults().max_wait), env = "BERTKIT_MAX_WAIT_MS")]
    max_wait_ms: u64,
    /// Requests the server holds at once, from admission to answer (waiting for the model or being
    /// scored); more get 429 at once, before their bodies are read.
    #[arg(long, default_value_t = defaults().queue_capacity, value_parser = super::at_least_one, env = "BERTKIT_QUEUE_CAPACITY")]
    queue_capacity: usize,
    /// Most instances in one request.
    #[arg(long, default_value_t = defaults().max_instances, value_parser = super::at_least_one, env = "BERTKIT_MAX_INSTANCES")]
    max_instances: usize,
    /// Largest request body; larger gets 413.
    #[arg(long, default_value_t = defaults().max_body_bytes, env = "BERTKIT_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// truncate (default) or reject texts longer than the model's sequence length.
    #[arg(long, default_value_t = defaults().on_long_text, env = "BERTKIT_ON_LONG_TEXT")]
    on_long_text: OnLongText,
    /// Require `Authorization: Bearer KEY` on every route but health (and /metrics with
    /// --metrics-public).
    #[arg(long, env = "BERTKIT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Serve /metrics without the API key.
    #[arg(long, env = "BERTKIT_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Open connections at most; more wait in the listen backlog (keep it below the process's
    /// file descriptor limit, `ulimit -n`).
    #[arg(long, default_value_t = defaults().max_connections, value_parser = super::at_least_one, env = "BERTKIT_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Seconds a connection may take to send a request's headers (or stay idle between
    /// keep-alive requests) before it is closed.
    #[arg(long, default_value_t = defaults().header_timeout.as_secs_f64(), env = "BERTKIT_HEADER_TIMEOUT")]
    header_timeout: f64,
    /// Milliseconds between two 429s on one connection: a client that retries at once in a loop
    /// is paced to this (about a polite client's first backoff), so refusals cannot take the
    /// model's CPU; a client that waits this long anyway never notices (0: no pacing).
    #[arg(long, default_value_t = millis(defaults().refusal_pace), env = "BERTKIT_REFUSAL_PACE_MS")]
    refusal_pace_ms: u64,
    /// Seconds a request body may take to arrive; slower gets 408.
    #[arg(long, default_value_t = defaults().body_timeout.as_secs_f64(), env = "BERTKIT_BODY_TIMEOUT")]
    body_timeout: f64,
    /// Seconds from a request's admission to its answer (queue wait and scoring); past it the
    /// client gets 504 and a request still queued is dropped unscored.
    #[arg(long, default_value_t = defaults().request_timeout.as_secs_f64(), env = "BERTKIT_REQUEST_TIMEOUT")]
    request_timeout: f64,
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    device: DeviceSpec,
    /// auto (the kernels on the CPU, in bf16 where measured faster: AMX, AMD with AVX512-BF16;
    /// burn with --device cuda), burn, kernels, kernels-bf16 or kernels-int8 (opt-in;
    /// `--precision int8` says the same).
    #[arg(long, alias = "precision", default_value = "auto", env = "BERTKIT_ENGINE")]
    engine: Engine,
    /// Binary and multi-label models: the probability at which the positive class (each
    /// label) is predicted (default: the model's, set at training). A softmax model refuses one.
    #[arg(long, value_parser = super::probability, env = "BERTKIT_THRESHOLD")]
    threshold: Option<f32>,
}

impl ServeCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let device = self.device;
        serve_blocking(self.config()?, device)?;
        Ok(())
    }

    /// The flags as the library's config.
    fn config(self) -> anyhow::Result<ServeConfig> {
        let port = match self.port {
            Some(p) => p,
            None => match std::env::var("AIP_HTTP_PORT") {
                Ok(v) => v.parse().with_context(|| format!("AIP_HTTP_PORT=`{v}` is not a port"))?,
                Err(_) => bertkit::serve::DEFAULT_PORT,
            },
        };
        let name = match self.name {
            Some(n) => n,
            None => self
                .model
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "model".into()),
        };
        let config = ServeConfig {
            model_dir: self.model,
            model_name: name,
            host: self.host,
            port,
            predict_route: self.predict_route,
            health_route: self.health_route,
            max_batch_size: self.max_batch_size,
            max_wait: Duration::from_millis(self.max_wait_ms),
            queue_capacity: self.queue_capacity,
            max_instances: self.max_instances,
            max_body_bytes: self.max_body_bytes,
            on_long_text: self.on_long_text,
            api_key: self.api_key.filter(|k| !k.is_empty()),
            metrics_public: self.metrics_public,
            max_connections: self.max_connections,
            header_timeout: seconds("--header-timeout", self.header_timeout)?,
            refusal_pace: Duration::from_millis(self.refusal_pace_ms),
            body_timeout: seconds("--body-timeout", self.body_timeout)?,
            request_timeout: seconds("--request-timeout", self.request_timeout)?,
            engine: self.engine.resolve(self.device),
            threshold: self.threshold,
        };
        // `serve` validates it before it binds or loads.
        Ok(config)
    }
}

/// The library's defaults ([`ServeConfig::new`]), which the flags' defaults above read: one place
/// for them.
fn defaults() -> ServeConfig {
    ServeConfig::new(PathBuf::new(), String::new())
}

/// A duration as whole milliseconds (a flag's unit).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A positive number of seconds as a duration.
fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(s.is_finite() && s > 0.0 && s <= 86_400.0, "{flag} must be a positive number of seconds (at most a day), got {s}");
    Ok(Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::super::Cli;
    use super::super::command::Command;
    use super::*;

    fn parsed(args: &[&str]) -> ServeCmd {
        let matches = Cli::grammar().try_get_matches_from(args).unwrap();
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Serve(cmd) => cmd,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// `bertkit serve` with no optional flag runs exactly as a library caller's
    /// `ServeConfig::new` (the flags used to keep their own copies of the defaults).
    #[test]
    fn the_flags_defaults_are_the_librarys() {
        let cmd = parsed(&["bertkit", "serve", "--model", "runs/imdb", "--name", "imdb"]);
        assert_eq!(cmd.config().unwrap(), ServeConfig::new("runs/imdb", "imdb"));
        let cmd = parsed(&["bertkit", "serve", "--model", "m", "--name", "n", "--max-wait-ms", "5", "--header-timeout", "2.5"]);
        let config = cmd.config().unwrap();
        assert_eq!((config.max_wait, config.header_timeout), (Duration::from_millis(5), Duration::from_millis(2500)));
    }
}
