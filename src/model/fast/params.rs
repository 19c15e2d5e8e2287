//! The one weight store of a BERT-family classifier: every tensor as a flat fp32 array, read
//! straight from a transformers `model.safetensors` and written straight back to one. Inference
//! packs it once at load, the kernels trainer updates it in place (and packs once per step).
//! Dense weights are kept `[in, out]` (transformers stores `[out, in]`), the kernels' `[k, n]`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::names::{EncoderNames, LayerNames};
use crate::model::{Family, HeadSpec, LoadError, ModelConfig, Tensors, WeightsWriter};
use crate::model::checkpoint::transpose;

/// Where one encoder layer's tensors sit in [`Params::values`].
#[derive(Clone, Copy, Debug)]
pub struct LayerSlots {
    /// `[H, 3H]`: query, key and value side by side (one GEMM).
    pub qkv: DenseSlots,
    pub attn_out: DenseSlots,
    pub attn_norm: NormSlots,
    pub ffn_in: DenseSlots,
    pub ffn_out: DenseSlots,
    pub out_norm: NormSlots,
}

/// A dense layer's slots: weight `[in, out]` and bias `[out]`.
#[derive(Clone, Copy, Debug)]
pub struct DenseSlots {
    pub w: usize,
    pub b: usize,
    pub d_in: usize,
    pub d_out: usize,
}

/// A LayerNorm's slots.
#[derive(Clone, Copy, Debug)]
pub struct NormSlots {
    pub gamma: usize,
    pub beta: usize,
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub word: usize,
    pub position: usize,
    pub token_type: Option<usize>,
    pub emb_norm: NormSlots,
    /// ELECTRA's `embeddings_project`, ALBERT's `embedding_hidden_mapping_in` (`E` → `H`).
    pub projection: Option<DenseSlots>,
    /// The stored layers (ALBERT applies its groups several times: [`ModelConfig::layer_sequence`]).
    pub layers: Vec<LayerSlots>,
    pub pooler: Option<DenseSlots>,
    pub head_hidden: Option<DenseSlots>,
    pub head_out: DenseSlots,
}

/// All tensors, their names (for the trainer's checkpoints) and whether weight decay applies.
#[derive(Clone)]
pub struct Params {
    pub values: Vec<Vec<f32>>,
    pub names: Vec<String>,
    pub decay: Vec<bool>,
    pub layout: Layout,
}

/// Where the head's weights come from.
#[derive(Clone, Copy, Debug)]
pub enum HeadInit {
    /// Read from the checkpoint under the family's names (an exported classifier).
    Stored,
    /// Drawn as transformers' `BertForSequenceClassification` does: normal(0, 0.02) weights, zero
    /// biases; the seed makes the draw reproducible.
    Fresh { seed: u64 },
}

#[derive(Default)]
pub(super) struct Builder {
    values: Vec<Vec<f32>>,
    names: Vec<String>,
    decay: Vec<bool>,
}

impl Builder {
    pub(super) fn push(&mut self, name: String, v: Vec<f32>, decay: bool) -> usize {
        self.values.push(v);
        self.names.push(name);
        self.decay.push(decay);
        self.values.len() - 1
    }

    /// A dense layer from `w` `[in, out]` and its bias.
    pub(super) fn dense(&mut self, name: &str, w: Vec<f32>, bias: Vec<f32>, d_in: usize) -> DenseSlots {
        let d_out = bias.len();
        let w = self.push(format!("{name}.weight"), w, true);
        let b = self.push(format!("{name}.bias"), bias, false);
        DenseSlots { w, b, d_in, d_out }
    }

    /// BERT's recipe: no weight decay on LayerNorm parameters (nor on biases).
    pub(super) fn norm(&mut self, name: &str, gamma: Vec<f32>, beta: Vec<f32>) -> NormSlots {
        NormSlots { gamma: self.push(format!("{name}.gamma"), gamma, false), beta: self.push(format!("{name}.beta"), beta, false) }
    }

    pub(super) fn finish(self, layout: Layout) -> Params {
        Params { values: self.values, names: self.names, decay: self.decay, layout }
    }
}

/// Reads transformers' `nn.Linear` `{name}` (`[out, in]`) as `([in, out], bias)`.
fn linear(w: &Tensors<'_>, name: &str, d_in: usize, d_out: usize) -> Result<(Vec<f32>, Vec<f32>), LoadError> {
    let weight = w.read(&format!("{name}.weight"), &[d_out, d_in])?;
    Ok((transpose(&weight, d_out, d_in), w.read(&format!("{name}.bias"), &[d_out])?))
}

