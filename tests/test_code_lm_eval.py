"""The process_results hook inside a real lm-eval evaluation (scripted generations, no model).

Independent of the rtc harness classes: a plain YAML task whose ``process_results`` is
:func:`rtc_metrics.code.process_results`, run through ``lm_eval.simple_evaluate``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtc_metrics.code import UnsafeCodeNotConfirmed, process_results
from rtc_metrics.code.optin import OPT_IN_ENV

FIXTURES = Path(__file__).parent / "fixtures"

YAML = """task: rtc_code_probe
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: ""
unsafe_code: true
process_results: !function rtc_metrics.code.metrics.process_results
metric_list:
  - metric: pass@1
    aggregation: mean
    higher_is_better: true
generation_kwargs:
  until: []
  max_gen_toks: 64
"""


def _records():
    return [json.loads(line) for line in (FIXTURES / "mbppplus_sample.jsonl").read_text().splitlines()]


@pytest.fixture
def scripted_run(tmp_path, monkeypatch):
    monkeypatch.delenv(OPT_IN_ENV, raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    # The MBPP+ fixture has 'text' instead of 'prompt' in one record; lm-eval needs one schema.
    records = [dict(r, prompt=r.get("prompt") or r["text"]) for r in _records()]
    for r in records:
        r.pop("text", None)
        r.setdefault("test", None)
        r.setdefault("source_file", "")
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "task.yaml").write_text(YAML.format(data=data))
    # Correct, wrong, correct, and no code at all: pass@1 = 2/4.
    answers = {
        2: "```python\n" + records[0]["code"] + "\n```",
        3: "```python\ndef is_composite(n):\n    return n % 2 == 0\n```",
        4: "Done.\n```python\nimport heapq\ndef largest_n(nums, n):\n    return heapq.nlargest(n, nums)\n```",
        17: "I am not sure.",
    }

    class Scripted(LM):
        def generate_until(self, requests):
            return [answers[req.doc["task_id"]] for req in requests]

        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

    def run(confirm: bool):
        return lm_eval.simple_evaluate(
            model=Scripted(),
            tasks=["rtc_code_probe"],
            task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
            confirm_run_unsafe_code=confirm,
            bootstrap_iters=0,
        )

    return run


def test_lm_eval_run_scores_scripted_generations_exactly(scripted_run):
    results = scripted_run(True)["results"]["rtc_code_probe"]
    assert results["pass@1,none"] == pytest.approx(0.5)


def test_lm_eval_without_the_flag_refuses_and_direct_calls_need_the_opt_in(scripted_run):
    with pytest.raises(ValueError, match="confirm_run_unsafe_code"):
        scripted_run(False)
    assert OPT_IN_ENV not in os.environ
    with pytest.raises(UnsafeCodeNotConfirmed, match="--confirm_run_unsafe_code"):
        process_results(_records()[0], ["```python\ndef shared_items(a, b):\n    return ()\n```"])


def test_process_results_accepts_lm_eval_result_shapes(monkeypatch):
    monkeypatch.setenv(OPT_IN_ENV, "1")
    record = _records()[3]
    good, bad = "def square_perimeter(a):\n    return 4 * a", "def square_perimeter(a):\n    return a"
    assert process_results(record, [good]) == {"pass@1": 1.0}
    # A filter that keeps all repeats hands over one list per instance.
    assert process_results(record, [[good, bad, bad, None]]) == {"pass@1": 0.25, "pass@4": 1.0}
    assert process_results(record, [bad, bad]) == {"pass@1": 0.0, "pass@2": 0.0}
