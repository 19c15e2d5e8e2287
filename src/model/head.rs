//! The classification head on top of a pooled text vector: dropout → (dense → activation →
//! dropout) → dense, named like the family's transformers head (`classifier`, or
//! `classifier.dense` + `classifier.out_proj`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu, tanh};
use burn::tensor::{Device, Tensor};

use super::{Family, HeadActivation, HeadSpec, LoadError, Weights, WeightsWriter};

#[derive(Module, Debug)]
pub struct ClassifierHead {
    pub dropout: Dropout,
    pub hidden: Option<Linear>,
    pub output: Linear,
    #[module(skip)]
    pub spec: HeadSpec,
    /// Decides the tensor names on save.
    #[module(skip)]
    pub family: Family,
}

impl ClassifierHead {
    /// A fresh head, initialised like transformers' `BertForSequenceClassification`
    /// (normal(0, 0.02) weights, zero bias); `seed` makes the draw reproducible.
    pub fn new(spec: HeadSpec, family: Family, device: &Device, seed: u64) -> Self {
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
            family,
        }
    }

    /// Reads the head from an exported folder, under `family`'s names (see [`Family::head_names`]).
    /// Whether dropout also applies to the head's input: everywhere but DistilBERT's
    /// `pre_classifier` head, which transformers only drops after the ReLU.
    pub fn input_dropout(&self) -> bool {
        !(self.family == Family::DistilBert && self.hidden.is_some())
    }

    pub fn load(w: &Weights<'_>, spec: HeadSpec, family: Family) -> Result<Self, LoadError> {
        let (hidden_name, output_name) = family.head_names();
        let (hidden, out_in) = match spec.hidden_size {
            Some(h) => (Some(w.linear(hidden_name, spec.input_size, h)?), h),
            None => (None, spec.input_size),
        };
        Ok(Self {
            dropout: DropoutConfig::new(spec.dropout).init(),
            hidden,
            output: w.linear(output_name, out_in, spec.num_outputs)?,
            spec,
            family,
        })
    }

    /// Writes the head like the family's transformers class (`classifier.*`, with
    /// `pre_classifier.*` or `classifier.dense.*` when there is a hidden layer).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        let (hidden_name, output_name) = self.family.head_names();
        if let Some(h) = &self.hidden {
            w.linear(hidden_name, h)?;
        }
        w.linear(output_name, &self.output)
    }

    /// `x`: `[B, input_size]` → logits `[B, num_outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = if self.input_dropout() { self.dropout.forward(x) } else { x };
        if let Some(hidden) = &self.hidden {
            let y = hidden.forward(x);
            let y = match self.spec.activation {
                HeadActivation::Relu => relu(y),
                HeadActivation::Tanh => tanh(y),
                HeadActivation::Gelu => gelu(y),
            };
            x = self.dropout.forward(y);
        }
        self.output.forward(x)
    }
}
