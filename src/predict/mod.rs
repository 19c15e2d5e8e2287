//! Scoring raw text with a loaded classifier: batched, length-sorted inference and the
//! prediction records shown to users and returned by the server.

mod batched;
mod predictor;

pub use batched::run_batched;
pub use predictor::{PredictError, Prediction, Predictor, to_prediction};