fn layer_norm(w: &Tensors<'_>, name: &str, d: usize) -> Result<(Vec<f32>, Vec<f32>), LoadError> {
    Ok((w.read(&format!("{name}.weight"), &[d])?, w.read(&format!("{name}.bias"), &[d])?))
}

impl Params {
    /// Reads the encoder from `w` (mirrors transformers' `BertModel` and its family variants;
    /// the prefix `bert.`/`roberta.`/… already selected) and puts the head `head` on it.
    pub fn load(w: &mut Tensors<'_>, cfg: &ModelConfig, head: &HeadSpec, init: HeadInit) -> Result<Self, LoadError> {
        let (e, h, inter) = (cfg.embedding_size, cfg.hidden_size, cfg.intermediate_size);
        let mut b = Builder::default();
        let word = b.push("word_embeddings".into(), w.read("embeddings.word_embeddings.weight", &[cfg.vocab_size, e])?, true);
        let position = b.push(
            "position_embeddings".into(),
            w.read("embeddings.position_embeddings.weight", &[cfg.max_position_embeddings, e])?,
            true,
        );
        let token_type = match cfg.family {
            Family::DistilBert => None,
            _ => Some(b.push(
                "token_type_embeddings".into(),
                w.read("embeddings.token_type_embeddings.weight", &[cfg.type_vocab_size, e])?,
                true,
            )),
        };
        let (g, beta) = layer_norm(w, "embeddings.LayerNorm", e)?;
        let emb_norm = b.norm("embeddings.layer_norm", g, beta);
        let projection = match EncoderNames::projection(cfg.family) {
            // ELECTRA only stores the projection when the widths differ.
            Some(name) if e != h || w.contains(&format!("{name}.weight")) => {
                let (pw, pb) = linear(w, name, e, h)?;
                Some(b.dense("projection", pw, pb, e))
            }
            _ => None,
        };
        let mut layers = Vec::with_capacity(cfg.stored_layers());
        for i in 0..cfg.stored_layers() {
            let n = LayerNames::new(cfg.family, i, cfg.inner_group_num);
            // Query, key and value as one `[H, 3H]` GEMM: row r holds q's, k's, then v's row r.
            let mut qkv = vec![0.0f32; h * 3 * h];
            let mut bias = Vec::with_capacity(3 * h);
            for (p, name) in [&n.query, &n.key, &n.value].into_iter().enumerate() {
                let (pw, pb) = linear(w, name, h, h)?;
                for (r, row) in pw.chunks_exact(h).enumerate() {
                    qkv[r * 3 * h + p * h..r * 3 * h + (p + 1) * h].copy_from_slice(row);
                }
                bias.extend(pb);
            }
            let qkv = b.dense(&format!("layer.{i}.qkv"), qkv, bias, h);
            let (aw, ab) = linear(w, &n.attention_output, h, h)?;
            let attn_out = b.dense(&format!("layer.{i}.attention.output"), aw, ab, h);
            let (g, beta) = layer_norm(w, &n.attention_norm, h)?;
            let attn_norm = b.norm(&format!("layer.{i}.attention.layer_norm"), g, beta);
            let (iw, ib) = linear(w, &n.ffn_in, h, inter)?;
            let ffn_in = b.dense(&format!("layer.{i}.intermediate"), iw, ib, h);
            let (ow, ob) = linear(w, &n.ffn_out, inter, h)?;
            let ffn_out = b.dense(&format!("layer.{i}.output"), ow, ob, inter);
            let (g, beta) = layer_norm(w, &n.output_norm, h)?;
            let out_norm = b.norm(&format!("layer.{i}.layer_norm"), g, beta);
            layers.push(LayerSlots { qkv, attn_out, attn_norm, ffn_in, ffn_out, out_norm });
        }
        let pooler_name = EncoderNames::pooler(cfg.family);
        let pooler = if w.contains(&format!("{pooler_name}.weight")) {
            let (pw, pb) = linear(w, pooler_name, h, h)?;
            Some(b.dense("pooler", pw, pb, h))
        } else {
            None
        };
        let (head_hidden, head_out) = match init {
            HeadInit::Stored => {
                let (hidden_name, output_name) = cfg.family.head_names();
                w.select_prefix(&format!("{output_name}.weight"), &[""])?;
                let hidden = head
                    .hidden_size
                    .map(|hs| linear(w, hidden_name, head.input_size, hs).map(|(hw, hb)| b.dense("head.hidden", hw, hb, head.input_size)))
                    .transpose()?;
                let out_in = head.hidden_size.unwrap_or(head.input_size);
                let (ow, ob) = linear(w, output_name, out_in, head.num_outputs)?;
                (hidden, b.dense("head.output", ow, ob, out_in))
            }
            HeadInit::Fresh { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut fresh = |b: &mut Builder, name: &str, d_in: usize, d_out: usize| {
                    let weight = (0..d_in * d_out).map(|_| 0.02 * standard_normal(&mut rng)).collect();
                    b.dense(name, weight, vec![0.0; d_out], d_in)
                };
                let hidden = head.hidden_size.map(|hs| fresh(&mut b, "head.hidden", head.input_size, hs));
                let out_in = head.hidden_size.unwrap_or(head.input_size);
                (hidden, fresh(&mut b, "head.output", out_in, head.num_outputs))
            }
        };
        Ok(b.finish(Layout { word, position, token_type, emb_norm, projection, layers, pooler, head_hidden, head_out }))
    }

