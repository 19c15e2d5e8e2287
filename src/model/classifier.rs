//! Encoder + pooling + head: the text classifier that is fine-tuned, exported and served.

use burn::module::Module;
use burn::tensor::Tensor;

use super::{BertEncoder, ClassifierHead, EncoderInput, HeadSpec, Pooling, PoolingError};

#[derive(Module, Debug)]
pub struct BertClassifier {
    pub encoder: BertEncoder,
    pub head: ClassifierHead,
    #[module(skip)]
    pub pooling: Pooling,
}

impl BertClassifier {
    /// Puts a fresh head (initialised from `seed`) on `encoder`. Fails if `pooling` needs a pooler the checkpoint lacks.
    pub fn new(
        encoder: BertEncoder,
        pooling: Pooling,
        hidden_size: Option<usize>,
        num_outputs: usize,
        dropout: f64,
        seed: u64,
    ) -> Result<Self, PoolingError> {
        if pooling == Pooling::Pooler && encoder.pooler.is_none() {
            return Err(PoolingError::NoPooler);
        }
        let device = encoder.embeddings.word_embeddings.weight.device();
        let family = encoder.config.family;
        let spec = HeadSpec {
            input_size: encoder.hidden_size(),
            hidden_size,
            num_outputs,
            dropout,
            activation: family.head_defaults().activation,
        };
        Ok(Self { encoder, head: ClassifierHead::new(spec, family, &device, seed), pooling })
    }

    /// The pooled text vectors `[B, H]` (what the frozen-encoder path caches).
    pub fn features(&self, input: EncoderInput) -> Tensor<2> {
        let mask = input.input_mask.clone();
        let out = self.encoder.forward(input);
        // Every constructor (`new`, `ClassifierBundle::load`) refuses `Pooler` without a pooler,
        // so `apply` cannot fail here; `[CLS]` keeps this total without a panic path.
        match self.pooling.apply(&out, mask) {
            Ok(t) => t,
            Err(_) => out.sequence_output.narrow(1, 0, 1).squeeze_dim(1),
        }
    }

    /// Logits `[B, num_outputs]`.
    pub fn forward(&self, input: EncoderInput) -> Tensor<2> {
        self.head.forward(self.features(input))
    }

    pub fn num_outputs(&self) -> usize {
        self.head.spec.num_outputs
    }
}
