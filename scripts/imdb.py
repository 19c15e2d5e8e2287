"""IMDB's reviews as the data builders read them (make_imdb_pairs.py, make_imdb_multilabel.py):
every review of a split, neg then pos, in file-name order, `<br />` turned into a space."""
import os


def reviews(root, split):
    """[(text, positive)] of `root/split/{neg,pos}/*.txt`."""
    out = []
    for pol in ("neg", "pos"):
        d = os.path.join(root, split, pol)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                out.append((f.read().replace("<br />", " "), pol == "pos"))
    return out
