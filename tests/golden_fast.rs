//! The kernels inference path (`model::fast`) against the same goldens as the burn modules:
//! MiniLM's PyTorch outputs and every family's transformers outputs, within 1e-4 in fp32; bf16
//! close to fp32; padding-invariant.

mod common;

use bertkit::artifact::ClassifierBundle;
use bertkit::model::fast::{BertModel, FastClassifier, FastEncoder, Precision};
use bertkit::model::{HeadSpec, ModelConfig, Pooling, Pretrained, TextClassifier};
use bertkit::tokenize::{EncodePlan, Encoded, Padding, TextTokenizer, TokenBatch};
use common::{assert_close, assert_rows_differ, f32s, golden, model_dir, ran, root, u32s};

const TOL: f32 = 1e-4;

/// `dir`'s encoder, read straight from its safetensors into the weight store (with a fresh head
/// the encoder tests never read).
fn store(dir: &std::path::Path) -> BertModel {
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    let pretrained = Pretrained::open(dir, fitting_plan(&cfg)).unwrap();
    let head = HeadSpec::family_default(cfg.family, cfg.hidden_size, 2, 0.1);
    BertModel::with_new_head(&pretrained, Pooling::Cls, head, 1).unwrap()
}

fn fast_encoder(dir: &std::path::Path, precision: Precision) -> FastEncoder {
    let m = store(dir);
    FastEncoder::new(&m.params, &m.config, precision)
}

fn minilm_batch(padding: Padding) -> TokenBatch {
    let g = golden("minilm_forward.json");
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let enc = tok.encode(g["text"].as_str().unwrap(), None).unwrap();
    TokenBatch::pad(&[enc], padding, tok.pad_id())
}

#[test]
fn fp32_forward_matches_pytorch_on_minilm() {
    let g = golden("minilm_forward.json");
    let fast = fast_encoder(&model_dir(), Precision::F32);
    for padding in [Padding::Fixed(128), Padding::Longest] {
        let out = fast.forward(&minilm_batch(padding)).unwrap();
        let pooled = out.pooled.as_ref().expect("MiniLM has a pooler");
        let key = if padding == Padding::Longest { "unpadded_pooler_output_0_first8" } else { "pooler_output_0_first8" };
        assert_close(&pooled[..8], &f32s(&g[key]), TOL, "pooler_output");
        assert_close(&out.sequence[..8], &f32s(&g["last_hidden_state_0_0_first8"]), TOL, "last_hidden_state[0,0]");
        assert_close(&out.sequence[384..392], &f32s(&g["last_hidden_state_0_1_first8"]), TOL, "last_hidden_state[0,1]");
        // Every other value the golden file holds: the last real token, and sums/norms that see
        // all 384 dimensions of the pooler and of every real token.
        let (h, n_real) = (384, g["num_real_tokens"].as_u64().unwrap() as usize);
        let last = (n_real - 1) * h;
        assert_close(&out.sequence[last..last + 8], &f32s(&g["last_hidden_state_0_last_real_first8"]), TOL, "last real token");
        let num = |k: &str| g[k].as_f64().unwrap() as f32;
        let sum = |v: &[f32]| v.iter().sum::<f32>();
        let l2 = pooled.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert_close(&[sum(pooled), l2], &[num("pooler_output_0_sum"), num("pooler_output_0_l2")], 1e-3, "pooler sum, l2");
        assert_close(&[sum(&out.sequence[..h])], &[num("last_hidden_state_0_0_sum")], 1e-3, "[CLS] state sum");
        assert_close(&[sum(&out.sequence[..n_real * h])], &[num("last_hidden_state_real_tokens_sum")], 1e-2, "real tokens sum");
        let mut mean = vec![0.0f32; 8];
        for t in 0..n_real {
            mean.iter_mut().zip(&out.sequence[t * h..t * h + 8]).for_each(|(m, x)| *m += x / n_real as f32);
        }
        assert_close(&mean, &f32s(&g["mean_pooled_real_tokens_first8"]), TOL, "mean over real tokens");
    }
    ran("MiniLM fp32 forward vs PyTorch (padded and unpadded)");
}

