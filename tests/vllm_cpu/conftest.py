"""Fixtures for the vLLM tests: run them with the vllm venv's python (scripts/setup_vllm_venv.sh).

Every module here starts with ``pytest.importorskip("vllm.entrypoints.openai")``, so the main suite reports
them as skipped (no vllm). vLLM engines are only ever created in subprocesses (lm-eval's CLI, a direct
``LLM()`` script, an OpenAI server), which also keeps ``LLM()``'s worker processes away from pytest.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vllm_subprocess import SERVER_START_TIMEOUT, vllm_env


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny Qwen3 models: special-token delimiters, and ordinary added tokens + pre-filling template."""
    from examples.tiny_qwen3 import build

    root = tmp_path_factory.mktemp("tiny_qwen3")
    return {
        "special": build(root / "special", special=True),
        "nonspecial_prefill": build(root / "nonspecial_prefill", special=False, prefill=True),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1, started and stopped by a fixture."""

    def __init__(self, model: Path, extra_args: list[str], log_path: Path) -> None:
        self.model = str(model)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        self.log_path = log_path
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model, "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "float32", "--max-model-len", "512", "--enforce-eager", *extra_args,
        ]  # fmt: skip
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=vllm_env())

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM server not ready after {timeout:.0f} s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory) -> Iterator:
    """Factory fixture: ``start_server(model, extra_args)``; every server is stopped at module end."""
    servers: list[VLLMServer] = []

    def start(model: Path, extra_args: list[str]) -> VLLMServer:
        log = tmp_path_factory.mktemp("vllm_server") / "server.log"
        server = VLLMServer(model, extra_args, log)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
