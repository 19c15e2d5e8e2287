//! Parses TF Serving / Vertex AI predict bodies into texts, and the JSON error every 4xx/5xx
//! answer carries.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// An HTTP error answered as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The texts of a predict body. Accepted shapes:
/// - `{"instances": [{"text": "..."}, ...]}` (Vertex AI, TF Serving row format)
/// - `{"instances": ["...", ...]}`
/// - `{"inputs": {"text": ["...", ...]}}` or `{"inputs": ["...", ...]}` (TF Serving columnar)
pub fn parse_instances(body: &[u8], max_instances: usize) -> Result<Vec<String>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!("request body is not valid UTF-8 (byte {})", e.valid_up_to()))
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty request body; expected {\"instances\": [{\"text\": \"...\"}]}"));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object with `instances` or `inputs`"));
    };
    let texts = match (obj.get("instances"), obj.get("inputs")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either `instances` or `inputs`, not both"));
        }
        (None, None) => {
            return Err(ApiError::bad_request("missing `instances` (or `inputs`): expected {\"instances\": [{\"text\": \"...\"}]}"));
        }
        (Some(instances), None) => rows(instances)?,
        (None, Some(inputs)) => columns(inputs)?,
    };
    if texts.is_empty() {
        return Err(ApiError::bad_request("`instances` is empty"));
    }
    if texts.len() > max_instances {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} instances in one request; the limit is {max_instances}", texts.len()),
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            return Err(ApiError::bad_request(format!("instance {i}: `text` is empty")));
        }
    }
    Ok(texts)
}

fn rows(instances: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = instances else {
        return Err(ApiError::bad_request(format!("`instances` must be a list, got {}", kind(instances))));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => match o.get("text") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ApiError::bad_request(format!("instance {i}: `text` must be a string, got {}", kind(other)))),
                None => Err(ApiError::bad_request(format!("instance {i}: missing `text`"))),
            },
            other => Err(ApiError::bad_request(format!(
                "instance {i} must be a string or {{\"text\": ...}}, got {}",
                kind(other)
            ))),
        })
        .collect()
}

fn columns(inputs: &Value) -> Result<Vec<String>, ApiError> {
    let list = match inputs {
        Value::Object(o) => o.get("text").ok_or_else(|| ApiError::bad_request("`inputs` is missing `text`"))?,
        other => other,
    };
    match list {
        Value::Array(_) => rows(list).map_err(|e| ApiError::bad_request(e.message.replace("instance", "input"))),
        Value::String(s) => Ok(vec![s.clone()]),
        other => Err(ApiError::bad_request(format!("`inputs.text` must be a list of strings, got {}", kind(other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<String> {
        parse_instances(body.as_bytes(), 8).unwrap()
    }

    fn err(body: &[u8]) -> String {
        parse_instances(body, 2).unwrap_err().message
    }

    #[test]
    fn accepts_every_documented_shape() {
        assert_eq!(ok(r#"{"instances": [{"text": "a"}, {"text": "b"}]}"#), ["a", "b"]);
        assert_eq!(ok(r#"{"instances": ["a"]}"#), ["a"]);
        assert_eq!(ok(r#"{"inputs": {"text": ["a", "b"]}}"#), ["a", "b"]);
        assert_eq!(ok(r#"{"inputs": ["a"]}"#), ["a"]);
    }

    #[test]
    fn names_each_problem() {
        assert!(err(b"{oops").contains("malformed JSON"));
        assert!(err(b"[1]").contains("JSON object"));
        assert!(err(br#"{"instances": [{"txt": "a"}]}"#).contains("instance 0: missing `text`"));
        assert!(err(br#"{"instances": [{"text": 3}]}"#).contains("`text` must be a string, got a number"));
        assert!(err(br#"{"instances": []}"#).contains("empty"));
        assert!(err(br#"{"instances": "a"}"#).contains("must be a list"));
        assert!(err(br#"{"instances": ["a"], "inputs": ["b"]}"#).contains("not both"));
        assert!(err(br#"{"foo": 1}"#).contains("missing `instances`"));
        assert!(err(br#"{"instances": ["  "]}"#).contains("instance 0: `text` is empty"));
        assert!(err(b"{\"instances\": [\"\xff\"]}").contains("not valid UTF-8"));
        let too_many = parse_instances(br#"{"instances": ["a", "b", "c"]}"#, 2).unwrap_err();
        assert_eq!(too_many.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
