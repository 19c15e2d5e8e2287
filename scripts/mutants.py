#!/usr/bin/env python3
"""Shows that the tests added for issue #19 fail on the bugs they name: each mutation below
breaks the code in one place (a literal text replacement), runs the test meant to catch it, and
expects that test to FAIL. The source is restored after each mutation, whatever happens.

  python3 scripts/mutants.py            # every mutation (each rebuilds: ~1 min apiece)
  python3 scripts/mutants.py head-tanh  # the ones whose id contains this text

Prints one line per mutation (caught / MISSED / stale) and exits 1 if any was missed or no
longer applies. Not part of the test command: it rebuilds the crate once per mutation.
"""
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (id, file, original text, mutated text, cargo test arguments, what the bug is)
MUTATIONS = [
    ("head-tanh-burn", "src/model/head.rs",
     "HeadActivation::Tanh => tanh(y),", "HeadActivation::Tanh => y,",
     ["--test", "golden_families", "classification_heads"],
     "the RoBERTa/ELECTRA-style head drops its tanh (burn path)"),
    ("head-tanh-kernels", "src/model/fast/classifier.rs",
     "HeadActivation::Tanh => bertkit_kernels::ops::tanh(&mut x),", "HeadActivation::Tanh => {}",
     ["--test", "golden_fast", "every_family"],
     "the head drops its tanh (kernels path)"),
    ("rows-mixed-kernels", "src/model/fast/classifier.rs",
     "y.chunks(k).map(<[f32]>::to_vec).collect()", "y.chunks(k).map(|_| y[..k].to_vec()).collect()",
     ["--test", "golden_fast", "every_family"],
     "every text gets text 0's logits"),
    ("pooler-partial-tanh", "src/model/fast/encoder.rs",
     "            bertkit_kernels::ops::tanh(&mut y);\n            y\n",
     "            for row in y.chunks_mut(p.out()) {\n                bertkit_kernels::ops::tanh(&mut row[..8]);\n            }\n            y\n",
     ["--test", "golden_fast", "fp32_forward_matches_pytorch"],
     "the pooler's tanh reaches only the first 8 of 384 dimensions (the old parity test read only those)"),
    ("bf16-packs-fp32", "crates/kernels/src/gemm.rs",
     "} else if precision == Precision::Bf16 && isa().bf16() {", "} else if precision == Precision::Bf16 && false {",
     ["--test", "golden_fast", "bf16_forward_stays_close_to_fp32"],
     "a bf16 request is packed and run in fp32 on a level that has bf16"),
    ("ffn-out-weight-grad", "src/train/fast/backward.rs",
     "    gemm_ex(Mat::transposed(x, s.d_in, rows), x_bits, &packs.dy, None, Epilogue::None, &mut grads[s.w], true);\n",
     "    if s.d_in != 4 * s.d_out {\n        gemm_ex(Mat::transposed(x, s.d_in, rows), x_bits, &packs.dy, None, Epilogue::None, &mut grads[s.w], true);\n    }\n",
     ["--test", "fast_train", "gradients_match_burn_autodiff_with"],
     "the feed-forward output weight gets no gradient (the old check never compared it)"),
    ("decay-biases-kernels", "src/train/fast/learner.rs",
     "weight_decay: if self.params.decay[i] { self.plan.weight_decay as f32 } else { 0.0 },",
     "weight_decay: self.plan.weight_decay as f32,",
     ["--test", "trainer_rules", "weight_decay"],
     "the kernels trainer decays biases and LayerNorm too"),
    ("decay-biases-burn", "src/train/fit.rs",
     'ParamGroup::from_any_predicates(vec!["bias", "layer_norm"]),',
     'ParamGroup::from_any_predicates(vec!["no-such-parameter"]),',
     ["--test", "trainer_rules", "weight_decay"],
     "the burn trainer decays biases and LayerNorm too"),
    ("clipping-off-kernels", "src/train/fast/learner.rs",
     "if let Some(max) = self.plan.max_grad_norm {", "if let Some(max) = None::<f64> {",
     ["--test", "trainer_rules", "clipping"],
     "the kernels trainer never clips"),
    ("clipping-off-burn", "src/train/fit.rs",
     "clip_grad_norm(&mut grads, model, max);", "let _ = (max, clip_grad_norm::<M>);",
     ["--test", "trainer_rules", "clipping"],
     "the burn trainer never clips"),
    ("clipping-per-tensor-kernels", "src/train/fast/learner.rs",
     "            let norm = self.grads.iter().map(|g| sum_squares(g)).sum::<f64>().sqrt();\n            if norm > max {\n                let f = (max / (norm + 1e-6)) as f32;\n                self.grads.iter_mut().for_each(|g| scale(g, f));\n            }\n",
     "            for g in self.grads.iter_mut() {\n                let norm = sum_squares(g).sqrt();\n                if norm > max {\n                    scale(g, (max / (norm + 1e-6)) as f32);\n                }\n            }\n",
     ["--test", "trainer_rules", "clipping"],
     "clipping per tensor (burn's GradientClipping::Norm rule) instead of one global norm"),
    ("export-untrained-kernels", "src/train/classifier.rs",
     "learner.finish(&mut model);", "drop(learner);",
     ["--test", "trainer_rules", "the_export"],
     "the kernels trainer's weights never reach the exported model"),
    ("export-binary-two-labels", "src/artifact/bundle.rs",
     "meta.class_names.iter().skip(1).take(1).collect()", "meta.class_names.iter().collect()",
     ["--test", "train_workflow", "train_exports_a_folder"],
     "a binary export declares two labels: bertkit reloads it, transformers cannot (needs the venv)"),
    ("model-error-503", "src/serve/app.rs",
     'Ok(Err(e)) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("model error: {e}"))),',
     'Ok(Err(e)) => return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("model error: {e}"))),',
     ["--test", "serve_http", "a_model_error"],
     "a model error answered as 503 instead of 500"),
    ("sigterm-abrupt", "src/serve/server.rs",
     '_ = terminate() => eprintln!("Shutting down: finishing in-flight requests"),',
     '_ = terminate() => std::process::exit(0),',
     ["--test", "serve_http", "sigterm_finishes"],
     "SIGTERM exits at once, dropping the requests in flight"),
    ("short-model-answer", "src/serve/batcher.rs",
     "if rows.len() == all.len() {", "if true || rows.len() == all.len() {",
     ["--lib", "a_model_returning_too_few_rows"],
     "the batcher slices a short model answer (panics the worker)"),
    ("empty-k-stale", "crates/kernels/src/gemm.rs",
     "if k == 0 {", "if false && k == 0 {",
     ["-p", "bertkit-kernels", "empty_k_overwrites_c_with_the_bias"],
     "a GEMM with k = 0 leaves C stale"),
    ("standardisation-not-folded", "src/train/classifier.rs",
     "            s.fold_into(&mut model.head)?;\n", "            let _ = s;\n",
     ["--test", "train_workflow", "freeze_encoder_alone"],
     "the frozen probe's head is exported expecting standardised features"),
    ("best-not-restored", "src/train/run_loop.rs",
     "            learner.restore_best()?;\n", "",
     ["--test", "trainer_rules", "the_best_evaluations_weights"],
     "the export keeps the last step's weights although the best evaluation was earlier"),
    ("patience-ignored", "src/train/early_stop.rs",
     "patience.is_some_and(|p| self.evals_since >= p)", "patience.is_some_and(|p| self.evals_since >= p + 1)",
     ["--lib", "early_stopping"],
     "early stopping waits one evaluation longer than --patience"),
    ("model-panic-kills-worker", "src/serve/batcher.rs",
     "let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model(&all)));",
     "let called: std::thread::Result<Result<Vec<Vec<f32>>, String>> = Ok(model(&all));",
     ["--test", "serve_http", "a_model_panic"],
     "a panic in the model stops the worker thread (every later request fails, health stays 200)"),
]


