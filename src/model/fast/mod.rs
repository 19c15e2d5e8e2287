//! The kernels model: one weight store ([`Params`], read from and written to safetensors), the
//! classifier around it ([`BertModel`]), its dense weights packed once ([`Packed`]) and the one
//! forward pass on `bertkit-kernels` ([`encode`], [`forward`]) in evaluation mode (inference:
//! fused attention and LayerNorm, packed fp32/bf16/int8 GEMMs with fused epilogues) and training
//! mode (dropout, activations kept for the backward pass). No padding work beyond each batch's
//! longest text.

mod bilstm;
#[cfg(feature = "burn")]
mod burn_bridge;
mod cache;
mod classifier;
mod encoder;
mod first_rows;
mod inference;
mod layer;
mod model;
mod packed;
mod params;
mod rows;

pub use bertkit_kernels::Precision;
pub use bilstm::{
    BiLstmCache, BiLstmModel, BiLstmPacks, DIRECTIONS, DirectionSlots, EMBEDDING, OUTPUT_B, OUTPUT_W, direction,
};
pub use cache::{BackwardBuffers, Cache, GradPacks, LayerCache};
pub use classifier::{HEAD_SITE, NetSpec, activate, forward, head_forward, pool};
pub use encoder::{
    Mode, Weights, attention_output_dropout, convert, dense, encode, ffn_activation, real_rows, uses_bf16,
};
pub use first_rows::drop_rows;
pub use inference::{FastClassifier, FastEncoder, FastOutput};
pub use model::{BertModel, ModelError};
pub use packed::{Int8Store, Packed, int8_slots};
pub use params::{DenseSlots, HeadInit, LayerSlots, Layout, NormSlots, Params};
pub use rows::{Rows, TokenBatchError};
