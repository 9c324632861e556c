"""Evaluate a saved model with real lm-eval on the rtc_toy_arithmetic task, saving files as the CLI does."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["TASK", "evaluate_model", "headline_metrics"]

TASK = "rtc_toy_arithmetic"

#: summary.json keys and the lm-eval result keys they come from.
HEADLINE = {
    "pass@1": "exact_match,none",
    "vr": "vr,none",
    "er": "er,none",
    "tr": "tr,none",
    "mr": "mr,none",
    "rpass@1": "rpass@1,none",
}


def evaluate_model(
    model_dir: str | Path,
    output_path: str | Path,
    *,
    n_problems: int = 200,
    batch_size: int = 64,
    device: str = "cpu",
    dtype: str = "float32",
    max_gen_toks: int | None = None,
) -> dict[str, Any]:
    """Run ``lm_eval.simple_evaluate`` with the hf backend and the chat template applied.

    The format is detected from the model's chat template (as ``lm_eval`` runs would); the
    results and ``--log_samples`` files are written under ``output_path`` in lm-eval's own
    layout (``<output_path>/<model>/results_<date>.json``), which ``rtc compare`` reads.
    Returns lm-eval's results dict.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    import rtc_tasks

    model_dir = str(Path(model_dir).resolve())
    metadata = {"pretrained": model_dir, "rtc_toy_n": n_problems}
    task_manager = TaskManager(
        include_path=str(Path(rtc_tasks.__file__).parent), include_defaults=False, metadata=metadata
    )
    tracker = EvaluationTracker(output_path=str(output_path))
    # The demo prints its own progress; lm-eval's per-run notices would bury it.
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": model_dir, "dtype": dtype, "device": device},
        tasks=[TASK],
        task_manager=task_manager,
        batch_size=batch_size,
        apply_chat_template=True,
        log_samples=True,
        evaluation_tracker=tracker,
        bootstrap_iters=0,
        gen_kwargs={"max_gen_toks": max_gen_toks} if max_gen_toks else None,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    tracker.save_results_samples(task_name=TASK, samples=samples[TASK])
    return results


def headline_metrics(results: dict[str, Any]) -> dict[str, float | None]:
    """``pass@1``, ``vr``, ``er``, ``tr``, ``mr``, ``rpass@1`` of the task, as lm-eval reported them."""
    row = results["results"][TASK]
    out: dict[str, float | None] = {}
    for key, source in HEADLINE.items():
        value = row.get(source)
        out[key] = None if value is None or (isinstance(value, float) and value != value) else float(value)
    return out


def load_results_file(path: str | Path) -> dict[str, Any]:
    """Read a saved lm-eval results JSON (lm-eval writes bare NaN, which json accepts)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
