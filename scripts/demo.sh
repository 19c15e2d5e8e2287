#!/usr/bin/env bash
# Sets everything up and runs the main job: fetch the checkpoint, unpack IMDB, build, preprocess
# and embed the seed's sentence, fine-tune a small demo classifier on an IMDB slice, evaluate it,
# predict the seed's examples, and query it once through the HTTP server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo build --locked
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
text="this is such an amazing movie!"
echo "==> bertkit preprocess"
$bk preprocess --model models/minilm "$text"
echo "==> bertkit embed"
$bk embed --model models/minilm "$text"
echo "==> bertkit train (demo: 640 reviews, 1 epoch; the full run is in docs/results.md)"
$bk train --model models/minilm --data data/aclImdb/train --out runs/demo --epochs 1 \
  --max-train 640 --max-val 160 --batch-size 32 --lr 1e-4 --pooling mean --truncation head_tail --show-samples 1
echo "==> bertkit evaluate (1,000 test reviews)"
mkdir -p runs/demo-test/pos runs/demo-test/neg
for c in pos neg; do
  find data/aclImdb/test/$c -name '*.txt' | sort | sed -n '1,500p' | xargs -I{} cp {} runs/demo-test/$c/
done
$bk evaluate --model runs/demo --data runs/demo-test
echo "==> bertkit predict"
$bk predict --model runs/demo "$text" "The movie was great!" "The movie was meh." "The movie was okish." "The movie was terrible..."
echo "==> bertkit serve + one request"
port=$((20000 + RANDOM % 20000))
$bk serve --model runs/demo --name imdb --port "$port" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -s -X POST "http://127.0.0.1:$port/v1/models/imdb:predict" -H 'content-type: application/json' \
  -d '{"instances": [{"text": "I love this movie and highly recommend it"}, {"text": "The movie was terrible..."}]}'
echo
kill -TERM $pid; wait $pid || true
