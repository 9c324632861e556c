#!/usr/bin/env bash
# GPU check for a lent GPU machine (no internet): lm-eval generations with device=cuda and bf16
# through hf (and vLLM when installed), self-checked, with tokens/s and structural metrics.
#
#   bash examples/gpu_check.sh [OUT_DIR]          (default: gpu_check_out)
#
# Environment:
#   PYTHON   interpreter with torch (CUDA build) + transformers (default: python3)
#   WHEELS   optional folder of wheels (lm-eval, rtc-eval, their missing deps) installed first,
#            offline: pip install --no-index --find-links "$WHEELS" <every wheel in it>
#   DOCS     number of prompts (default 512);  LIMIT_S  wall-clock limit (default 570 s)
# Exit status: 0 all checks passed, 1 a check failed, 2 no usable GPU/python, 124 out of time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${1:-gpu_check_out}"
LIMIT_S="${LIMIT_S:-570}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

command -v "$PY" >/dev/null || { echo "gpu_check: no $PY on PATH (set PYTHON)"; exit 2; }
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
    echo "gpu_check: nvidia-smi not found; torch will say whether CUDA works"
fi
if [[ -n "${WHEELS:-}" ]]; then
    shopt -s nullglob
    wheels=("$WHEELS"/*.whl)
    (( ${#wheels[@]} )) || { echo "gpu_check: WHEELS=$WHEELS holds no .whl"; exit 2; }
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${wheels[@]}"
fi
# Imports the check needs, named in one line if any is missing (the repo itself is on sys.path).
"$PY" -c "import torch, transformers, tokenizers, lm_eval, datasets, accelerate" \
    || { echo "gpu_check: install torch, transformers, tokenizers, lm-eval, datasets and accelerate (see WHEELS)"; exit 2; }

start=$(date +%s)
set +e
timeout --kill-after=15 "$LIMIT_S" "$PY" examples/gpu_check.py --out "$OUT" --docs "${DOCS:-512}"
rc=$?
set -e
echo "gpu_check: exit $rc after $(( $(date +%s) - start )) s; report: $OUT/gpu_check.json"
exit $rc
