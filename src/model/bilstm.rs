//! The GloVe + BiLSTM baseline of the transfer-learning chapter: embedding (padding masked) →
//! BiLSTM(64, sequences, input dropout 0.5) → BiLSTM(64, final states, input dropout 0.25) →
//! dense, as Keras' `Bidirectional(LSTM(...))` over a `mask_zero=True` embedding computes it.
//!
//! burn's `Lstm` has no mask, so masking is done by construction: sequences are post-padded, the
//! forward direction's final state is read at each text's last real step, and the backward
//! direction runs on each text reversed *within its real length* (padding stays at the end), so
//! padding never reaches a state that is used.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, Initializer, Linear, LinearConfig, Lstm, LstmConfig};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{BiLstmSpec, EncoderInput, LoadError, Weights, WeightsWriter};

/// Two LSTMs reading a sequence in opposite directions.
#[derive(Module, Debug)]
pub struct BiLstm {
    pub forward: Lstm,
    pub backward: Lstm,
}

/// Gather indices for one batch: `[B, T]` reversal within each length and `[B, 1]` last step.
struct Steps {
    reverse: Tensor<2, Int>,
    last: Tensor<2, Int>,
}

impl Steps {
    /// `mask`: `[B, T]`, 1 for real tokens (post-padded). Empty rows count as length 1.
    fn new(mask: Tensor<2, Int>) -> Self {
        let [b, t] = mask.dims();
        let len = mask.sum_dim(1).clamp_min(1); // [B, 1]
        let pos = Tensor::<1, Int>::arange(0..t as i64, &len.device()).unsqueeze::<2>().expand([b, t]);
        let flipped = len.clone().expand([b, t]) - pos.clone() - 1;
        let inside = pos.clone().lower(len.clone().expand([b, t]));
        Self { reverse: pos.mask_where(inside, flipped), last: len - 1 }
    }
}

/// `x` `[B, T, D]` gathered along time by `idx` `[B, T']` → `[B, T', D]`.
fn gather_time(x: Tensor<3>, idx: Tensor<2, Int>) -> Tensor<3> {
    let [b, t2] = idx.dims();
    let [_, _, d] = x.dims();
    x.gather(1, idx.unsqueeze_dim::<3>(2).expand([b, t2, d]))
}

impl BiLstm {
    fn new(d_input: usize, units: usize, device: &Device) -> Self {
        let cfg = LstmConfig::new(d_input, units, true);
        Self { forward: unit_forget_bias(cfg.init(device)), backward: unit_forget_bias(cfg.init(device)) }
    }

    /// `[B, T, D]` → `[B, T, 2·units]` (forward ‖ backward state at every real step).
    fn sequences(&self, x: Tensor<3>, steps: &Steps) -> Tensor<3> {
        let (fwd, _) = self.forward.forward(x.clone(), None);
        let (bwd, _) = self.backward.forward(gather_time(x, steps.reverse.clone()), None);
        // The reversal is its own inverse: put the backward states back in reading order.
        Tensor::cat(vec![fwd, gather_time(bwd, steps.reverse.clone())], 2)
    }

    /// `[B, T, D]` → `[B, 2·units]`: each direction's state after the text's last real token.
    fn final_states(&self, x: Tensor<3>, steps: &Steps) -> Tensor<2> {
        let (fwd, _) = self.forward.forward(x.clone(), None);
        let (bwd, _) = self.backward.forward(gather_time(x, steps.reverse.clone()), None);
        let [b, _, h] = fwd.dims();
        let last = |y: Tensor<3>| gather_time(y, steps.last.clone()).reshape([b, h]);
        Tensor::cat(vec![last(fwd), last(bwd)], 1)
    }
}

#[derive(Module, Debug)]
pub struct BiLstmClassifier {
    pub embedding: Embedding,
    pub first: BiLstm,
    pub second: BiLstm,
    pub dropout_first: Dropout,
    pub dropout_second: Dropout,
    pub output: Linear,
    #[module(skip)]
    pub spec: BiLstmSpec,
}

