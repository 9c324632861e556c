"""`rtc score` on lm-eval --log_samples output (synthetic files in lm-eval's exact layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtc_metrics.cli import main
from rtc_metrics.io import InputError
from rtc_metrics.lmeval_logs import find_runs, is_lmeval_output, rescore

DATE = "2026-11-26T14-39-09.849948"
REPO = Path(__file__).resolve().parents[1]


def _line(doc_id, resp, prompt, filter_key, correct, metric="exact_match"):
    return {
        "doc_id": doc_id,
        "doc": {"q": doc_id},
        "target": "42",
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": []}}},
        "resps": [[resp]],
        "filtered_resps": ["x"],
        "filter": filter_key,
        "metrics": [metric, "vr"],
        metric: correct,
    }


def _write_run(folder: Path, lines: list[dict], task="rtc_t", config_meta=None, results=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / f"samples_{task}_{DATE}.jsonl"
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
    if results:
        meta = {"rtc_resolved_format": {"name": "qwen3", "open": "<think>", "close": "</think>"}}
        data = {
            "results": {task: {"sample_len": 3}},
            "configs": {task: {"metadata": config_meta if config_meta is not None else meta}},
            "group_subtasks": {task: []},
        }
        (folder / f"results_{DATE}.json").write_text(json.dumps(data))
    return samples


LINES = [
    # doc 0: valid; strict says wrong, flexible right
    _line(0, "<think>a</think> 42", "Q", "strict-match", 0.0),
    _line(0, "<think>a</think> 42", "Q", "flexible-extract", 1.0),
    # doc 1: pre-opened by its prompt, closes: valid, right under both
    _line(1, "b</think> 42", "Q<think>\n", "strict-match", 1.0),
    _line(1, "b</think> 42", "Q<think>\n", "flexible-extract", 1.0),
    # doc 2: missing
    _line(2, "42", "Q", "strict-match", 1.0),
    _line(2, "42", "Q", "flexible-extract", 1.0),
]


def test_one_structural_result_per_doc_and_correctness_per_filter(tmp_path):
    _write_run(tmp_path / "model", LINES)
    run = rescore(tmp_path)["runs"][0]
    task = run["tasks"]["rtc_t"]
    assert task["n_docs"] == 3 and task["format"] == "qwen3" and task["answer_metric"] == "exact_match"
    strict, flexible = task["filters"]["strict-match"], task["filters"]["flexible-extract"]
    for summary in (strict, flexible):
        assert (
            summary["n"] == 3
            and summary["vr"] == pytest.approx(2 / 3)
            and summary["mr"] == pytest.approx(1 / 3)
        )
    assert strict["rpass@1"] == 0.5 and flexible["rpass@1"] == 1.0
    assert strict["pass@1"] == pytest.approx(2 / 3)
    assert strict["rpass@1_ci"] is not None  # the interval lm-eval cannot give


def test_results_json_or_samples_file_as_input(tmp_path):
    samples = _write_run(tmp_path, LINES)
    by_results = rescore(tmp_path / f"results_{DATE}.json")
    by_samples = rescore(samples)
    assert by_results["runs"][0]["tasks"] == by_samples["runs"][0]["tasks"]
    assert is_lmeval_output(samples) and is_lmeval_output(tmp_path)
    assert not is_lmeval_output(REPO / "examples" / "qwen3_outputs.jsonl")


def test_format_needed_when_not_recorded(tmp_path):
    samples = _write_run(tmp_path, LINES, results=False)
    with pytest.raises(InputError, match="--format"):
        rescore(samples)
    from rtc_metrics.formats import get_format

    assert rescore(samples, get_format("qwen3"))["runs"][0]["tasks"]["rtc_t"]["n_docs"] == 3


def test_corrupt_partial_and_doubled_files_name_file_and_line(tmp_path):
    samples = _write_run(tmp_path / "a", LINES)
    samples.write_text(samples.read_text() + '{"doc_id": 3, "resps": [["x"')  # cut off mid-write
    with pytest.raises(InputError, match=rf"{samples.name}:7: not valid JSON.*cut off"):
        rescore(samples)
    partial = _write_run(tmp_path / "b", LINES[:-1])
    with pytest.raises(InputError, match="fewer docs"):
        rescore(partial)
    doubled = _write_run(tmp_path / "c", LINES + LINES)
    with pytest.raises(InputError, match=rf"{doubled.name}:7: doc 0 appears twice"):
        rescore(doubled)
    with pytest.raises(InputError, match="no such file"):
        find_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no lm-eval samples"):
        find_runs(tmp_path / "empty")


def test_rtc_score_cli_on_lmeval_output_and_plain_jsonl(tmp_path, capsys):
    _write_run(tmp_path, LINES)
    assert main(["score", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"][0]["tasks"]["rtc_t"]["filters"]["flexible-extract"]["rpass@1"] == 1.0
    # Plain JSONL scoring still needs and uses --format.
    plain = REPO / "examples" / "qwen3_outputs.jsonl"
    assert main(["score", str(plain), "--format", "qwen3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] > 0
    assert main(["score", str(plain)]) == 2
    assert "--format" in capsys.readouterr().err
