"""End-to-end: real lm_eval (CLI and simple_evaluate) with a tiny deterministic model on CPU.

The model's greedy output is fixed by the prompt's last token (see harness_support), so
every expected structure is known. Each run's reported metrics are checked against an
independent recount from its logged samples, and `rtc score` must reproduce them exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from harness_support import (
    PREFIXED_TEMPLATE,
    PROBE_TASK_YAML,
    build_tiny_model,
    recount,
    write_jsonl,
)

from rtc_metrics.lmeval_logs import rescore

pytestmark = pytest.mark.slow

LM_EVAL = [sys.executable, "-m", "lm_eval"]  # the lm_eval console script, wherever it is installed
RTC = [sys.executable, "-m", "rtc_metrics"]  # the rtc console script
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    return {
        "root": root,
        "plain": build_tiny_model(root / "plain", special_tags=False),
        "prefixed": build_tiny_model(root / "prefixed", special_tags=False, chat_template=PREFIXED_TEMPLATE),
        "special": build_tiny_model(root / "special", special_tags=True),
        # Study-format GSM8K records: the model always answers 42.
        "gsm_study": write_jsonl(
            root / "gsm_study.jsonl",
            [{"prompt": f"Problem {i}", "answer": "42" if i % 2 else "7"} for i in range(4)],
        ),
        # Hub-format GSM8K records (what the built-in gsm8k tasks read).
        "gsm_hub": write_jsonl(
            root / "gsm_hub.jsonl",
            [{"question": f"Problem {i}", "answer": f"work\n#### {42 if i != 1 else 5}"} for i in range(3)],
        ),
        "bbh": write_jsonl(
            root / "bbh.jsonl", [{"input": f"x {i}", "target": "42" if i else "True"} for i in range(3)]
        ),
    }


def _results_and_samples(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    results_files = sorted(out.rglob("results_*.json"))
    assert len(results_files) == 1, results_files
    results = json.loads(results_files[0].read_text())
    samples: dict[str, list[dict]] = {}
    for path in out.rglob("samples_*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            task = path.name[len("samples_") :].rsplit("_", 1)[0]
            samples.setdefault(task, []).append(record)
    return results, samples


def _check_recount_and_rescore(out: Path, fmt: str) -> dict:
    """Reported metrics == recount from the logged samples == `rtc score` (exactly)."""
    results, samples = _results_and_samples(out)
    rescored = rescore(out)["runs"][0]["tasks"]
    for task, lines in samples.items():
        reported = results["results"][task]
        metric = "exact_match"
        for filter_key in sorted({line["filter"] for line in lines}):
            mine = [line for line in lines if line["filter"] == filter_key]
            expected = recount(mine, fmt, metric)
            for key, value in expected.items():
                assert reported[f"{key},{filter_key}"] == pytest.approx(value, abs=1e-12), (task, key)
            redo = rescored[task]["filters"][filter_key]
            for key in ("vr", "er", "tr", "mr", "rpass@1"):
                assert redo[key] == reported[f"{key},{filter_key}"], (task, filter_key, key)
            assert redo["pass@1"] == reported[f"{metric},{filter_key}"]
            assert redo["n"] == reported["sample_len"]
    return results


def test_cli_lm_eval_non_prefixed_rtc_gsm8k_and_probe(work, tmp_path):
    """Plain `lm_eval` with --include_path "$(rtc tasks-path)": non-prefixed qwen3 format."""
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    data = write_jsonl(
        probe_dir / "probe.jsonl",
        [
            {"prompt": "Q one", "answer": "42"},  # valid, correct
            {"prompt": "Q two", "answer": "7"},  # valid, wrong
            {"prompt": "Q beta", "answer": "42"},  # empty
            {"prompt": "Q gamma", "answer": "42"},  # truncated
            {"prompt": "Q delta", "answer": "42"},  # missing, correct
        ],
    )
    probe = probe_dir / "rtc_probe.yaml"
    probe.write_text(PROBE_TASK_YAML.format(data=data))
    tasks_path = subprocess.run(
        [*RTC, "tasks-path"], capture_output=True, text=True, check=True, env=ENV
    ).stdout.strip()
    out = tmp_path / "out"
    meta = {"rtc_format": "qwen3", "rtc_data_files": {"rtc_gsm8k": str(work["gsm_study"])}}
    proc = subprocess.run(
        [
            *LM_EVAL,
            "--model",
            "hf",
            "--model_args",
            f"pretrained={work['plain']}",
            "--include_path",
            tasks_path,
            "--tasks",
            f"rtc_gsm8k,{probe}",
            "--metadata",
            json.dumps(meta),
            "--gen_kwargs",
            "max_gen_toks=24",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _check_recount_and_rescore(out, "qwen3")
    probe_r = results["results"]["rtc_probe"]
    assert (probe_r["vr,none"], probe_r["er,none"], probe_r["tr,none"], probe_r["mr,none"]) == (
        0.4,
        0.2,
        0.2,
        0.2,
    )
    assert probe_r["rpass@1,none"] == 0.5 and probe_r["exact_match,none"] == 0.6
    gsm = results["results"]["rtc_gsm8k"]
    assert gsm["vr,none"] == 1.0 and gsm["exact_match,none"] == 0.5 and gsm["rpass@1,none"] == 0.5
    # The table lm_eval printed shows the contract's metric names.
    for key in ("vr", "er", "tr", "mr", "rpass@1", "exact_match"):
        assert f"|{key} " in proc.stdout or f"|{key}|" in proc.stdout.replace(" ", ""), key


def test_rtc_eval_special_tokens_and_wrapped_builtins(work, tmp_path):
    """`rtc eval --model rtc-hf` keeps special-token delimiters; rtc:NAME wraps built-in tasks."""
    out = tmp_path / "out"
    wrapped = ["gsm8k", "gsm8k_cot_zeroshot", "bbh_cot_zeroshot_boolean_expressions"]
    meta = {
        "rtc_format": "qwen3",
        "rtc_data_files": {
            "rtc:gsm8k": str(work["gsm_hub"]),
            "rtc:gsm8k_cot_zeroshot": str(work["gsm_hub"]),
            "rtc:bbh_cot_zeroshot_boolean_expressions": str(work["bbh"]),
        },
    }
    proc = subprocess.run(
        [
            *RTC,
            "eval",
            "--model",
            "rtc-hf",
            "--model_args",
            f"pretrained={work['special']}",
            "--tasks",
            ",".join(f"rtc:{t}" for t in wrapped),
            "--num_fewshot",
            "0",
            "--metadata",
            json.dumps(meta),
            "--gen_kwargs",
            "max_gen_toks=24",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _check_recount_and_rescore(out, "qwen3")
    for name in wrapped:
        r = results["results"][f"rtc:{name}"]
        assert r["vr,flexible-extract"] == 1.0, name  # <think>/</think> survived decoding
        assert results["configs"][f"rtc:{name}"]["generation_kwargs"]["until"] == []
    # flexible-extract reads the answer segment "The answer is 42": gold 42, 5, 42.
    assert results["results"]["rtc:gsm8k"]["exact_match,flexible-extract"] == pytest.approx(2 / 3)
    assert results["results"]["rtc:gsm8k"]["rpass@1,flexible-extract"] == pytest.approx(2 / 3)
    assert (
        results["results"]["rtc:bbh_cot_zeroshot_boolean_expressions"]["exact_match,flexible-extract"] == 0.0
    )


def test_simple_evaluate_prefixed_template_detected_from_the_model(work):
    """Chat template pre-opens the trace; the format (qwen3, prefixed) comes from the tokenizer."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import rtc_tasks

    tm = TaskManager(
        include_path=rtc_tasks.tasks_path(),
        include_defaults=False,
        metadata={"pretrained": str(work["prefixed"]), "rtc_data_files": str(work["gsm_study"])},
    )
    res = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(work["prefixed"]), "device": "cpu"},
        tasks=["rtc_gsm8k"],
        task_manager=tm,
        apply_chat_template=True,
        gen_kwargs={"max_gen_toks": 24},
        bootstrap_iters=0,
        log_samples=True,
    )
    samples = res["samples"]["rtc_gsm8k"]
    assert samples[0]["arguments"][0][0].endswith("<think>\n")
    assert samples[0]["resps"][0][0] == "Let me think</think> The answer is 42"  # no opening tag
    r = res["results"]["rtc_gsm8k"]
    assert r["vr,none"] == 1.0 and r["rpass@1,none"] == 0.5
    expected = recount(samples, "qwen3")
    for key, value in expected.items():
        assert r[f"{key},none"] == pytest.approx(value), key
    assert res["configs"]["rtc_gsm8k"]["metadata"]["rtc_resolved_format"]["name"] == "qwen3"


def test_hf_backend_that_strips_special_tokens_fails_fast(work):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import rtc_tasks
    from rtc_tasks.settings import RTCSettingsError

    tm = TaskManager(
        include_path=rtc_tasks.tasks_path(),
        include_defaults=False,
        metadata={
            "pretrained": str(work["special"]),
            "rtc_format": "qwen3",
            "rtc_data_files": str(work["gsm_study"]),
        },
    )
    with pytest.raises(RTCSettingsError, match="rtc-hf"):
        simple_evaluate(
            model="hf",
            model_args={"pretrained": str(work["special"]), "device": "cpu"},
            tasks=["rtc_gsm8k"],
            task_manager=tm,
            gen_kwargs={"max_gen_toks": 24},
            bootstrap_iters=0,
        )
