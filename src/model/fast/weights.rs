//! Copies trained burn parameters out into the packed layouts the kernels read.

use bertkit_kernels::{PackedB, Precision};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use crate::model::LoadError;

pub(super) fn values<const D: usize>(t: &Tensor<D>, what: &str) -> Result<Vec<f32>, LoadError> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LoadError::TensorDtype {
        name: what.to_string(),
        path: "<in memory>".into(),
        dtype: format!("{e:?}"),
    })
}

/// A dense layer: weight packed (`[in, out]`, burn's layout, is already the kernels' `[k, n]`).
pub struct Dense {
    pub weight: PackedB,
    pub bias: Vec<f32>,
}

impl Dense {
    pub fn from_linear(l: &Linear, precision: Precision, what: &str) -> Result<Self, LoadError> {
        Self::from_parts(&[l], precision, what)
    }

    /// Several layers reading the same input, as one wider layer (outputs side by side): the
    /// query, key and value projections become one GEMM.
    pub fn from_parts(parts: &[&Linear], precision: Precision, what: &str) -> Result<Self, LoadError> {
        let mut cols = Vec::new();
        let mut bias = Vec::new();
        let mut k = 0;
        for l in parts {
            let w = l.weight.val();
            let [d_in, d_out] = w.dims();
            k = d_in;
            cols.push((values(&w, what)?, d_out));
            match &l.bias {
                Some(b) => bias.extend(values(&b.val(), what)?),
                None => bias.extend(std::iter::repeat_n(0.0, d_out)),
            }
        }
        let n: usize = cols.iter().map(|(_, d)| d).sum();
        let mut w = vec![0.0f32; k * n];
        for row in 0..k {
            let mut off = 0;
            for (v, d) in &cols {
                w[row * n + off..row * n + off + d].copy_from_slice(&v[row * d..(row + 1) * d]);
                off += d;
            }
        }
        Ok(Self { weight: PackedB::new(&w, k, n, precision), bias })
    }

    pub fn out(&self) -> usize {
        self.weight.n()
    }
}

/// LayerNorm parameters.
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    pub fn from_layer_norm(ln: &LayerNorm, eps: f64, what: &str) -> Result<Self, LoadError> {
        let gamma = values(&ln.gamma.val(), what)?;
        let beta = match &ln.beta {
            Some(b) => values(&b.val(), what)?,
            None => vec![0.0; gamma.len()],
        };
        Ok(Self { gamma, beta, eps: eps as f32 })
    }
}
