#!/usr/bin/env bash
# Load test of `bertkit serve` on loopback: for max batch size 1 (no batching) and 32 (dynamic
# batching), short and review-length texts at 1, 8 and 32 concurrent clients, DURATION seconds each.
# Usage: scripts/loadtest.sh [MODEL_DIR] [DURATION]      (bounded: 12 runs x DURATION seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo}
duration=${2:-10}
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
[ -x "$bk" ] || cargo build --locked
[ -f "$model/bertkit.json" ] || { echo "error: $model is not a trained model folder (run scripts/demo.sh)" >&2; exit 1; }
port=$((20000 + RANDOM % 20000))
echo "# bertkit loadtest: model $model, ${duration}s per run, $(nproc) cores, $(date -u +%Y-%m-%d)"
for batch in 1 32; do
  $bk serve --model "$model" --name m --port "$port" --max-batch-size "$batch" --queue-capacity 256 2>/dev/null &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo
  echo "## server --max-batch-size $batch"
  for texts in short review; do
    $bk loadtest --url "http://127.0.0.1:$port/v1/models/m:predict" --texts "$texts" --concurrency 1,8,32 --duration "$duration"
  done
  kill -TERM $pid
  wait $pid || true
done
