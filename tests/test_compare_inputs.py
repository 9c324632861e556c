"""``rtc compare`` inputs: mixed lm-eval versions, NaN, monitor curves, bad files, intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtc_metrics import get_format
from rtc_metrics.cli import main
from rtc_metrics.compare import LoadOptions, build_leaderboard, load_inputs
from rtc_metrics.compare.intervals import count_estimate, difference_interval, rate_estimate, whole_count
from rtc_metrics.compare.rows import split_checkpoint
from rtc_metrics.compare.tables import markdown
from rtc_metrics.io import InputError
from rtc_metrics.stats import wilson_interval


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _jsonl(path: Path, records: list[dict]) -> Path:
    return _write(path, "".join(json.dumps(r) + "\n" for r in records))


# --- intervals ---------------------------------------------------------------------------


def test_wilson_from_reported_rate_uses_whole_counts():
    est = rate_estimate(0.35, 20)
    assert (est.successes, est.trials, est.method) == (7, 20, "wilson")
    assert est.ci == pytest.approx(wilson_interval(7, 20))
    # Exact bounds at 0 and 1 (the closed form leaves 1e-17 noise there).
    assert count_estimate(0, 20).low == 0.0 and count_estimate(20, 20).high == 1.0
    assert whole_count(1 / 3, 12) == 4 and whole_count(0.3333, 12) is None


def test_non_count_value_falls_back_to_stderr_or_no_interval():
    est = rate_estimate(0.42, 10, stderr=0.05)  # 4.2 is not a count of 10
    assert est.method == "normal"
    assert est.ci == pytest.approx((0.42 - 1.959964 * 0.05, 0.42 + 1.959964 * 0.05), abs=1e-6)
    assert rate_estimate(0.42, 10, stderr="N/A").ci is None
    assert rate_estimate(float("nan"), 10).value is None
    assert rate_estimate(None, 10).value is None


def test_newcombe_difference_matches_the_published_example():
    # Newcombe (1998), Stat Med 17:873, Table II example (56/70 vs 48/80): method 10
    # gives 0.0524 to 0.3339 for the difference 0.2.
    d, low, high = difference_interval(count_estimate(56, 70), count_estimate(48, 80))
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/runs/mask/checkpoint-150", ("/runs/mask", 150)),
        ("/runs/mask/step-150/", ("/runs/mask", 150)),
        ("runs/mask/step150", ("runs/mask", 150)),
        ("out/global_step42", ("out", 42)),
        ("Qwen/Qwen3-0.6B", ("Qwen/Qwen3-0.6B", None)),
        ("/runs/checkpoints", ("/runs/checkpoints", None)),
    ],
)
def test_checkpoint_steps_from_model_paths(name, expected):
    assert split_checkpoint(name) == expected


# --- results files of several lm-eval versions --------------------------------------------


def _results_0413(model: str, vr: float, date: float, n: int = 10, rpass: object = 0.5) -> dict:
    return {
        "results": {
            "gsm": {
                "alias": "gsm",
                "sample_len": n,
                "exact_match,strict-match": 0.4,
                "exact_match_stderr,strict-match": 0.16,
                "vr,strict-match": vr,
                "vr_stderr,strict-match": 0.1,
                "er,strict-match": 0.0,
                "tr,strict-match": round(1 - vr, 10),
                "mr,strict-match": 0.0,
                "rpass@1,strict-match": rpass,
                "rpass@1_stderr,strict-match": "N/A",
            }
        },
        "configs": {"gsm": {"metric_list": [{"metric": "exact_match"}], "metadata": {"rtc_format": "qwen3"}}},
        "n-samples": {"gsm": {"original": 100, "effective": n}},
        "config": {"model": "hf", "model_args": {"pretrained": model}},
        "model_name": model,
        "date": date,
    }


def test_mixed_versions_missing_metrics_are_dashes_not_zeros(tmp_path):
    new = _write(
        tmp_path / "new" / "results_2026-01-02T00-00-00.000001.json",
        _results_0413("/ckpt/run-a/checkpoint-5", 0.8, 1_767_300_000.0),
    )
    # lm-eval 0.4.0/0.4.1: no model_name, no n-samples, model_args as a string, no rtc metrics.
    old = _write(
        tmp_path / "old" / "results.json",
        {
            "results": {"gsm": {"exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.05}},
            "config": {"model": "hf", "model_args": "pretrained=org/old-model,dtype=bfloat16"},
            "versions": {"gsm": 3},
        },
    )
    # lm-eval 0.3: bare metric keys, no filters.
    legacy = _write(
        tmp_path / "legacy.json",
        {
            "results": {"arc": {"acc": 0.5, "acc_stderr": 0.02, "acc_norm": 0.55}},
            "config": {"model": "gpt2", "model_args": ""},
        },
    )
    loaded = load_inputs([new, old, legacy])
    rows = {(r.model, r.task): r for r in loaded.rows}
    assert set(rows) == {("run-a", "gsm"), ("org/old-model", "gsm"), ("gpt2", "arc")}
    a = rows[("run-a", "gsm")]
    assert a.step == 5 and a.value("vr") == 0.8 and a.metrics["vr"].successes == 8
    assert a.metrics["rpass@1"].trials == 8 and a.metrics["rpass@1"].successes == 4
    o = rows[("org/old-model", "gsm")]
    assert o.value("pass@1") == 0.25 and o.n is None
    assert o.metrics["pass@1"].method == "normal"  # no n: interval from lm-eval's stderr
    assert all(o.value(k) is None for k in ("vr", "er", "tr", "mr", "rpass@1"))
    g = rows[("gpt2", "arc")]
    assert g.value("pass@1") == 0.5 and g.answer_metric == "acc,none"
    assert any("no structural metrics" in n and "old" in n for n in loaded.notes)
    md = markdown(build_leaderboard(loaded))
    line = next(x for x in md.splitlines() if x.startswith("| org/old-model"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    # arc group first (6 dashes: never run), then gsm: pass@1 shown, structure "–", never "0.0".
    assert cells[2:8] == ["–"] * 6
    assert cells[8].startswith("25.0") and cells[9:14] == ["–"] * 5


def test_bare_nan_in_results_json(tmp_path):
    data = json.dumps(_results_0413("m", 0.0, 1.0, rpass=float("nan")))
    assert "NaN" in data  # json.dumps writes the bare token, as lm-eval does
    path = _write(tmp_path / "results_x.json", data)
    row = load_inputs([path]).rows[0]
    assert row.value("vr") == 0.0 and row.value("rpass@1") is None


def test_duplicates_keep_the_latest_date_and_say_so(tmp_path):
    early = _write(tmp_path / "a" / "results_1.json", _results_0413("/r/m/checkpoint-5", 0.9, 1000.0))
    late = _write(tmp_path / "b" / "results_2.json", _results_0413("/r/m/checkpoint-5", 0.3, 2000.0))
    for order in ([early, late], [late, early]):
        loaded = load_inputs(order)
        assert len(loaded.rows) == 1 and loaded.rows[0].value("vr") == 0.3
        note = next(n for n in loaded.notes if n.startswith("duplicate runs of m@5 on gsm"))
        assert str(late) in note.split("ignored")[0] and str(early) in note.split("ignored")[1]


def test_local_paths_shorten_without_merging_different_models(tmp_path):
    a = _write(tmp_path / "a.json", _results_0413("/x/sft/mask", 0.9, 1.0))
    b = _write(tmp_path / "b.json", _results_0413("/y/sft/mask", 0.5, 2.0))
    c = _write(tmp_path / "c.json", _results_0413("/y/sft/bare", 0.5, 2.0))
    models = sorted(r.model for r in load_inputs([a, b, c]).rows)
    assert models == ["bare", "x/sft/mask", "y/sft/mask"]
    assert {r.strategy for r in load_inputs([a, c]).rows} == {"mask", "bare"}


# --- monitor curves ---------------------------------------------------------------------


def _curve(strategy: str, vrs: list[float], n: int = 20) -> list[dict]:
    return [
        {
            "step": 10 * i,
            "epoch": i / 4,
            "n": n,
            "vr": vr,
            "er": 0.0,
            "tr": round(1 - vr, 10),
            "mr": 0.0,
            "pass@1": None if i == 0 else 0.5,
            "rpass@1": 0.5 if vr else None,
            "model": "org/tiny",
            "strategy": strategy,
        }
        for i, vr in enumerate(vrs)
    ]


def test_monitor_curve_rows(tmp_path):
    path = _jsonl(
        tmp_path / "curve.jsonl",
        [
            *_curve("bare", [1.0, 0.6, 0.2]),
            {**_curve("bare", [0.0])[0], "step": 20, "vr": 0.25, "tr": 0.75},  # step 20 again (resume)
        ],
    )
    loaded = load_inputs([path])
    rows = sorted(loaded.rows, key=lambda r: r.step)
    assert [r.step for r in rows] == [0, 10, 20]
    assert {r.model for r in rows} == {"org/tiny [bare]"} and {r.task for r in rows} == {"monitor"}
    assert rows[0].value("pass@1") is None  # null stays missing, never 0
    assert rows[2].value("vr") == 0.25 and rows[2].metrics["vr"].successes == 5  # the later line won
    assert rows[1].metrics["rpass@1"].trials == 12
    assert any("logged twice" in n for n in loaded.notes)
    assert rows[0].source.endswith("curve.jsonl:1")


def test_curve_figures_have_direct_labels_and_no_legend(tmp_path):
    from rtc_metrics.compare.figures import OKABE_ITO, SERIES, make_figures, save_figures

    paths = [
        _jsonl(tmp_path / f"{s}.jsonl", _curve(s, vrs))
        for s, vrs in (("bare", [1.0, 0.5, 0.1]), ("mask", [1.0, 0.95, 0.9]))
    ]
    board = build_leaderboard(load_inputs(paths), reference="org/tiny [mask]@0")
    specs = make_figures(board)
    assert [s.name for s in specs] == [
        "vr_monitor",
        "steps_org_tiny_bare_monitor",
        "steps_org_tiny_mask_monitor",
        "bars_monitor",
    ]
    for spec in specs:
        for ax in spec.figure.axes:
            assert ax.get_legend() is None
    steps = specs[1].figure.axes[0]
    labels = [t.get_text() for t in steps.texts]
    assert "VR 10%" in labels and "Rpass@1 50%" in labels and "pass@1 50%" in labels
    assert any(t.startswith("reference VR 100%") for t in labels)
    # pass@1 is null at step 0: its line starts at step 10, never drawn at 0.
    pass_line = next(ln for ln in steps.lines if ln.get_color() == SERIES[0][1])
    assert list(pass_line.get_xdata()) == [10, 20]
    colours = {ln.get_color().upper() for ln in steps.lines} - {"#555555"}  # grey: the reference line
    assert colours == {c for _, c, _, _ in SERIES} and colours <= set(OKABE_ITO)
    written = save_figures(specs, tmp_path / "figs")
    assert len(written) == 8
    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in data[:2000]


# --- bad inputs: one clear line, exit 2 ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("table.csv", "a,b\n1,2\n", "unknown file type '.csv'"),
        ("config.json", '{"model_type": "llama"}', "not an lm-eval results file"),
        ("broken.json", '{"results": {', "not valid JSON"),
        (
            "train.jsonl",
            '{"prompt": "p", "response": "r"}\n',
            "not an lm-eval samples file nor a monitor curve",
        ),
        ("empty.jsonl", "", "the file is empty"),
        ("curve.jsonl", '{"step": 1, "vr": 1.5}\n', "curve.jsonl:1: 'vr' must be a rate in [0, 1]"),
        ("curve2.jsonl", '{"step": -3, "vr": 0.5}\n', "curve2.jsonl:1: 'step' must be a whole number"),
        ("samples_t_2026-01-01T00-00-00.1.jsonl", '{"doc_id": 0, "resps": [["x"]]}\n', "pass --format NAME"),
        ("samples_u_2026-01-01T00-00-00.1.jsonl", '{"doc_id": 0, "resps": "x"}\n', ":1: 'resps' must be"),
    ],
)
def test_unknown_or_broken_files_give_one_clear_line(tmp_path, capsys, name, content, message):
    path = _write(tmp_path / name, content)
    fmt = ["--format", "qwen3"] if name.startswith("samples_u") else []
    with pytest.raises(InputError) as err:
        load_inputs([path], LoadOptions(fmt=get_format("qwen3")) if fmt else None)
    assert str(path) in str(err.value) and message in str(err.value)
    assert main(["compare", str(path), *fmt]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("rtc compare: error: ") and message in stderr and len(stderr.splitlines()) == 1


def test_missing_path_and_empty_folder(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty" / "config.json", "{}")
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "no lm-eval results, samples or monitor curve files" in capsys.readouterr().err


def test_the_same_file_twice_is_not_a_duplicate_run(tmp_path):
    path = _write(tmp_path / "run" / "results_1.json", _results_0413("/r/m", 0.5, 1.0))
    loaded = load_inputs([tmp_path / "run", path])
    assert len(loaded.rows) == 1 and not [n for n in loaded.notes if "duplicate" in n]


def test_group_rows_and_reference_by_recorded_path(tmp_path):
    base = _results_0413("/w/base", 0.9, 1.0, n=40)
    # A group entry as lm-eval 0.4.13 writes it: summed sample_len, pooled metrics, no n-samples.
    base["results"]["rtc_paper"] = {
        "alias": "rtc_paper",
        "sample_len": 40,
        "vr,strict-match": 0.9,
        "rpass@1,strict-match": 0.5,
        "exact_match,strict-match": 0.45,
    }
    base["group_subtasks"] = {"rtc_paper": ["gsm"]}
    ckpt = _results_0413("/w/sft/checkpoint-7", 0.2, 2.0, n=40)
    paths = [_write(tmp_path / "a.json", base), _write(tmp_path / "b.json", ckpt)]
    board = build_leaderboard(load_inputs(paths), reference="/w/base")
    group = next(r for r in board.rows if r.task == "rtc_paper")
    assert group.n == 40 and group.metrics["vr"].successes == 36 and group.metrics["rpass@1"].successes == 18
    sft = next(r for r in board.rows if r.task == "gsm" and r.step == 7)
    assert sft.collapse.reference == "base" and sft.collapse.flagged is True
    # The checkpoint can be named by its recorded path without the checkpoint folder, plus @STEP.
    board = build_leaderboard(load_inputs(paths), reference="/w/sft@7")
    assert next(r for r in board.rows if r.task == "gsm" and r.step == 7).collapse.is_reference
