#!/usr/bin/env python3
"""Writes IMDB's test split as one Parquet file (what Hugging Face `datasets` ships), the input
of the recorded batch job in docs/benchmarks.md: columns `id` (the file name), `text`, `label`
(neg/pos); pyarrow, Snappy. `--repeat N` writes the reviews N times over (ids suffixed), for the
memory-versus-rows measurement. Needs pyarrow (the reference venv).

  .venv/bin/python scripts/make_imdb_parquet.py [data/aclImdb] [data/imdb-test.parquet] [--repeat 1] [--limit 0]
"""
import argparse
import os

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?", default="data/aclImdb")
    ap.add_argument("out", nargs="?", default="data/imdb-test.parquet")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="keep the first N reviews (0: all)")
    a = ap.parse_args()
    ids, texts, labels = [], [], []
    for pol in ("neg", "pos"):
        d = os.path.join(a.src, "test", pol)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                ids.append(f"{pol}/{name}")
                texts.append(f.read().replace("<br />", " "))
                labels.append(pol)
    if a.limit:
        ids, texts, labels = ids[:a.limit], texts[:a.limit], labels[:a.limit]
    writer = None
    for r in range(a.repeat):
        table = pa.table({"id": [f"{i}#{r}" if a.repeat > 1 else i for i in ids], "text": texts, "label": labels})
        writer = writer or pq.ParquetWriter(a.out, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()
    print(a.out, len(ids) * a.repeat, "rows")


if __name__ == "__main__":
    main()
