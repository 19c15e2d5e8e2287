//! The classifier's parameters as flat fp32 arrays for the kernels trainer: copied out of a burn
//! [`BertClassifier`], updated in place, and written back into it for checkpoints and export.
//! Weights keep burn's `[in, out]` layout, which is the kernels' `[k, n]`.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::BertClassifier;
use crate::train::TrainError;

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
    /// ELECTRA's `embeddings_project` (`E` → `H`).
    pub projection: Option<DenseSlots>,
    pub layers: Vec<LayerSlots>,
    pub pooler: Option<DenseSlots>,
    pub head_hidden: Option<DenseSlots>,
    pub head_out: DenseSlots,
}

/// All trainable tensors, their names (for checkpoints) and whether weight decay applies.
pub struct Params {
    pub values: Vec<Vec<f32>>,
    pub names: Vec<String>,
    pub decay: Vec<bool>,
    pub layout: Layout,
}

fn data<const D: usize>(t: &Tensor<D>, name: &str) -> Result<Vec<f32>, TrainError> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| TrainError::Backend(format!("{name}: {e:?}")))
}

/// Every layer the depths apply must exist (ALBERT's groups, one layer per depth otherwise): the
/// loader builds them so, and the forward pass indexes them by depth.
fn check_layers(model: &BertClassifier) -> Result<(), TrainError> {
    let cfg = &model.encoder.config;
    let wanted = cfg.stored_layers();
    let have = model.encoder.layers.len();
    if have != wanted {
        return Err(TrainError::Backend(format!("the encoder has {have} layers for a configuration that applies {wanted}")));
    }
    Ok(())
}

#[derive(Default)]
struct Builder {
    values: Vec<Vec<f32>>,
    names: Vec<String>,
    decay: Vec<bool>,
}

impl Builder {
    fn push(&mut self, name: String, v: Vec<f32>, decay: bool) -> usize {
        self.values.push(v);
        self.names.push(name);
        self.decay.push(decay);
        self.values.len() - 1
    }

    fn dense(&mut self, name: &str, w: Vec<f32>, bias: Vec<f32>, d_in: usize) -> DenseSlots {
        let d_out = bias.len();
        let w = self.push(format!("{name}.weight"), w, true);
        let b = self.push(format!("{name}.bias"), bias, false);
        DenseSlots { w, b, d_in, d_out }
    }

    fn linear(&mut self, name: &str, l: &Linear) -> Result<DenseSlots, TrainError> {
        let [d_in, d_out] = l.weight.val().dims();
        let bias = match &l.bias {
            Some(b) => data(&b.val(), name)?,
            None => vec![0.0; d_out],
        };
        Ok(self.dense(name, data(&l.weight.val(), name)?, bias, d_in))
    }

    fn norm(&mut self, name: &str, n: &LayerNorm) -> Result<NormSlots, TrainError> {
        let g = data(&n.gamma.val(), name)?;
        let beta = match &n.beta {
            Some(b) => data(&b.val(), name)?,
            None => vec![0.0; g.len()],
        };
        // BERT's recipe: no weight decay on LayerNorm parameters (nor on biases).
        Ok(NormSlots { gamma: self.push(format!("{name}.gamma"), g, false), beta: self.push(format!("{name}.beta"), beta, false) })
    }
}

