#!/usr/bin/env bash
# Train every shipped recipe in turn (about 5 hours on 2 CPU cores; less on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
for r in ${RECIPES:-steel driving tile tile-ft tile-ft2 ballscrew landcover landcover-all}; do
  training/train.sh "$r"
done
