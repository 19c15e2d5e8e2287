//! bertkit: turn a pretrained BERT-family checkpoint into a text classifier, train it, export it
//! and serve it.
//!
//! Data flows through the modules in this order: [`tokenize`] (text → `input_word_ids`,
//! `input_mask`, `input_type_ids`) → [`model`] (the encoder and its heads). Each layer only
//! depends on the ones before it.

pub mod device;
pub mod model;
pub mod tokenize;

pub use device::{DeviceSpec, DeviceSpecError};
