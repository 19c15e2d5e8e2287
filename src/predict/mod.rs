//! Scoring raw text with a loaded classifier: batched, length-sorted inference and the
//! prediction records shown to users and returned by the server.

mod batched;
mod engine;
mod predictor;

#[cfg(feature = "burn")]
pub use batched::run_batched;
pub use batched::run_batched_tokens;
pub use engine::{Engine, EngineError};
pub use predictor::{PredictError, Prediction, Predictor, prediction, to_labels, to_prediction};
