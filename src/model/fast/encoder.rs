//! The one encoder forward pass on the kernels, for inference and training alike (mirrors
//! transformers' `BertEmbeddings` and its stack of post-LN `BertLayer`s, each in `layer.rs`, with
//! the family variants of [`ModelConfig`]). Two modes: evaluation keeps nothing and runs the fused inference kernels;
//! training applies dropout and keeps what the backward pass (`train::fast::backward`) reads.
//! Each has a variant whose last layer runs for the `[CLS]` rows alone (`first_rows.rs`).

use std::ops::Range;

use bertkit_kernels::attention_bits::attention_reads_bits;
use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::grad::{Activation as FfnActivation, layer_norm_train};
use bertkit_kernels::ops::layer_norm;
use bertkit_kernels::{Epilogue, Isa, Mat, Precision, RowSet, gemm_ex_rows, isa, to_bf16_bits};

use super::cache::{Cache, LayerCache, resize};
use super::first_rows::layer_first;
use super::layer::{Path, layer};
use super::params::{DenseSlots, NormSlots, Params};
use super::{Packed, Rows};
use crate::model::{Activation, Family, ModelConfig, Pooling};

/// What a forward pass reads: the store (tables, biases, LayerNorms) and its packed dense weights.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub params: &'a Params,
    pub packed: &'a Packed,
}

/// How a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inference: no dropout, nothing kept but the output (and with `states`, every depth's).
    Eval { states: bool },
    /// Inference whose caller reads only each text's first output row (`[CLS]` and pooler
    /// pooling): the last layer computes keys and values for every token but the rest (its
    /// attention, output projection, feed-forward, LayerNorms) for the `[CLS]` rows alone, and
    /// the output is `[B, H]` ([`Cache::first_rows`]). The same values as [`Mode::Eval`]'s first
    /// rows; transformers computes all `B·T` rows and the pooler then reads row 0.
    EvalFirst,
    /// Inference whose caller reads only the real tokens' output rows (mean pooling): the
    /// layers' GEMMs skip the padding rows, whose outputs then hold values nothing may read.
    /// The real rows are [`Mode::Eval`]'s.
    EvalReal,
    /// Training: dropout masks drawn from `seed` (`None`: dropout off, for exact gradients), and
    /// every activation the backward pass reads kept in the [`Cache`].
    Train { seed: Option<u64> },
    /// [`Mode::Train`] for a loss that reads only each text's first output row: the last layer
    /// as in [`Mode::EvalFirst`], with the dropout masks [`Mode::Train`] draws for those rows,
    /// so the loss and every gradient are the same (the other rows' outputs have zero gradient).
    TrainFirst { seed: Option<u64> },
}

impl Mode {
    /// The dropout seed: `None` in evaluation.
    pub fn seed(self) -> Option<u64> {
        match self {
            Mode::Train { seed } | Mode::TrainFirst { seed } => seed,
            Mode::Eval { .. } | Mode::EvalFirst | Mode::EvalReal => None,
        }
    }

    /// Whether the output is each text's first row only.
    pub fn first_rows(self) -> bool {
        matches!(self, Mode::EvalFirst | Mode::TrainFirst { .. })
    }

    /// Training for a loss on features pooled with `pooling`: only the `[CLS]` rows of the
    /// output unless the pooling averages every row.
    pub fn train_for(pooling: Pooling, seed: Option<u64>) -> Self {
        if reads_first_rows_only(pooling) { Mode::TrainFirst { seed } } else { Mode::Train { seed } }
    }

    /// Evaluation for a caller that pools with `pooling` and reads nothing else: only the `[CLS]`
    /// rows of the output unless the pooling averages every real row.
    pub fn eval_for(pooling: Pooling) -> Self {
        if reads_first_rows_only(pooling) { Mode::EvalFirst } else { Mode::EvalReal }
    }
}

/// Whether `pooling` reads each text's first output row and nothing else (`[CLS]` and pooler
/// pooling; mean pooling reads every real row).
fn reads_first_rows_only(pooling: Pooling) -> bool {
    pooling != Pooling::Mean
}

/// Dropout after the attention's output projection (DistilBERT's `MultiHeadSelfAttention` has
/// none).
pub fn attention_output_dropout(cfg: &ModelConfig) -> f64 {
    if cfg.family == Family::DistilBert { 0.0 } else { cfg.hidden_dropout_prob }
}

/// The feed-forward activation (`hidden_act`) as the kernels differentiate it.
pub fn ffn_activation(cfg: &ModelConfig) -> FfnActivation {
    match cfg.activation {
        Activation::Gelu => FfnActivation::Gelu,
        Activation::GeluTanh => FfnActivation::GeluTanh,
        Activation::Relu => FfnActivation::Relu,
    }
}

/// Whether GEMM operands are converted to bf16 (requested and the CPU multiplies bf16).
pub fn uses_bf16(prec: Precision) -> bool {
    prec.on_this_cpu() == Precision::Bf16
}

