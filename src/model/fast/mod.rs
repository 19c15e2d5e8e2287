//! The CPU inference path: the same encoder and head as the burn modules, run on
//! `bertkit-kernels` (packed fp32/bf16 GEMMs with fused epilogues, fused attention and
//! LayerNorm), no autodiff graph, no padding work beyond each batch's longest text.

mod classifier;
mod encoder;
mod weights;

pub use classifier::{FastClassifier, pool};
pub use encoder::{FastEncoder, FastOutput};
pub use bertkit_kernels::Precision;
