//! Golden encoder tests for burn's modules (the `burn` feature): the MiniLM forward pass must match
//! `../shared/golden/minilm_forward.json` (transformers' BertModel, fp32, eager attention; made by
//! `../shared/reference/parity.py`). The kernels' twin of these is `golden_fast.rs`.
#![cfg(feature = "burn")]

mod common;

use bertkit::model::{BertEncoder, EncoderInput, EncoderOutput, mean_pool};
use bertkit::tokenize::{EncodePlan, Padding, TextTokenizer, TokenBatch};
use burn::tensor::{Device, Tensor};
use common::{assert_close, f32s, golden, model_dir, u32s};

const TOL: f32 = 1e-4;

fn vals<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

fn run(padding: Padding) -> (TokenBatch, EncoderOutput) {
    let g = golden("minilm_forward.json");
    let device = Device::flex();
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let enc = tok.encode(g["text"].as_str().unwrap(), None).unwrap();
    let batch = TokenBatch::pad(&[enc], padding, tok.pad_id());
    let encoder = BertEncoder::from_dir(&model_dir(), &device).unwrap();
    let out = encoder.forward(EncoderInput::from_batch(&batch, &device));
    (batch, out)
}

#[test]
fn padded_forward_matches_pytorch() {
    let g = golden("minilm_forward.json");
    let (batch, out) = run(Padding::Fixed(128));
    let ids: Vec<u32> = batch.input_word_ids[..12].iter().map(|&x| x as u32).collect();
    assert_eq!(ids, u32s(&g["input_ids_12"]));

    let pooled = vals(out.pooled_output.as_ref().expect("MiniLM has a pooler"));
    assert_eq!(pooled.len(), 384);
    assert_close(&pooled[..8], &f32s(&g["pooler_output_0_first8"]), TOL, "pooler_output[0]");
    let sum: f32 = pooled.iter().sum();
    let l2 = pooled.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert_close(&[sum, l2], &[g["pooler_output_0_sum"].as_f64().unwrap() as f32, g["pooler_output_0_l2"].as_f64().unwrap() as f32], 1e-3, "pooler sum, l2");

    assert_eq!(out.sequence_output.dims(), [1, 128, 384]);
    let seq = vals(&out.sequence_output);
    let n_real = g["num_real_tokens"].as_u64().unwrap() as usize;
    let h = 384;
    assert_close(&seq[..8], &f32s(&g["last_hidden_state_0_0_first8"]), TOL, "last_hidden_state[0,0]");
    assert_close(&seq[h..h + 8], &f32s(&g["last_hidden_state_0_1_first8"]), TOL, "last_hidden_state[0,1]");
    let last = (n_real - 1) * h;
    assert_close(&seq[last..last + 8], &f32s(&g["last_hidden_state_0_last_real_first8"]), TOL, "last real token");
    let real_sum: f32 = seq[..n_real * h].iter().sum();
    assert_close(&[real_sum], &[g["last_hidden_state_real_tokens_sum"].as_f64().unwrap() as f32], 1e-2, "sum over real tokens");

    let mask = EncoderInput::from_batch(&batch, &Device::flex()).input_mask;
    let mean = vals(&mean_pool(out.sequence_output.clone(), mask));
    assert_close(&mean[..8], &f32s(&g["mean_pooled_real_tokens_first8"]), TOL, "mean pooled");

    assert_eq!(out.encoder_outputs.len(), 6, "one encoder output per layer");
    for layer in &out.encoder_outputs {
        assert_eq!(layer.dims(), [1, 128, 384]);
    }
    assert_eq!(vals(out.encoder_outputs.last().unwrap()), seq, "last encoder output is sequence_output");
    assert_ne!(vals(&out.encoder_outputs[0]), seq, "layers differ");
}

#[test]
fn unpadded_forward_matches_padded_and_pytorch() {
    let g = golden("minilm_forward.json");
    let (batch, out) = run(Padding::Longest);
    assert_eq!(batch.seq_len, 9);
    let pooled = vals(out.pooled_output.as_ref().unwrap());
    assert_close(&pooled[..8], &f32s(&g["unpadded_pooler_output_0_first8"]), TOL, "unpadded pooler");
    let (_, padded) = run(Padding::Fixed(128));
    let padded_pooled = vals(padded.pooled_output.as_ref().unwrap());
    assert_close(&pooled, &padded_pooled, 1e-5, "padded vs unpadded pooler");
    let seq = vals(&out.sequence_output);
    let padded_seq = vals(&padded.sequence_output);
    assert_close(&seq, &padded_seq[..9 * 384], 1e-5, "padded vs unpadded real tokens");
}