def cargo_test(args):
    cmd = ["cargo", "test", "--locked", *args[:-1], "--", args[-1]] if not args[-1].startswith("-") else ["cargo", "test", "--locked", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    missed = 0
    for mid, path, old, new, args, what in MUTATIONS:
        if only not in mid:
            continue
        file = ROOT / path
        original = file.read_text()
        if original.count(old) != 1:
            print(f"stale   {mid:28} {path}: the original text occurs {original.count(old)} times")
            missed += 1
            continue
        t0 = time.time()
        try:
            file.write_text(original.replace(old, new))
            res = cargo_test(args)
        finally:
            file.write_text(original)
        took = time.time() - t0
        if "error[E" in res.stderr or "could not compile" in res.stderr:
            print(f"stale   {mid:28} the mutant does not compile:\n{res.stderr[-2000:]}")
            missed += 1
        elif res.returncode != 0:
            failed = [l.split()[1] for l in res.stdout.splitlines() if l.startswith("test ") and l.endswith("FAILED")]
            lines = (res.stdout + res.stderr).splitlines()
            why = next((lines[k + 1].strip() for k, l in enumerate(lines) if "panicked at" in l and k + 1 < len(lines)), "")
            print(f"caught  {mid:28} by {', '.join(failed) or 'the test run'} ({took:.0f}s): {what}\n        {why[:300]}")
        else:
            print(f"MISSED  {mid:28} tests {' '.join(args)} still pass: {what}")
            missed += 1
        sys.stdout.flush()
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
