"""``rtc compare`` on real lm-eval 0.4.13 output: every number checked against a recount.

The module fixture runs lm-eval (scripted LM, local YAML tasks, see _compare_lmeval.py)
for a base model and two SFT strategies at two checkpoints each, plus a later rerun of
one checkpoint, then saves results and samples exactly as the lm_eval CLI does.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from _compare_lmeval import FORMATS, RERUN, STUDY, Recount, build_study, recount

from rtc_metrics import get_format
from rtc_metrics.cli import main
from rtc_metrics.compare import LoadOptions, load_inputs
from rtc_metrics.stats import wilson_interval

TASKS = sorted(FORMATS)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_study(tmp_path_factory.mktemp("study"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _samples_for(row: dict) -> Path:
    results = Path(row["source"])
    date_id = results.stem.removeprefix("results_")
    return results.parent / f"samples_{row['task']}_{date_id}.jsonl"


def _expected(c: Recount) -> dict:
    """What each metric and interval must be, from exact counts."""
    out = {"n": c.n, "n_valid": c.valid}
    for key, k, n in (
        ("vr", c.valid, c.n),
        ("er", c.empty, c.n),
        ("tr", c.truncated, c.n),
        ("mr", c.missing, c.n),
        ("pass@1", c.correct, c.n),
        ("rpass@1", c.valid_correct, c.valid),
    ):
        out[key] = k / n if n else None
        out[f"{key}_ci"] = wilson_interval(k, n) if n else None
    return out


def _assert_matches(row: dict, want: dict) -> None:
    where = f"{row['model']}@{row['step']} {row['task']}"
    assert row["n"] == want["n"], where
    assert row["n_valid"] == want["n_valid"], where
    for key in ("pass@1", "vr", "er", "tr", "mr", "rpass@1"):
        if want[key] is None:
            assert row[key] is None and row[f"{key}_ci"] is None, f"{where} {key}"
            continue
        assert row[key] == pytest.approx(want[key], abs=1e-12), f"{where} {key}"
        assert row[f"{key}_ci"] == pytest.approx(list(want[f"{key}_ci"]), abs=1e-12), f"{where} {key}_ci"


def _cell(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def test_every_number_equals_a_recount_from_samples(study, tmp_path, capsys, monkeypatch):
    """JSON rows, the Markdown table and the terminal table all agree with exact counts."""
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells in a narrow terminal
    out_json, out_md = tmp_path / "rows.json", tmp_path / "table.md"
    code, stdout, _ = _run(
        ["compare", str(study), "--json", str(out_json), "--markdown", str(out_md)], capsys
    )
    assert code == 0
    rows = json.loads(out_json.read_text())
    # 5 models/checkpoints x 2 tasks; the rerun replaced one checkpoint's rows.
    assert len(rows) == len(STUDY) * len(TASKS)
    assert {(r["model"], r["step"]) for r in rows} == {
        ("org/tiny-base", None),
        ("tiny-mask", 10),
        ("tiny-mask", 20),
        ("tiny-bare", 10),
        ("tiny-bare", 20),
    }
    md_lines = {
        tuple(c.strip() for c in line.strip("|").split("|")[:2]): [
            c.strip() for c in line.strip("|").split("|")
        ]
        for line in out_md.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| model")
    }
    for row in rows:
        assert row["answer_metric"] == "exact_match,strict-match"
        want = _expected(recount(_samples_for(row), FORMATS[row["task"]][0], "strict-match"))
        _assert_matches(row, want)
        # The Markdown line of this model: 6 metric cells per task, tasks in sorted order.
        cells = md_lines[(row["model"], "" if row["step"] is None else str(row["step"]))]
        start = 2 + 6 * TASKS.index(row["task"])
        expected_cells = [
            _cell(want[k], want[f"{k}_ci"]) for k in ("pass@1", "vr", "er", "tr", "mr", "rpass@1")
        ]
        assert cells[start : start + 6] == expected_cells
        # The terminal table prints the same value over its interval, on this model's line.
        terminal = _terminal_cells(stdout, row["task"], row["model"], row["step"])
        assert terminal == expected_cells


def _terminal_cells(stdout: str, task: str, model: str, step: int | None) -> list[str]:
    """The six metric cells of one model line in the task's rich table (value line + interval line)."""
    block = stdout.split(f"{task}: % with 95% intervals", 1)[1]
    lines = [ln for ln in block.splitlines() if ln.startswith("│")]
    for i, ln in enumerate(lines):
        cells = [c.strip() for c in ln.strip("│").split("│")]
        if cells[0] == model and cells[1] == ("" if step is None else str(step)):
            below = [c.strip() for c in lines[i + 1].strip("│").split("│")]
            return [f"{v} {ci}".strip() for v, ci in zip(cells[2:8], below[2:8], strict=True)]
    raise AssertionError(f"no line for {model}@{step} in the {task} table")


