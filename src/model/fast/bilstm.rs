//! The GloVe + BiLSTM baseline on the kernels: its weights as flat arrays (read from and written
//! to the same safetensors names as burn's module, `embedding.weight`, `first.forward.*`, …) and
//! its forward pass, which training reuses with dropout on and a cache for the backward pass.
//! Embedding (padding masked) → BiLSTM(U, sequences, input dropout) → BiLSTM(U, final states,
//! input dropout) → dense, as [`BiLstmClassifier`](crate::model::BiLstmClassifier) computes it.

use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::lstm::{LstmCache, LstmWeights, Steps, lstm_forward};
use bertkit_kernels::{Epilogue, Mat, PackedB, Precision, gemm_ex};
use rand::{Rng, SeedableRng};

use super::TokenBatchError;
use super::params::standard_normal;
use rand_chacha::ChaCha8Rng;

use crate::model::checkpoint::transpose;
use crate::model::{BiLstmSpec, LoadError, Tensors, WeightsWriter};
use crate::tokenize::TokenBatch;

/// burn's gate order inside each direction's fused `[·, 4U]` blocks.
const GATES: [&str; 4] = ["input_gate", "forget_gate", "output_gate", "cell_gate"];
/// The four directions, in slot order.
pub const DIRECTIONS: [&str; 4] = ["first.forward", "first.backward", "second.forward", "second.backward"];

/// Slots of one direction in [`BiLstmModel::values`].
#[derive(Clone, Copy, Debug)]
pub struct DirectionSlots {
    /// `[D, 4U]`, `[U, 4U]`, and the input and hidden transforms' biases `[4U]` (burn keeps both;
    /// they always add up, and both are trained and saved).
    pub wx: usize,
    pub wh: usize,
    pub bx: usize,
    pub bh: usize,
}

pub const EMBEDDING: usize = 0;
pub const OUTPUT_W: usize = 17;
pub const OUTPUT_B: usize = 18;

pub fn direction(k: usize) -> DirectionSlots {
    DirectionSlots { wx: 1 + 4 * k, wh: 2 + 4 * k, bx: 3 + 4 * k, bh: 4 + 4 * k }
}

#[derive(Clone)]
pub struct BiLstmModel {
    pub values: Vec<Vec<f32>>,
    pub names: Vec<String>,
    /// Weight decay applies to matrices, not biases.
    pub decay: Vec<bool>,
    pub spec: BiLstmSpec,
}

/// The forward pass's activations, kept for the backward pass (and reused between calls).
#[derive(Default)]
pub struct BiLstmCache {
    /// Per text: real words (at least 1, as burn counts an empty text).
    pub lens: Vec<usize>,
    pub batch: usize,
    pub t: usize,
    pub ids: Vec<usize>,
    /// The embeddings after dropout `[B·T, E]`, the first BiLSTM's output after dropout
    /// `[B·T, 2U]`, the final states `[B, 2U]`.
    pub x0: Vec<f32>,
    pub x1: Vec<f32>,
    pub last: Vec<f32>,
    pub directions: [LstmCache; 4],
    pub seed: Option<u64>,
}

impl BiLstmModel {
    fn shapes(spec: &BiLstmSpec) -> Vec<(String, Vec<usize>, bool)> {
        let (e, u, k) = (spec.embedding_dim, spec.units, spec.num_outputs);
        let mut v = vec![("embedding".to_string(), vec![spec.vocab_size, e], true)];
        for (i, name) in DIRECTIONS.iter().enumerate() {
            let d = if i < 2 { e } else { 2 * u };
            v.push((format!("{name}.wx"), vec![d, 4 * u], true));
            v.push((format!("{name}.wh"), vec![u, 4 * u], true));
            v.push((format!("{name}.bx"), vec![4 * u], false));
            v.push((format!("{name}.bh"), vec![4 * u], false));
        }
        v.push(("output.weight".into(), vec![2 * u, k], true));
        v.push(("output.bias".into(), vec![k], false));
        v
    }

    fn from_values(spec: BiLstmSpec, values: Vec<Vec<f32>>) -> Self {
        let shapes = Self::shapes(&spec);
        Self { names: shapes.iter().map(|s| s.0.clone()).collect(), decay: shapes.iter().map(|s| s.2).collect(), values, spec }
    }

