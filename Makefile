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
	$(VENV)/bin/rtc score examples/qwen3_outputs.jsonl --format qwen3 --correct-field correct

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_parse.py
	$(PY) benchmarks/bench_harness_overhead.py
	$(PY) benchmarks/bench_diagnostics.py
	$(PY) benchmarks/bench_sandbox.py
