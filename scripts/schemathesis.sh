#!/usr/bin/env bash
# Fuzzes `bertkit serve` from its own OpenAPI document with schemathesis (PyPI, in the reference
# venv): every documented operation, valid and invalid inputs, all checks (no 5xx, status codes
# and bodies as documented, 405 on undocumented methods, invalid bodies refused, ...) but one:
# `positive_data_acceptance` expects every schema-valid body to be scored, and JSON Schema cannot
# say what the server rightly refuses with a 400 naming the problem: a tensor's data length that
# differs from its shape, texts of only invisible characters, `text_pair` sent to a single-text
# model, more instances than --max-instances. Prints schemathesis' summary.
# Usage: scripts/schemathesis.sh [MODEL_DIR] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo}
examples=${2:-100}
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
st=".venv/bin/schemathesis"
[ -x "$bk" ] || cargo build --locked
[ -x "$st" ] || { echo "error: $st missing: .venv/bin/pip install schemathesis" >&2; exit 1; }
[ -f "$model/bertkit.json" ] || { echo "error: $model is not a trained model folder (run scripts/demo.sh)" >&2; exit 1; }
port=$((20000 + RANDOM % 20000))
. scripts/serve_lib.sh
start_server "$port" --model "$model" --name imdb
echo "# schemathesis $($st --version | awk '{print $NF}') against bertkit serve ($model), $(date -u +%Y-%m-%dT%H:%MZ)"
$st run "http://127.0.0.1:$port/openapi.json" --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$examples" --seed 42 \
  --generation-database none --no-color "${@:3}"
