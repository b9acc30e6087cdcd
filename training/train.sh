#!/usr/bin/env bash
# Train one shipped recipe from its dataset and copy the result into its plugin.
#   training/train.sh steel            (DATASETS defaults to ../shared/datasets)
# Each recipe's settings live in training/<name>.args; runs go to runs/<name>/ (resumable:
# rerunning continues from runs/<name>/last.pt). After training, test-time copies are kept only
# if they raise the held-out mIoU within BUDGET_MS (training/choose_tta.py; TTA="" skips them),
# the class prior correction only if it raises it on held-out images it was not fitted on too
# (training/fit_prior.py; PRIOR=no skips it), UNSEEN_FROM copies a settings run's unseen-group
# score into the card, GROUPS_NOTE says why a card has none (GROUP_PATTERN: its val images per
# group scored); then the model, its card and its weights (.pt, for --init-from) are
# copied into the plugin unless it scores lower than the installed model on the same images
# (training/install_check.py; FORCE=1 installs anyway), and its int8/bf16 variants made
# (INSTALL_AS=none: not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: training/train.sh RECIPE}
DATASETS=${DATASETS:-../shared/datasets}
args_file=training/$name.args
[ -f "$args_file" ] || { echo "no recipe $args_file" >&2; exit 2; }
TTA=h,v
# shellcheck disable=SC1090
INSTALL_AS=$name
source "$args_file"   # sets DATASET, PLUGIN, ARGS (and TTA, INSTALL_AS,
                      # BUDGET_MS, PRIOR, UNSEEN_FROM)
INSPECT=${INSPECT:-.venv/bin/inspect}
PYTHON=${PYTHON:-.venv/bin/python}
"$INSPECT" train --data "$DATASETS/$DATASET" --out "runs/$name" "${ARGS[@]}"
tta_args=()
for candidate in $TTA; do tta_args+=(--flips "$candidate"); done  # space-separated candidates
if [ ${#tta_args[@]} -gt 0 ]; then  # TTA="" in the .args: no test-time copies are tried
  "$PYTHON" training/choose_tta.py "runs/$name" --data "$DATASETS/$DATASET" "${tta_args[@]}" \
    --budget-ms "${BUDGET_MS:-0}"
fi
if [ "${PRIOR:-yes}" != no ]; then  # folds by GROUP_PATTERN's groups where the recipe names them
  prior_args=()
  [ -n "${GROUP_PATTERN:-}" ] && prior_args=(--groups "$GROUP_PATTERN")
  "$PYTHON" training/fit_prior.py "runs/$name" --data "$DATASETS/$DATASET" "${prior_args[@]}"
fi
if [ -n "${UNSEEN_FROM:-}" ]; then  # trained on every group: its settings run's unseen score
  "$PYTHON" training/group_scores.py "runs/$name/model.onnx" --data "$DATASETS/$DATASET" \
    --unseen-from "$UNSEEN_FROM"
fi
if [ -n "${GROUPS_NOTE:-}" ]; then  # no unseen group to score on: the card says why (and scores
  group_args=()                     # its val images per group where GROUP_PATTERN names them)
  [ -n "${GROUP_PATTERN:-}" ] && group_args=(--groups "$GROUP_PATTERN")
  "$PYTHON" training/group_scores.py "runs/$name/model.onnx" --data "$DATASETS/$DATASET" \
    --note "$GROUPS_NOTE" "${group_args[@]}"
fi
if [ "$INSTALL_AS" = none ]; then  # a settings run: kept in runs/, not installed
  echo "settings run: runs/$name (not installed)"
  exit 0
fi
dest=plugins/inspect_plugins/$PLUGIN/models
mkdir -p "$dest"
force_args=()
case "${FORCE:-0}" in 0|no|false|"") ;; *) force_args=(--force) ;; esac
# never below the installed model on the same images (a warm restart can end lower)
"$PYTHON" training/install_check.py "runs/$name/model.json" "$dest/$INSTALL_AS.json" "${force_args[@]}"
cp "runs/$name/model.onnx" "$dest/$INSTALL_AS.onnx"
cp "runs/$name/model.json" "$dest/$INSTALL_AS.json"
cp "runs/$name/model.pt" "$dest/$INSTALL_AS.pt"
"$PYTHON" training/variants.py "$dest/$INSTALL_AS.onnx" --data "$DATASETS/$DATASET"  # int8/bf16, gated
echo "installed $dest/$INSTALL_AS.onnx"
