//! Between the weight stores and burn's modules: [`BertModel`] to a burn [`BertClassifier`] and
//! [`BiLstmModel`] to a burn [`BiLstmClassifier`], for the burn engine (GPU training and
//! inference), and back. The kernels never need it.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::params::{Builder, DenseSlots, Layout, LayerSlots, NormSlots};
use super::{BertModel, BiLstmModel, Params};
use crate::model::{BertClassifier, BertEncoder, BiLstmClassifier, Checkpoint, ClassifierHead, LoadError, WeightsWriter};

fn data<const D: usize>(t: &Tensor<D>, name: &str) -> Result<Vec<f32>, LoadError> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LoadError::TensorDtype {
        name: name.to_string(),
        path: "<in memory>".into(),
        dtype: format!("{e:?}"),
    })
}

fn linear(b: &mut Builder, name: &str, l: &Linear) -> Result<DenseSlots, LoadError> {
    let [d_in, d_out] = l.weight.val().dims();
    let bias = match &l.bias {
        Some(x) => data(&x.val(), name)?,
        None => vec![0.0; d_out],
    };
    Ok(b.dense(name, data(&l.weight.val(), name)?, bias, d_in))
}

fn norm(b: &mut Builder, name: &str, n: &LayerNorm) -> Result<NormSlots, LoadError> {
    let g = data(&n.gamma.val(), name)?;
    let beta = match &n.beta {
        Some(x) => data(&x.val(), name)?,
        None => vec![0.0; g.len()],
    };
    Ok(b.norm(name, g, beta))
}

impl Params {
    /// Copies a burn classifier's tensors out (the same slots and names as [`Params::load`]).
    pub fn from_burn(model: &BertClassifier) -> Result<Self, LoadError> {
        let cfg = &model.encoder.config;
        let (wanted, have) = (cfg.stored_layers(), model.encoder.layers.len());
        if have != wanted {
            return Err(LoadError::BadSafetensors {
                path: "<in memory>".into(),
                reason: format!("the encoder has {have} layers for a configuration that stores {wanted}"),
            });
        }
        let mut b = Builder::default();
        let e = &model.encoder.embeddings;
        let word = b.push("word_embeddings".into(), data(&e.word_embeddings.weight.val(), "word")?, true);
        let position = b.push("position_embeddings".into(), data(&e.position_embeddings.weight.val(), "position")?, true);
        let token_type = match &e.token_type_embeddings {
            Some(t) => Some(b.push("token_type_embeddings".into(), data(&t.weight.val(), "token types")?, true)),
            None => None,
        };
        let emb_norm = norm(&mut b, "embeddings.layer_norm", &e.layer_norm)?;
        let projection = model.encoder.projection.as_ref().map(|p| linear(&mut b, "projection", p)).transpose()?;
        let mut layers = Vec::new();
        for (i, l) in model.encoder.layers.iter().enumerate() {
            let a = &l.attention;
            let h = a.query.weight.val().dims()[0];
            let mut w = vec![0.0f32; h * 3 * h];
            let mut bias = Vec::with_capacity(3 * h);
            for (p, lin) in [&a.query, &a.key, &a.value].into_iter().enumerate() {
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
                attn_out: linear(&mut b, &format!("layer.{i}.attention.output"), &a.output)?,
                attn_norm: norm(&mut b, &format!("layer.{i}.attention.layer_norm"), &a.layer_norm)?,
                ffn_in: linear(&mut b, &format!("layer.{i}.intermediate"), &l.intermediate)?,
                ffn_out: linear(&mut b, &format!("layer.{i}.output"), &l.output)?,
                out_norm: norm(&mut b, &format!("layer.{i}.layer_norm"), &l.layer_norm)?,
            });
        }
        let pooler = model.encoder.pooler.as_ref().map(|p| linear(&mut b, "pooler", p)).transpose()?;
        let head_hidden = model.head.hidden.as_ref().map(|h| linear(&mut b, "head.hidden", h)).transpose()?;
        let head_out = linear(&mut b, "head.output", &model.head.output)?;
        Ok(b.finish(Layout { word, position, token_type, emb_norm, projection, layers, pooler, head_hidden, head_out }))
    }

    /// Copies the values into `model` (the model they were taken from, or one built the same
    /// way).
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
}

impl BertModel {
    /// The burn twin of a burn classifier's weights (the same values, copied).
    pub fn from_burn(model: &BertClassifier) -> Result<Self, LoadError> {
        Ok(Self {
            params: Params::from_burn(model)?,
            config: model.encoder.config.clone(),
            pooling: model.pooling,
            head: model.head.spec,
        })
    }

    /// The model as burn modules on `device`, built through the export's own file format (the
    /// loader every exported folder goes through, so the two cannot drift apart).
    pub fn to_burn(&self, device: &Device) -> Result<BertClassifier, LoadError> {
        let mut w = WeightsWriter::new("");
        self.params.save(&mut w, &self.config);
        let ckpt = Checkpoint::from_bytes(w.to_bytes(Default::default())?, "<in memory>".as_ref());
        let mut weights = ckpt.encoder_weights(self.config.family, device)?;
        let encoder = BertEncoder::load(&weights, self.config.clone())?;
        weights.select_prefix(&format!("{}.weight", self.config.family.head_names().1), &[""])?;
        let head = ClassifierHead::load(&weights, self.head, self.config.family)?;
        Ok(BertClassifier { encoder, head, pooling: self.pooling })
    }
}

impl BiLstmModel {
    /// The baseline as burn's module on `device` (through the export's file format, like
    /// [`BertModel::to_burn`]).
    pub fn to_burn(&self, device: &Device) -> Result<BiLstmClassifier, LoadError> {
        let mut w = WeightsWriter::new("");
        self.save(&mut w);
        let ckpt = Checkpoint::from_bytes(w.to_bytes(Default::default())?, "<in memory>".as_ref());
        BiLstmClassifier::load(&ckpt.weights(device)?, self.spec)
    }

    /// The weights of burn's module, copied into flat arrays.
    pub fn from_burn(model: &BiLstmClassifier) -> Result<Self, LoadError> {
        let mut w = WeightsWriter::new("");
        model.save(&mut w)?;
        let ckpt = Checkpoint::from_bytes(w.to_bytes(Default::default())?, "<in memory>".as_ref());
        Self::load(&ckpt.tensors()?, model.spec)
    }
}

/// `v` as a `[rows, len/rows]` tensor.
fn tensor2(v: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, v.len() / rows.max(1)]), device)
}