    /// A fresh model whose embedding starts from `matrix` (`[vocab_size, embedding_dim]`). Gate
    /// weights are Xavier-normal (burn's `LstmConfig` default), the forget gate's input bias 1
    /// (Keras' `unit_forget_bias`: without it the baseline diverged), the dense layer
    /// Xavier-uniform; all drawn from `seed`.
    pub fn new(spec: BiLstmSpec, matrix: Vec<f32>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u = spec.units;
        let mut values = vec![matrix];
        for i in 0..4 {
            let d = if i < 2 { spec.embedding_dim } else { 2 * u };
            let mut normal = |fan_in: usize, n: usize| -> Vec<f32> {
                let std = (2.0 / (fan_in + u) as f64).sqrt() as f32;
                (0..n).map(|_| std * standard_normal(&mut rng)).collect()
            };
            values.push(normal(d, d * 4 * u));
            values.push(normal(u, u * 4 * u));
            values.push((0..4 * u).map(|j| if j / u == 1 { 1.0 } else { 0.0 }).collect());
            values.push(vec![0.0; 4 * u]);
        }
        let limit = (6.0 / (2 * u + spec.num_outputs) as f64).sqrt();
        values.push((0..2 * u * spec.num_outputs).map(|_| rng.random_range(-limit..limit) as f32).collect());
        values.push(vec![0.0; spec.num_outputs]);
        Self::from_values(spec, values)
    }

    /// Reads what [`Self::save`] (or burn's `BiLstmClassifier::save`) wrote.
    pub fn load(w: &Tensors<'_>, spec: BiLstmSpec) -> Result<Self, LoadError> {
        let (e, u, k) = (spec.embedding_dim, spec.units, spec.num_outputs);
        let mut values = vec![w.read("embedding.weight", &[spec.vocab_size, e])?];
        for (i, name) in DIRECTIONS.iter().enumerate() {
            let d = if i < 2 { e } else { 2 * u };
            let (mut wx, mut wh) = (vec![0.0f32; d * 4 * u], vec![0.0f32; u * 4 * u]);
            let (mut bx, mut bh) = (Vec::with_capacity(4 * u), Vec::with_capacity(4 * u));
            for (g, gate) in GATES.iter().enumerate() {
                // Each transform is stored as transformers stores a Linear: `[out, in]`.
                let gx = transpose(&w.read(&format!("{name}.{gate}.input.weight"), &[u, d])?, u, d);
                let gh = transpose(&w.read(&format!("{name}.{gate}.hidden.weight"), &[u, u])?, u, u);
                for r in 0..d {
                    wx[r * 4 * u + g * u..][..u].copy_from_slice(&gx[r * u..(r + 1) * u]);
                }
                for r in 0..u {
                    wh[r * 4 * u + g * u..][..u].copy_from_slice(&gh[r * u..(r + 1) * u]);
                }
                bx.extend(w.read(&format!("{name}.{gate}.input.bias"), &[u])?);
                bh.extend(w.read(&format!("{name}.{gate}.hidden.bias"), &[u])?);
            }
            values.extend([wx, wh, bx, bh]);
        }
        values.push(transpose(&w.read("output.weight", &[k, 2 * u])?, k, 2 * u));
        values.push(w.read("output.bias", &[k])?);
        Ok(Self::from_values(spec, values))
    }

    /// Writes the weights under the names burn's module used (`embedding.weight`,
    /// `first.forward.input_gate.input.weight`, …): transformers has no BiLSTM class, so there
    /// is no other layout to follow, and models exported before stay loadable.
    pub fn save(&self, w: &mut WeightsWriter) {
        let (e, u, k) = (self.spec.embedding_dim, self.spec.units, self.spec.num_outputs);
        let v = &self.values;
        w.values("embedding.weight", &[self.spec.vocab_size, e], v[EMBEDDING].clone());
        for (i, name) in DIRECTIONS.iter().enumerate() {
            let s = direction(i);
            let d = if i < 2 { e } else { 2 * u };
            for (g, gate) in GATES.iter().enumerate() {
                let block = |m: &[f32], rows: usize| -> Vec<f32> {
                    let cols: Vec<f32> = m.chunks_exact(4 * u).flat_map(|r| r[g * u..(g + 1) * u].iter().copied()).collect();
                    transpose(&cols, rows, u)
                };
                w.values(&format!("{name}.{gate}.input.weight"), &[u, d], block(&v[s.wx], d));
                w.values(&format!("{name}.{gate}.input.bias"), &[u], v[s.bx][g * u..(g + 1) * u].to_vec());
                w.values(&format!("{name}.{gate}.hidden.weight"), &[u, u], block(&v[s.wh], u));
                w.values(&format!("{name}.{gate}.hidden.bias"), &[u], v[s.bh][g * u..(g + 1) * u].to_vec());
            }
        }
        w.values("output.weight", &[k, 2 * u], transpose(&v[OUTPUT_W], 2 * u, k));
        w.values("output.bias", &[k], v[OUTPUT_B].clone());
    }

