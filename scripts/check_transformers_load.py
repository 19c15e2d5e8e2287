#!/usr/bin/env python3
"""Loads a folder written by `bertkit train` with Hugging Face transformers'
AutoModelForSequenceClassification (BertFor…, DistilBertFor…, RobertaFor…, AlbertFor…,
ElectraFor…) and compares its scores with `bertkit predict --json`.

  .venv/bin/python scripts/check_transformers_load.py runs/pooler-demo [target/debug/bertkit]

Sentence-pair models (`bertkit.json` says `text_pairs`) are scored on five (text, pair) inputs.
Scores match only for models trained with the family's default `--pooling` and `--head-hidden`
(the architecture transformers implements). A binary bertkit model has one logit: sigmoid(logit).
A multi-label model (`bertkit.json` says `multi_label`) must load with
problem_type multi_label_classification; every label's sigmoid is compared.
bertkit scores in fp32 (`--engine kernels`), as transformers does.
Prints one JSON line; exits 1 when the largest difference exceeds 1e-4.
"""
import json
import subprocess
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model_dir = sys.argv[1]
bertkit = sys.argv[2] if len(sys.argv) > 2 else "target/debug/bertkit"
texts = ["this is such an amazing movie!", "The movie was great!", "The movie was meh.",
         "The movie was okish.", "The movie was terrible..."]
meta = json.load(open(f"{model_dir}/bertkit.json"))
seq_len = meta["encode"]["seq_len"]
# A sentence-pair model (trained with --pair-column) scores each text with a second text.
pairs = ["I loved the acting.", "It dragged on forever.", "Not for me.", "Two thumbs up.",
         "Avoid it."] if meta.get("text_pairs") else None

model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
tok = AutoTokenizer.from_pretrained(model_dir)
enc = tok(texts, pairs, padding=True, truncation=True, max_length=seq_len, return_tensors="pt")
with torch.no_grad():
    logits = model(**enc).logits
multi_label = meta.get("multi_label", False)
if multi_label:
    if model.config.problem_type != "multi_label_classification":
        sys.exit(f"problem_type is {model.config.problem_type!r}, not multi_label_classification")
    theirs = torch.sigmoid(logits).flatten().tolist()
elif logits.shape[1] == 1:
    theirs = torch.sigmoid(logits[:, 0]).tolist()
else:
    theirs = torch.softmax(logits, dim=1).max(dim=1).values.tolist()

# fp32 on the kernels: parity is an fp32 statement (`auto` may pick bf16, which moves scores
# in the fourth decimal).
pair_args = [a for p in pairs for a in ("--pair", p)] if pairs else []
out = subprocess.run([bertkit, "predict", "--json", "--engine", "kernels", "--model", model_dir, *pair_args, *texts],
                     check=True, capture_output=True, text=True).stdout
predictions = json.loads(out)["predictions"]
ours = [s for p in predictions for s in p["scores"]] if multi_label else [p["score"] for p in predictions]
assert len(ours) == len(theirs), (ours, theirs)
diff = max(abs(a - b) for a, b in zip(ours, theirs))
print(json.dumps({"model": model_dir, "transformers": theirs, "bertkit": ours, "max_abs_diff": diff,
                  "pooling": meta["pooling"], "loaded_as": type(model).__name__}))
sys.exit(0 if diff <= 1e-4 else 1)
