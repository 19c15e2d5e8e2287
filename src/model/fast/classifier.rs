//! Encoder + pooling + head on the kernels: a [`BertModel`] packed for inference.

use bertkit_kernels::{Epilogue, Precision};

use super::encoder::dense;
use super::weights::Dense;
use super::{BertModel, FastEncoder, FastOutput};
use crate::model::{HeadActivation, Pooling};
use crate::tokenize::TokenBatch;

pub struct FastClassifier {
    encoder: FastEncoder,
    pooling: Pooling,
    hidden: Option<(Dense, HeadActivation)>,
    output: Dense,
    precision: Precision,
}

impl FastClassifier {
    /// Packs `model` once for inference (`precision` for the encoder's GEMM operands; the head
    /// is tiny and stays fp32).
    pub fn new(model: &BertModel, precision: Precision) -> Self {
        let p = &model.params;
        let lay = &p.layout;
        Self {
            encoder: FastEncoder::new(p, &model.config, precision),
            pooling: model.pooling,
            hidden: lay.head_hidden.map(|s| (Dense::new(p, s, Precision::F32), model.head.activation)),
            output: Dense::new(p, lay.head_out, Precision::F32),
            precision,
        }
    }

    /// The precision the encoder's GEMMs actually use (bf16 falls back to fp32 on levels without
    /// bf16 GEMMs).
    pub fn precision(&self) -> Precision {
        match self.precision {
            Precision::Bf16 if !bertkit_kernels::isa().bf16() => Precision::F32,
            p => p,
        }
    }

    /// Pooled text vectors `[B, H]`.
    pub fn features(&self, batch: &TokenBatch) -> Vec<f32> {
        let out = self.encoder.forward(batch);
        pool(&out, batch, self.pooling)
    }

    /// Logits, one row per text.
    pub fn logits(&self, batch: &TokenBatch) -> Vec<Vec<f32>> {
        let b = batch.batch_size;
        let mut x = self.features(batch);
        if let Some((hidden, act)) = &self.hidden {
            x = dense(&x, b, hidden, Epilogue::None);
            match act {
                HeadActivation::Relu => bertkit_kernels::ops::relu(&mut x),
                HeadActivation::Tanh => bertkit_kernels::ops::tanh(&mut x),
                HeadActivation::Gelu => bertkit_kernels::ops::gelu_par(&mut x),
            }
        }
        let y = dense(&x, b, &self.output, Epilogue::None);
        let k = self.output.out();
        y.chunks(k).map(<[f32]>::to_vec).collect()
    }
}

/// Pooling as in [`Pooling::apply`], `[B, H]`; a missing pooler (callers rule it out) falls back
/// to `[CLS]`.
pub fn pool(out: &FastOutput, batch: &TokenBatch, pooling: Pooling) -> Vec<f32> {
    let (b, t) = (out.batch, out.seq_len);
    let h = out.sequence.len() / (b * t).max(1);
    match (pooling, &out.pooled) {
        (Pooling::Pooler, Some(p)) => p.clone(),
        (Pooling::Mean, _) => {
            let mut v = vec![0.0f32; b * h];
            for bi in 0..b {
                let mask = &batch.input_mask[bi * t..(bi + 1) * t];
                let n = mask.iter().filter(|&&m| m != 0).count().max(1) as f32;
                let dst = &mut v[bi * h..(bi + 1) * h];
                for (ti, _) in mask.iter().enumerate().filter(|(_, m)| **m != 0) {
                    let row = &out.sequence[(bi * t + ti) * h..(bi * t + ti + 1) * h];
                    dst.iter_mut().zip(row).for_each(|(d, x)| *d += x);
                }
                dst.iter_mut().for_each(|d| *d /= n);
            }
            v
        }
        _ => (0..b).flat_map(|bi| out.sequence[bi * t * h..bi * t * h + h].iter().copied()).collect(),
    }
}