def test_samples_files_recount_to_the_same_rows(study):
    """Passing the samples files themselves (recounted with the run's rtc_format) gives the
    numbers the results files report."""
    from_results = {(r.model, r.step, r.task): r for r in load_inputs([study]).rows}
    samples = sorted(study.rglob("samples_*.jsonl"))
    loaded = load_inputs(samples)
    assert {r.kind for r in loaded.rows} == {"samples"}
    assert len(loaded.rows) == len(from_results)
    for row in loaded.rows:
        ref = from_results[(row.model, row.step, row.task)]
        assert Path(row.source).stem.split("_")[-1] == Path(ref.source).stem.split("_")[-1]  # same run won
        for key, est in row.metrics.items():
            assert (
                est.value == pytest.approx(ref.metrics[key].value, abs=1e-12)
                if est.value is not None
                else ref.metrics[key].value is None
            )
            assert est.ci == ref.metrics[key].ci or est.ci == pytest.approx(ref.metrics[key].ci, abs=1e-12)
    assert not [n for n in loaded.notes if "recounted" in n]


def test_prompt_decides_pre_opened_traces(study):
    """fx_chem pre-opens every second prompt: outputs there have no opening delimiter and are
    still valid (or truncated when never closed), exactly as the in-run parse said."""
    base = next(p for p in study.glob("org__tiny-base/samples_fx_chem_*.jsonl"))
    row = load_inputs([base]).rows[0]
    kinds = STUDY["org/tiny-base"]["fx_chem"]
    assert row.metrics["vr"].successes == sum(k.startswith("valid") for k in kinds)
    # Every pre-opened prompt's "missing"-style output counts as truncated.
    assert row.metrics["tr"].successes == kinds.count("truncated") + sum(
        1 for i, k in enumerate(kinds) if k == "missing" and i % 2 == 0
    )
    # A wrong format recounts differently, and the disagreement with the results file is stated.
    wrong = load_inputs([base], LoadOptions(fmt=get_format("qwen3")))
    assert wrong.rows[0].value("vr") == 0.0
    assert any("recounted vr" in n and "--format" in n for n in wrong.notes)


def test_duplicated_run_latest_wins_and_is_stated(study, tmp_path, capsys):
    out_json = tmp_path / "rows.json"
    code, stdout, _ = _run(["compare", str(study), "--json", str(out_json)], capsys)
    assert code == 0
    rows = {(r["model"], r["step"], r["task"]): r for r in json.loads(out_json.read_text())}
    results = sorted((study / "__runs__tiny-bare__checkpoint-20").glob("results_*.json"))
    assert len(results) == 2
    for task in TASKS:
        row = rows[("tiny-bare", 20, task)]
        assert row["source"] == str(results[-1])  # the later file
        kinds = RERUN[1][task]
        assert row["n_valid"] == sum(k.startswith("valid") for k in kinds)
    assert "duplicate runs of tiny-bare@20" in stdout
    assert results[0].name in stdout.replace("\n", "")


