#!/usr/bin/env python3
"""Builds a multi-label task from IMDB (no multi-label text data set is reachable here): each
review gets any of three labels, decided by rules anyone can check:

  positive  the review is in IMDB's pos folder (rated 7-10)
  long      it has more than 172 words (the median of IMDB's train split)
  ending    it mentions the ending: the word "ending" or "endings", any case

Reviews are drawn at random (seeded) from each split; `<br />` becomes a space. Writes
data/imdb-multilabel/{train,test}.jsonl as {"text": ..., "labels": [...]} (the empty list is a
review with none of them).

  python3 scripts/make_imdb_multilabel.py [data/aclImdb] [data/imdb-multilabel] [--train 2400] [--test 1000]
"""
import argparse
import collections
import json
import os
import random
import re

from imdb import reviews

LONG_WORDS = 172
ENDING = re.compile(r"\bendings?\b", re.IGNORECASE)


def labels(text, positive):
    out = []
    if positive:
        out.append("positive")
    if len(text.split()) > LONG_WORDS:
        out.append("long")
    if ENDING.search(text):
        out.append("ending")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?", default="data/aclImdb")
    ap.add_argument("out", nargs="?", default="data/imdb-multilabel")
    ap.add_argument("--train", type=int, default=2400)
    ap.add_argument("--test", type=int, default=1000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, n in (("train", a.train), ("test", a.test)):
        pool = reviews(a.src, split)
        random.Random(f"imdb-multilabel-{split}").shuffle(pool)
        counts = collections.Counter()
        with open(os.path.join(a.out, f"{split}.jsonl"), "w") as f:
            for text, positive in pool[:n]:
                ls = labels(text, positive)
                counts.update(ls)
                f.write(json.dumps({"text": text, "labels": ls}) + "\n")
        print(split, n, dict(counts))


if __name__ == "__main__":
    main()
