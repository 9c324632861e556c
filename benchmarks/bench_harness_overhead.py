"""Overhead of rtc's structural metrics inside an lm_eval run, and proof that no bootstrap runs.

Runs lm-eval's real ``simple_evaluate`` with the hf backend on CPU and the tiny
deterministic Llama of the tests (every generation is a ``<think>Hmm hmm ...`` trace that
runs to the token budget), and times the code rtc adds:

- parsing every raw generation (``parse_trace`` in ``RTCTask.apply_filters``),
- the structural part of ``RTCTask.process_results`` (its time minus the task's own scoring),
- the ``rpass@1`` aggregation and the settings checks before generation.

Baseline: the same run with the same YAML minus ``class: RTCTask`` (a plain
ConfigurableTask), so the wall-time difference is shown too (noisy at this size).
``bootstrap_iters`` is lm_eval's CLI default, 100000; every call of lm-eval's
``bootstrap_stderr`` is counted.

A second measurement isolates rtc's per-generation cost on long traces (8,000 characters)
with a scripted LM (no model), to put the first number in context.

    python benchmarks/bench_harness_overhead.py [--docs 64] [--max-gen-toks 128]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny-model builder

from harness_support import SCRIPTED_TASK_YAML, build_tiny_model, scripted_lm_class, write_jsonl

TIMERS: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def _timed(name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMERS[name] += time.perf_counter() - start
            CALLS[name] += 1

    return wrapper


def instrument() -> None:
    """Wrap rtc's added code paths (and lm-eval's bootstrap) with timers and counters."""
    import lm_eval.api.metrics as lm_metrics
    from lm_eval.api.task import ConfigurableTask

    import rtc_tasks.task as rtc_task

    rtc_task.parse_trace = _timed("parse", rtc_task.parse_trace)
    rtc_task.rpass_at_1 = _timed("rpass_agg", rtc_task.rpass_at_1)
    rtc_task.check_backend = _timed("checks", rtc_task.check_backend)
    rtc_task.check_generation_kwargs = _timed("checks", rtc_task.check_generation_kwargs)
    rtc_task.RTCTask.process_results = _timed("process_results_total", rtc_task.RTCTask.process_results)
    ConfigurableTask.process_results = _timed("process_results_inner", ConfigurableTask.process_results)
    lm_metrics.bootstrap_stderr = _timed("bootstrap_stderr", lm_metrics.bootstrap_stderr)
    import rtc_tasks.diagnostics as rtc_diag  # budget diagnostics: token counts per generation

    rtc_diag.TaskDiagnostics.measure = _timed("diagnostics", rtc_diag.TaskDiagnostics.measure)


def rtc_seconds() -> float:
    structural = TIMERS["process_results_total"] - TIMERS["process_results_inner"]
    return TIMERS["parse"] + structural + TIMERS["rpass_agg"] + TIMERS["checks"] + TIMERS["diagnostics"]


def evaluate(model, folder: Path, task: str, **kwargs) -> tuple[dict, float]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=[str(folder)], include_defaults=False, metadata={"rtc_format": "qwen3"})
    start = time.perf_counter()
    res = simple_evaluate(model=model, tasks=[task], task_manager=tm, bootstrap_iters=100000, **kwargs)
    return res, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--max-gen-toks", type=int, default=128)
    parser.add_argument("--scripted-docs", type=int, default=2000)
    args = parser.parse_args()

    instrument()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_tiny_model(root / "model", special_tags=False)
        docs = [(f"Question {i} gamma", "42") for i in range(args.docs)]  # " gamma": a never-closing trace
        write_jsonl(root / "data.jsonl", [{"prompt": p, "answer": a, "scripted": ""} for p, a in docs])
        yaml = SCRIPTED_TASK_YAML.format(name="bench_rtc", data=root / "data.jsonl", extra="").replace(
            "max_gen_toks: 4096", f"max_gen_toks: {args.max_gen_toks}"
        )
        (root / "bench_rtc.yaml").write_text(yaml)
        plain = yaml.replace("task: bench_rtc", "task: bench_plain").replace(
            "class: !function rtc_tasks.task.RTCTask\n", ""
        )
        (root / "bench_plain.yaml").write_text(plain)

        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=8)
        evaluate(lm, root, "bench_plain", limit=4)  # warm-up: imports, caches
        TIMERS.clear()
        CALLS.clear()
        _, wall_plain = evaluate(lm, root, "bench_plain")
        TIMERS.clear()
        CALLS.clear()
        res, wall_rtc = evaluate(lm, root, "bench_rtc")
        r = res["results"]["bench_rtc"]
        overhead = rtc_seconds()
        report["hf_run"] = {
            "docs": args.docs,
            "max_gen_toks": args.max_gen_toks,
            "wall_s_rtc_task": round(wall_rtc, 3),
            "wall_s_plain_task": round(wall_plain, 3),
            "rtc_code_s": round(overhead, 5),
            "rtc_fraction_of_wall": overhead / wall_rtc,
            "wall_difference_fraction": (wall_rtc - wall_plain) / wall_plain,
            "bootstrap_stderr_calls": CALLS["bootstrap_stderr"],
            "bootstrap_stderr_s": round(TIMERS["bootstrap_stderr"], 4),
            "stderr_reported": {k: r[f"{k}_stderr,none"] for k in ("vr", "tr", "rpass@1")},
            "tr": r["tr,none"],
        }

        # rtc's cost per generation on long traces, with no model at all.
        step = "Let me check 12 * 7 = 84, then subtract 5. "
        trace = "<think>" + step * 190 + "</think> The answer is 79"
        write_jsonl(
            root / "long.jsonl",
            [{"prompt": f"Q {i}", "answer": "79", "scripted": trace} for i in range(args.scripted_docs)],
        )
        (root / "bench_long.yaml").write_text(
            SCRIPTED_TASK_YAML.format(name="bench_long", data=root / "long.jsonl", extra="")
        )
        TIMERS.clear()
        CALLS.clear()
        res, wall_scripted = evaluate(scripted_lm_class()(), root, "bench_long")
        report["scripted_long_traces"] = {
            "docs": args.scripted_docs,
            "trace_chars": len(trace),
            "wall_s": round(wall_scripted, 3),
            "rtc_code_s": round(rtc_seconds(), 5),
            "rtc_us_per_generation": 1e6 * rtc_seconds() / args.scripted_docs,
            "rtc_fraction_of_wall_without_any_model": rtc_seconds() / wall_scripted,
            "bootstrap_stderr_calls": CALLS["bootstrap_stderr"],
            "vr": res["results"]["bench_long"]["vr,none"],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
