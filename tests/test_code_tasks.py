"""rtc_humaneval_plus / rtc_mbpp_plus / rtc_evalplus / rtc_paper inside real lm-eval runs.

Scripted generations (exact pass@1 and structure, recounted from the logged samples), the
opt-in, --predict_only, repeats (pass@k), and one CLI run with the tiny model on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from harness_support import build_tiny_model, recount, scripted_lm_class, write_jsonl
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

import rtc_tasks
from rtc_metrics.code.optin import OPT_IN_ENV
from rtc_metrics.io import InputError

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


HE = _records("humanevalplus_sample.jsonl")
MB = _records("mbppplus_sample.jsonl")


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def he_solution(i: int) -> str:
    return HE[i]["prompt"] + HE[i]["canonical_solution"]


# HumanEval+: valid+correct, valid+wrong, correct code only in the trace, truncated trace
# whose (correct) code never reached an answer: pass@1 1/4, vr 3/4, tr 1/4, rpass@1 1/3.
HE_SCRIPT = [
    f"<think>Track the running balance.</think>\n{fenced(he_solution(0))}",
    "<think>Easy.</think>\n```python\ndef median_abs_deviation(values):\n    return 0.0\n```",
    f"<think>Here it is:\n{fenced(he_solution(2))}\n</think>\nI wrote the solution above.",
    f"<think>Draft:\n{fenced(he_solution(3))}\nNow check it again",
]
# MBPP+: missing trace+correct, empty trace+correct, valid + raw (unfenced) correct code,
# valid+wrong: pass@1 3/4, vr 2/4, er 1/4, mr 1/4, rpass@1 1/2.
MB_SCRIPT = [
    fenced(MB[0]["code"]),
    f"<think> </think>\n{fenced(MB[1]['code'])}",
    f"<think>Use a heap.</think>\n{MB[2]['code']}",
    "<think>Perimeter.</think>\n```python\ndef square_perimeter(a):\n    return a * a\n```",
]


def scripted_file(folder: Path, name: str, records: list[dict], script: list) -> Path:
    return write_jsonl(folder / f"{name}.jsonl", [dict(r, scripted=s) for r, s in zip(records, script, strict=True)])


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.delenv(OPT_IN_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return {
        "rtc_humaneval_plus": str(scripted_file(tmp_path, "he", HE, HE_SCRIPT)),
        "rtc_mbpp_plus": str(scripted_file(tmp_path, "mb", MB, MB_SCRIPT)),
        # Their process_docs drop extra fields: the scripted text is looked up by prompt.
        "rtc_gsm8k": str(write_jsonl(tmp_path / "gsm.jsonl", [{"prompt": p, "answer": "42"} for p in ("p0", "p1")])),
        "rtc_chemistry": str(write_jsonl(tmp_path / "chem.jsonl", [{"prompt": CHEM, "answer": "B"}])),
    }


CHEM = "Q?\n\nA: x\nB: y"
BY_PROMPT = {"p0": "<think>x</think> The answer is 42", "p1": "The answer is 42", CHEM: "<think>y</think> B"}


class _DocLM(scripted_lm_class()):
    """The scripted LM, with the text of docs that cannot carry "scripted" looked up by prompt."""

    def generate_until(self, requests, disable_tqdm=False):
        for req in requests:
            if "scripted" not in req.doc:
                req.doc["scripted"] = BY_PROMPT[req.doc["prompt"]]
        return super().generate_until(requests, disable_tqdm)


def run(data: dict, tasks: list, include: list[str] | None = None, metadata: dict | None = None, **kwargs):
    tm = TaskManager(
        include_path=[rtc_tasks.tasks_path(), *(include or [])],
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "rtc_data_files": data, **(metadata or {})},
    )
    kwargs.setdefault("bootstrap_iters", 0)
    kwargs.setdefault("confirm_run_unsafe_code", True)
    return simple_evaluate(model=_DocLM(), tasks=tasks, task_manager=tm, log_samples=True, **kwargs)


def test_scripted_exact_pass_at_1_and_structure_recounted(data):
    res = run(data, ["rtc_paper"], metadata={"rtc_code_workers": 2})
    r = res["results"]
    he, mb = r["rtc_humaneval_plus"], r["rtc_mbpp_plus"]
    expected = {
        "rtc_humaneval_plus": {"pass@1": 1 / 4, "vr": 3 / 4, "er": 0, "tr": 1 / 4, "mr": 0, "rpass@1": 1 / 3},
        "rtc_mbpp_plus": {"pass@1": 3 / 4, "vr": 2 / 4, "er": 1 / 4, "tr": 0, "mr": 1 / 4, "rpass@1": 1 / 2},
    }
    for task, values in expected.items():
        for key, value in values.items():
            assert r[task][f"{key},none"] == pytest.approx(value, abs=1e-12), (task, key)
        # An independent recount from the logged raw generations agrees.
        recounted = recount(res["samples"][task], "qwen3", metric="pass@1")
        for key, value in recounted.items():
            assert r[task][f"{key},none"] == pytest.approx(value, abs=1e-12), (task, key)
    # Per doc: the code in the trace (doc 2) and the truncated trace (doc 3) fail.
    assert [s["pass@1"] for s in res["samples"]["rtc_humaneval_plus"]] == [1.0, 0.0, 0.0, 0.0]
    sample = res["samples"]["rtc_humaneval_plus"][2]
    assert sample["resps"] == [[HE_SCRIPT[2]]]  # logged raw
    assert sample["filtered_resps"] == [["I wrote the solution above."]]  # scored: the answer only
    assert res["samples"]["rtc_humaneval_plus"][3]["filtered_resps"] == [[""]]
    assert "pass@4" not in he and "exact_match,none" not in mb
    # Groups: rpass@1 pooled over valid generations, not a mean of task ratios.
    ev = r["rtc_evalplus"]
    assert ev["rpass@1,none"] == pytest.approx((1 + 1) / (3 + 2))  # not (1/3 + 1/2) / 2
    assert ev["pass@1,none"] == pytest.approx(4 / 8) and ev["vr,none"] == pytest.approx(5 / 8)
    paper = r["rtc_paper"]
    # valid∧correct: code 2, gsm8k 1, chemistry 1; valid: code 5, gsm8k 1, chemistry 1.
    assert paper["rpass@1,none"] == pytest.approx(4 / 7)
    assert paper["vr,none"] == pytest.approx(7 / 11)
    assert paper["pass@1,none"] == pytest.approx(4 / 8)  # the code members
    assert paper["exact_match,none"] == pytest.approx(3 / 3)  # chemistry + gsm8k
    assert res["configs"]["rtc_mbpp_plus"]["generation_kwargs"]["until"] == []
    json.dumps(r, allow_nan=False, default=str)


def test_scoring_is_one_parallel_batch_and_deterministic(data, monkeypatch):
    import rtc_tasks.code as code

    calls = []
    real = code.score_batch

    def spy(items, **kwargs):
        calls.append((len(items), kwargs.get("workers")))
        return real(items, **kwargs)

    monkeypatch.setattr(code, "score_batch", spy)
    first = run(data, ["rtc_mbpp_plus"], metadata={"rtc_code_workers": 3})["results"]["rtc_mbpp_plus"]
    again = run(data, ["rtc_mbpp_plus"], metadata={"rtc_code_workers": 1})["results"]["rtc_mbpp_plus"]
    assert calls == [(4, 3), (4, 1)]  # every doc in one call, with the requested workers
    assert first["pass@1,none"] == again["pass@1,none"] == pytest.approx(3 / 4)


def test_repeats_give_pass_at_k_and_the_sample_keeps_every_answer(data, tmp_path):
    he = Path(rtc_tasks.tasks_path()) / "rtc_humaneval_plus.yaml"
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "rep.yaml").write_text(f"include: {he}\ntask: rtc_he_rep\nrepeats: 3\n")
    good, bad = fenced(he_solution(0)), "```python\ndef dips_below_zero(changes):\n    return True\n```"
    script = [
        [f"<think>a</think>{good}", f"<think>b</think>{bad}", "<think>never closed"],
        [f"<think>c</think>{bad.replace('dips_below_zero', 'median_abs_deviation')}"] * 3,
    ]
    records = scripted_file(folder, "rep", HE[:2], script)
    res = run({"rtc_he_rep": str(records)}, ["rtc_he_rep"], include=[str(folder)])
    r = res["results"]["rtc_he_rep"]
    assert r["pass@1,none"] == pytest.approx((1 / 3 + 0) / 2)
    assert r["pass@3,none"] == pytest.approx((1 + 0) / 2)
    assert r["vr,none"] == pytest.approx((2 / 3 + 1) / 2) and r["tr,none"] == pytest.approx(1 / 6)
    # rpass@1: each doc's pass@1 weighted by its valid generations (the harness's convention).
    assert r["rpass@1,none"] == pytest.approx((2 / 3 * 1 / 3) / (2 / 3 + 1))
    assert len(res["samples"]["rtc_he_rep"][0]["filtered_resps"][0]) == 3


def test_without_the_opt_in_nothing_is_generated_or_run(data):
    with pytest.raises(ValueError, match="confirm_run_unsafe_code=True"):
        run(data, ["rtc_evalplus"], confirm_run_unsafe_code=False)


def test_predict_only_runs_no_code_and_needs_no_opt_in(data, monkeypatch):
    import rtc_metrics.code.sandbox as sandbox

    def refuse(*args, **kwargs):
        raise AssertionError("code ran under --predict_only")

    monkeypatch.setattr(sandbox, "run_job", refuse)
    res = run(data, ["rtc_evalplus"], predict_only=True, confirm_run_unsafe_code=False)
    r = res["results"]["rtc_humaneval_plus"]
    assert r["vr,none"] == 0.75 and r["tr,none"] == 0.25
    assert "pass@1,none" not in r and "rpass@1,none" not in r
    assert res["samples"]["rtc_mbpp_plus"][1]["resps"] == [[MB_SCRIPT[1]]]


def test_wrong_dataset_for_a_task_is_named_before_generation(data):
    data = dict(data, rtc_mbpp_plus=data["rtc_humaneval_plus"])
    with pytest.raises(InputError, match=r"rtc_mbpp_plus: record 0 .* humaneval record, not mbpp"):
        run(data, ["rtc_mbpp_plus"])


@pytest.mark.slow
def test_rtc_eval_cli_with_the_tiny_model(tmp_path):
    """`rtc eval ... --tasks rtc_evalplus --confirm_run_unsafe_code` on CPU: pipeline and recount."""
    from rtc_metrics.lmeval_logs import rescore

    model = build_tiny_model(tmp_path / "tiny", special_tags=False)
    out = tmp_path / "out"
    meta = {
        "rtc_format": "qwen3",
        "rtc_data_files": {
            "rtc_humaneval_plus": str(FIXTURES / "humanevalplus_sample.jsonl"),
            "rtc_mbpp_plus": str(FIXTURES / "mbppplus_sample.jsonl"),
        },
    }
    cmd = [
        *(sys.executable, "-m", "rtc_metrics", "eval"),
        *("--model", "hf", "--model_args", f"pretrained={model}"),
        *("--tasks", "rtc_evalplus", "--metadata", json.dumps(meta)),
        *("--gen_kwargs", "max_gen_toks=24", "--output_path", str(out), "--log_samples"),
    ]
    # Without the opt-in: one line saying how, before the model is even loaded.
    refused = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        "rtc eval: rtc_evalplus execute(s) model-generated code (sandboxed, see docs/code_tasks.md); "
        "add --confirm_run_unsafe_code to opt in"
    ]
    assert not out.exists()
    proc = subprocess.run([*cmd, "--confirm_run_unsafe_code"], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    rescored = rescore(out)["runs"][0]["tasks"]
    for task in ("rtc_humaneval_plus", "rtc_mbpp_plus"):
        (samples_file,) = out.rglob(f"samples_{task}_*.jsonl")
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(samples) == 4
        # The tiny model always writes "<think>Let me think</think> The answer is 42": a valid
        # trace and an answer with no usable program.
        assert {s["resps"][0][0] for s in samples} == {"<think>Let me think</think> The answer is 42"}
        reported = results[task]
        for key, value in recount(samples, "qwen3", metric="pass@1").items():
            assert reported[f"{key},none"] == pytest.approx(value, abs=1e-12), (task, key)
            assert rescored[task]["filters"]["none"][key] == pytest.approx(value, abs=1e-12), (task, key)
        assert reported["vr,none"] == 1.0 and reported["pass@1,none"] == 0.0
    assert results["rtc_evalplus"]["vr,none"] == 1.0 and results["rtc_evalplus"]["rpass@1,none"] == 0.0
    for key in ("vr", "rpass@1", "pass@1"):
        assert f"|{key}" in proc.stdout.replace(" ", ""), key


def test_sandbox_settings_from_metadata(data):
    from rtc_tasks.settings import RTCSettingsError

    def load(**meta):
        tm = TaskManager(
            include_path=rtc_tasks.tasks_path(),
            include_defaults=False,
            metadata={"rtc_format": "qwen3", "rtc_data_files": data, **meta},
        )
        return tm.load(["rtc_mbpp_plus"])["tasks"]["rtc_mbpp_plus"]

    task = load(rtc_code_workers="3", rtc_code_timeout=2.5)
    assert task._rtc_code_workers == 3 and task._rtc_code_limits.timeout_s == 2.5
    default = load()
    assert default._rtc_code_workers is None and default._rtc_code_limits is None  # CPU count, 10 s
    for bad in ({"rtc_code_workers": 0}, {"rtc_code_workers": "many"}, {"rtc_code_timeout": -1}):
        with pytest.raises(RTCSettingsError, match=f"--metadata {next(iter(bad))} must be a positive"):
            load(**bad)


def test_prompts_show_the_signature_and_ask_for_a_python_block():
    from rtc_tasks.code import HUMANEVAL_INSTRUCTION, MBPP_INSTRUCTION, humaneval_prompt, mbpp_prompt

    he = humaneval_prompt(HE[0])
    assert he.startswith(HUMANEVAL_INSTRUCTION + "\n\n```python\nfrom typing import List")
    assert "def dips_below_zero(changes: List[int]) -> bool:" in he and he.endswith('    """\n```')
    mb = mbpp_prompt(MB[1])
    assert mb.startswith("Write a python function to identify non-prime numbers.\n\n")
    assert "`is_composite`" in mb and "```python\nassert is_composite(2) == False\n```" in mb
    assert mb.endswith(MBPP_INSTRUCTION)
    # An older dump's "text" field, and the hub's null columns of a mixed JSONL.
    old = mbpp_prompt(dict(MB[3], prompt=None, test=None))
    assert old.startswith(MB[3]["text"].strip()) and "`square_perimeter`" in old
