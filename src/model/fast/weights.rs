//! Packs the weight store's tensors once into the layouts the kernels read.

use bertkit_kernels::{PackedB, Precision};

use super::params::{DenseSlots, NormSlots, Params};

/// A dense layer: weight packed (the store's `[in, out]` is the kernels' `[k, n]`).
pub struct Dense {
    pub weight: PackedB,
    pub bias: Vec<f32>,
}

impl Dense {
    pub fn new(p: &Params, s: DenseSlots, precision: Precision) -> Self {
        Self { weight: PackedB::new(&p.values[s.w], s.d_in, s.d_out, precision), bias: p.values[s.b].clone() }
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
    pub fn new(p: &Params, s: NormSlots, eps: f64) -> Self {
        Self { gamma: p.values[s.gamma].clone(), beta: p.values[s.beta].clone(), eps: eps as f32 }
    }
}
