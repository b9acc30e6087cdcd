#!/usr/bin/env bash
# Train one shipped recipe from its dataset and copy the result into its plugin.
#   training/train.sh steel            (DATASETS defaults to ../shared/datasets)
# Each recipe's settings live in training/<name>.args; runs go to runs/<name>/ (resumable:
# rerunning continues from runs/<name>/last.pt). After training, test-time augmentation
# is kept only if it raises val mIoU (training/choose_tta.py), the class prior correction only if
# it raises it on held-out val images too (training/fit_prior.py), then the model, its card and its
# weights (.pt, for --init-from) are copied into the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: training/train.sh RECIPE}
DATASETS=${DATASETS:-../shared/datasets}
args_file=training/$name.args
[ -f "$args_file" ] || { echo "no recipe $args_file" >&2; exit 2; }
TTA=h,v
# shellcheck disable=SC1090
INSTALL_AS=$name
source "$args_file"   # sets DATASET, PLUGIN, ARGS (and TTA, INSTALL_AS)
INSPECT=${INSPECT:-.venv/bin/inspect}
PYTHON=${PYTHON:-.venv/bin/python}
"$INSPECT" train --data "$DATASETS/$DATASET" --out "runs/$name" "${ARGS[@]}"
tta_args=()
for candidate in $TTA; do tta_args+=(--flips "$candidate"); done  # space-separated candidates
"$PYTHON" training/choose_tta.py "runs/$name" --data "$DATASETS/$DATASET" "${tta_args[@]}"
"$PYTHON" training/fit_prior.py "runs/$name" --data "$DATASETS/$DATASET"
dest=plugins/$PLUGIN/models
mkdir -p "$dest"
cp "runs/$name/model.onnx" "$dest/$INSTALL_AS.onnx"
cp "runs/$name/model.json" "$dest/$INSTALL_AS.json"
cp "runs/$name/model.pt" "$dest/$INSTALL_AS.pt"
"$PYTHON" training/variants.py "$dest/$INSTALL_AS.onnx" --data "$DATASETS/$DATASET"  # int8/bf16, gated
echo "installed $dest/$INSTALL_AS.onnx"