def test_nan_from_lmeval_is_shown_as_dash_never_zero(study, tmp_path, capsys):
    """No valid trace: lm-eval writes a bare NaN for rpass@1; compare shows '–' / null."""
    latest = sorted((study / "__runs__tiny-bare__checkpoint-20").glob("results_*.json"))[-1]
    assert re.search(r'"rpass@1,strict-match": NaN', latest.read_text())
    out_json, out_csv, out_md = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.md"
    assert (
        main(
            [
                "compare",
                str(latest),
                "--json",
                str(out_json),
                "--csv",
                str(out_csv),
                "--markdown",
                str(out_md),
                "--quiet",
            ]
        )
        == 0
    )
    row = next(r for r in json.loads(out_json.read_text()) if r["task"] == "fx_chem")
    assert row["vr"] == 0.0 and row["rpass@1"] is None and row["rpass@1_ci"] is None
    assert "NaN" not in out_json.read_text()
    line = next(r for r in csv.DictReader(out_csv.open()) if r["task"] == "fx_chem")
    assert line["rpass@1"] == "" and line["vr"] == "0.0"
    md = next(x for x in out_md.read_text().splitlines() if x.startswith("| tiny-bare"))
    cells = [c.strip() for c in md.strip("|").split("|")]
    assert cells[2 + 5] == "–"  # fx_chem Rpass@1 (fx_chem is the first task group)


def _newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Newcombe (1998) method 10, written out independently of the library."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


@pytest.mark.parametrize("reference", ["org/tiny-base", "tiny-mask@10"])
def test_collapse_flag_against_a_reference(study, tmp_path, capsys, monkeypatch, reference):
    monkeypatch.setenv("COLUMNS", "200")
    out_json = tmp_path / "rows.json"
    code, stdout, _ = _run(["compare", str(study), "--reference", reference, "--json", str(out_json)], capsys)
    assert code == 0
    rows = json.loads(out_json.read_text())
    ref_model, _, ref_step = reference.partition("@")
    for row in rows:
        ref = next(
            r
            for r in rows
            if r["task"] == row["task"]
            and r["model"] == ref_model
            and r["step"] == (int(ref_step) if ref_step else None)
        )
        assert row["reference"] == reference
        if row is ref:
            assert row["collapse"] is False and row["vr_drop"] is None
            continue
        d, low, high = _newcombe(ref["n_valid"], ref["n"], row["n_valid"], row["n"])
        assert row["vr_drop"] == pytest.approx(d, abs=1e-12)
        assert row["vr_drop_ci"] == pytest.approx([low, high], abs=1e-12)
        assert row["collapse"] is (low > 0)
    flagged = {(r["model"], r["step"], r["task"]) for r in rows if r["collapse"]}
    # Bare SFT collapses against the base on both tasks; loss masking does not.
    if reference == "org/tiny-base":
        assert flagged == {("tiny-bare", s, t) for s in (10, 20) for t in TASKS}
    assert "COLLAPSE" in stdout and "drop" in stdout


def test_sort_and_filter(study, tmp_path, capsys):
    out_json = tmp_path / "rows.json"
    assert main(["compare", str(study), "--sort", "vr", "--json", str(out_json), "--quiet"]) == 0
    rows = json.loads(out_json.read_text())
    first_task = [r["vr"] for r in rows if r["task"] == TASKS[0]]
    assert first_task == sorted(first_task, reverse=True)
    assert main(["compare", str(study), "--sort", "fx_gsm:rpass@1", "--json", str(out_json), "--quiet"]) == 0
    gsm = [r["rpass@1"] for r in json.loads(out_json.read_text()) if r["task"] == "fx_gsm"]
    assert gsm == sorted(gsm, reverse=True)

    assert (
        main(["compare", str(study), "--filter", "flexible-extract", "--json", str(out_json), "--quiet"]) == 0
    )
    for row in json.loads(out_json.read_text()):
        assert row["answer_metric"] == "exact_match,flexible-extract"
        want = _expected(recount(_samples_for(row), FORMATS[row["task"]][0], "flexible-extract"))
        _assert_matches(row, want)

    code, _, err = _run(["compare", str(study), "--sort", "speed"], capsys)
    assert code == 2 and "--sort 'speed': unknown column" in err and "Traceback" not in err
    code, _, err = _run(["compare", str(study), "--reference", "nobody"], capsys)
    assert code == 2 and "no such model" in err and "tiny-mask" in err


