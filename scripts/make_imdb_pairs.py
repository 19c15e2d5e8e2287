#!/usr/bin/env python3
"""Builds a sentence-pair task from IMDB (nothing better ships here): does the second text
continue the first? For each review, `first` is its opening words and `second` either its own
continuation (label `same`) or the continuation of another review of the same split (label
`different`), half and half. Writes data/imdb-pairs/{train,test}.jsonl.

  python3 scripts/make_imdb_pairs.py [data/aclImdb] [data/imdb-pairs] [--train 4000] [--test 2000] [--words 40]
"""
import argparse
import json
import os
import random

from imdb import reviews


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?", default="data/aclImdb")
    ap.add_argument("out", nargs="?", default="data/imdb-pairs")
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--words", type=int, default=40)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, n in (("train", a.train), ("test", a.test)):
        rng = random.Random(f"imdb-pairs-{split}")
        pool = [text.split() for text, _ in reviews(a.src, split)]
        pool = [w for w in pool if len(w) >= 2 * a.words]
        rng.shuffle(pool)
        chosen, donors = pool[:n], pool[n:2 * n]
        with open(os.path.join(a.out, f"{split}.jsonl"), "w") as f:
            for i, words in enumerate(chosen):
                first = " ".join(words[:a.words])
                same = i % 2 == 0
                rest = words if same else donors[i]
                second = " ".join(rest[a.words:2 * a.words])
                f.write(json.dumps({"first": first, "second": second, "label": "same" if same else "different"}) + "\n")
        print(split, len(chosen))


if __name__ == "__main__":
    main()