    /// Writes every tensor under the family's transformers names (the mirror of [`Self::load`]):
    /// the encoder under `family.prefix()`, the head under its `*ForSequenceClassification`
    /// names, so transformers loads the file as that class.
    pub fn save(&self, w: &mut WeightsWriter, cfg: &ModelConfig) {
        let family = cfg.family;
        let v = &self.values;
        let lay = &self.layout;
        let dense = |w: &mut WeightsWriter, name: &str, s: DenseSlots| {
            w.values(&format!("{name}.weight"), &[s.d_out, s.d_in], transpose(&v[s.w], s.d_in, s.d_out));
            w.values(&format!("{name}.bias"), &[s.d_out], v[s.b].clone());
        };
        let norm = |w: &mut WeightsWriter, name: &str, s: NormSlots| {
            w.values(&format!("{name}.weight"), &[v[s.gamma].len()], v[s.gamma].clone());
            w.values(&format!("{name}.bias"), &[v[s.beta].len()], v[s.beta].clone());
        };
        let table = |w: &mut WeightsWriter, name: &str, slot: usize, width: usize| {
            w.values(&format!("{name}.weight"), &[v[slot].len() / width.max(1), width], v[slot].clone());
        };
        let e = v[lay.emb_norm.gamma].len();
        w.set_prefix(family.prefix());
        table(w, "embeddings.word_embeddings", lay.word, e);
        table(w, "embeddings.position_embeddings", lay.position, e);
        if let Some(t) = lay.token_type {
            table(w, "embeddings.token_type_embeddings", t, e);
        }
        norm(w, "embeddings.LayerNorm", lay.emb_norm);
        if let (Some(s), Some(name)) = (lay.projection, EncoderNames::projection(family)) {
            dense(w, name, s);
        }
        for (i, s) in lay.layers.iter().enumerate() {
            let n = LayerNames::new(family, i, cfg.inner_group_num);
            let h = s.qkv.d_in;
            for (p, name) in [&n.query, &n.key, &n.value].into_iter().enumerate() {
                let part: Vec<f32> = v[s.qkv.w].chunks_exact(3 * h).flat_map(|row| row[p * h..(p + 1) * h].iter().copied()).collect();
                w.values(&format!("{name}.weight"), &[h, h], transpose(&part, h, h));
                w.values(&format!("{name}.bias"), &[h], v[s.qkv.b][p * h..(p + 1) * h].to_vec());
            }
            dense(w, &n.attention_output, s.attn_out);
            norm(w, &n.attention_norm, s.attn_norm);
            dense(w, &n.ffn_in, s.ffn_in);
            dense(w, &n.ffn_out, s.ffn_out);
            norm(w, &n.output_norm, s.out_norm);
        }
        if let Some(s) = lay.pooler {
            dense(w, EncoderNames::pooler(family), s);
        }
        w.set_prefix("");
        let (hidden_name, output_name) = family.head_names();
        if let Some(s) = lay.head_hidden {
            dense(w, hidden_name, s);
        }
        dense(w, output_name, lay.head_out);
    }

    /// Zeroed arrays of the same shapes (gradients, moments).
    pub fn zeros_like(&self) -> Vec<Vec<f32>> {
        self.values.iter().map(|v| vec![0.0; v.len()]).collect()
    }
}

/// One draw of N(0, 1) (Box–Muller): `rand` 0.9 has no normal distribution of its own, and the
/// head's init needs only this one.
pub(super) fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