impl BiLstmClassifier {
    /// A fresh model whose embedding starts from `matrix` (`[vocab_size, embedding_dim]`,
    /// row-major); the LSTM and dense weights are drawn from `seed`.
    pub fn new(spec: BiLstmSpec, matrix: Vec<f32>, device: &Device, seed: u64) -> Self {
        device.seed(seed);
        let weight = Tensor::from_data(TensorData::new(matrix, [spec.vocab_size, spec.embedding_dim]), device);
        let mut output = LinearConfig::new(2 * spec.units, spec.num_outputs)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        output.bias = Some(Initializer::Zeros.init([spec.num_outputs], device));
        Self {
            embedding: Embedding { weight: Param::from_tensor(weight) },
            first: BiLstm::new(spec.embedding_dim, spec.units, device),
            second: BiLstm::new(2 * spec.units, spec.units, device),
            dropout_first: DropoutConfig::new(spec.dropout_first).init(),
            dropout_second: DropoutConfig::new(spec.dropout_second).init(),
            output,
            spec,
        }
    }

    /// Logits `[B, num_outputs]` for word ids and mask `[B, T]` (token types are ignored).
    pub fn forward(&self, input: EncoderInput) -> Tensor<2> {
        let steps = Steps::new(input.input_mask);
        // A frozen table is read through a detached copy: no gradient can reach it, whatever a
        // checkpoint reload does to the parameter's `require_grad` flag.
        let x = if self.spec.trainable_embeddings {
            self.embedding.forward(input.input_word_ids)
        } else {
            embedding(self.embedding.weight.val().detach(), input.input_word_ids)
        };
        let x = self.first.sequences(self.dropout_first.forward(x), &steps);
        let x = self.second.final_states(self.dropout_second.forward(x), &steps);
        self.output.forward(x)
    }

    /// Writes the weights under bertkit's own names (`embedding.weight`, `first.forward.*`, …):
    /// transformers has no BiLSTM class, so there is no layout to follow.
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        w.embedding("embedding", &self.embedding)?;
        for (name, bi) in [("first", &self.first), ("second", &self.second)] {
            for (dir, lstm) in [("forward", &bi.forward), ("backward", &bi.backward)] {
                save_lstm(w, &format!("{name}.{dir}"), lstm)?;
            }
        }
        w.linear("output", &self.output)
    }

    /// Reads what [`Self::save`] wrote.
    pub fn load(w: &Weights<'_>, spec: BiLstmSpec) -> Result<Self, LoadError> {
        let device = w.device().clone();
        let mut model = Self::new(spec, vec![0.0; spec.vocab_size * spec.embedding_dim], &device, 0);
        model.embedding = w.embedding("embedding", spec.vocab_size, spec.embedding_dim)?;
        for (name, bi) in [("first", &mut model.first), ("second", &mut model.second)] {
            for (dir, lstm) in [("forward", &mut bi.forward), ("backward", &mut bi.backward)] {
                load_lstm(w, &format!("{name}.{dir}"), lstm)?;
            }
        }
        model.output = w.linear("output", 2 * spec.units, spec.num_outputs)?;
        Ok(model)
    }
}

/// Keras' `unit_forget_bias=True`: the forget gate starts at bias 1 (remember by default), the
/// other biases at 0. Without it the baseline's training diverged in its third epoch.
fn unit_forget_bias(mut lstm: Lstm) -> Lstm {
    for (name, g) in gates(&mut lstm) {
        let units = g.input_transform.weight.dims()[1];
        let device = g.input_transform.weight.device();
        let value = if name == "forget_gate" { 1.0 } else { 0.0 };
        g.input_transform.bias = Some(Initializer::Constant { value }.init([units], &device));
        g.hidden_transform.bias = Some(Initializer::Zeros.init([units], &device));
    }
    lstm
}