#[test]
fn bf16_forward_stays_close_to_fp32() {
    if !bertkit_kernels::isa().bf16() {
        eprintln!("skipped: bf16_forward_stays_close_to_fp32: level {} has no bf16 GEMM (bf16 would run in fp32)", bertkit_kernels::isa().name());
        return;
    }
    let batch = minilm_batch(Padding::Longest);
    let a = fast_encoder(&model_dir(), Precision::F32).forward(&batch).unwrap();
    let b = fast_encoder(&model_dir(), Precision::Bf16).forward(&batch).unwrap();
    let (pa, pb) = (a.pooled.unwrap(), b.pooled.unwrap());
    let worst = pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 0.05, "bf16 pooled output differs from fp32 by {worst}");
    assert!(worst > 0.0, "bf16 gave exactly fp32's output: bf16 was not exercised");
    ran(&format!("MiniLM bf16 forward (worst pooled difference from fp32 {worst:.1e})"));
}

#[test]
fn cls_only_last_layer_equals_the_full_pass() {
    // `features` with pooler or [CLS] pooling runs the last layer for the [CLS] rows alone
    // (`Mode::EvalFirst`); `forward` runs it for every row. Three texts of different lengths
    // (padding, ragged keys), at every precision: bf16 and int8 differ by their rounding only,
    // since the [CLS]-only layer keeps its projection and attention in fp32.
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let texts = ["the movie was great !", "a much longer review that goes on and on about the plot, the acting and the score", "dull"];
    let encodings: Vec<Encoded> = texts.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    let batch = TokenBatch::pad(&encodings, Padding::Longest, tok.pad_id());
    let (h, t) = (384, batch.seq_len);
    for (precision, tol) in [(Precision::F32, 1e-5), (Precision::Bf16, 2e-2), (Precision::Int8, 3e-2)] {
        let fast = fast_encoder(&model_dir(), precision);
        let full = fast.forward(&batch).unwrap();
        let what = format!("{precision:?} at {}", bertkit_kernels::isa().name());
        assert_close(&fast.features(&batch, Pooling::Pooler).unwrap(), full.pooled.as_ref().unwrap(), tol, &format!("pooler output, {what}"));
        let cls: Vec<f32> = full.sequence.chunks_exact(t * h).flat_map(|text| text[..h].to_vec()).collect();
        assert_rows_differ(&cls, h, 0.2, "[CLS] states");
        assert_close(&fast.features(&batch, Pooling::Cls).unwrap(), &cls, tol, &format!("[CLS] states, {what}"));
    }
    ran("MiniLM [CLS]-only last layer vs the full pass (fp32, bf16, int8)");
}

#[test]
fn pooled_features_skip_padding_rows_and_equal_the_full_pass() {
    // `features` (every pooling) computes the layers' GEMMs for the real tokens' rows alone
    // (`RowSet::live_ranges`); `forward` (sequence outputs) computes every row. Texts of ragged
    // lengths, so each has padding but one, and two full texts sit side by side (merged ranges).
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let texts = ["dull", "a much longer review that goes on and on about the plot", "a much longer review that goes on and on about the score", "the movie was great !"];
    let encodings: Vec<Encoded> = texts.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    let batch = TokenBatch::pad(&encodings, Padding::Longest, tok.pad_id());
    let (h, t) = (384, batch.seq_len);
    let lens: Vec<usize> = batch.input_mask.chunks(t).map(|m| m.iter().filter(|&&v| v != 0).count()).collect();
    assert!(lens.iter().filter(|&&l| l < t).count() >= 2, "the batch must have padding: {lens:?}");
    for (precision, tol) in [(Precision::F32, 1e-5), (Precision::Bf16, 2e-2), (Precision::Int8, 3e-2)] {
        let fast = fast_encoder(&model_dir(), precision);
        let full = fast.forward(&batch).unwrap();
        let what = format!("{precision:?} at {}", bertkit_kernels::isa().name());
        let mean: Vec<f32> = full
            .sequence
            .chunks_exact(t * h)
            .zip(&lens)
            .flat_map(|(text, &len)| (0..h).map(move |j| text.chunks_exact(h).take(len).map(|r| r[j]).sum::<f32>() / len as f32))
            .collect();
        assert_rows_differ(&mean, h, 0.05, "mean-pooled states");
        assert_close(&fast.features(&batch, Pooling::Mean).unwrap(), &mean, tol, &format!("mean pooling, {what}"));
    }
    ran("MiniLM mean pooling on the real rows alone vs the full pass (fp32, bf16, int8)");
}

