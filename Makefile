# Quick start: `make run` (the main job on the embedded offline default), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install run test lint bench
install: $(VENV)/.installed

# torch is pinned here (a CPU build on the CI machine's disk) and only here:
# pyproject.toml keeps the honest `torch>=` range for users.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all,bench]"
	touch $@

run: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/rtc demo --out rtc_out/demo

test: install
	$(PY) -m ruff check .
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_parse.py
	$(PY) benchmarks/bench_harness_overhead.py
	$(PY) benchmarks/bench_diagnostics.py
	$(PY) benchmarks/bench_sandbox.py
	$(PY) benchmarks/bench_code_tasks.py
