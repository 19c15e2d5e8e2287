//! Binds the socket, loads the model in the background (health answers 503 until then), serves,
//! and shuts down gracefully on SIGTERM / Ctrl-C, finishing in-flight requests.

use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::DeviceSpec;
use tokio::net::TcpListener;

use super::app::LoadedModel;
use super::listen::{ConnectionLimits, serve_connections};
use super::batcher::Restart;
use super::config::ConfigError;
use super::{AppState, Batcher, BatcherConfig, Model, ServeConfig, ServerMetrics, router};
use crate::artifact::{ArtifactError, ClassifierBundle};
use crate::predict::Predictor;
use crate::tokenize::TokenCounter;

/// Loads the exported model and starts its batching worker, with a `config` that
/// [`ServeConfig::validate`] accepts (as [`serve`] checks).
pub fn load_model(config: &ServeConfig, device: DeviceSpec, metrics: ServerMetrics) -> Result<LoadedModel, ArtifactError> {
    load_model_with(config, device, metrics, |model| model)
}

/// [`load_model`], with every model the worker runs (the first and each restart's) passed
/// through `wrap`: the seam where tests inject a fault into the real model.
pub fn load_model_with(
    config: &ServeConfig,
    device: DeviceSpec,
    metrics: ServerMetrics,
    wrap: impl Fn(Model) -> Model + Send + 'static,
) -> Result<LoadedModel, ArtifactError> {
    let bundle = ClassifierBundle::load(&config.model_dir)?;
    let untruncated = Arc::new(TokenCounter::for_encoder(&bundle.tokenizer));
    let meta = bundle.meta.clone();
    let predictor = open_predictor(bundle, config, device)?;
    let decision = predictor.decision();
    match predictor.int8_origin() {
        Some(origin) => tracing::info!(engine = predictor.engine_name(), "model loaded; {origin}"),
        None => tracing::info!(engine = predictor.engine_name(), "model loaded"),
    }
    if let Some(note) = predictor.engine_note() {
        tracing::warn!("{note}");
    }
    // One tokenizer, shared by the request handlers and the worker (which needs its pad id).
    let tokenizer = predictor.shared_tokenizer();
    // A restart reloads the folder as the server's start did, and refuses a folder that now holds
    // another model: the handlers still tokenize and label for the first one (a new model
    // needs a new server; health stays 503 meanwhile, which tells the orchestrator so).
    let (restart_config, first_meta) = (config.clone(), meta.clone());
    let first = wrap(as_model(predictor));
    let restart: Restart = Box::new(move || {
        let bundle = ClassifierBundle::load(&restart_config.model_dir).map_err(|e| error_chain(&e))?;
        if bundle.meta != first_meta {
            return Err(format!("{} now holds another model than the one this server started with", restart_config.model_dir.display()));
        }
        let predictor = open_predictor(bundle, &restart_config, device).map_err(|e| error_chain(&e))?;
        Ok(wrap(as_model(predictor)))
    });
    let batcher = Batcher::start(
        first,
        restart,
        BatcherConfig {
            max_batch_size: config.max_batch_size,
            max_wait: config.max_wait,
            queue_capacity: config.queue_capacity,
        },
        metrics,
    );
    Ok(LoadedModel {
        batcher,
        tokenizer,
        untruncated,
        seq_len: meta.encode.seq_len,
        text_pairs: meta.text_pairs,
        class_names: meta.class_names,
        decision,
    })
}

/// The predictor the worker runs, set up as the server's flags say.
fn open_predictor(bundle: ClassifierBundle, config: &ServeConfig, device: DeviceSpec) -> Result<Predictor, ArtifactError> {
    let mut predictor = Predictor::with_engine(bundle, device, config.engine)?;
    if let Some(t) = config.threshold {
        predictor.set_threshold(t).map_err(|e| ArtifactError::Threshold(config.model_dir.clone(), e.to_string()))?;
    }
    // `validate` refuses a 0 (`serve` runs it): the predictor keeps its default then.
    if let Some(n) = NonZeroUsize::new(config.max_batch_size) {
        predictor.set_batch_size(n);
    }
    Ok(predictor)
}

fn as_model(predictor: Predictor) -> Model {
    Box::new(move |enc| predictor.logits(enc).map_err(|e| e.to_string()))
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("loading the model")]
    Load(#[source] ArtifactError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("server error")]
    Io(#[source] std::io::Error),
    #[error("cannot start the server's threads")]
    Threads(#[source] std::io::Error),
}

/// Runs the server on this thread until SIGTERM/Ctrl-C: the compute pool and the model worker keep
/// this thread's CPU priority, the async runtime's threads (requests, tokenizing) run lower
/// (`serve::priority`).
pub fn serve_blocking(config: ServeConfig, device: DeviceSpec) -> Result<(), ServeError> {
    // No size asked for: a pool that already runs (the binary starts it, with `--threads`) is
    // kept whatever its size, so this cannot fail.
    let _ = crate::device::start_compute_pool(None);
    let request_side = super::priority::request_side_nice();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bertkit-http")
        .on_thread_start(move || super::priority::lower_this_thread_to(request_side))
        .build()
        .map_err(ServeError::Threads)?;
    runtime.block_on(serve(config, device))
}

/// Runs until SIGTERM/Ctrl-C (or a model that fails to load); a `config` that
/// [`ServeConfig::validate`] refuses is refused before anything binds.
pub async fn serve(config: ServeConfig, device: DeviceSpec) -> Result<(), ServeError> {
    config.validate()?;
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        refusal_pace: config.refusal_pace,
    };
    let metrics = ServerMetrics::new();
    let state = AppState::new(config.clone(), metrics.clone());
    let app = router(state.clone());
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<ArtifactError>();
    let loader_state = state.clone();
    // A plain thread started from the caller's (not from the runtime's, which run at a lower
    // priority): the model worker it starts inherits the caller's priority.
    let load = move || match load_model(&config, device, metrics) {
        Ok(model) => {
            tracing::info!("model loaded");
            eprintln!("Model `{}` loaded from {}", config.model_name, config.model_dir.display());
            loader_state.set_model(model);
        }
        Err(e) => {
            let _ = failed_tx.send(e);
        }
    };
    std::thread::Builder::new().name("bertkit-load".into()).spawn(load).map_err(ServeError::Threads)?;
    eprintln!("Listening on http://{addr}");
    let failure = Arc::new(std::sync::Mutex::new(None));
    let failure_slot = failure.clone();
    let shutdown = async move {
        tokio::select! {
            _ = terminate() => eprintln!("Shutting down: finishing in-flight requests"),
            Ok(e) = failed_rx => {
                if let Ok(mut slot) = failure_slot.lock() {
                    *slot = Some(e);
                }
            }
        }
    };
    serve_connections(listener, app, limits, shutdown).await;
    let failed = failure.lock().ok().and_then(|mut f| f.take());
    match failed {
        Some(e) => Err(ServeError::Load(e)),
        None => Ok(()),
    }
}

async fn terminate() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
