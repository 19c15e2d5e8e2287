//! The BERT-family encoders and what they need: `config.json`, the checkpoint reader, the one
//! weight store and the kernels model (`fast`), the classification head's shape, and — with the
//! `burn` feature — burn's modules (the burn engine: GPU training and inference).

#[cfg(feature = "burn")]
mod attention;
#[cfg(feature = "burn")]
mod bilstm;
mod batched;
mod bilstm_spec;
mod checkpoint;
#[cfg(feature = "burn")]
mod classifier;
mod config;
#[cfg(feature = "burn")]
mod embeddings;
#[cfg(feature = "burn")]
mod encoder;
mod error;
mod family;
pub mod fast;
mod glove;
#[cfg(feature = "burn")]
mod head;
mod head_spec;
mod hf_config;
#[cfg(feature = "burn")]
mod layer;
mod names;
mod pooling;
mod pretrained;
mod text_classifier;

#[cfg(feature = "burn")]
pub use bilstm::{BiLstm, BiLstmClassifier};
pub use batched::run_batched_tokens;
#[cfg(feature = "burn")]
pub use batched::{run_batched, tensor_rows};
pub use bilstm_spec::BiLstmSpec;
#[cfg(feature = "burn")]
pub use classifier::BertClassifier;
#[cfg(feature = "burn")]
pub use checkpoint::Weights;
pub use checkpoint::{Checkpoint, Tensors, WeightsWriter};
pub use config::{Activation, ModelConfig};
pub use family::{Family, HeadActivation, HeadDefaults};
pub use hf_config::{BertConfig, DistilBertConfig};
#[cfg(feature = "burn")]
pub use embeddings::BertEmbeddings;
#[cfg(feature = "burn")]
pub use encoder::{BertEncoder, EncoderInput, EncoderOutput};
pub use error::LoadError;
pub use glove::{GloveError, GloveVectors, embedding_matrix, load_glove, read_glove, write_glove};
#[cfg(feature = "burn")]
pub use head::ClassifierHead;
pub use head_spec::HeadSpec;
#[cfg(feature = "burn")]
pub use layer::BertLayer;
pub use names::{EncoderNames, LayerNames};
#[cfg(feature = "burn")]
pub use pooling::mean_pool;
pub use pooling::{Pooling, PoolingError};
pub use pretrained::{Pretrained, check_fit};
#[cfg(feature = "burn")]
pub use text_classifier::{BatchFit, BurnClassifier};
pub use text_classifier::TextClassifier;