def test_board_csv_and_markdown_agree_with_json(study, tmp_path):
    out = {k: tmp_path / f"r.{k}" for k in ("json", "csv", "md")}
    assert (
        main(
            [
                "compare",
                str(study),
                "--reference",
                "org/tiny-base",
                "--quiet",
                "--json",
                str(out["json"]),
                "--csv",
                str(out["csv"]),
                "--markdown",
                str(out["md"]),
            ]
        )
        == 0
    )
    rows = json.loads(out["json"].read_text())
    lines = list(csv.DictReader(out["csv"].open()))
    assert len(lines) == len(rows)
    for row, line in zip(rows, lines, strict=True):
        assert (line["model"], line["task"]) == (row["model"], row["task"])
        for key in ("vr", "rpass@1", "pass@1"):
            assert (float(line[key]) if line[key] else None) == row[key]
            if row[f"{key}_ci"]:
                assert float(line[f"{key}_low"]) == row[f"{key}_ci"][0]
        assert line["collapse"] == str(row["collapse"])
    # Exactly the contract keys first.
    assert list(rows[0])[:9] == ["model", "step", "task", "pass@1", "vr", "er", "tr", "mr", "rpass@1"]
    assert "**COLLAPSE drop" in out["md"].read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--hide-scrollbars",
                *args,
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


def _console_errors(stderr: str) -> list[str]:
    # Chromium logs page console messages as `...:CONSOLE(line)] "text", source: ...`.
    return [
        ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln or "ERR_FILE_NOT_FOUND" in ln
    ]


@pytest.fixture(scope="module")
def report(study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("report")
    assert (
        main(
            [
                "compare",
                str(study),
                "--reference",
                "org/tiny-base",
                "--quiet",
                "--html",
                str(out / "report.html"),
                "--figures",
                str(out / "figs"),
            ]
        )
        == 0
    )
    return out / "report.html", out / "figs"


def test_html_report_is_self_contained(report):
    page, figs = report
    html = page.read_text()
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!data:)', html), "every resource must be inline"
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'<img alt="[^"]*" src="data:image/svg\+xml;base64,', html)
    names = sorted(p.stem for p in figs.glob("*.svg"))
    assert len(images) == len(names) == 8  # per task: VR by strategy, 2 step figures, 1 bar chart
    assert sorted(p.stem for p in figs.glob("*.png")) == names
    assert html.count("COLLAPSE drop") == 4


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(report, tmp_path):
    page = report[0]
    shot = tmp_path / "report.png"
    run = _chromium(page, f"--screenshot={shot}", "--window-size=1400,2600")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", run.stderr[-2000:]
    assert _console_errors(run.stderr) == []
    dom = _chromium(page, "--dump-dom")
    assert _console_errors(dom.stderr) == []
    assert dom.stdout.count("<tr>") == 2 + len(STUDY)  # two header lines + one per model/checkpoint
    assert dom.stdout.count("<img") == 8
    shutil.copy(shot, Path(tempfile.gettempdir()) / "rtc_compare_report_screenshot.png")  # for a human look

    # The console check can fail: a page with a script error is caught.
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom'); undefinedFn();</script></body></html>"
    )
    assert _console_errors(_chromium(broken, "--dump-dom").stderr)


def test_folder_of_samples_without_results_needs_a_format(study, tmp_path, capsys):
    """Samples copied away from their results file: the model comes from the folder name
    (lm-eval's sanitized model name) and the format must be given."""
    run = tmp_path / "__runs__tiny-mask__checkpoint-10"
    run.mkdir()
    for path in (study / run.name).glob("samples_*.jsonl"):
        shutil.copy(path, run / path.name)
    code, _, err = _run(["compare", str(tmp_path)], capsys)
    assert code == 2 and "pass --format NAME" in err
    loaded = load_inputs([tmp_path], LoadOptions(fmt=get_format("qwen3")))
    gsm = next(r for r in loaded.rows if r.task == "fx_gsm")
    assert (gsm.model, gsm.step, gsm.kind) == ("tiny-mask", 10, "samples")
    want = _expected(recount(next(run.glob("samples_fx_gsm_*.jsonl")), "qwen3", "strict-match"))
    assert gsm.value("vr") == want["vr"] and gsm.value("rpass@1") == want["rpass@1"]
    note = "model name '/runs/tiny-mask/checkpoint-10' taken from the folder name"
    assert any(note in n for n in loaded.notes)