#[test]
fn padding_and_batch_neighbours_do_not_change_a_text() {
    let fast = fast_encoder(&model_dir(), Precision::F32);
    let tok = TextTokenizer::from_dir(&model_dir(), EncodePlan::default()).unwrap();
    let short = tok.encode("the movie was great !", None).unwrap();
    let long = tok.encode("a much longer review that goes on and on about the plot and the acting", None).unwrap();
    let alone = fast.forward(&TokenBatch::pad(std::slice::from_ref(&short), Padding::Longest, 0)).unwrap();
    let together = fast.forward(&TokenBatch::pad(&[long, short], Padding::Longest, 0)).unwrap();
    let h = 384;
    let pooled_together = &together.pooled.unwrap()[h..2 * h];
    assert_close(pooled_together, &alone.pooled.unwrap(), 1e-5, "pooled, alone vs beside a longer text");
}

#[test]
fn every_family_matches_transformers_logits() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["distilbert", "roberta", "albert", "electra"] {
        let dir = root().join("tests/fixtures/families").join(family);
        let text = std::fs::read_to_string(dir.join("golden.json")).unwrap();
        let g: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows: Vec<Vec<u32>> = g["batch_input_ids"].as_array().unwrap().iter().map(u32s).collect();
        let masks: Vec<Vec<u32>> = g["batch_attention_mask"].as_array().unwrap().iter().map(u32s).collect();
        let encodings: Vec<Encoded> = rows
            .iter()
            .zip(&masks)
            .map(|(ids, m)| {
                let n = m.iter().filter(|&&v| v != 0).count();
                Encoded { ids: ids[..n].to_vec(), type_ids: vec![0; n] }
            })
            .collect();
        let encoder = store(&dir);
        let pad = encoder.config.pad_token_id as u32;
        let batch = TokenBatch::pad(&encodings, Padding::Fixed(rows[0].len()), pad);
        let out = FastEncoder::new(&encoder.params, &encoder.config, Precision::F32).forward(&batch).unwrap();
        // Padded positions hold whatever the model computes there; compare the real tokens.
        let want = f32s(&g["last_hidden_state"]);
        let (t, h) = (rows[0].len(), g["hidden_size"].as_u64().unwrap() as usize);
        for (bi, m) in masks.iter().enumerate() {
            let n = m.iter().filter(|&&v| v != 0).count();
            let range = bi * t * h..(bi * t + n) * h;
            assert_close(&out.sequence[range.clone()], &want[range], TOL, &format!("{family} text {bi}"));
        }

        // The classifier head too: reuse the golden_families set-up (transformers' head layout).
        let model_dir = tmp.path().join(family);
        std::fs::create_dir_all(&model_dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, model_dir.join(p.file_name().unwrap())).unwrap();
        }
        let f = encoder.config.family;
        let head = bertkit::model::HeadSpec::family_default(f, h, 3, 0.1);
        let pooling = bertkit::model::Pooling::family_default(f, encoder.params.layout.pooler.is_some());
        let classes = (0..3).map(|i| format!("LABEL_{i}")).collect();
        let meta = bertkit::artifact::ModelMeta::new(classes, fitting_plan(&encoder.config), pooling, head);
        std::fs::write(model_dir.join("bertkit.json"), serde_json::to_string(&meta).unwrap()).unwrap();
        let bundle = ClassifierBundle::load(&model_dir).unwrap();
        let TextClassifier::Bert(model) = &bundle.model else { panic!("a BERT-family model") };
        let logits: Vec<f32> = FastClassifier::new(model, Precision::F32).logits(&batch).unwrap().concat();
        assert_rows_differ(&f32s(&g["logits"]), 3, 100.0 * TOL, &format!("{family} logits"));
        assert_close(&logits, &f32s(&g["logits"]), TOL, &format!("{family} logits"));
        ran(&format!("{family} fp32 hidden states and logits vs transformers"));
    }
}

/// The default plan, shortened to what the checkpoint's position table holds (the family
/// fixtures have 64 positions; a bundle whose plan exceeds them is refused at load).
fn fitting_plan(config: &bertkit::model::ModelConfig) -> EncodePlan {
    EncodePlan { seq_len: config.max_sequence_length().min(128), ..EncodePlan::default() }
}
