//! The buffers of a forward pass: in training mode every layer's saved activations (what the
//! backward pass reads), in evaluation mode one layer's, reused by every layer. Kept from call to
//! call: fresh multi-megabyte vectors per op cost more in page faults (the kernel zeroing each
//! new page) than the LayerNorms they hold.

use bertkit_kernels::PackedB;

/// One encoder layer's activations.
#[derive(Default)]
pub struct LayerCache {
    /// bf16 copies of the four GEMM inputs (input, context, `a`, activation output) when the
    /// training GEMMs run in bf16; in evaluation on AMX tiles `a` exists in both forms, the
    /// context and the feed-forward's inner activation in bits only.
    pub x_bits: Vec<u16>,
    pub ctx_bits: Vec<u16>,
    pub a_bits: Vec<u16>,
    pub inter_bits: Vec<u16>,
    pub qkv: Vec<f32>,
    /// The projection as bf16 bits, when evaluation keeps every GEMM input in bits.
    pub qkv_bits: Vec<u16>,
    /// Attention probabilities after dropout (training only).
    pub probs: Vec<f32>,
    pub ctx: Vec<f32>,
    pub attn_xhat: Vec<f32>,
    pub attn_rstd: Vec<f32>,
    /// Post-attention LayerNorm output: the FFN's input and residual.
    pub a: Vec<f32>,
    /// The FFN's inner activation before (training only) and after its nonlinearity.
    pub inter_pre: Vec<f32>,
    pub inter: Vec<f32>,
    pub out_xhat: Vec<f32>,
    pub out_rstd: Vec<f32>,
}

/// Everything one forward pass writes; the backward pass reads it after a training-mode call.
#[derive(Default)]
pub struct Cache {
    /// The embeddings after LayerNorm and dropout `[B·T, E]`, when a projection follows them
    /// (otherwise they are `xs[0]` and this holds a spare buffer).
    pub emb: Vec<f32>,
    pub emb_xhat: Vec<f32>,
    pub emb_rstd: Vec<f32>,
    /// Training: `xs[l]` is layer `l`'s input `[B·T, H]` and the last is the encoder's output.
    /// Evaluation: two buffers the layers alternate between.
    pub xs: Vec<Vec<f32>>,
    /// Evaluation in bf16 bits: `xs` as bits, what the next layer's GEMMs read.
    pub xs_bits: Vec<Vec<u16>>,
    /// Which of `xs` holds the encoder's output.
    pub out: usize,
    /// Whether that output is each text's first row only, `[B, H]` (`Mode::EvalFirst`), rather
    /// than `[B·T, H]`.
    pub first_rows: bool,
    /// Every depth's output, when an evaluation call asked for them.
    pub states: Vec<Vec<f32>>,
    pub layers: Vec<LayerCache>,
    /// `[B, H]`: the `[CLS]` rows (pooler/cls pooling) or the means.
    pub pooled_in: Vec<f32>,
    /// `[B, H]`: tanh output of the pooler, when used.
    pub pooler_out: Vec<f32>,
    /// The head's input after dropout, its hidden layer's pre-activation and output after
    /// activation and dropout.
    pub head_in: Vec<f32>,
    pub hidden_pre: Vec<f32>,
    pub hidden_out: Vec<f32>,
    /// Dropout seed of this step; `None` in evaluation (and for dropout-free gradients).
    pub seed: Option<u64>,
    /// The backward pass's own reused buffers.
    pub backward: BackwardBuffers,
}

impl Cache {
    /// The encoder's output of the last call: `[B·T, H]`, or `[B, H]` after `Mode::EvalFirst`.
    pub fn sequence(&self) -> &[f32] {
        &self.xs[self.out]
    }
}

/// Buffers the backward pass reuses from step to step, for the same reason as [`Cache`].
#[derive(Default)]
pub struct BackwardBuffers {
    pub packs: GradPacks,
    pub d: Vec<f32>,
    pub branch: Vec<f32>,
    pub qkv: Vec<f32>,
    pub ctx: Vec<f32>,
    pub tmp: Vec<f32>,
}

/// The backward GEMMs' packed operands: a transposed weight and an output gradient.
pub struct GradPacks {
    pub wt: PackedB,
    pub dy: PackedB,
    pub dy_bits: Vec<u16>,
}

impl Default for GradPacks {
    fn default() -> Self {
        Self { wt: PackedB::empty(), dy: PackedB::empty(), dy_bits: Vec::new() }
    }
}

pub(crate) fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}
