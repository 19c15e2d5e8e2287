#!/usr/bin/env python3
"""Builds a 4-class task from IMDB's star ratings (a multi-class task of our own for the
frozen-encoder results): data/imdb-ratings/{train,test}/{1-2,3-4,7-8,9-10}/, the rating taken
from IMDB's file names (`<id>_<rating>.txt`), the first N reviews of each class by id.

  python3 scripts/make_imdb_ratings.py [data/aclImdb] [data/imdb-ratings] [--train 750] [--test 500]
"""
import argparse
import os
import shutil

BUCKETS = {"1-2": (1, 2), "3-4": (3, 4), "7-8": (7, 8), "9-10": (9, 10)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?", default="data/aclImdb")
    ap.add_argument("out", nargs="?", default="data/imdb-ratings")
    ap.add_argument("--train", type=int, default=750)
    ap.add_argument("--test", type=int, default=500)
    a = ap.parse_args()
    for split, per_class in (("train", a.train), ("test", a.test)):
        files = []
        for pol in ("neg", "pos"):
            d = os.path.join(a.src, split, pol)
            files += [(int(n.split("_")[0]), int(n.split("_")[1].split(".")[0]), os.path.join(d, n)) for n in os.listdir(d)]
        files.sort()
        for name, ratings in BUCKETS.items():
            dst = os.path.join(a.out, split, name)
            os.makedirs(dst, exist_ok=True)
            chosen = [f for f in files if f[1] in ratings][:per_class]
            for _, _, path in chosen:
                shutil.copy(path, dst)
            print(split, name, len(chosen))


if __name__ == "__main__":
    main()
