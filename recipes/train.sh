#!/usr/bin/env bash
# Train one shipped recipe from its dataset and copy the result into its plugin.
#   recipes/train.sh steel            (DATASETS defaults to ../shared/datasets)
# Each recipe's settings live in recipes/<name>.args; runs go to runs/<name>/ (resumable:
# rerunning continues from runs/<name>/last.pt).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: recipes/train.sh RECIPE}
DATASETS=${DATASETS:-../shared/datasets}
args_file=recipes/$name.args
[ -f "$args_file" ] || { echo "no recipe $args_file" >&2; exit 2; }
# shellcheck disable=SC1090
source "$args_file"   # sets DATASET, PLUGIN, ARGS
INSPECT=${INSPECT:-.venv/bin/inspect}
"$INSPECT" train --data "$DATASETS/$DATASET" --out "runs/$name" "${ARGS[@]}"
dest=plugins/$PLUGIN/models
mkdir -p "$dest"
cp "runs/$name/model.onnx" "$dest/$name.onnx"
cp "runs/$name/model.json" "$dest/$name.json"
cp "runs/$name/model.pt" "$dest/$name.pt"
echo "installed $dest/$name.onnx"
