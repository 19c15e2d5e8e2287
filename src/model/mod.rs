//! The BERT encoder and what it needs: its `config.json`, the checkpoint reader and the layers.

mod attention;
mod checkpoint;
mod config;
mod embeddings;
mod encoder;
mod error;
mod layer;
mod pooling;

pub use checkpoint::{Checkpoint, Weights};
pub use config::{Activation, BertConfig};
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, EncoderInput, EncoderOutput};
pub use error::LoadError;
pub use layer::BertLayer;
pub use pooling::{Pooling, PoolingError, mean_pool};
