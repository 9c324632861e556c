"""Real lm-eval 0.4.13 output files for the ``rtc compare`` tests.

``run_lmeval`` runs ``lm_eval.simple_evaluate`` with a scripted ``LM`` on tiny local YAML
tasks and saves the results and samples exactly as the ``lm_eval`` CLI does (through an
``EvaluationTracker``). The task's ``process_results`` computes ``vr/er/tr/mr/rpass@1``
with ``rtc_metrics.parse_trace`` from the scripted output and the rendered prompt, so the
files have the shape the harness writes: a ``(valid, correct)`` tuple aggregated as a
ratio for ``rpass@1`` (stderr ``"N/A"``, NaN when no trace is valid), two filters, one
sample line per (doc, filter).

``recount`` is the tests' independent oracle: it reads a samples file line by line and
counts structure once per document.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtc_metrics import get_format, parse_trace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

_UTILS = """
import math
from rtc_metrics import parse_trace


def process_results(doc, results):
    # The scripted LM returns doc["scripted"] verbatim, so this is the raw generation.
    trace = parse_trace(doc["scripted"], doc["fmt"], prompt=doc["prompt"])
    status = trace.status.value
    correct = float(results[0].strip() == str(doc["answer"]))
    valid = float(status == "valid")
    return {
        "exact_match": correct,
        "vr": valid,
        "er": float(status == "empty"),
        "tr": float(status == "truncated"),
        "mr": float(status == "missing"),
        "rpass@1": (valid, correct),
    }


def ratio(items):
    valid = sum(v for v, _ in items)
    return sum(c for v, c in items if v) / valid if valid else math.nan
"""

_YAML = """task: {task}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: 64
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "The answer is (-?[0-9]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9]+)"
      - function: take_first
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: vr
    aggregation: mean
    higher_is_better: true
  - metric: er
    aggregation: mean
    higher_is_better: false
  - metric: tr
    aggregation: mean
    higher_is_better: false
  - metric: mr
    aggregation: mean
    higher_is_better: false
  - metric: rpass@1
    aggregation: !function utils.ratio
    higher_is_better: true
metadata:
  version: 1.0
  rtc_format: {fmt}
"""


@dataclass(frozen=True)
class Doc:
    """One scripted document: what the prompt ends with and what the model writes."""

    prompt: str
    output: str
    answer: str


def make_docs(fmt_name: str, kinds: Sequence[str], prefixed_every: int = 0) -> list[Doc]:
    """Documents whose outputs have the given structural ``kinds``.

    Kinds: ``valid`` (right answer), ``valid_wrong``, ``valid_flex`` (right only for the
    flexible filter), ``empty``, ``truncated``, ``missing`` (right answer, no trace).
    With ``prefixed_every=k`` every k-th prompt pre-opens the trace, and its output then
    starts inside the trace (no opening delimiter), as under a pre-filling chat template.
    """
    fmt = get_format(fmt_name)
    docs = []
    for i, kind in enumerate(kinds):
        answer = str(10 + i)
        pre = bool(prefixed_every) and i % prefixed_every == 0
        prompt = f"Question {i}: what is {answer}?\nAnswer:" + (f" {fmt.open}\n" if pre else " ")
        opener = "" if pre else fmt.open
        body = {
            "valid": f"{opener}add step {i}\n\nso it is {answer}{fmt.close} The answer is {answer}",
            "valid_wrong": f"{opener}guess{fmt.close} The answer is {int(answer) + 1}",
            "valid_flex": f"{opener}think{fmt.close} It is {answer}",
            "empty": f"{opener} \n{fmt.close} The answer is {answer}",
            "truncated": f"{opener}step 1 of many, {answer} maybe",
            "missing": f"The answer is {answer}",
        }[kind]
        docs.append(Doc(prompt, body, answer))
    return docs


def run_lmeval(
    workdir: Path,
    out: Path,
    model_name: str,
    tasks: dict[str, tuple[str, list[Doc]]],
) -> Path:
    """Run lm-eval on ``tasks`` ({name: (format, docs)}) and save as the CLI does.

    Returns the folder holding ``results_<date>.json`` and ``samples_<task>_<date>.jsonl``.
    """
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    class ScriptedLM(LM):
        def generate_until(self, requests):
            return [req.doc["scripted"] for req in requests]

        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

    taskdir = workdir / f"tasks_{len(list(workdir.glob('tasks_*')))}"
    taskdir.mkdir(parents=True)
    (taskdir / "utils.py").write_text(_UTILS)
    for task, (fmt, docs) in tasks.items():
        data = taskdir / f"{task}.jsonl"
        data.write_text(
            "".join(
                json.dumps({"prompt": d.prompt, "scripted": d.output, "answer": d.answer, "fmt": fmt}) + "\n"
                for d in docs
            )
        )
        (taskdir / f"{task}.yaml").write_text(_YAML.format(task=task, data=data, fmt=fmt))

    tracker = EvaluationTracker(output_path=str(out))
    results = simple_evaluate(
        model=ScriptedLM(),
        model_args=f"pretrained={model_name}",
        tasks=list(tasks),
        task_manager=TaskManager(include_path=str(taskdir), include_defaults=False),
        bootstrap_iters=1000,  # closed-form stderr for means; no metric here is bootstrapped
        evaluation_tracker=tracker,
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return out / tracker.general_config_tracker.model_name_sanitized


@dataclass
class Recount:
    """Exact counts from one samples file, for one filter's correctness."""

    n: int
    valid: int
    empty: int
    truncated: int
    missing: int
    correct: int
    valid_correct: int


