//! The server's one error type and the one place that turns it into an HTTP status and body
//! (`{"error": "..."}`), with the statuses TF Serving and TEI use. Handlers say what went wrong;
//! [`ApiError::status`] decides what the client sees.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::SubmitError;

/// What went wrong with a request, with the message the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request is malformed: body, JSON shape, texts, path (400).
    BadRequest(String),
    /// Missing or wrong API key (401).
    Unauthorized(String),
    /// No such route or model (404).
    NotFound(String),
    /// The route exists for another method (405).
    MethodNotAllowed(String),
    /// The request body did not arrive within `--body-timeout` (408).
    Timeout(String),
    /// More bytes or instances than the limits allow (413).
    TooLarge(String),
    /// The queue is full; retry later (429).
    Busy(String),
    /// The model failed (or panicked) on this request's batch (500).
    ModelFailed(String),
    /// Something in the server itself failed (500).
    Internal(String),
    /// The model is loading or its worker stopped (503).
    Unavailable(String),
    /// The request was not answered within `--request-timeout` (504); its work was dropped.
    Deadline(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The one error → status map.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ModelFailed(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Deadline(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::NotFound(m)
            | Self::MethodNotAllowed(m)
            | Self::Timeout(m)
            | Self::TooLarge(m)
            | Self::Busy(m)
            | Self::ModelFailed(m)
            | Self::Internal(m)
            | Self::Unavailable(m)
            | Self::Deadline(m) => m,
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::QueueFull(_) => Self::Busy(e.to_string()),
            SubmitError::WorkerGone => Self::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(serde_json::json!({ "error": self.message() }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status_and_the_body_carries_the_message() {
        let cases = [
            (ApiError::bad_request("x"), 400),
            (ApiError::Unauthorized("x".into()), 401),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::MethodNotAllowed("x".into()), 405),
            (ApiError::TooLarge("x".into()), 413),
            (ApiError::from(SubmitError::QueueFull(4)), 429),
            (ApiError::ModelFailed("x".into()), 500),
            (ApiError::Internal("x".into()), 500),
            (ApiError::from(SubmitError::WorkerGone), 503),
        ];
        for (e, code) in cases {
            assert_eq!(e.status().as_u16(), code, "{e:?}");
        }
        assert!(ApiError::from(SubmitError::QueueFull(4)).message().contains("4 requests already queued"));
    }
}
