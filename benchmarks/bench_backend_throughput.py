"""Throughput of an rtc-style task vs the same task without structural metrics, same backend and prompts.

    python benchmarks/bench_backend_throughput.py [--backend hf|vllm] [--docs 256] [--repeats 3]

Both tasks send identical requests (prompts, ``until: []``, ``max_gen_toks``) to ONE model instance;
the only difference is the task: the rtc-style one classifies every raw response with
``rtc_metrics.parse_trace`` and reports the four structural rates, the baseline scores the raw
output only. Runs alternate (base, rtc, base, rtc, ...) so machine load drifts hit both; the
best (minimum) time per task over the repeats gives the ratio ``rtc throughput / baseline
throughput`` (goal >= 0.98: the plugin must not disable batching or prefix caching). Both wall time
and this process's CPU time are reported: on a shared machine the CPU-time ratio is the one other
processes disturb least (vLLM's engine runs in worker processes, so for vLLM read the wall ratio).
Prompts: the real GSM8K subset in ``../shared/data/paper-subsets`` when present, else synthetic
questions; each ends with the tiny model's trigger word so every generation carries a trace.

``--rtc-task``/``--baseline-task`` take other task YAML paths (e.g. the packaged ``rtc_gsm8k`` and
a copy of ``gsm8k`` with the same prompts and generation settings) instead of the generated pair.
vLLM runs need the vllm venv (``scripts/setup_vllm_venv.sh``) and ``VLLM_CPU_KVCACHE_SPACE=1``
on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from examples.lmeval_local_task import write_task  # noqa: E402
from examples.tiny_qwen3 import ANSWER, build  # noqa: E402
from rtc_metrics.io import write_json  # noqa: E402

SHARED_GSM8K = REPO.parent / "shared" / "data" / "paper-subsets" / "gsm8k_256.jsonl"


def _rows(n: int) -> tuple[list[dict], str]:
    if SHARED_GSM8K.exists():
        lines = SHARED_GSM8K.read_text().splitlines()[:n]
        prompts = [json.loads(line)["prompt"] for line in lines]
        source = str(SHARED_GSM8K)
    else:
        prompts = [f"Question {i}: what is {i} plus {i}?" for i in range(n)]
        source = "synthetic"
    return [{"question": f"{p.strip()} go", "answer": ANSWER} for p in prompts], source


def _make_lm(backend: str, model: Path, batch_size: int):
    from lm_eval.api.registry import get_model

    if backend == "hf":
        args = {"pretrained": str(model), "dtype": "float32", "device": "cpu", "batch_size": batch_size}
    else:
        args = {"pretrained": str(model), "dtype": "float32", "max_model_len": 1024, "batch_size": "auto"}
    return get_model(backend).create_from_arg_obj(args)


def _run(lm, task: str) -> tuple[float, float, int, dict]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    start, cpu_start = time.perf_counter(), time.process_time()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=TaskManager(include_defaults=False),
        bootstrap_iters=0, log_samples=True, verbosity="WARNING",
    )  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    (name,) = out["samples"]
    responses = [s["resps"][0][0] for s in out["samples"][name]]
    tokens = sum(len(lm.tok_encode(r)) for r in responses)
    metrics = {k: v for k, v in out["results"][name].items() if k.endswith(",none")}
    return wall, cpu, tokens, metrics, responses


def _parse_seconds(responses: list[str], passes: int = 20) -> float:
    """Best time of one parse_trace pass over all responses: the rtc task's only extra per-sample work."""
    from rtc_metrics import parse_trace

    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for r in responses:
            parse_trace(r, "qwen3")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="hf only; vLLM batches everything")
    parser.add_argument("--rtc-task", help="task YAML path (default: generated rtc-style task)")
    parser.add_argument("--baseline-task", help="task YAML path (default: the same task, no rtc metrics)")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # hf decodes with skip_special_tokens=True: its model keeps <think> as ordinary tokens.
        model = build(tmp_path / "model", special=args.backend == "vllm")
        rows, source = _rows(args.docs)
        rtc_task = args.rtc_task or str(write_task(tmp_path / "rtc", "bench_rtc", rows, max_gen_toks=64))
        base_task = args.baseline_task or str(
            write_task(tmp_path / "base", "bench_base", rows, max_gen_toks=64, structural=False)
        )
        lm = _make_lm(args.backend, model, args.batch_size)
        engine = {"batch_size": getattr(lm, "batch_size", None)}
        if args.backend == "vllm":  # the settings the goal is about, as the engine really has them
            cache_config = lm.model.llm_engine.vllm_config.cache_config
            engine["enable_prefix_caching"] = cache_config.enable_prefix_caching
        _run(lm, base_task)  # warm-up: dataset build, allocator, kernels
        walls: dict[str, list[float]] = {"baseline": [], "rtc": []}
        cpus: dict[str, list[float]] = {"baseline": [], "rtc": []}
        tokens: dict[str, int] = {}
        metrics: dict[str, dict] = {}
        for _ in range(args.repeats):
            for label, task in (("baseline", base_task), ("rtc", rtc_task)):
                wall, cpu, tokens[label], metrics[label], responses = _run(lm, task)
                walls[label].append(wall)
                cpus[label].append(cpu)
        if args.backend == "vllm":  # else the engine's worker processes keep the interpreter alive
            lm.model.llm_engine.engine_core.shutdown()

    best_wall = {k: min(v) for k, v in walls.items()}
    best_cpu = {k: min(v) for k, v in cpus.items()}
    result = {
        "backend": args.backend,
        "docs": len(rows),
        "prompts": source,
        "repeats": args.repeats,
        "engine": engine,
        "wall_s": walls,
        "cpu_s": cpus,
        "median_wall_s": {k: statistics.median(v) for k, v in walls.items()},
        "generated_tokens": tokens,
        "tokens_per_s_best_wall": {k: tokens[k] / best_wall[k] for k in best_wall},
        "throughput_ratio_rtc_vs_baseline_wall": best_wall["baseline"] / best_wall["rtc"],
        "throughput_ratio_rtc_vs_baseline_cpu": best_cpu["baseline"] / best_cpu["rtc"],
        # Fixed per-run bookkeeping of the extra metrics (this process), per document.
        "extra_cpu_ms_per_doc": 1000 * (best_cpu["rtc"] - best_cpu["baseline"]) / len(rows),
        # Noise-free bound on the slowdown: the extra parsing as a share of the baseline's run.
        "parse_s_all_docs": (parse_s := _parse_seconds(responses)),
        "parse_share_of_baseline_wall": parse_s / best_wall["baseline"],
        "metrics": metrics,
    }
    if tokens["rtc"] != tokens["baseline"]:
        raise SystemExit(f"the two tasks generated different outputs ({tokens}); the comparison is void")
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
