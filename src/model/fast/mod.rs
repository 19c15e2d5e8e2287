//! The kernels model: one weight store ([`Params`], read from and written to safetensors), the
//! classifier around it ([`BertModel`]) and its inference path on `bertkit-kernels` (packed
//! fp32/bf16/int8 GEMMs with fused epilogues, fused attention and LayerNorm), no autodiff graph,
//! no padding work beyond each batch's longest text.

mod bilstm;
#[cfg(feature = "burn")]
mod burn_bridge;
mod classifier;
mod encoder;
mod model;
mod params;
mod weights;

pub use bilstm::{BiLstmCache, BiLstmModel, DIRECTIONS, DirectionSlots, EMBEDDING, OUTPUT_B, OUTPUT_W, direction};
pub use classifier::{FastClassifier, pool};
pub use encoder::{FastEncoder, FastOutput};
pub use model::{BertModel, ModelError};
pub use params::{DenseSlots, HeadInit, LayerSlots, Layout, NormSlots, Params};
pub use bertkit_kernels::Precision;
