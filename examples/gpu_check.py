"""GPU check: real lm-eval generations on CUDA in bf16, self-checked (run by examples/gpu_check.sh).

    python examples/gpu_check.py [--out DIR] [--docs 512] [--batch-size 64] [--skip-vllm]

``--device cpu --dtype float32`` runs the same checks without a GPU (a dry run of the script
itself; tests/test_gpu_check.py does that).

Offline: builds the tiny Qwen3 model (examples/tiny_qwen3.py), whose greedy output is known for
every prompt, writes a local generate_until task (examples/lmeval_local_task.py), and runs it with
lm-eval's ``hf`` backend (``device=cuda``, ``dtype=bfloat16``, batched) and, when vLLM is
installed, its ``vllm`` backend (bf16). For each backend it checks that the weights really sit on
the GPU in bf16, that every logged raw response is the expected text (a batching, padding or dtype
bug changes it), and that the structural rates lm-eval reports equal a recount from the logged
samples and the known truth; then it reports generated tokens/s. Exit status 0 only when every
check passed; DIR/gpu_check.json holds the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from examples.lmeval_local_task import recount, write_task  # noqa: E402
from examples.tiny_qwen3 import ANSWER, VALID_TARGET, build  # noqa: E402
from rtc_metrics.io import write_json  # noqa: E402

MISSING_TARGET = VALID_TARGET.split("</think>")[1]


def _rows(n: int) -> list[dict]:
    # Two of every three prompts end in the trigger that makes the model think: VR = 2/3 exactly.
    trigger = ["skip", "go", "go"]
    questions = [f"Question {i}: what is {i} times {i + 1}? {trigger[i % 3]}" for i in range(n)]
    return [{"question": q, "answer": ANSWER} for q in questions]


def _check_run(label: str, out: dict, task: str, rows: list[dict], failures: list[str]) -> dict:
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    raws = [s["resps"][0][0] for s in samples]
    wrong = [
        (s["doc_id"], raw)
        for s, raw in zip(samples, raws, strict=True)
        if raw != (MISSING_TARGET if s["doc"]["question"].endswith("skip") else VALID_TARGET)
    ]
    if len(samples) != len(rows):
        failures.append(f"{label}: {len(samples)} samples logged for {len(rows)} docs")
    if wrong:
        failures.append(f"{label}: {len(wrong)} responses differ from the known output, e.g. {wrong[:2]}")
    reported = {k.split(",")[0]: v for k, v in out["results"][task].items() if k.endswith(",none")}
    counted = recount(raws)
    truth = {"rtc_valid": sum(not r["question"].endswith("skip") for r in rows) / len(rows)}
    truth["rtc_missing"] = 1 - truth["rtc_valid"]
    for key, value in counted.items():
        if abs(reported[key] - value) > 1e-12:
            failures.append(f"{label}: reported {key}={reported[key]} but the logged samples give {value}")
    for key, value in truth.items():
        if abs(counted[key] - value) > 1e-12:
            failures.append(f"{label}: {key}={counted[key]}, expected {value}")
    return {"reported": reported, "recounted": counted}


def _evaluate(lm, task_yaml: Path) -> tuple[dict, float]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[str(task_yaml)], task_manager=TaskManager(include_defaults=False),
        bootstrap_iters=0, log_samples=True,
    )  # fmt: skip
    return out, time.perf_counter() - start


def run_hf(model: Path, task_yaml: Path, task: str, rows: list[dict], opts: argparse.Namespace,
           failures: list[str]) -> dict:  # fmt: skip
    import torch
    from lm_eval.api.registry import get_model

    lm = get_model("hf").create_from_arg_obj(
        {"pretrained": str(model), "device": opts.device, "dtype": opts.dtype, "batch_size": opts.batch_size}
    )
    param = next(lm.model.parameters())
    if param.device.type != opts.device or param.dtype != getattr(torch, opts.dtype):
        failures.append(f"hf: weights on {param.device} in {param.dtype}; want {opts.device} {opts.dtype}")
    _evaluate(lm, task_yaml)  # warm-up (CUDA context, kernels); the timed run follows
    out, wall = _evaluate(lm, task_yaml)
    result = _check_run("hf", out, task, rows, failures)
    tokens = sum(len(lm.tok_encode(s["resps"][0][0])) for s in out["samples"][task])
    result.update(wall_s=wall, generated_tokens=tokens, tokens_per_s=tokens / wall)
    result.update(device=str(param.device), dtype=str(param.dtype), batch_size=opts.batch_size)
    if opts.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name(0)
        del lm
        torch.cuda.empty_cache()  # leave the GPU memory to vLLM
    return result


def run_vllm(model: Path, task_yaml: Path, task: str, rows: list[dict], opts: argparse.Namespace,
             failures: list[str]) -> dict:  # fmt: skip
    from lm_eval.api.registry import get_model

    args = {"pretrained": str(model), "dtype": opts.dtype, "max_model_len": 1024, "batch_size": "auto"}
    if opts.device == "cuda":
        args["gpu_memory_utilization"] = 0.4
    lm = get_model("vllm").create_from_arg_obj(args)
    try:
        dtype = str(lm.model.llm_engine.model_config.dtype)
        if dtype != f"torch.{opts.dtype}":
            failures.append(f"vllm: engine dtype {dtype}, expected torch.{opts.dtype}")
        _evaluate(lm, task_yaml)
        out, wall = _evaluate(lm, task_yaml)
        result = _check_run("vllm", out, task, rows, failures)
        tokens = sum(len(lm.tok_encode(s["resps"][0][0])) for s in out["samples"][task])
        result.update(wall_s=wall, generated_tokens=tokens, tokens_per_s=tokens / wall, dtype=dtype)
    finally:
        lm.model.llm_engine.engine_core.shutdown()  # else its worker processes keep the script alive
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"))
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu for a dry run of the script without a GPU")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device; run this on the GPU machine.")
        return 2
    failures: list[str] = []
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "docs": args.docs,
                    "device": args.device, "dtype": args.dtype}  # fmt: skip
    rows = _rows(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        task = "gpu_check_task"
        task_yaml = write_task(tmp_path / "task", task, rows, max_gen_toks=64)
        # hf decodes with skip_special_tokens=True, so its model keeps <think> as ordinary tokens;
        # vLLM keeps special tokens, so it gets the special-token model.
        hf_model = build(tmp_path / "tiny_nonspecial", special=False)
        try:
            report["hf"] = run_hf(hf_model, task_yaml, task, rows, args, failures)
        except Exception as e:  # report and go on to vLLM: one summary with every failure
            failures.append(f"hf: {type(e).__name__}: {e}")
        if args.skip_vllm or find_spec("vllm") is None:
            report["vllm"] = "skipped (not installed)" if not args.skip_vllm else "skipped (--skip-vllm)"
        else:
            try:
                vllm_model = build(tmp_path / "tiny_special")
                report["vllm"] = run_vllm(vllm_model, task_yaml, task, rows, args, failures)
            except Exception as e:
                failures.append(f"vllm: {type(e).__name__}: {e}")
    report["failures"] = failures
    write_json(args.out / "gpu_check.json", report)
    print(json.dumps(report, indent=2, default=str))
    print("gpu_check: " + ("PASSED" if not failures else f"FAILED ({len(failures)} checks)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
