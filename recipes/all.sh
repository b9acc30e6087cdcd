#!/usr/bin/env bash
# Train every shipped recipe in turn (about 3 hours on 2 CPU cores; less on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
for r in ${RECIPES:-steel driving tile tile-ft ballscrew landcover}; do
  recipes/train.sh "$r"
done