impl Params {
    pub fn from_burn(model: &BertClassifier) -> Result<Self, TrainError> {
        check_layers(model)?;
        let mut b = Builder::default();
        let e = &model.encoder.embeddings;
        let word = b.push("word_embeddings".into(), data(&e.word_embeddings.weight.val(), "word")?, true);
        let position = b.push("position_embeddings".into(), data(&e.position_embeddings.weight.val(), "position")?, true);
        let token_type = match &e.token_type_embeddings {
            Some(t) => Some(b.push("token_type_embeddings".into(), data(&t.weight.val(), "token types")?, true)),
            None => None,
        };
        let emb_norm = b.norm("embeddings.layer_norm", &e.layer_norm)?;
        let projection = model.encoder.projection.as_ref().map(|p| b.linear("projection", p)).transpose()?;
        let mut layers = Vec::new();
        for (i, l) in model.encoder.layers.iter().enumerate() {
            let a = &l.attention;
            let h = a.query.weight.val().dims()[0];
            let parts = [&a.query, &a.key, &a.value];
            let mut w = vec![0.0f32; h * 3 * h];
            let mut bias = Vec::with_capacity(3 * h);
            for (p, lin) in parts.into_iter().enumerate() {
                let src = data(&lin.weight.val(), "qkv")?;
                for r in 0..h {
                    w[r * 3 * h + p * h..r * 3 * h + (p + 1) * h].copy_from_slice(&src[r * h..(r + 1) * h]);
                }
                match &lin.bias {
                    Some(x) => bias.extend(data(&x.val(), "qkv bias")?),
                    None => bias.extend(std::iter::repeat_n(0.0, h)),
                }
            }
            layers.push(LayerSlots {
                qkv: b.dense(&format!("layer.{i}.qkv"), w, bias, h),
                attn_out: b.linear(&format!("layer.{i}.attention.output"), &a.output)?,
                attn_norm: b.norm(&format!("layer.{i}.attention.layer_norm"), &a.layer_norm)?,
                ffn_in: b.linear(&format!("layer.{i}.intermediate"), &l.intermediate)?,
                ffn_out: b.linear(&format!("layer.{i}.output"), &l.output)?,
                out_norm: b.norm(&format!("layer.{i}.layer_norm"), &l.layer_norm)?,
            });
        }
        let pooler = model.encoder.pooler.as_ref().map(|p| b.linear("pooler", p)).transpose()?;
        let head_hidden = model.head.hidden.as_ref().map(|h| b.linear("head.hidden", h)).transpose()?;
        let head_out = b.linear("head.output", &model.head.output)?;
        let layout = Layout { word, position, token_type, emb_norm, projection, layers, pooler, head_hidden, head_out };
        Ok(Self { values: b.values, names: b.names, decay: b.decay, layout })
    }

    /// Copies the values back into `model` (the model they were taken from, or one built the
    /// same way).
    pub fn write_back(&self, model: &mut BertClassifier) {
        let device = model.head.output.weight.device();
        let v = &self.values;
        let lay = &self.layout;
        let m2 = |slot: usize, rows: usize| Param::from_tensor(tensor2(&v[slot], rows, &device));
        let v1 = |x: &[f32]| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(x.to_vec(), [x.len()]), &device));
        let dense = |l: &mut Linear, s: DenseSlots| {
            l.weight = m2(s.w, s.d_in);
            l.bias = Some(v1(&v[s.b]));
        };
        let norm = |n: &mut LayerNorm, s: NormSlots| {
            n.gamma = v1(&v[s.gamma]);
            n.beta = Some(v1(&v[s.beta]));
        };
        let enc = &mut model.encoder;
        let emb = &mut enc.embeddings;
        emb.word_embeddings.weight = m2(lay.word, emb.word_embeddings.weight.val().dims()[0]);
        emb.position_embeddings.weight = m2(lay.position, emb.position_embeddings.weight.val().dims()[0]);
        if let (Some(t), Some(slot)) = (emb.token_type_embeddings.as_mut(), lay.token_type) {
            t.weight = m2(slot, t.weight.val().dims()[0]);
        }
        norm(&mut emb.layer_norm, lay.emb_norm);
        if let (Some(pr), Some(s)) = (enc.projection.as_mut(), lay.projection) {
            dense(pr, s);
        }
        for (l, s) in enc.layers.iter_mut().zip(&lay.layers) {
            let a = &mut l.attention;
            let h = s.qkv.d_in;
            for (p, lin) in [&mut a.query, &mut a.key, &mut a.value].into_iter().enumerate() {
                let w: Vec<f32> = v[s.qkv.w].chunks_exact(3 * h).flat_map(|row| row[p * h..(p + 1) * h].iter().copied()).collect();
                lin.weight = Param::from_tensor(tensor2(&w, h, &device));
                lin.bias = Some(v1(&v[s.qkv.b][p * h..(p + 1) * h]));
            }
            dense(&mut a.output, s.attn_out);
            norm(&mut a.layer_norm, s.attn_norm);
            dense(&mut l.intermediate, s.ffn_in);
            dense(&mut l.output, s.ffn_out);
            norm(&mut l.layer_norm, s.out_norm);
        }
        if let (Some(p), Some(s)) = (enc.pooler.as_mut(), lay.pooler) {
            dense(p, s);
        }
        if let (Some(hl), Some(s)) = (model.head.hidden.as_mut(), lay.head_hidden) {
            dense(hl, s);
        }
        dense(&mut model.head.output, lay.head_out);
    }

    /// Zeroed arrays of the same shapes (gradients, moments).
    pub fn zeros_like(&self) -> Vec<Vec<f32>> {
        self.values.iter().map(|v| vec![0.0; v.len()]).collect()
    }
}

/// `v` as a `[rows, len/rows]` tensor.
fn tensor2(v: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, v.len() / rows.max(1)]), device)
}
