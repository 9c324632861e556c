"""rtc_* task definitions: discovery, building, doc processing and answer extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness_support import write_jsonl

import rtc_tasks
from rtc_metrics.cli.eval import RUNS_CODE
from rtc_tasks.answers import extract_boxed, extract_choice, extract_integer, extract_number, math_equal
from rtc_tasks.docs import (
    DocError,
    process_aime,
    process_chemistry,
    process_gpqa,
    process_gsm8k,
    process_math500,
    results_choice,
    results_number,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TASKS = [
    "rtc_gsm8k",
    "rtc_chemistry",
    "rtc_math500",
    "rtc_aime24",
    "rtc_aime25",
    "rtc_gpqa_diamond",
    "rtc_toy_arithmetic",
]
CODE_TASKS = ["rtc_humaneval_plus", "rtc_mbpp_plus"]
GROUPS = {
    "rtc_paper": {"rtc_chemistry", "rtc_gsm8k", *CODE_TASKS},
    "rtc_evalplus": set(CODE_TASKS),
    "rtc_reasoning": {"rtc_math500", "rtc_aime24", "rtc_aime25", "rtc_gpqa_diamond"},
}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


# --- answer extraction ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 42.", "42"),
        ("so 3 + 4 = 7. The answer is 1,234", "1234"),
        ("The answer is: $18.", "18"),
        ("Final: \\boxed{72}", "72"),
        ("\\boxed{\\$1{,}000}", "1000"),
        ("I get 5 then 12 and finally 17", "17"),
        ("#### 72", "72"),
        ("The answer is 3.50", "3.5"),
        ("The answer is -4", "-4"),
        ("2 apples and \\boxed{8} but the answer is 9", "9"),  # "The answer is" wins
        ("no digits here", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_extract_boxed_balances_braces():
    assert extract_boxed("x \\boxed{\\frac{1}{2}} y") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{1} then \\boxed{2}") == "2"
    assert extract_boxed("cut off \\boxed{\\frac{1}{2") is None
    assert extract_boxed("nothing") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (C).", "C"),
        ("Answer: B", "B"),
        ("\\boxed{D}", "D"),
        ("\\boxed{\\text{A}}", "A"),
        ("C", "C"),
        ("(B)", "B"),
        ("D. because it is polar", "D"),
        ("I think A or B", None),  # ambiguous
        ("none of these", None),
    ],
)
def test_extract_choice(text, expected):
    assert extract_choice(text) == expected


def test_extract_integer_and_math_equal():
    assert extract_integer("so \\boxed{033}") == "33"
    assert extract_integer("The answer is 2.5") is None
    assert math_equal("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}")
    assert math_equal("the value is $0.5$", "\\frac12")
    assert not math_equal("\\boxed{3}", "\\frac{1}{2}")


# --- doc processing -------------------------------------------------------------------------
def test_gsm8k_docs_accept_hub_and_study_records():
    hub = process_gsm8k([{"question": "q", "answer": "step\n#### 1,000"}])
    study = process_gsm8k([{"prompt": "p", "answer": "2280"}])
    assert hub == [{"prompt": "q", "answer": "1000"}]
    assert study == [{"prompt": "p", "answer": "2280"}]
    assert results_number(hub[0], ["The answer is 1,000."]) == {"exact_match": 1.0}
    assert results_number(hub[0], ["The answer is 100."]) == {"exact_match": 0.0}
    with pytest.raises(DocError, match="prompt"):
        process_gsm8k([{"text": "q", "answer": "1"}])


def test_chemistry_hub_schema_filters_and_letters():
    hub = [
        {
            "question": "Which?",
            "choices": {"text": ["a", "b", "c", "d"], "label": ["A", "B", "C", "D"]},
            "answerKey": "C",
            "domain": "Chemistry",
            "details": {"level": "L3"},
            "type": "mcq-4-choices",
        },
        {
            "question": "Other level",
            "choices": {"text": ["a", "b"], "label": ["A", "B"]},
            "answerKey": "A",
            "domain": "Chemistry",
            "details": {"level": "L1"},
            "type": "mcq-2-choices",
        },
        {
            "question": "Biology",
            "choices": {"text": ["a", "b"], "label": ["A", "B"]},
            "answerKey": "A",
            "domain": "Biology",
            "details": {"level": "L3"},
            "type": "mcq-2-choices",
        },
    ]
    docs = process_chemistry(hub)
    assert docs == [{"prompt": "Which?\n\nA: a\nB: b\nC: c\nD: d", "answer": "C", "n_choices": 4}]
    assert results_choice(docs[0], ["The answer is C."]) == {"exact_match": 1.0}
    assert results_choice(docs[0], ["B"]) == {"exact_match": 0.0}


@pytest.mark.skipif(
    not (SHARED / "data/paper-subsets/chemistry_256.jsonl").is_file(), reason="shared data absent"
)
def test_chemistry_study_subset_processes():
    from datasets import load_dataset

    path = SHARED / "data/paper-subsets/chemistry_256.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    docs = process_chemistry(load_dataset("json", data_files=str(path), split="train"))
    assert len(docs) == len(raw) == 256
    for doc, rec in zip(docs, raw, strict=True):
        assert doc["prompt"] == rec["prompt"] and doc["answer"] == rec["answer"]
        assert doc["answer"] in "ABCDEFGHIJ"[: doc["n_choices"]]
        assert f"\n{doc['answer']}: " in doc["prompt"]


def test_gpqa_shuffle_is_deterministic_and_keeps_the_answer():
    rec = {
        "Question": "Q?",
        "Correct Answer": "right",
        "Incorrect Answer 1": "w1",
        "Incorrect Answer 2": "w2",
        "Incorrect Answer 3": "w3",
    }
    a, b = process_gpqa([rec]), process_gpqa([rec])
    assert a == b
    letter = a[0]["answer"]
    assert f"{letter}: right" in a[0]["prompt"]


def test_math_and_aime_docs():
    assert process_math500([{"problem": "p", "answer": "\\frac12", "solution": "s"}]) == [
        {"prompt": "p", "answer": "\\frac12"}
    ]
    assert process_aime([{"Problem": "p", "Answer": 33}]) == [{"prompt": "p", "answer": "33"}]
    assert process_aime([{"prompt": "p", "answer": "7"}]) == [{"prompt": "p", "answer": "7"}]


# --- discovery and building --------------------------------------------------------------------
@pytest.fixture(scope="module")
def study_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    mcq = [{"prompt": "Q?\n\nA: x\nB: y\nC: z\nD: w", "answer": "B"}]
    return {
        "rtc_gsm8k": write_jsonl(root / "gsm.jsonl", [{"prompt": "p", "answer": "3"}]),
        "rtc_chemistry": write_jsonl(root / "chem.jsonl", mcq),
        "rtc_gpqa_diamond": write_jsonl(root / "gpqa.jsonl", mcq),
        "rtc_math500": write_jsonl(root / "math.jsonl", [{"problem": "p", "answer": "1/2"}]),
        "rtc_aime24": write_jsonl(root / "aime24.jsonl", [{"Problem": "p", "Answer": 5}]),
        "rtc_aime25": write_jsonl(root / "aime25.jsonl", [{"problem": "p", "answer": "6"}]),
        "rtc_toy_arithmetic": write_jsonl(root / "toy.jsonl", [{"prompt": "What is 1 + 2?", "answer": "3"}]),
        "rtc_humaneval_plus": Path(__file__).parent / "fixtures" / "humanevalplus_sample.jsonl",
        "rtc_mbpp_plus": Path(__file__).parent / "fixtures" / "mbppplus_sample.jsonl",
    }


def test_task_manager_builds_every_task_and_group(study_files, monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    meta = {"rtc_format": "qwen3", "rtc_data_files": {k: str(v) for k, v in study_files.items()}}
    tm = TaskManager(include_path=rtc_tasks.tasks_path(), include_defaults=False, metadata=meta)
    tasks = tm.load(TASKS)["tasks"]
    assert set(tasks) == set(TASKS)
    for name, task in tasks.items():
        assert type(task).__name__ == "RTCTask"
        assert task.config.generation_kwargs["until"] == []
        # the toy task's traces are short and its model's context is 512 tokens
        assert task.config.generation_kwargs["max_gen_toks"] == (256 if name == "rtc_toy_arithmetic" else 32768)
        assert len(task.eval_docs) == 1, name
        assert {"vr", "er", "tr", "mr", "rpass@1", "exact_match"} <= set(task.aggregation())
    code = tm.load(CODE_TASKS)["tasks"]
    for name, task in code.items():
        assert type(task).__name__ == "RTCCodeTask" and task.UNSAFE_CODE
        assert task.config.generation_kwargs["until"] == []
        assert len(task.eval_docs) == 4, name
        assert {"vr", "er", "tr", "mr", "rpass@1", "pass@1"} <= set(task.aggregation())
        assert "exact_match" not in task.aggregation()
        assert [f.name for f in task._filters] == ["none"]  # the key the groups pool over
    for group, members in GROUPS.items():  # a group and its members cannot load together
        loaded = tm.load([group])
        assert {t.task_name for t in loaded["groups"][group].get_all_tasks()} == members
        # `rtc eval` refuses exactly the tasks and groups that run code without the opt-in.
        runs_code = any(getattr(t, "UNSAFE_CODE", False) for t in loaded["tasks"].values())
        assert runs_code == (group in RUNS_CODE), group
    assert set(RUNS_CODE) == {*CODE_TASKS, *(g for g, m in GROUPS.items() if m & set(CODE_TASKS))}


def test_relative_data_path_and_missing_file(tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    from rtc_tasks.settings import RTCSettingsError

    write_jsonl(tmp_path / "gsm.jsonl", [{"prompt": "p", "answer": "3"}, {"prompt": "q", "answer": "4"}])
    monkeypatch.chdir(tmp_path)
    tm = TaskManager(
        include_path=rtc_tasks.tasks_path(),
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "rtc_data_files": "gsm.jsonl"},
    )
    assert len(tm.load(["rtc_gsm8k"])["tasks"]["rtc_gsm8k"].eval_docs) == 2
    tm = TaskManager(
        include_path=rtc_tasks.tasks_path(),
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "rtc_data_files": "nope.jsonl"},
    )
    with pytest.raises(RTCSettingsError, match=r"nope\.jsonl"):
        tm.load(["rtc_gsm8k"])


def test_wrapper_yaml_works_with_plain_task_manager(tmp_path):
    from lm_eval.tasks import TaskManager

    from rtc_metrics.cli.eval import wrapper_yaml

    data = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "w\n#### 3"}])
    (tmp_path / "wrap.yaml").write_text(wrapper_yaml("gsm8k_cot_zeroshot"))
    tm = TaskManager(
        include_path=str(tmp_path),
        include_defaults=False,
        metadata={"rtc_format": "qwen3", "rtc_data_files": {"rtc:gsm8k_cot_zeroshot": str(data)}},
    )
    task = tm.load(["rtc:gsm8k_cot_zeroshot"])["tasks"]["rtc:gsm8k_cot_zeroshot"]
    assert type(task).__name__ == "RTCTask"
    assert task.config.doc_to_text.startswith("Q: {{question}}")  # the built-in's prompt
    assert [f.name for f in task._filters] == ["strict-match", "flexible-extract"]
    assert task.config.generation_kwargs["until"] == []


@pytest.mark.slow
def test_lm_eval_ls_lists_every_task_and_group():
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "ls", "tasks", "--include_path", rtc_tasks.tasks_path()],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in [*TASKS, *CODE_TASKS, *GROUPS]:
        assert name in proc.stdout, name


def test_rtc_tasks_path_command(capsys):
    from rtc_metrics.cli import main

    assert main(["tasks-path"]) == 0
    out = capsys.readouterr().out.strip()
    assert Path(out) == rtc_tasks.TASKS_DIR and (Path(out) / "rtc_gsm8k.yaml").is_file()


def test_rtc_eval_rewrites_wrappers_and_vllm_metadata(tmp_path):
    from rtc_metrics.cli.eval import _rewrite

    argv = ["--model", "vllm", "--tasks", "rtc:gsm8k,rtc_paper", "--metadata", '{"rtc_format": "qwen3"}']
    new, wrapped = _rewrite(argv, tmp_path)
    assert wrapped == ["gsm8k"]
    assert (tmp_path / "rtc_wrap_gsm8k.yaml").read_text().startswith('task: "rtc:gsm8k"')
    meta = json.loads(new[new.index("--metadata") + 1])
    assert meta == {"rtc_format": "qwen3", "rtc_keeps_special_tokens": True}
    assert new.count("--metadata") == 1 and new[:4] == argv[:4]
    unchanged, _ = _rewrite(["--model=hf", "--tasks=rtc_gsm8k"], tmp_path)
    assert unchanged == ["--model=hf", "--tasks=rtc_gsm8k"]


def test_toy_task_generates_its_own_data_offline(monkeypatch):
    """Without a data override, rtc_toy_arithmetic builds its seeded test split itself."""
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    meta = {"rtc_format": "qwen3", "rtc_toy_n": 5}
    tm = TaskManager(include_path=rtc_tasks.tasks_path(), include_defaults=False, metadata=meta)
    task = tm.load(["rtc_toy_arithmetic"])["tasks"]["rtc_toy_arithmetic"]
    docs = list(task.eval_docs)
    assert len(docs) == 5 and docs[0]["prompt"].startswith("What is ")
    assert task.doc_to_text(docs[0]) == docs[0]["prompt"]
