#!/usr/bin/env bash
# Overload test of `bertkit serve` (issue 17): a small queue (--queue-capacity 4, --max-batch-size 8),
# review-length texts, 1, 8 and 64 closed-loop clients that retry at once on 429. Prints the
# load tables (answered/s and the latency of answered requests) and the server's resident memory
# and threads, idle and at their peak while under load.
# Usage: scripts/overload.sh [MODEL_DIR] [DURATION]   (BERTKIT_BIN picks the binary; release by default)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo}
duration=${2:-8}
bk=${BERTKIT_BIN:-${CARGO_TARGET_DIR:-target}/release/bertkit}
[ -x "$bk" ] || cargo build --locked --release
port=$((20000 + RANDOM % 20000))
. scripts/serve_lib.sh
start_server "$port" --model "$model" --name m --queue-capacity 4 --max-batch-size 8
pid=$server_pid
field() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
echo "# bertkit overload: $bk, model $model, ${duration}s per row, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "idle: RSS $(( $(field VmRSS) / 1024 )) MiB, $(field Threads) threads"
peak_rss=0; peak_threads=0
( while kill -0 $pid 2>/dev/null; do
    echo "$(field VmRSS) $(field Threads)"; sleep 0.2
  done ) > /tmp/overload-samples.$$ &
sampler=$!
"$bk" loadtest --url "http://127.0.0.1:$port/v1/models/m:predict" --texts review --concurrency 1,8,64 --duration "$duration"
kill $sampler 2>/dev/null || true
read -r peak_rss peak_threads < <(awk '{ if ($1 > r) r = $1; if ($2 > t) t = $2 } END { print r, t }' /tmp/overload-samples.$$)
rm -f /tmp/overload-samples.$$
echo "peak under load: RSS $(( peak_rss / 1024 )) MiB, $peak_threads threads"
stop_server
