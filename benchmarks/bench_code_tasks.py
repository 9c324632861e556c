"""Scoring throughput of the code tasks inside lm-eval: one parallel batch vs one doc at a time.

Run: python benchmarks/bench_code_tasks.py [--docs 48] [--workers 2]
Prints problems/s of a whole ``simple_evaluate`` run of ``rtc_evalplus`` (scripted
generations, so scoring is nearly all of it) for:

* ``batch``: RTCCodeTask as shipped: every doc of a task in one ``score_batch`` call,
  ``--workers`` sandboxes at a time;
* ``per-doc`` (baseline): the same task with the batch switched off, so each doc is scored by
  the YAML's ``process_results`` hook when lm-eval calls it, one doc at a time (what a plain
  lm-eval ``process_results`` task does);

and the ratio batch / per-doc from one run, after checking both give the same pass@1.
The generations are the fixtures' reference solutions, every other one broken.
Running model code requires the opt-in; this script only runs the fixtures' own solutions.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def _write(folder: Path, name: str, n: int) -> str:
    records = [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]
    out = []
    for i in range(n):
        record = dict(records[i % len(records)])
        body = record.get("canonical_solution")
        code = record["prompt"] + body if body else record["code"]
        if i % 2:
            code = code.replace("return ", "return None and ", 1)
        record["scripted"] = f"<think>Solve it.</think>\n```python\n{code}\n```"
        out.append(json.dumps(record) + "\n")
    path = folder / name
    path.write_text("".join(out))
    return str(path)


def _run(data: dict[str, str], workers: int) -> tuple[float, dict]:
    from harness_support import scripted_lm_class
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import rtc_tasks

    tm = TaskManager(
        include_path=rtc_tasks.tasks_path(),
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "rtc_data_files": data, "rtc_code_workers": workers},
    )
    start = time.perf_counter()
    res = simple_evaluate(
        model=scripted_lm_class()(),
        tasks=["rtc_evalplus"],
        task_manager=tm,
        confirm_run_unsafe_code=True,
        bootstrap_iters=0,
    )
    return time.perf_counter() - start, res["results"]


def main() -> None:
    import sys

    sys.path.insert(0, str(FIXTURES.parent))  # harness_support (the scripted LM)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=48, help="docs per task (fixtures repeated)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import rtc_tasks.code as code
    from rtc_tasks.task import RTCTask

    with tempfile.TemporaryDirectory() as tmp:
        data = {
            "rtc_humaneval_plus": _write(Path(tmp), "humanevalplus_sample.jsonl", args.docs),
            "rtc_mbpp_plus": _write(Path(tmp), "mbppplus_sample.jsonl", args.docs),
        }
        _run(data, args.workers)  # warm-up: imports, dataset cache
        batch_s, batch = _run(data, args.workers)
        shipped = code.RTCCodeTask.apply_filters
        code.RTCCodeTask.apply_filters = RTCTask.apply_filters  # no batch: per-doc fallback
        try:
            per_doc_s, per_doc = _run(data, args.workers)
        finally:
            code.RTCCodeTask.apply_filters = shipped
    same = batch["rtc_evalplus"]["pass@1,none"] == per_doc["rtc_evalplus"]["pass@1,none"]
    if not same:
        raise SystemExit(f"pass@1 differs: batch {batch['rtc_evalplus']} vs per-doc {per_doc['rtc_evalplus']}")
    n = 2 * args.docs
    print(f"rtc_evalplus, {n} problems, {args.workers} workers, pass@1 {batch['rtc_evalplus']['pass@1,none']:.3f}")
    print(f"  batch (RTCCodeTask)        {n / batch_s:7.2f} problems/s  ({batch_s:.2f} s)")
    print(f"  per-doc process_results    {n / per_doc_s:7.2f} problems/s  ({per_doc_s:.2f} s)")
    print(f"  ratio batch / per-doc      {per_doc_s / batch_s:7.2f}x")


if __name__ == "__main__":
    main()
