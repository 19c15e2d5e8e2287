#!/usr/bin/env bash
# Sets everything up and runs the main job: fetch the checkpoint, unpack IMDB, build, then
# preprocess and embed the seed's sentence.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo build --locked
bk=target/debug/bertkit
text="this is such an amazing movie!"
echo "==> bertkit preprocess"
$bk preprocess --model models/minilm "$text"
echo "==> bertkit embed"
$bk embed --model models/minilm "$text"
