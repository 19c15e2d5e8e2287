//! Scoring raw text with a loaded classifier: batched, length-sorted inference and the
//! prediction records shown to users and returned by the server.

mod engine;
mod predictor;

pub use engine::{Engine, EngineError};
pub use predictor::{Int8Origin, PredictError, Prediction, Predictor, prediction, to_labels, to_prediction};
