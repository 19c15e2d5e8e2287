//! The classification head on top of a pooled text vector: dropout → (dense → ReLU → dropout) →
//! dense, the last layer named like transformers' `classifier`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::{LoadError, Weights, WeightsWriter};

/// Shape of the head, stored in the exported metadata.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadSpec {
    pub input_size: usize,
    /// Size of the optional hidden layer (`--head-hidden`), as in the book's custom model.
    pub hidden_size: Option<usize>,
    /// Logits per text: 1 for binary (sigmoid), the class count otherwise (softmax).
    pub num_outputs: usize,
    pub dropout: f64,
}

#[derive(Module, Debug)]
pub struct ClassifierHead {
    pub dropout: Dropout,
    pub hidden: Option<Linear>,
    pub output: Linear,
    #[module(skip)]
    pub spec: HeadSpec,
}

impl ClassifierHead {
    /// A fresh head, initialised like transformers' `BertForSequenceClassification`
    /// (normal(0, 0.02) weights, zero bias); `seed` makes the draw reproducible.
    pub fn new(spec: HeadSpec, device: &Device, seed: u64) -> Self {
        device.seed(seed);
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let linear = |d_in, d_out| {
            let mut l = LinearConfig::new(d_in, d_out).with_initializer(init.clone()).init(device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let (hidden, out_in) = match spec.hidden_size {
            Some(h) => (Some(linear(spec.input_size, h)), h),
            None => (None, spec.input_size),
        };
        Self {
            dropout: DropoutConfig::new(spec.dropout).init(),
            hidden,
            output: linear(out_in, spec.num_outputs),
            spec,
        }
    }

    /// Reads `classifier.*` (and `pre_classifier.*` for a hidden layer) from an exported folder.
    pub fn load(w: &Weights<'_>, spec: HeadSpec) -> Result<Self, LoadError> {
        let (hidden, out_in) = match spec.hidden_size {
            Some(h) => (Some(w.linear("pre_classifier", spec.input_size, h)?), h),
            None => (None, spec.input_size),
        };
        Ok(Self {
            dropout: DropoutConfig::new(spec.dropout).init(),
            hidden,
            output: w.linear("classifier", out_in, spec.num_outputs)?,
            spec,
        })
    }

    /// Writes `classifier.*` like `BertForSequenceClassification` (+ `pre_classifier.*`, as in
    /// DistilBERT's head, when there is a hidden layer).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        if let Some(h) = &self.hidden {
            w.linear("pre_classifier", h)?;
        }
        w.linear("classifier", &self.output)
    }

    /// `x`: `[B, input_size]` → logits `[B, num_outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = self.dropout.forward(x);
        if let Some(hidden) = &self.hidden {
            x = self.dropout.forward(relu(hidden.forward(x)));
        }
        self.output.forward(x)
    }
}
