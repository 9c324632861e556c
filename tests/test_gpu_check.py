"""examples/gpu_check.py, dry-run on the CPU: its pipeline and its self-checks work without a GPU.

On the GPU machine the same script runs with device=cuda and bf16 (examples/gpu_check.sh).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    cmd = [sys.executable, str(REPO / "examples/gpu_check.py"), "--out", str(tmp_path), "--docs", "12",
           "--batch-size", "4", "--device", "cpu", "--dtype", "float32", "--skip-vllm", *extra]  # fmt: skip
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    report_path = tmp_path / "gpu_check.json"
    return proc, json.loads(report_path.read_text()) if report_path.exists() else {}


def test_gpu_check_dry_run_passes_its_own_checks_on_cpu(tmp_path):
    proc, report = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert report["failures"] == []
    hf = report["hf"]
    assert hf["recounted"]["rtc_valid"] == hf["reported"]["rtc_valid"] == 8 / 12
    assert hf["generated_tokens"] > 0 and hf["tokens_per_s"] > 0
    assert report["vllm"].startswith("skipped")


def test_gpu_check_refuses_to_run_without_cuda_instead_of_falling_back(tmp_path):
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the real check is the script itself
    cmd = [sys.executable, str(REPO / "examples/gpu_check.py"), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "sees no CUDA device" in proc.stdout
    assert not (tmp_path / "gpu_check.json").exists()