/// The four gates' input and hidden transforms of a burn `Lstm`, by name.
fn gates(lstm: &mut Lstm) -> Vec<(&'static str, &mut burn::nn::GateController)> {
    let mut out = vec![("input_gate", &mut lstm.input_gate)];
    if let Some(f) = lstm.forget_gate.as_mut() {
        out.push(("forget_gate", f));
    }
    out.push(("output_gate", &mut lstm.output_gate));
    out.push(("cell_gate", &mut lstm.cell_gate));
    out
}

fn save_lstm(w: &mut WeightsWriter, prefix: &str, lstm: &Lstm) -> Result<(), LoadError> {
    let mut l = lstm.clone();
    for (gate, g) in gates(&mut l) {
        w.linear(&format!("{prefix}.{gate}.input"), &g.input_transform)?;
        w.linear(&format!("{prefix}.{gate}.hidden"), &g.hidden_transform)?;
    }
    Ok(())
}

fn load_lstm(w: &Weights<'_>, prefix: &str, lstm: &mut Lstm) -> Result<(), LoadError> {
    for (gate, g) in gates(lstm) {
        let [d_in, units] = g.input_transform.weight.dims();
        g.input_transform = w.linear(&format!("{prefix}.{gate}.input"), d_in, units)?;
        g.hidden_transform = w.linear(&format!("{prefix}.{gate}.hidden"), units, units)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BiLstmSpec {
        BiLstmSpec {
            vocab_size: 12,
            embedding_dim: 4,
            units: 3,
            num_outputs: 1,
            dropout_first: 0.5,
            dropout_second: 0.25,
            trainable_embeddings: false,
        }
    }

    fn input(rows: &[&[i64]], t: usize, device: &Device) -> EncoderInput {
        let ids: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat(0)).take(t)).collect();
        let mask: Vec<i64> = ids.iter().map(|&i| i64::from(i != 0)).collect();
        let shape = [rows.len(), t];
        let tt = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, shape), device);
        EncoderInput { input_word_ids: tt(ids.clone()), input_mask: tt(mask), input_type_ids: tt(vec![0; ids.len()]) }
    }

    fn logits(m: &BiLstmClassifier, rows: &[&[i64]], t: usize) -> Vec<f32> {
        m.forward(input(rows, t, &Device::flex())).to_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn reversal_stays_within_each_length() {
        let device = Device::flex();
        let mask = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 1, 1, 0, 1, 0, 0, 0], [2, 4]), &device);
        let s = Steps::new(mask);
        assert_eq!(s.reverse.to_data().convert::<i64>().try_to_vec::<i64>().unwrap(), [2, 1, 0, 3, 0, 1, 2, 3]);
        assert_eq!(s.last.to_data().convert::<i64>().try_to_vec::<i64>().unwrap(), [2, 0]);
    }

    #[test]
    fn padding_does_not_change_the_logits() {
        let device = Device::flex();
        let matrix: Vec<f32> = (0..48).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let m = BiLstmClassifier::new(spec(), matrix, &device, 3);
        let short = logits(&m, &[&[3, 4, 5]], 3);
        let padded = logits(&m, &[&[3, 4, 5], &[6, 7, 8, 9, 10, 11]], 6);
        assert!((short[0] - padded[0]).abs() < 1e-6, "{short:?} vs {padded:?}");
        // and the order of words matters (both directions read them)
        let reversed = logits(&m, &[&[5, 4, 3]], 3);
        assert!((short[0] - reversed[0]).abs() > 1e-7);
    }

    #[test]
    fn save_and_load_give_the_same_logits() {
        let device = Device::flex();
        let matrix: Vec<f32> = (0..48).map(|i| i as f32 / 48.0).collect();
        let m = BiLstmClassifier::new(spec(), matrix, &device, 9);
        let mut w = WeightsWriter::new("");
        m.save(&mut w).unwrap();
        let bytes = w.to_bytes(Default::default()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let ckpt = super::super::Checkpoint::read(&path).unwrap();
        let back = BiLstmClassifier::load(&ckpt.weights(&device).unwrap(), spec()).unwrap();
        assert_eq!(logits(&m, &[&[1, 2, 3, 11]], 4), logits(&back, &[&[1, 2, 3, 11]], 4));
    }
}
