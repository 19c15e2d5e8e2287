//! Scoring raw text with a loaded classifier: batched, length-sorted inference and the
//! prediction records shown to users and returned by the server.

mod decision;
mod engine;
mod predictor;

pub use decision::{Decision, to_class, to_labels};
pub use engine::{Engine, EngineError};
pub use predictor::{Int8Origin, PredictError, Prediction, Predictor};
