//! The BERT encoder and what it needs: its `config.json`, the checkpoint reader and the layers.

mod attention;
mod checkpoint;
mod classifier;
mod config;
mod embeddings;
mod encoder;
mod error;
mod glove;
mod head;
mod layer;
mod pooling;

pub use classifier::BertClassifier;
pub use checkpoint::{Checkpoint, Weights, WeightsWriter};
pub use config::{Activation, BertConfig};
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, EncoderInput, EncoderOutput};
pub use error::LoadError;
pub use glove::{GloveError, GloveVectors, embedding_matrix, read_glove, write_glove};
pub use head::{ClassifierHead, HeadSpec};
pub use layer::BertLayer;
pub use pooling::{Pooling, PoolingError, mean_pool};