    /// The weights packed for the kernels: once at load for inference, once per optimizer step
    /// in training.
    pub fn pack(&self) -> BiLstmPacks {
        let u = self.spec.units;
        let direction_packs = |k: usize| {
            let s = direction(k);
            let d = self.values[s.wx].len() / (4 * u);
            let bias = self.values[s.bx].iter().zip(&self.values[s.bh]).map(|(a, b)| a + b).collect();
            (PackedB::new(&self.values[s.wx], d, 4 * u, Precision::F32), PackedB::new(&self.values[s.wh], u, 4 * u, Precision::F32), bias)
        };
        let k = self.spec.num_outputs;
        BiLstmPacks { directions: [0, 1, 2, 3].map(direction_packs), output: PackedB::new(&self.values[OUTPUT_W], 2 * u, k, Precision::F32) }
    }

    /// Logits `[B·K]` of a post-padded batch, with `packs` from [`Self::pack`] on the current
    /// weights; with `seed` (training) dropout is on. `cache` receives what the backward pass
    /// reads. A batch with an id past the embedding table, or not laid out as
    /// [`TokenBatchError::check_layout`] says, is refused.
    pub fn forward(
        &self,
        packs: &BiLstmPacks,
        batch: &TokenBatch,
        seed: Option<u64>,
        cache: &mut BiLstmCache,
    ) -> Result<Vec<f32>, TokenBatchError> {
        let spec = &self.spec;
        let (b, t, e, u) = (batch.batch_size, batch.seq_len.max(1), spec.embedding_dim, spec.units);
        let lens = TokenBatchError::check_layout(batch)?;
        cache.ids = TokenBatchError::word_rows(batch, spec.vocab_size)?;
        cache.seed = seed;
        (cache.batch, cache.t) = (b, t);
        // A text with no words ("!!!") runs one step, over its padding, and so still gets a score.
        cache.lens = lens.into_iter().map(|n| n.max(1)).collect();
        let table = &self.values[EMBEDDING];
        cache.x0.clear();
        for &id in &cache.ids {
            cache.x0.extend_from_slice(&table[id * e..(id + 1) * e]);
        }
        DropoutMask::at(seed, 1, spec.dropout_first).apply(&mut cache.x0, 0);
        let steps = |reverse| Steps { batch: b, t, lens: &cache.lens, reverse };
        let mut outs: [Vec<f32>; 4] = Default::default();
        for (k, out) in outs.iter_mut().enumerate().take(2) {
            let (wx, wh, bias) = &packs.directions[k];
            lstm_forward(&cache.x0, steps(k == 1), &LstmWeights { wx, wh, bias, units: u }, out, &mut cache.directions[k]);
        }
        cache.x1.clear();
        for r in 0..b * t {
            cache.x1.extend_from_slice(&outs[0][r * u..(r + 1) * u]);
            cache.x1.extend_from_slice(&outs[1][r * u..(r + 1) * u]);
        }
        DropoutMask::at(seed, 2, spec.dropout_second).apply(&mut cache.x1, 0);
        for (k, out) in outs.iter_mut().enumerate().skip(2) {
            let (wx, wh, bias) = &packs.directions[k];
            lstm_forward(&cache.x1, steps(k == 3), &LstmWeights { wx, wh, bias, units: u }, out, &mut cache.directions[k]);
        }
        // Each direction's state after the text's last real word: the forward one at its last
        // position, the backward one (which read the text in reverse) at position 0.
        cache.last.clear();
        for (bi, &len) in cache.lens.iter().enumerate() {
            cache.last.extend_from_slice(&outs[2][(bi * t + len.min(t) - 1) * u..][..u]);
            cache.last.extend_from_slice(&outs[3][(bi * t) * u..][..u]);
        }
        let k = spec.num_outputs;
        let mut logits = vec![0.0f32; b * k];
        gemm_ex(Mat::rows(&cache.last, b, 2 * u), None, &packs.output, Some(&self.values[OUTPUT_B]), Epilogue::None, &mut logits, false);
        Ok(logits)
    }

    /// Logits, one row per text, in evaluation mode.
    pub fn logits(&self, packs: &BiLstmPacks, batch: &TokenBatch) -> Result<Vec<Vec<f32>>, TokenBatchError> {
        let y = self.forward(packs, batch, None, &mut BiLstmCache::default())?;
        Ok(y.chunks(self.spec.num_outputs.max(1)).map(<[f32]>::to_vec).collect())
    }
}

/// [`BiLstmModel`]'s weights as the kernels read them: per direction the input and recurrent
/// weights and the summed biases, then the output layer.
pub struct BiLstmPacks {
    directions: [(PackedB, PackedB, Vec<f32>); 4],
    output: PackedB,
}

