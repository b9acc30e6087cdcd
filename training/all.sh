#!/usr/bin/env bash
# Train every shipped recipe in turn (about 8 hours on 2 CPU cores; less on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
for r in ${RECIPES:-steel steel-ft steel-ft2 driving tile tile-ft tile-ft2 tile-ft3 tile-ft4 ballscrew landcover landcover-all}; do
  training/train.sh "$r"
done
