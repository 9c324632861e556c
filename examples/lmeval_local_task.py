"""A tiny generate_until lm-eval task written into a folder, for backend tests, benchmarks and gpu_check.

It stands in for the rtc_* tasks until they land: ``until: []``, a large ``max_gen_toks``, and a
``process_results`` that classifies each raw response with ``rtc_metrics.parse_trace``, so a run's
aggregated metrics can be checked against a recount from the logged samples.
"""

from __future__ import annotations

import json
from pathlib import Path

from rtc_metrics import parse_trace

STATUSES = ("valid", "empty", "truncated", "missing")

_UTILS = '''
from rtc_metrics import parse_trace


def process_results(doc, results):
    trace = parse_trace(results[0], {fmt!r})
    out = {{f"rtc_{{s}}": float(trace.status.value == s) for s in {statuses!r}}}
    # Correct when the answer segment's last word is the gold answer ("The answer is 42").
    out["acc"] = float(trace.answer.split()[-1:] == [doc["answer"]])
    return out


def process_results_plain(doc, results):
    # The same task without structural metrics: the last word of the whole output.
    return {{"acc": float(results[0].split()[-1:] == [doc["answer"]])}}
'''

_YAML = """task: {name}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_gen_toks}
  do_sample: false
  temperature: 0.0
process_results: !function utils.{process_results}
metric_list:
{metrics}
metadata:
  version: 1
"""


def write_task(
    folder: Path,
    name: str,
    rows: list[dict],
    fmt: str = "qwen3",
    max_gen_toks: int = 512,
    structural: bool = True,
) -> Path:
    """Write data, utils.py and ``<name>.yaml`` into ``folder``; return the YAML path.

    ``structural=False`` gives the same task (prompts, generation settings) scoring only ``acc``
    on the raw output, the baseline for throughput comparisons.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "utils.py").write_text(_UTILS.format(fmt=fmt, statuses=STATUSES))
    metrics = "\n".join(
        f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true"
        for m in [*(f"rtc_{s}" for s in STATUSES if structural), "acc"]
    )
    yaml = folder / f"{name}.yaml"
    process_results = "process_results" if structural else "process_results_plain"
    yaml.write_text(
        _YAML.format(
            name=name, data=data, max_gen_toks=max_gen_toks, metrics=metrics, process_results=process_results
        )
    )
    return yaml


def recount(responses: list[str], fmt: str = "qwen3") -> dict[str, float]:
    """Structural rates recomputed from raw responses, keyed like the task's metrics."""
    statuses = [parse_trace(r, fmt).status.value for r in responses]
    return {f"rtc_{s}": statuses.count(s) / len(statuses) for s in STATUSES}


def read_samples(output_dir: Path, task: str) -> list[dict]:
    """The logged samples of ``task`` under an lm-eval ``--output_path`` folder."""
    files = sorted(output_dir.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, f"expected one samples file for {task} under {output_dir}, found {files}"
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def read_results(output_dir: Path) -> dict:
    """The results JSON under an lm-eval ``--output_path`` folder."""
    files = sorted(output_dir.rglob("results_*.json"))
    assert len(files) == 1, f"expected one results file under {output_dir}, found {files}"
    return json.loads(files[0].read_text())
