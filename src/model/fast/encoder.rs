//! The encoder forward pass on the kernels (mirrors transformers' `BertModel.forward` in eval
//! mode).

use std::sync::Mutex;

use bertkit_kernels::ops::{add_layer_norm, attention, gelu_tanh, layer_norm, relu};
use bertkit_kernels::{Epilogue, Isa, Precision, gemm, gemm_from_bits, gemm_to_bits, isa};

use super::Params;
use super::weights::{Dense, Norm};
use crate::model::{Activation, ModelConfig};
use crate::tokenize::TokenBatch;

struct FastLayer {
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    ffn_in: Dense,
    ffn_out: Dense,
    output_norm: Norm,
}

/// What [`FastEncoder::forward`] returns, row-major.
pub struct FastOutput {
    pub batch: usize,
    pub seq_len: usize,
    /// `[B·T, H]`: the last layer's states.
    pub sequence: Vec<f32>,
    /// `[B, H]`, when the checkpoint has a pooler.
    pub pooled: Option<Vec<f32>>,
    /// Every depth's output `[B·T, H]` (the last equals `sequence`), from
    /// [`FastEncoder::forward_all`] only.
    pub hidden_states: Vec<Vec<f32>>,
}

pub struct FastEncoder {
    config: ModelConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Option<Vec<f32>>,
    embedding_norm: Norm,
    projection: Option<Dense>,
    layers: Vec<FastLayer>,
    pooler: Option<Dense>,
    /// Activation buffers kept between calls: a batch of 32 × 128 needs ~60 MB of them, and
    /// fresh ones cost the kernel zeroing every page again (10 % of inference time).
    scratch: Mutex<Vec<Vec<f32>>>,
    /// The feed-forward's inner activation as bf16 bits, when it never exists in fp32 (below).
    inner_bits: Mutex<Vec<u16>>,
}

