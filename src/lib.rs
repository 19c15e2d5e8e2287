//! bertkit: turn a pretrained BERT-family checkpoint into a text classifier, train it, export it
//! and serve it.
//!
//! Data flows through the modules in this order: [`tokenize`] (text → `input_word_ids`,
//! `input_mask`, `input_type_ids`) → [`model`] (the encoder and its heads). Each layer only
//! depends on the ones before it.

pub mod artifact;
pub mod batch;
pub mod data;
pub mod device;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod serve;
pub mod tokenize;
pub mod train;

pub use device::{DeviceSpec, DeviceSpecError};