def recount(samples_path: Path, fmt_name: str, filter_name: str, metric: str = "exact_match") -> Recount:
    """Count structure once per doc (from the logged raw output and prompt) and
    correctness from the ``filter_name`` line's ``metric``."""
    structure: dict[int, str] = {}
    correct: dict[int, float] = {}
    for line in samples_path.read_text().splitlines():
        rec = json.loads(line)
        raw = rec["resps"][0][0]
        prompt = rec["arguments"]["gen_args_0"]["arg_0"]
        status = parse_trace(raw, fmt_name, prompt=prompt).status.value
        assert structure.setdefault(rec["doc_id"], status) == status
        if rec["filter"] == filter_name:
            correct[rec["doc_id"]] = rec[metric]
    statuses = list(structure.values())
    return Recount(
        n=len(statuses),
        valid=statuses.count("valid"),
        empty=statuses.count("empty"),
        truncated=statuses.count("truncated"),
        missing=statuses.count("missing"),
        correct=int(sum(correct.values())),
        valid_correct=int(sum(c for d, c in correct.items() if structure[d] == "valid")),
    )


def mix(**counts: int) -> list[str]:
    """Output kinds interleaved, e.g. ``mix(valid=3, missing=1)``."""
    pools = {k: [k] * v for k, v in counts.items()}
    out: list[str] = []
    while any(pools.values()):
        for pool in pools.values():
            if pool:
                out.append(pool.pop())
    return out


#: The miniature study: model name -> {task: kinds}. Task "fx_gsm" uses qwen3; "fx_chem"
#: uses magistral with every second prompt pre-opening the trace.
STUDY = {
    "org/tiny-base": {
        "fx_gsm": mix(valid=15, valid_wrong=3, empty=1, missing=1),
        "fx_chem": mix(valid=14, valid_flex=2, truncated=2, missing=2),
    },
    "/runs/tiny-mask/checkpoint-10": {
        "fx_gsm": mix(valid=14, valid_wrong=3, empty=1, truncated=1, missing=1),
        "fx_chem": mix(valid=13, valid_wrong=2, truncated=3, missing=2),
    },
    "/runs/tiny-mask/checkpoint-20": {
        "fx_gsm": mix(valid=13, valid_wrong=3, empty=2, truncated=1, missing=1),
        "fx_chem": mix(valid=12, valid_wrong=3, truncated=3, missing=2),
    },
    "/runs/tiny-bare/checkpoint-10": {
        "fx_gsm": mix(valid=8, valid_wrong=2, empty=6, missing=4),
        "fx_chem": mix(valid=6, valid_flex=1, truncated=3, missing=10),
    },
    "/runs/tiny-bare/checkpoint-20": {
        "fx_gsm": mix(valid=2, valid_wrong=2, empty=8, missing=8),
        "fx_chem": mix(missing=20),
    },
}
#: A rerun of the last checkpoint, written after the first one: it must win.
RERUN = (
    "/runs/tiny-bare/checkpoint-20",
    {"fx_gsm": mix(valid=3, valid_wrong=1, empty=8, missing=8), "fx_chem": mix(missing=19, truncated=1)},
)
FORMATS = {"fx_gsm": ("qwen3", 0), "fx_chem": ("magistral", 2)}


def build_study(workdir: Path) -> Path:
    """Run every model of STUDY (and the rerun) through lm-eval; returns the output folder."""
    out = workdir / "out"
    for model, tasks in [*STUDY.items(), RERUN]:
        run_lmeval(
            workdir,
            out,
            model,
            {
                t: (FORMATS[t][0], make_docs(FORMATS[t][0], kinds, FORMATS[t][1]))
                for t, kinds in tasks.items()
            },
        )
    return out