/// `x` as bf16 bits in `bits` when the GEMMs run in bf16: converted once, read by the forward
/// GEMM and again (transposed) by the weight gradient's.
pub fn convert<'a>(x: &[f32], prec: Precision, bits: &'a mut Vec<u16>) -> Option<&'a [u16]> {
    uses_bf16(prec).then(|| {
        to_bf16_bits(x, bits);
        &bits[..]
    })
}

/// `y` `[rows, out]` = `x` · W + b, then `epilogue` (`x_bits`: `x` in bf16, see [`convert`]), for
/// the rows in `live` (the others zero).
pub fn dense(
    w: Weights<'_>,
    s: DenseSlots,
    (x, x_bits): (&[f32], Option<&[u16]>),
    rows: usize,
    epilogue: Epilogue,
    y: &mut Vec<f32>,
    live: RowSet<'_>,
) {
    resize(y, rows * s.d_out);
    gemm_ex_rows(Mat::rows(x, rows, s.d_in), x_bits, w.packed.get(s), Some(&w.params.values[s.b]), epilogue, y, false, live);
}

/// The rows of a padded batch whose outputs anything reads, for a pass whose padding rows are
/// read by nothing: each text's real tokens ([`RowSet::live_ranges`]). Keys and values come from
/// real tokens only, real queries attend to them only, and pooling and the loss read real rows,
/// so the layers' GEMMs skip the padding rows (left at zero) and every output read is the same.
/// All rows when no text has a token (nothing to skip by).
pub fn real_rows(ranges: &[Range<usize>]) -> RowSet<'_> {
    if ranges.is_empty() { RowSet::All } else { RowSet::Ranges(ranges) }
}

pub(super) fn norm_train(p: &Params, s: NormSlots, x: &mut [f32], (xhat, rstd): (&mut Vec<f32>, &mut Vec<f32>), width: usize, eps: f32) {
    resize(xhat, x.len());
    resize(rstd, x.len() / width);
    layer_norm_train(x, xhat, rstd, width, &p.values[s.gamma], &p.values[s.beta], eps);
}

/// `(&v[cur], &mut v[1 - cur])` of a two-buffer ping-pong.
fn pair<T>(v: &mut [T], cur: usize) -> (&T, &mut T) {
    let (first, second) = v.split_at_mut(1);
    if cur == 0 { (&first[0], &mut second[0]) } else { (&second[0], &mut first[0]) }
}

/// Decided once per call for all layers (they share one precision).
pub(super) struct Plan {
    /// The layers' GEMM precision as packed.
    pub prec: Precision,
    /// Evaluation's attention products: bf16 on AMX tiles for the bf16 and int8 engines (with
    /// AVX512-BF16 alone bf16 operands measured no faster there: converting the scores costs
    /// what the products save, on Sapphire Rapids and on AMD Zen 4 alike, where the int8 engine
    /// ran 16 % slower with them (docs/benchmarks.md, 2026-12-04); int8 would quantize
    /// activations times activations twice).
    pub attention: Precision,
    /// Evaluation with bf16 weights and the erf GELU on AMX: the feed-forward's inner activation
    /// exists only in bf16. The first GEMM's epilogue (bias, GELU) writes the bits the second
    /// reads in place, without the round trip through memory. Its GELU is a polynomial good to
    /// 1e-4 (`avx512_ops::gelu_poly512`), well below the bf16 rounding that follows it.
    pub inner_in_bf16: bool,
    /// Evaluation with bf16 weights on AMX: every GEMM input exists in bf16 bits, written by the
    /// op before it (the projection's epilogue, the attention, the LayerNorms) and read by the
    /// tiles in place, without writing the fp32 projection and context at all, or reading any
    /// activation back just to convert it. The same values as converting fp32 inside each GEMM,
    /// except the feed-forward's GELU (see `inner_in_bf16`).
    pub bits: bool,
    pub eps: f32,
    /// Each text's real-token rows when nothing reads the padding rows' outputs (every mode but
    /// [`Mode::Eval`]); empty when every row is computed (sequence outputs).
    pub live: Vec<Range<usize>>,
}

impl Plan {
    /// The rows the layers' row-wise GEMMs compute over the `B·T` batch: see [`real_rows`].
    pub fn live(&self) -> RowSet<'_> {
        real_rows(&self.live)
    }
}

