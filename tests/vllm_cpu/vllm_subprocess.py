"""Environment and limits for the vLLM subprocesses of tests/vllm_cpu (shared by conftest and tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `examples.*` helpers and `rtc_tasks` from the repo root
    sys.path.insert(0, str(REPO))

#: Environment for every vLLM subprocess: offline, small KV cache (vLLM's CPU backend refuses to
#: start on this machine's NUMA memory check without it), the repo importable.
VLLM_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
}
#: Bounded waits (seconds): an engine start on 2 busy cores takes ~40 s.
SERVER_START_TIMEOUT = 240
SUBPROCESS_TIMEOUT = 420


def vllm_env() -> dict[str, str]:
    return {**os.environ, **VLLM_ENV}
