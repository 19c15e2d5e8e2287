//! The BERT-family encoders and what they need: `config.json`, the checkpoint reader, the layers
//! and the classification head.

mod attention;
mod bilstm;
mod checkpoint;
mod classifier;
mod config;
mod embeddings;
mod encoder;
mod error;
mod family;
pub mod fast;
mod glove;
mod head;
mod hf_config;
mod layer;
mod names;
mod pooling;
mod pretrained;
mod text_classifier;

pub use bilstm::{BiLstm, BiLstmClassifier, BiLstmSpec};
pub use classifier::BertClassifier;
pub use checkpoint::{Checkpoint, Tensors, Weights, WeightsWriter};
pub use config::{Activation, ModelConfig};
pub use family::{Family, HeadActivation, HeadDefaults};
pub use hf_config::{BertConfig, DistilBertConfig};
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, EncoderInput, EncoderOutput};
pub use error::LoadError;
pub use glove::{GloveError, GloveVectors, embedding_matrix, load_glove, read_glove, write_glove};
pub use head::{ClassifierHead, HeadSpec};
pub use layer::BertLayer;
pub use names::{EncoderNames, LayerNames};
pub use pooling::{Pooling, PoolingError, mean_pool};
pub use pretrained::{Pretrained, check_fit};
pub use text_classifier::{BurnClassifier, TextClassifier};
