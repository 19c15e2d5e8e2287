//! The server's OpenAPI 3 document (`GET /openapi.json`), derived by `utoipa` from the wire types
//! below and one documented operation per route. The handlers parse bodies by hand (to name each
//! problem in a 400), so these types describe the protocol rather than being parsed into; the
//! HTTP tests and `scripts/schemathesis.sh` hold the two together.

use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// Every error: 4xx and 5xx alike.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    /// What went wrong, naming the field, instance or limit.
    error: String,
}

/// An instance: a text, or a text with its second text (pair models). Texts that are empty or
/// only invisible characters are refused (400).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
#[serde(untagged)]
enum Instance {
    Text(String),
    Object {
        #[schema(min_length = 1)]
        text: String,
        #[schema(min_length = 1)]
        text_pair: Option<String>,
    },
}

/// The columnar form's texts (one text alone stands for a list of one).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
#[serde(untagged)]
enum Columns {
    Text(String),
    Texts(Vec<String>),
    Named {
        #[schema(min_items = 1)]
        text: Vec<String>,
        text_pair: Option<Vec<String>>,
    },
}

/// TF Serving / Vertex AI predict body: row format (`instances`) or columnar (`inputs`).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
#[serde(untagged)]
enum PredictRequest {
    Rows {
        #[schema(min_items = 1)]
        instances: Vec<Instance>,
    },
    Columns { inputs: Columns },
}

/// One prediction per instance: the positive class's probability (binary), `{label, score,
/// scores}` (multi-class) or `{labels, scores}` (multi-label).
#[derive(ToSchema)]
#[allow(dead_code)]
struct PredictResponse {
    predictions: Vec<Value>,
}

/// An Open Inference Protocol tensor in a request: the texts are BYTES, shape `[N]` or `[N, 1]`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct RequestTensor {
    /// `text`, or `text_pair` for pair models.
    #[schema(pattern = "^(text|text_pair)$")]
    name: String,
    #[schema(min_items = 1, max_items = 2)]
    shape: Vec<u64>,
    #[schema(pattern = "^BYTES$")]
    datatype: String,
    /// The strings, row-major (absent with the binary tensor data extension).
    data: Option<Vec<Value>>,
    parameters: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct RequestedOutput {
    /// `probabilities`, or `label` (`labels` for multi-label models).
    name: String,
    parameters: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct InferRequest {
    id: Option<String>,
    #[schema(min_items = 1, max_items = 2)]
    inputs: Vec<RequestTensor>,
    outputs: Option<Vec<RequestedOutput>>,
    parameters: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ResponseTensor {
    name: String,
    shape: Vec<u64>,
    /// `FP32` (probabilities) or `BYTES` (labels).
    datatype: String,
    data: Vec<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct InferResponse {
    model_name: String,
    model_version: String,
    id: Option<String>,
    outputs: Vec<ResponseTensor>,
}

/// Any JSON object (status, metadata, health answers).
#[derive(ToSchema)]
#[allow(dead_code)]
struct JsonObject {}

macro_rules! doc_op {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[allow(dead_code)]
        fn $name() {}
    };
}

doc_op!(
    /// Score texts (TF Serving / Vertex AI).
    #[utoipa::path(post, path = "/v1/models/{name}:predict", tag = "v1", params(("name" = String, Path)), request_body = PredictRequest,
        responses((status = 200, body = PredictResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody),
            (status = 429, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
            (status = 504, body = ErrorBody)))]
    v1_predict
);
doc_op!(
    /// The model's version status (TF Serving).
    #[utoipa::path(get, path = "/v1/models/{name}", tag = "v1", params(("name" = String, Path)),
        responses((status = 200, body = JsonObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 404, body = ErrorBody), (status = 405, body = ErrorBody)))]
    v1_status
);
doc_op!(
    /// The model's signature (TF Serving).
    #[utoipa::path(get, path = "/v1/models/{name}/metadata", tag = "v1", params(("name" = String, Path)),
        responses((status = 200, body = JsonObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
    v1_metadata
);
doc_op!(
    /// 200 once the model is loaded and its worker ready, 503 before and while the worker restarts its model after a panic.
    #[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = JsonObject), (status = 503, body = ErrorBody)))]
    health
);
doc_op!(
    /// Prometheus metrics (text).
    #[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = ErrorBody)))]
    metrics
);
doc_op!(
    /// Server metadata (Open Inference Protocol).
    #[utoipa::path(get, path = "/v2", tag = "v2", responses((status = 200, body = JsonObject), (status = 401, body = ErrorBody)))]
    v2_server
);
doc_op!(
    /// Live while the process answers.
    #[utoipa::path(get, path = "/v2/health/live", tag = "v2", responses((status = 200, body = JsonObject)))]
    v2_live
);
doc_op!(
    /// Ready once the model is loaded.
    #[utoipa::path(get, path = "/v2/health/ready", tag = "v2", responses((status = 200, body = JsonObject), (status = 503, body = ErrorBody)))]
    v2_ready
);
doc_op!(
    /// Model metadata: inputs, outputs, class names.
    #[utoipa::path(get, path = "/v2/models/{name}", tag = "v2", params(("name" = String, Path)),
        responses((status = 200, body = JsonObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
    v2_model
);
doc_op!(
    /// Model readiness.
    #[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "v2", params(("name" = String, Path)),
        responses((status = 200, body = JsonObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
    v2_model_ready
);
doc_op!(
    /// Score texts (Open Inference Protocol): BYTES in, FP32 probabilities and BYTES labels out.
    #[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "v2", params(("name" = String, Path)), request_body = InferRequest,
        responses((status = 200, body = InferResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody),
            (status = 429, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody),
            (status = 504, body = ErrorBody)))]
    v2_infer
);
doc_op!(
    /// This document.
    #[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, body = JsonObject), (status = 401, body = ErrorBody)))]
    openapi_json
);

#[derive(OpenApi)]
#[openapi(
    info(title = "bertkit serve", description = "Text classification over HTTP: TF Serving / Vertex AI (v1) and the Open Inference Protocol (v2)"),
    paths(v1_predict, v1_status, v1_metadata, health, metrics, v2_server, v2_live, v2_ready, v2_model, v2_model_ready, v2_infer, openapi_json)
)]
struct ApiDoc;

/// The document as JSON, for the server serving `model_name`: every `{name}` path parameter
/// takes only that value (the one model this server has), so clients and fuzzers reach past 404.
pub fn document(model_name: &str) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut()) {
            for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                if param["name"] == "name" && param["in"] == "path" {
                    param["schema"] = serde_json::json!({ "type": "string", "enum": [model_name] });
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_error_body() {
        let doc = document("imdb");
        let paths = doc["paths"].as_object().unwrap();
        for p in ["/v1/models/{name}:predict", "/v2/models/{name}/infer", "/v2/health/ready", "/health", "/metrics", "/openapi.json"] {
            assert!(paths.contains_key(p), "{p} missing");
        }
        let infer = &paths["/v2/models/{name}/infer"]["post"];
        assert_eq!(infer["responses"]["400"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
        assert!(doc["components"]["schemas"]["InferRequest"]["properties"]["inputs"].is_object());
        assert_eq!(infer["parameters"][0]["schema"]["enum"], serde_json::json!(["imdb"]));
    }
}
