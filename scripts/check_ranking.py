#!/usr/bin/env python3
"""Checks `bertkit evaluate`'s ROC AUC and average precision against scikit-learn's on the
same model's `bertkit predict --input` scores.

usage: check_ranking.py EVALUATION_JSON PREDICTIONS_JSONL INPUT_JSONL [LABEL_FIELD] [POSITIVE]

INPUT_JSONL holds the evaluated rows (a `label` field by default); PREDICTIONS_JSONL is
`bertkit predict --input INPUT_JSONL --output PREDICTIONS_JSONL` on a binary model, whose
records carry `row` and `score` (the positive class's probability). Needs scikit-learn.
"""
import json
import sys

from sklearn.metrics import average_precision_score, roc_auc_score


def main():
    evaluation, predictions, rows = sys.argv[1:4]
    field = sys.argv[4] if len(sys.argv) > 4 else "label"
    positive = sys.argv[5] if len(sys.argv) > 5 else "pos"
    truth = [json.loads(line)[field] == positive for line in open(rows)]
    scores = [None] * len(truth)
    for line in open(predictions):
        r = json.loads(line)
        scores[r["row"]] = r["score"]
    if any(s is None for s in scores):
        sys.exit("some rows have no score")
    ours = json.load(open(evaluation))["report"]["ranking"]
    theirs = {"roc_auc": roc_auc_score(truth, scores), "average_precision": average_precision_score(truth, scores)}
    print(f"{len(truth)} rows, {sum(truth)} positive")
    for k in theirs:
        print(f"{k}: bertkit evaluate {ours[k]:.6f}, scikit-learn on predict's scores {theirs[k]:.6f}, "
              f"difference {abs(ours[k] - theirs[k]):.2e}")


if __name__ == "__main__":
    main()
