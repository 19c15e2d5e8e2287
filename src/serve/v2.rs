//! KServe's Open Inference Protocol (V2) over REST — what KServe, Triton, OpenVINO Model Server,
//! Seldon MLServer and their clients (`tritonclient[http]`, `kserve`) speak: server and model
//! metadata, liveness and readiness, and `infer` with the texts as a BYTES tensor and FP32
//! probabilities plus label names as BYTES back. Errors are `{"error": "..."}` like every route.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::app::{LoadedModel, read_body, score};
use super::v2_request::parse_infer;
use super::{ApiError, AppState};

/// The one model version this server has.
const VERSION: &str = "1";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata_at))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_at))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_at))
}

/// Whether a path is one of the protocol's health routes (open without the API key).
pub(super) fn is_health(path: &str) -> bool {
    matches!(path, "/v2/health/live" | "/v2/health/ready")
}

async fn server_metadata() -> Json<Value> {
    Json(json!({ "name": "bertkit", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] }))
}

/// Live while the process answers, loading included.
async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.ready()?;
    Ok(Json(json!({ "ready": true })))
}

fn check(state: &AppState, name: &str, version: Option<&str>) -> Result<(), ApiError> {
    state.check_name(name)?;
    match version {
        Some(v) if v != VERSION => Err(ApiError::NotFound(format!("model `{name}` has no version `{v}`; it has version {VERSION}"))),
        _ => Ok(()),
    }
}

/// The outputs a model answers: every class's (label's) probability, and the label names.
fn output_names(m: &LoadedModel) -> [&'static str; 2] {
    ["probabilities", if m.decision.is_multi_label() { "labels" } else { "label" }]
}

fn metadata(state: &AppState, name: &str, version: Option<&str>) -> Result<Json<Value>, ApiError> {
    check(state, name, version)?;
    let m = state.loaded()?;
    let mut inputs = vec![json!({ "name": "text", "datatype": "BYTES", "shape": [-1] })];
    if m.text_pairs {
        inputs.push(json!({ "name": "text_pair", "datatype": "BYTES", "shape": [-1] }));
    }
    let [probabilities, labels] = output_names(m);
    Ok(Json(json!({
        "name": name,
        "versions": [VERSION],
        "platform": "bertkit",
        "inputs": inputs,
        "outputs": [
            { "name": probabilities, "datatype": "FP32", "shape": [-1, m.class_names.len()] },
            { "name": labels, "datatype": "BYTES", "shape": [-1] },
        ],
        "parameters": { "class_names": m.class_names, "multi_label": m.decision.is_multi_label(), "threshold": m.decision.threshold() },
    })))
}

async fn model_metadata(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    metadata(&state, &name, None)
}

async fn model_metadata_at(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    metadata(&state, &name, Some(&version))
}

fn model_ready_json(state: &AppState, name: &str, version: Option<&str>) -> Result<Json<Value>, ApiError> {
    check(state, name, version)?;
    state.ready()?;
    Ok(Json(json!({ "name": name, "ready": true })))
}

async fn model_ready(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    model_ready_json(&state, &name, None)
}

async fn model_ready_at(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    model_ready_json(&state, &name, Some(&version))
}

async fn infer(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Response {
    run_infer(state, name, None, headers, body).await.into_response()
}

async fn infer_at(State(state): State<AppState>, Path((name, version)): Path<(String, String)>, headers: HeaderMap, body: Body) -> Response {
    run_infer(state, name, Some(version), headers, body).await.into_response()
}

async fn run_infer(state: AppState, name: String, version: Option<String>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    check(&state, &name, version.as_deref())?;
    let model = state.loaded()?;
    // Admission before the body is read, as on the V1 routes.
    let ticket = model.batcher.admit()?;
    let bytes = read_body(&state, body).await?;
    let header_len = headers.get("inference-header-content-length").map(|v| v.to_str().unwrap_or("?"));
    let request = parse_infer(&bytes, header_len, state.config.max_instances)?;
    let names = output_names(model);
    if let Some(unknown) = request.outputs.iter().flatten().find(|o| !names.contains(&o.as_str())) {
        return Err(ApiError::bad_request(format!("unknown output `{unknown}`: this model answers `{}` and `{}`", names[0], names[1])));
    }
    let rows = score(&state, model, ticket, request.instances).await?;
    let (n, k) = (rows.len(), model.class_names.len());
    let (mut probabilities, mut labels) = (Vec::with_capacity(n * k), Vec::with_capacity(n));
    for logits in &rows {
        let p = model.decision.predict(logits, &model.class_names);
        probabilities.extend_from_slice(&p.scores);
        // Multi-label: the labels at or above the threshold, joined by `;` (a BYTES tensor holds
        // one string per text).
        labels.push(p.labels.map_or(p.label, |l| l.join(";")));
    }
    let wanted = |o: &str| request.outputs.as_ref().is_none_or(|list| list.iter().any(|x| x == o));
    let mut outputs = Vec::new();
    if wanted(names[0]) {
        outputs.push(json!({ "name": names[0], "datatype": "FP32", "shape": [n, k], "data": probabilities }));
    }
    if wanted(names[1]) {
        outputs.push(json!({ "name": names[1], "datatype": "BYTES", "shape": [n], "data": labels }));
    }
    let mut response = json!({ "model_name": name, "model_version": VERSION, "outputs": outputs });
    if let Some(id) = request.id {
        response["id"] = json!(id);
    }
    Ok(Json(response))
}
