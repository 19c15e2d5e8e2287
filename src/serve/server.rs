//! Binds the socket, loads the model in the background (health answers 503 until then), serves,
//! and shuts down gracefully on SIGTERM / Ctrl-C, finishing in-flight requests.

use std::sync::Arc;

use burn::tensor::Device;
use tokio::net::TcpListener;

use super::app::LoadedModel;
use super::listen::{ConnectionLimits, serve_connections};
use super::{AppState, Batcher, BatcherConfig, ServeConfig, ServerMetrics, router};
use crate::artifact::{ArtifactError, ClassifierBundle};
use crate::predict::Predictor;
use crate::tokenize::TokenCounter;

/// Loads the exported model and starts its batching worker.
pub fn load_model(config: &ServeConfig, device: Device, metrics: ServerMetrics) -> Result<LoadedModel, ArtifactError> {
    let bundle = ClassifierBundle::load(&config.model_dir, &device)?;
    let untruncated = Arc::new(TokenCounter::for_encoder(&bundle.tokenizer));
    let class_names = bundle.meta.class_names.clone();
    let binary = bundle.meta.is_binary();
    let seq_len = bundle.meta.encode.seq_len;
    let text_pairs = bundle.meta.text_pairs;
    let mut predictor = Predictor::with_engine(bundle, device, config.engine)?;
    if let Some(t) = config.threshold {
        predictor.set_threshold(t).map_err(|_| ArtifactError::NotMultiLabel(config.model_dir.clone()))?;
    }
    let threshold = predictor.threshold();
    tracing::info!(engine = predictor.engine_name(), "model loaded");
    // One tokenizer, shared by the request handlers and the worker (which needs its pad id).
    let tokenizer = predictor.shared_tokenizer();
    predictor.batch_size = config.max_batch_size;
    let batcher = Batcher::start(
        Box::new(move |enc| predictor.logits(enc).map_err(|e| e.to_string())),
        BatcherConfig {
            max_batch_size: config.max_batch_size,
            max_wait: config.max_wait,
            queue_capacity: config.queue_capacity,
        },
        metrics,
    );
    Ok(LoadedModel { batcher, tokenizer, untruncated, class_names, binary, threshold, seq_len, text_pairs })
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
    #[error("server error")]
    Io(#[source] std::io::Error),
}

/// Runs until SIGTERM/Ctrl-C (or a model that fails to load).
pub async fn serve(config: ServeConfig, device: Device) -> Result<(), ServeError> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let limits = ConnectionLimits { max_connections: config.max_connections, header_timeout: config.header_timeout };
    let metrics = ServerMetrics::new();
    let state = AppState::new(config.clone(), metrics.clone());
    let app = router(state.clone());
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<ArtifactError>();
    let loader_state = state.clone();
    tokio::task::spawn_blocking(move || match load_model(&config, device, metrics) {
        Ok(model) => {
            tracing::info!("model loaded");
            eprintln!("Model `{}` loaded from {}", config.model_name, config.model_dir.display());
            loader_state.set_model(model);
        }
        Err(e) => {
            let _ = failed_tx.send(e);
        }
    });
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
