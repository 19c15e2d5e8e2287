#!/usr/bin/env python3
"""The reference probe for `bertkit train --freeze-encoder`: a plain logistic regression on frozen
checkpoint features, as scikit-learn's StandardScaler + LogisticRegression(C=1, lbfgs) would fit it.

Features: transformers' model (fp32, eager attention) over each text truncated to --max-length
tokens, mean-pooled over the real tokens (what `bertkit train --freeze-encoder` uses by default).
Standardised with the training split's mean and std; L2-regularised logistic regression
(softmax for more than two classes) fitted full-batch by torch's L-BFGS to convergence; the
test accuracy is printed as one JSON line.

  .venv/bin/python scripts/reference/probe_logreg.py --model models/minilm \
      --train data/aclImdb/train --test data/aclImdb/test [--max-train N] [--cache DIR]

Folders hold one subfolder per class (sorted names = class ids), as `bertkit train --data`
reads them. --cache keeps the features (npy) so a second fit skips the encoder.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def read_folder(root, limit=None):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    texts, labels = [], []
    for ci, c in enumerate(classes):
        names = sorted(os.listdir(os.path.join(root, c)))
        for n in names:
            with open(os.path.join(root, c, n), encoding="utf-8") as f:
                texts.append(f.read())
            labels.append(ci)
    if limit:
        order = np.random.default_rng(0).permutation(len(texts))[:limit]
        texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    return texts, np.array(labels), classes


@torch.no_grad()
def features(model, tok, texts, max_length, batch=64):
    out = []
    order = np.argsort([len(t) for t in texts])
    for s in range(0, len(texts), batch):
        idx = order[s:s + batch]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        out.append(((h * m).sum(1) / m.sum(1)).numpy())
    feats = np.concatenate(out)
    result = np.empty_like(feats)
    result[order] = feats
    return result


def fit_logreg(x, y, k, c=1.0):
    """min_w  sum_i CE(x_i w + b, y_i) + ||w||^2 / (2C): scikit-learn's objective."""
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y)
    outputs = 1 if k == 2 else k
    w = torch.zeros(x.shape[1], outputs, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=1000, tolerance_grad=1e-8, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = x @ w + b
        if outputs == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], y.double(), reduction="sum")
        else:
            loss = torch.nn.functional.cross_entropy(z, y, reduction="sum")
        loss = loss + (w * w).sum() / (2 * c)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def predict(w, b, x):
    z = torch.tensor(x, dtype=torch.float64) @ w + b
    return (z[:, 0] > 0).long().numpy() if z.shape[1] == 1 else z.argmax(1).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-train", type=int)
    ap.add_argument("--cache")
    ap.add_argument("--c", type=float, default=1.0)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModel.from_pretrained(a.model, attn_implementation="eager").eval()
    (tr_x, tr_y, classes), (te_x, te_y, _) = read_folder(a.train, a.max_train), read_folder(a.test)
    cached = a.cache and os.path.exists(os.path.join(a.cache, "train.npy"))
    if cached:
        ftr, fte = np.load(os.path.join(a.cache, "train.npy")), np.load(os.path.join(a.cache, "test.npy"))
    else:
        ftr, fte = features(model, tok, tr_x, a.max_length), features(model, tok, te_x, a.max_length)
        if a.cache:
            os.makedirs(a.cache, exist_ok=True)
            np.save(os.path.join(a.cache, "train.npy"), ftr)
            np.save(os.path.join(a.cache, "test.npy"), fte)
    mean, std = ftr.mean(0), ftr.std(0)
    std[std == 0] = 1.0
    w, b = fit_logreg((ftr - mean) / std, tr_y, len(classes), a.c)
    acc = float((predict(w, b, (fte - mean) / std) == te_y).mean())
    train_acc = float((predict(w, b, (ftr - mean) / std) == tr_y).mean())
    print(json.dumps({"probe": "logistic regression (L2, C=%g, standardised, mean-pooled fp32 features)" % a.c,
                      "model": a.model, "train": a.train, "test": a.test, "classes": classes,
                      "train_examples": len(tr_y), "test_examples": len(te_y), "train_accuracy": train_acc,
                      "test_accuracy": acc, "features_cached": bool(cached), "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
