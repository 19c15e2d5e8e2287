//! The HTTP surface: TF Serving routes (`:predict`, status, metadata), the Open Inference
//! Protocol's (`v2.rs`), health, metrics, API-key auth and per-request metrics, all answering JSON.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::header;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::batcher::Ticket;
use super::{ApiError, Batcher, Instances, OnLongText, ServeConfig, ServerMetrics, parse_instances};
use crate::predict::Decision;
use crate::tokenize::{Encoded, TextEncoder, TokenCounter};

/// A loaded model as the handlers see it.
pub struct LoadedModel {
    pub batcher: Batcher,
    pub tokenizer: Arc<TextEncoder>,
    /// Measures texts before truncation, for `--on-long-text reject`.
    pub untruncated: Arc<TokenCounter>,
    pub class_names: Vec<String>,
    /// How logits become labels: the top class, or a binary or multi-label model's threshold.
    pub decision: Decision,
    pub seq_len: usize,
    /// The model scores sentence pairs: every instance needs `text_pair`.
    pub text_pairs: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub(super) config: Arc<ServeConfig>,
    metrics: ServerMetrics,
    pub(super) model: Arc<OnceLock<LoadedModel>>,
}

impl AppState {
    pub fn new(config: ServeConfig, metrics: ServerMetrics) -> Self {
        Self { config: Arc::new(config), metrics, model: Arc::new(OnceLock::new()) }
    }

    /// Makes the model available (health turns 200). Later calls are ignored.
    pub fn set_model(&self, model: LoadedModel) {
        let _ = self.model.set(model);
    }

    pub(super) fn loaded(&self) -> Result<&LoadedModel, ApiError> {
        self.model.get().ok_or_else(|| ApiError::Unavailable("the model is still loading".into()))
    }

    /// The model is loaded and its worker ready to score (not restarting after a panic): what
    /// health and readiness report. Requests are still taken while it restarts; they wait.
    pub(super) fn ready(&self) -> Result<&LoadedModel, ApiError> {
        let model = self.loaded()?;
        if !model.batcher.worker_alive() {
            return Err(ApiError::Unavailable("the model worker is restarting after a failure".into()));
        }
        Ok(model)
    }

    pub(super) fn check_name(&self, name: &str) -> Result<(), ApiError> {
        if name == self.config.model_name {
            return Ok(());
        }
        Err(ApiError::NotFound(format!("model `{name}` not found; this server serves `{}`", self.config.model_name)))
    }
}

pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/v1/models/{spec}", get(status).post(predict_named))
        .route("/v1/models/{name}/metadata", get(metadata))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|State(s): State<AppState>| async move { Json(super::openapi::document(&s.config.model_name)) }))
        .merge(super::v2::routes());
    if let Some(route) = &state.config.predict_route {
        r = r.route(route, axum::routing::post(predict_plain));
    }
    if let Some(route) = &state.config.health_route
        && route != "/health"
    {
        r = r.route(route, get(health));
    }
    r.fallback(|| async { ApiError::NotFound("no such route; see /v1/models/{name}:predict".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed("method not allowed on this route".into()) })
        .layer(axum::middleware::from_fn(allow_header))
        .layer(from_fn_with_state(state.clone(), auth))
        .layer(from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// A 405 names the methods the path takes (RFC 9110): `/v1/models/{name}` (GET) and
/// `/v1/models/{name}:predict` (POST) share one axum route, which would advertise both for each.
async fn allow_header(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let shared = path.strip_prefix("/v1/models/").is_some_and(|rest| !rest.contains('/'));
    let allow = match (shared, path.ends_with(":predict")) {
        (true, true) => Some("POST"),
        (true, false) => Some("GET,HEAD"),
        (false, _) => None,
    };
    let mut resp = next.run(req).await;
    if let (axum::http::StatusCode::METHOD_NOT_ALLOWED, Some(allow)) = (resp.status(), allow) {
        resp.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    resp
}

fn is_health(state: &AppState, path: &str) -> bool {
    path == "/health" || super::v2::is_health(path) || state.config.health_route.as_deref() == Some(path)
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = is_health(&state, path) || (path == "/metrics" && state.config.metrics_public);
    if let Some(key) = &state.config.api_key
        && !open
    {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = given.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
        // Constant time in the key's content (a length mismatch is refused at once).
        if !bool::from(subtle::ConstantTimeEq::ct_eq(token.as_bytes(), key.as_bytes())) {
            return ApiError::Unauthorized("missing or wrong API key (Authorization: Bearer ...)".into()).into_response();
        }
    }
    next.run(req).await
}

async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/v1/models/{spec}") if req.method() == axum::http::Method::POST => "predict",
        Some("/v1/models/{spec}") => "status",
        Some("/v1/models/{name}/metadata") => "metadata",
        Some(
            "/health" | "/v2/health/live" | "/v2/health/ready" | "/v2/models/{name}/ready" | "/v2/models/{name}/versions/{version}/ready",
        ) => "health",
        Some("/v2/models/{name}/infer" | "/v2/models/{name}/versions/{version}/infer") => "predict",
        Some(p) if p.starts_with("/v2") => "metadata",
        Some("/metrics") => "metrics",
        Some("/openapi.json") => "metadata",
        Some(p) if state.config.predict_route.as_deref() == Some(p) => "predict",
        Some(p) if state.config.health_route.as_deref() == Some(p) => "health",
        _ => "other",
    };
    let id = request_id(req.headers());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let start = Instant::now();
    let mut resp = next.run(req).await;
    let (status, elapsed) = (resp.status().as_u16(), start.elapsed());
    state.metrics.request(route, status, elapsed);
    let ms = elapsed.as_secs_f64() * 1e3;
    if is_failure(route, status) {
        tracing::warn!(request_id = %id, %method, path, status, ms, "request failed");
    } else {
        tracing::info!(request_id = %id, %method, path, status, ms, "request");
    }
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Whether a response is logged as a failure (a warning): every 5xx except a health probe's 503,
/// which is the probe's answer while the model loads or restarts, not a failed request (a
/// Kubernetes probe every few seconds during a long load filled the log with warnings; the load
/// and a restart log their own lines).
fn is_failure(route: &str, status: u16) -> bool {
    status >= 500 && !(route == "health" && status == 503)
}

/// The client's `X-Request-Id` when it is a short visible-ASCII token, else a fresh one: the id
/// in the response header and in every log line of the request.
fn request_id(headers: &header::HeaderMap) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let given = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    match given {
        Some(id) if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => id.to_string(),
        _ => {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{:08x}-{n}", std::process::id())
        }
    }
}

async fn health(State(state): State<AppState>) -> Response {
    match state.ready() {
        Ok(_) => Json(json!({ "status": "ok", "model": state.config.model_name })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// The `{name}` of a route, or a JSON 400 naming the problem (axum's own rejection is plain
/// text: `/v1/models/%ff:predict` used to answer that way).
type Segment = Result<Path<String>, PathRejection>;

fn segment(p: Segment) -> Result<String, ApiError> {
    p.map(|Path(s)| s).map_err(|e| ApiError::bad_request(format!("bad model name in the path: {}", e.body_text())))
}

async fn status(State(state): State<AppState>, spec: Segment) -> Result<Json<Value>, ApiError> {
    let spec = segment(spec)?;
    if spec.ends_with(":predict") {
        return Err(ApiError::MethodNotAllowed(format!("`{spec}` takes POST with a JSON body")));
    }
    state.check_name(&spec)?;
    // TF Serving's states: a worker rebuilding its model after a panic is loading it again.
    let (s, code) = if state.ready().is_ok() { ("AVAILABLE", "OK") } else { ("LOADING", "UNAVAILABLE") };
    Ok(Json(json!({
        "model_version_status": [{ "version": "1", "state": s, "status": { "error_code": code, "error_message": "" } }]
    })))
}

async fn metadata(State(state): State<AppState>, name: Segment) -> Result<Json<Value>, ApiError> {
    state.check_name(&segment(name)?)?;
    let m = state.loaded()?;
    let (shape, meaning) = match m.decision {
        Decision::MultiLabel { threshold: t } => {
            (json!([-1, m.class_names.len()]), format!("labels with probability >= {t} and every label's own probability"))
        }
        Decision::Binary { .. } => (json!([-1]), format!("probability of `{}`", m.class_names.get(1).cloned().unwrap_or_default())),
        Decision::TopClass { .. } => (json!([-1, m.class_names.len()]), "label, score and per-class probabilities".to_string()),
    };
    let mut inputs = json!({ "text": { "dtype": "DT_STRING", "tensor_shape": [-1], "name": "text" } });
    if m.text_pairs {
        inputs["text_pair"] = json!({ "dtype": "DT_STRING", "tensor_shape": [-1], "name": "text_pair" });
    }
    Ok(Json(json!({
        "model_spec": { "name": state.config.model_name, "version": "1" },
        "metadata": { "signature_def": { "signature_def": { "serving_default": {
            "inputs": inputs,
            "outputs": { "predictions": { "dtype": "DT_FLOAT", "tensor_shape": shape, "name": "predictions", "meaning": meaning, "labels": m.class_names } },
            "method_name": "tensorflow/serving/predict",
            "max_sequence_length": m.seq_len,
        } } } }
    })))
}

async fn predict_named(State(state): State<AppState>, spec: Segment, body: Body) -> Result<Json<Value>, ApiError> {
    let spec = segment(spec)?;
    let Some(name) = spec.strip_suffix(":predict") else {
        if !spec.contains(':') {
            // The model's status page: it takes GET.
            return Err(ApiError::MethodNotAllowed(format!("`/v1/models/{spec}` takes GET; score with POST /v1/models/{spec}:predict")));
        }
        return Err(ApiError::NotFound(format!("unknown verb in `{spec}`; use /v1/models/{{name}}:predict")));
    };
    state.check_name(name)?;
    predict(state, body).await
}

async fn predict_plain(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    predict(state, body).await
}

async fn predict(state: AppState, body: Body) -> Result<Json<Value>, ApiError> {
    // Admission first: a full queue answers 429 before the body is read or tokenized, so the
    // requests it refuses take no CPU from the ones it serves.
    let model = state.loaded()?;
    let ticket = model.batcher.admit()?;
    let bytes = read_body(&state, body).await?;
    let instances = parse_instances(&bytes, state.config.max_instances)?;
    let rows = score(&state, model, ticket, instances).await?;
    let predictions: Vec<Value> =
        rows.iter().map(|logits| model.decision.predict(logits, &model.class_names).instance_json(model.decision.is_binary())).collect();
    Ok(Json(json!({ "predictions": predictions })))
}

/// The request body, up to `--max-body-bytes`, within `--body-timeout`.
pub(super) async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let (limit, timeout) = (state.config.max_body_bytes, state.config.body_timeout);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::Timeout(format!("the request body did not arrive within {:.0} s", timeout.as_secs_f64())))?;
    read.map_err(|e| {
        // Only the length limit is a 413; a body that breaks off or a malformed chunked
        // encoding is the client's malformed request (it used to be reported as too large).
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge(format!("request body exceeds {limit} bytes"))
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })
}

/// Logits of admitted instances: the pair check, tokenization off the async workers, then the
/// batching worker. Every protocol's predict route ends here.
pub(super) async fn score(state: &AppState, model: &LoadedModel, ticket: Ticket, instances: Instances) -> Result<Vec<Vec<f32>>, ApiError> {
    match (model.text_pairs, instances.pairs.is_some()) {
        (true, false) => {
            return Err(ApiError::bad_request(
                "this model scores sentence pairs: give every instance its second text as `text_pair` ({\"text\": ..., \"text_pair\": ...})",
            ));
        }
        (false, true) => {
            return Err(ApiError::bad_request("this model scores single texts: `text_pair` is not accepted"));
        }
        _ => {}
    }
    let (tok, counter, seq_len, reject) =
        (model.tokenizer.clone(), model.untruncated.clone(), model.seq_len, state.config.on_long_text == OnLongText::Reject);
    // Tokenizing a batch of reviews is CPU work: keep it off the async workers.
    let encodings = tokio::task::spawn_blocking(move || encode(&tok, &counter, &instances, seq_len, reject))
        .await
        .map_err(|e| ApiError::Internal(format!("tokenizer task failed: {e}")))??;
    let timeout = state.config.request_timeout;
    let answered = tokio::time::timeout(timeout, model.batcher.submit_admitted(ticket, encodings)).await.map_err(|_| {
        ApiError::Deadline(format!("no answer within the server's request timeout ({:.0} s); the request was dropped", timeout.as_secs_f64()))
    })?;
    match answered {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(ApiError::ModelFailed(format!("model error: {e}"))),
        Err(e) => Err(e.into()),
    }
}

fn encode(
    tok: &TextEncoder,
    counter: &TokenCounter,
    instances: &Instances,
    seq_len: usize,
    reject_long: bool,
) -> Result<Vec<Encoded>, ApiError> {
    instances
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let pair = instances.pairs.as_ref().map(|p| p[i].as_str());
            if reject_long {
                let n = counter.count(t, pair).map_err(|e| ApiError::bad_request(format!("instance {i}: {e}")))?;
                if n > seq_len {
                    return Err(ApiError::bad_request(format!(
                        "instance {i} has {n} tokens; the model reads at most {seq_len} (server runs with --on-long-text reject)"
                    )));
                }
            }
            let encoded = match (tok.subword(), pair) {
                (Some(sub), pair) => sub.encode(t, pair),
                (None, _) => tok.encode(t),
            };
            encoded.map_err(|e| ApiError::bad_request(format!("instance {i}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_probes_answered_503_while_loading_are_not_logged_as_failures() {
        assert!(!is_failure("health", 503));
        assert!(is_failure("health", 500), "a health route that errors is a failure");
        assert!(is_failure("predict", 503) && is_failure("predict", 500) && is_failure("metadata", 504));
        assert!(!is_failure("predict", 200) && !is_failure("predict", 429) && !is_failure("health", 200));
    }
}