impl FastEncoder {
    /// Packs `params`' encoder once (`precision` for the GEMM operands).
    pub fn new(params: &Params, config: &ModelConfig, precision: Precision) -> Self {
        let lay = &params.layout;
        let eps = config.layer_norm_eps;
        let layers = lay
            .layers
            .iter()
            .map(|s| FastLayer {
                qkv: Dense::new(params, s.qkv, precision),
                attention_out: Dense::new(params, s.attn_out, precision),
                attention_norm: Norm::new(params, s.attn_norm, eps),
                ffn_in: Dense::new(params, s.ffn_in, precision),
                ffn_out: Dense::new(params, s.ffn_out, precision),
                output_norm: Norm::new(params, s.out_norm, eps),
            })
            .collect();
        Self {
            word: params.values[lay.word].clone(),
            position: params.values[lay.position].clone(),
            token_type: lay.token_type.map(|t| params.values[t].clone()),
            embedding_norm: Norm::new(params, lay.emb_norm, eps),
            projection: lay.projection.map(|s| Dense::new(params, s, precision)),
            layers,
            pooler: lay.pooler.map(|s| Dense::new(params, s, precision)),
            config: config.clone(),
            scratch: Mutex::new(Vec::new()),
            inner_bits: Mutex::new(Vec::new()),
        }
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Runs the encoder on a right-padded batch.
    pub fn forward(&self, batch: &TokenBatch) -> FastOutput {
        self.run(batch, false)
    }

    /// [`Self::forward`], keeping every depth's output too (TF Hub's `encoder_outputs`).
    pub fn forward_all(&self, batch: &TokenBatch) -> FastOutput {
        self.run(batch, true)
    }

    fn run(&self, batch: &TokenBatch, keep_states: bool) -> FastOutput {
        let cfg = &self.config;
        let (b, t) = (batch.batch_size, batch.seq_len);
        let (rows, e, h) = (b * t, cfg.embedding_size, cfg.hidden_size);
        let lens: Vec<usize> =
            batch.input_mask.chunks(t.max(1)).map(|m| m.iter().filter(|&&v| v != 0).count()).collect();

        let mut x = vec![0.0f32; rows * e];
        let mut positions = Vec::with_capacity(rows);
        for ids in batch.input_word_ids.chunks(t.max(1)) {
            cfg.position_ids(ids, &mut positions);
        }
        for (bi, ids) in batch.input_word_ids.chunks(t.max(1)).enumerate() {
            for (ti, &id) in ids.iter().enumerate() {
                let r = bi * t + ti;
                let pos = positions[r];
                let dst = &mut x[r * e..(r + 1) * e];
                let word = &self.word[(id.max(0) as usize).min(cfg.vocab_size - 1) * e..][..e];
                let position = &self.position[pos * e..][..e];
                for ((d, w), p) in dst.iter_mut().zip(word).zip(position) {
                    *d = w + p;
                }
                if let Some(types) = &self.token_type {
                    let tt = (batch.input_type_ids[r].max(0) as usize).min(cfg.type_vocab_size - 1);
                    for (d, v) in dst.iter_mut().zip(&types[tt * e..(tt + 1) * e]) {
                        *d += v;
                    }
                }
            }
        }
        let n = &self.embedding_norm;
        layer_norm(&mut x, e, &n.gamma, &n.beta, n.eps);
        if let Some(p) = &self.projection {
            x = dense(&x, rows, p, Epilogue::None);
        }

        let (heads, hd) = (cfg.num_attention_heads, cfg.head_dim());
        // Buffers reused by every layer: fresh multi-megabyte vectors per op cost more in page
        // faults (the kernel zeroing new pages) than the LayerNorms they hold.
        // A poisoned lock only means another call panicked: start from fresh buffers then.
        let mut pool = self.scratch.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        let mut take = || pool.pop().unwrap_or_default();
        let (mut qkv, mut ctx, mut a, mut inter, mut out) = (take(), take(), take(), take(), take());
        let mut inner_bits = self.inner_bits.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default();
        ctx.resize(rows * h, 0.0);
        // Decided once for all layers (they share one precision). On AMX tiles attention's small
        // GEMMs run in bf16 for the bf16 and int8 engines (with AVX512-BF16 alone bf16 operands
        // measured no faster there: converting the scores costs what the products save; int8
        // would quantize activations times activations twice). With bf16 weights and the erf
        // GELU, the feed-forward's inner activation exists only in bf16: the first GEMM's epilogue
        // (bias, GELU) writes the bits the second reads in place — the same values as writing
        // fp32 and converting, without the round trip through memory.
        let weights = self.layers.first().map_or(Precision::F32, |l| l.qkv.weight.precision());
        let tiles = isa() == Isa::Amx;
        let attention_precision = if tiles && weights != Precision::F32 { Precision::Bf16 } else { Precision::F32 };
        let inner_in_bf16 = tiles && weights == Precision::Bf16 && cfg.activation == Activation::Gelu;
        let epilogue = if cfg.activation == Activation::Gelu { Epilogue::Gelu } else { Epilogue::None };
        let mut hidden_states = Vec::new();
        for d in 0..cfg.num_hidden_layers {
            if d > 0 && keep_states {
                hidden_states.push(x.clone());
            }
            for layer in &self.layers[cfg.layers_at_depth(d)] {
                dense_into(&x, rows, &layer.qkv, Epilogue::None, &mut qkv);
                attention(&qkv, &lens, (t, heads, hd), attention_precision, &mut ctx);
                dense_into(&ctx, rows, &layer.attention_out, Epilogue::None, &mut a);
                let an = &layer.attention_norm;
                add_layer_norm(&mut a, &x, h, &an.gamma, &an.beta, an.eps);
                let ffn_in = &layer.ffn_in;
                if inner_in_bf16 {
                    gemm_to_bits(&a, rows, &ffn_in.weight, Some(&ffn_in.bias), Epilogue::Gelu, &mut inner_bits);
                    out.resize(rows * h, 0.0);
                    gemm_from_bits(&inner_bits, rows, &layer.ffn_out.weight, Some(&layer.ffn_out.bias), Epilogue::None, &mut out);
                } else {
                    dense_into(&a, rows, ffn_in, epilogue, &mut inter);
                    match cfg.activation {
                        Activation::Gelu => {}
                        Activation::GeluTanh => gelu_tanh(&mut inter),
                        Activation::Relu => relu(&mut inter),
                    }
                    dense_into(&inter, rows, &layer.ffn_out, Epilogue::None, &mut out);
                }
                let on = &layer.output_norm;
                add_layer_norm(&mut out, &a, h, &on.gamma, &on.beta, on.eps);
                std::mem::swap(&mut x, &mut out);
            }
        }
        if let Ok(mut p) = self.scratch.lock() {
            p.extend([qkv, ctx, a, inter, out]);
        }
        if let Ok(mut b) = self.inner_bits.lock() {
            *b = inner_bits;
        }
        let pooled = self.pooler.as_ref().map(|p| {
            let cls: Vec<f32> = (0..b).flat_map(|bi| x[bi * t * h..bi * t * h + h].iter().copied()).collect();
            let mut y = dense(&cls, b, p, Epilogue::None);
            bertkit_kernels::ops::tanh(&mut y);
            y
        });
        if keep_states {
            hidden_states.push(x.clone());
        }
        FastOutput { batch: b, seq_len: t, sequence: x, pooled, hidden_states }
    }
}

/// `x` `[rows, k]` through `d` → `[rows, out]`.
pub(super) fn dense(x: &[f32], rows: usize, d: &Dense, epilogue: Epilogue) -> Vec<f32> {
    let mut y = Vec::new();
    dense_into(x, rows, d, epilogue, &mut y);
    y
}

/// Like [`dense`] into `y`, reusing its allocation (the GEMM overwrites every element).
pub(super) fn dense_into(x: &[f32], rows: usize, d: &Dense, epilogue: Epilogue, y: &mut Vec<f32>) {
    y.resize(rows * d.out(), 0.0);
    gemm(x, rows, &d.weight, Some(&d.bias), epilogue, y);
}