/// Runs the encoder on `rows`; its output `[B·T, H]` is then [`Cache::sequence`].
pub fn encode(w: Weights<'_>, cfg: &ModelConfig, rows: &Rows, mode: Mode, cache: &mut Cache) {
    let p = w.params;
    let lay = &p.layout;
    let (n, e) = (rows.rows(), cfg.embedding_size);
    let seed = mode.seed();
    let train = matches!(mode, Mode::Train { .. } | Mode::TrainFirst { .. });
    let prec = w.packed.precision(lay);
    let tiles = isa() == Isa::Amx;
    let plan = Plan {
        prec,
        attention: if tiles && prec != Precision::F32 { Precision::Bf16 } else { Precision::F32 },
        inner_in_bf16: tiles && prec == Precision::Bf16 && cfg.activation == Activation::Gelu,
        bits: !train && prec == Precision::Bf16 && attention_reads_bits(cfg.head_dim()),
        eps: cfg.layer_norm_eps as f32,
        // `Mode::Eval` returns every row (sequence outputs, every depth's states).
        live: if matches!(mode, Mode::Eval { .. }) { Vec::new() } else { RowSet::live_ranges(&rows.lens, rows.t) },
    };
    let applications = cfg.layer_sequence().len();
    // The application computed for the `[CLS]` rows only, if any.
    let first_only_at = if mode.first_rows() { applications.checked_sub(1) } else { None };
    cache.seed = seed;
    cache.first_rows = first_only_at.is_some();
    cache.states.clear();
    // Grown, never shrunk: the learner's validation (evaluation mode) shares its training cache.
    let (xs, layers) = if train { (applications + 1, applications) } else { (2, 1) };
    if cache.xs.len() < xs {
        cache.xs.resize_with(xs, Vec::new);
    }
    if cache.layers.len() < layers {
        cache.layers.resize_with(layers, LayerCache::default);
    }
    cache.xs_bits.resize_with(2, Vec::new);

    // Embeddings: LayerNorm(word + position + type), then dropout, at the embedding width `e`;
    // ELECTRA's `embeddings_project` and ALBERT's mapping then take them to the hidden width.
    let mut x = std::mem::take(&mut cache.emb);
    resize(&mut x, n * e);
    let (word, pos) = (&p.values[lay.word], &p.values[lay.position]);
    for (r, dst) in x.chunks_exact_mut(e).enumerate() {
        let (wv, q) = (&word[rows.ids[r] * e..][..e], &pos[rows.positions[r] * e..][..e]);
        dst.iter_mut().zip(wv).zip(q).for_each(|((d, a), b)| *d = a + b);
        if let Some(tt) = lay.token_type {
            let ty = &p.values[tt][rows.types[r] * e..][..e];
            dst.iter_mut().zip(ty).for_each(|(d, v)| *d += v);
        }
    }
    if train {
        norm_train(p, lay.emb_norm, &mut x, (&mut cache.emb_xhat, &mut cache.emb_rstd), e, plan.eps);
        DropoutMask::at(seed, 0, cfg.hidden_dropout_prob).apply(&mut x, 0);
    } else {
        layer_norm(&mut x, e, &p.values[lay.emb_norm.gamma], &p.values[lay.emb_norm.beta], plan.eps);
    }
    match lay.projection {
        Some(ps) => {
            dense(w, ps, (&x, None), n, Epilogue::None, &mut cache.xs[0], RowSet::All);
            cache.emb = x;
        }
        None => cache.emb = std::mem::replace(&mut cache.xs[0], x),
    }
    if plan.bits {
        to_bf16_bits(&cache.xs[0], &mut cache.xs_bits[0]);
    }

    let mut l = 0;
    let mut cur = 0;
    for d in 0..cfg.num_hidden_layers {
        if d > 0 && mode == (Mode::Eval { states: true }) {
            cache.states.push(cache.xs[cur].clone());
        }
        for li in cfg.layers_at_depth(d) {
            let s = &lay.layers[li];
            if train {
                let (before, after) = cache.xs.split_at_mut(l + 1);
                let path = Path::Train { seed, site0: 1 + 3 * l as u64 };
                if first_only_at == Some(l) {
                    layer_first(w, s, cfg, rows, &plan, (&before[l], None, &mut after[0]), &mut cache.layers[l], path);
                } else {
                    layer(w, s, cfg, rows, &plan, (&before[l], &mut after[0]), &mut cache.layers[l], path);
                }
            } else {
                // Two buffers (and their bits), read from one and written to the other by turns.
                let (x, out) = pair(&mut cache.xs, cur);
                let path = match plan.bits {
                    true => {
                        let (x_bits, out_bits) = pair(&mut cache.xs_bits, cur);
                        Path::Bits { x_bits, out_bits }
                    }
                    false => Path::Eval,
                };
                if first_only_at == Some(l) {
                    let x_bits = match &path {
                        Path::Bits { x_bits, .. } => Some(&x_bits[..]),
                        _ => None,
                    };
                    layer_first(w, s, cfg, rows, &plan, (x, x_bits, out), &mut cache.layers[0], Path::Eval);
                } else {
                    layer(w, s, cfg, rows, &plan, (x, out), &mut cache.layers[0], path);
                }
                cur = 1 - cur;
            }
            l += 1;
        }
    }
    cache.out = if train { l } else { cur };
    if mode == (Mode::Eval { states: true }) {
        cache.states.push(cache.xs[cur].clone());
    }
}
