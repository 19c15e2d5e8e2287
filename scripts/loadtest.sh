#!/usr/bin/env bash
# Load test of `bertkit serve` on loopback: for max batch size 1 (no batching) and 32 (dynamic
# batching), short and review-length texts at 1, 8 and 32 concurrent clients, DURATION seconds each;
# then the same review texts through the V1 (TF Serving) and V2 (Open Inference Protocol) routes.
# Usage: scripts/loadtest.sh [MODEL_DIR] [DURATION]      (bounded: 16 runs x DURATION seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo}
duration=${2:-10}
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
[ -x "$bk" ] || cargo build --locked
[ -f "$model/bertkit.json" ] || { echo "error: $model is not a trained model folder (run scripts/demo.sh)" >&2; exit 1; }
port=$((20000 + RANDOM % 20000))
. scripts/serve_lib.sh
echo "# bertkit loadtest: model $model, ${duration}s per run, $(nproc) cores, $(date -u +%Y-%m-%d)"
for batch in 1 32; do
  start_server "$port" --model "$model" --name m --max-batch-size "$batch" --queue-capacity 256
  echo
  echo "## server --max-batch-size $batch"
  for texts in short review; do
    $bk loadtest --url "http://127.0.0.1:$port/v1/models/m:predict" --texts "$texts" --concurrency 1,8,32 --duration "$duration"
  done
  stop_server
done

# The two protocols side by side on one server (--max-batch-size 32), the same texts.
start_server "$port" --model "$model" --name m --max-batch-size 32 --queue-capacity 256
echo
echo "## V1 vs V2 (--max-batch-size 32, review texts)"
$bk loadtest --url "http://127.0.0.1:$port/v1/models/m:predict" --protocol v1 --texts review --concurrency 1,8 --duration "$duration"
$bk loadtest --url "http://127.0.0.1:$port/v2/models/m/infer" --protocol v2 --texts review --concurrency 1,8 --duration "$duration"
stop_server

