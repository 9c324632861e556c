"""Short CPU training runs: loss moves, the monitor writes its curve, resume is exact."""

from __future__ import annotations

import json

import pytest
from sft_support import addition_rows, make_tiny_model_dir, require_templates, write_jsonl
from transformers import TrainerCallback

from rtc_metrics.cli import main as rtc_main
from rtc_metrics.io import InputError
from rtc_metrics.sft.config import load_config
from rtc_metrics.sft.data import load_records
from rtc_metrics.sft.monitor import CURVE_KEYS, answers_match, read_curve
from rtc_metrics.sft.train import COMPLETE_MARK, complete_checkpoints, run_sft


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    require_templates()
    root = tmp_path_factory.mktemp("sft")
    make_tiny_model_dir(root / "model")
    write_jsonl(root / "data.jsonl", addition_rows(72))
    return root


def _config(workdir, out, **overrides):
    settings = dict(
        model=str(workdir / "model"), data=str(workdir / "data.jsonl"), output_dir=str(out),
        strategy="mask", batch_size=8, max_steps=6, save_steps=2, logging_steps=1, learning_rate=3e-3,
        monitor_prompts=8, monitor_every=3, monitor_max_new_tokens=12, monitor_overhead=None,
    )
    settings.update(overrides)
    return load_config("cpu-tiny", overrides=settings)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


class _Interrupt(TrainerCallback):
    """Simulates a crash right after the checkpoint at ``step`` is written."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_training_moves_the_loss_and_writes_the_curve(workdir):
    out = workdir / "run-mask"
    summary = run_sft(_config(workdir, out), disable_tqdm=True)
    assert summary["steps"] == 6
    assert summary["last_logged_loss"] < summary["first_logged_loss"]
    curve = read_curve(out / "monitor.jsonl")
    assert [row["step"] for row in curve] == [0, 3, 6]
    for row in curve:
        assert list(row) == list(CURVE_KEYS)
        assert row["n"] == 8 and row["model"] == "mask" and row["strategy"] == "mask"
        assert row["vr"] + row["er"] + row["tr"] + row["mr"] == pytest.approx(1.0)
        assert row["pass@1"] is not None  # held-out training records carry references
    run = json.loads((out / "run.json").read_text())
    assert run["monitor_evaluations"] == 3 and run["monitor_seconds"] > 0
    assert (out / "final" / "model.safetensors").is_file()
    assert (out / "final" / "tokenizer_config.json").is_file()
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    # A second run into the same folder without --resume is refused.
    with pytest.raises(InputError, match="--resume"):
        run_sft(_config(workdir, out), disable_tqdm=True)


def test_resume_after_interruption_gives_the_same_weights(workdir):
    straight = workdir / "straight"
    run_sft(_config(workdir, straight, strategy="respond"), disable_tqdm=True)
    broken = workdir / "broken"
    with pytest.raises(KeyboardInterrupt):
        run_sft(_config(workdir, broken, strategy="respond"), callbacks=[_Interrupt(4)], disable_tqdm=True)
    assert not (broken / "final").exists()
    # A half-written newer checkpoint (no completion mark) is not resumed from.
    (broken / "checkpoint-5").mkdir()
    summary = run_sft(_config(workdir, broken, strategy="respond"), resume=True, disable_tqdm=True)
    assert summary["resumed_from"].endswith("checkpoint-4")
    a, b = _weights(straight / "final"), _weights(broken / "final")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    # The curve is the same evaluation steps with the same values, with no duplicates.
    assert read_curve(straight / "monitor.jsonl") == read_curve(broken / "monitor.jsonl")
    with pytest.raises(InputError, match="different settings"):
        run_sft(_config(workdir, broken, strategy="mask"), resume=True, disable_tqdm=True)


def test_lora_early_stop_and_adapter_output(workdir):
    out = workdir / "lora"
    cfg = _config(workdir, out, full=False, lora_r=4, lora_alpha=4, max_steps=4, monitor_every=2,
                  early_stop_vr=1.01, strategy="bare")
    summary = run_sft(cfg, disable_tqdm=True)
    assert summary["lora"] is True
    assert summary["stopped_early_at"] == 2 and summary["steps"] == 2
    assert (out / "final" / "adapter_config.json").is_file()
    assert (out / "checkpoint-2" / COMPLETE_MARK).is_file()


def test_malformed_records_name_their_line(workdir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "response": "b"}\n\n{"instruction": "a"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:3: expected 'messages'"):
        load_records(str(bad))
    bad.write_text('{"instruction": "a", "response": "b"}\n{"instruction": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON"):
        load_records(str(bad))
    rows = [*addition_rows(12), {"instruction": "q", "response": "   "}]
    write_jsonl(bad, rows)
    with pytest.raises(InputError, match=r"bad\.jsonl:13: the assistant answer is blank"):
        run_sft(_config(workdir, tmp_path / "out", data=str(bad), monitor_prompts=0), disable_tqdm=True)


def test_cli_dry_run_and_errors(workdir, capsys):
    code = rtc_main(["sft", "--model", str(workdir / "model"), "--data", str(workdir / "data.jsonl"),
                     "--strategy", "respond", "--dry-run", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "format qwen3" in out and "data.jsonl:2" in out and "masked" in out
    code = rtc_main(["sft", "--model", str(workdir / "model"), "--data", str(workdir / "nope.jsonl"),
                     "--dry-run"])
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = rtc_main(["sft", "--model", "m", "--data", "d", "--strategy", "mask:all", "--dry-run"])
    assert code == 2 and "RENDER" in capsys.readouterr().err


def test_config_precedence_and_errors(tmp_path):
    cfg = load_config()
    study = (cfg.lora_r, cfg.lora_alpha, cfg.learning_rate, cfg.epochs, cfg.warmup_ratio)
    assert study == (16, 16, 1e-5, 3.0, 0.1)
    assert cfg.lora_target == "all-linear" and not cfg.full
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.001\nbatch_size: 4\n", encoding="utf-8")
    cfg = load_config("cpu-tiny", str(path), {"batch_size": 2})
    assert (cfg.full, cfg.learning_rate, cfg.batch_size) == (True, 0.001, 2)
    path.write_text("learning_rat: 1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown setting.*learning_rat"):
        load_config(config_file=str(path))
    with pytest.raises(InputError, match="unknown profile"):
        load_config("gpu-huge")


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [("The answer is 42.", "42", True), ("so 1,234 apples", "#### 1234", True), ("it is 41", "42", False),
     ("", "42", False), ("Paris", " paris ", True), ("Lyon", "Paris", False)],
)
def test_answers_match(answer, reference, expected):
    assert answers_match(answer, reference) is expected


def test_cli_trains_with_monitor_data_from_a_datasets_folder(workdir, tmp_path, capsys):
    folder = tmp_path / "ds"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", addition_rows(24, seed=1))
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "What is 1 + 1?"}, {"prompt": "Hi"}])
    out = tmp_path / "cli-run"
    code = rtc_main(["sft", "--profile", "cpu-tiny", "--model", str(workdir / "model"), "--data", str(folder),
                     "--strategy", "empty:prompt", "--max-steps", "2", "--batch-size", "4",
                     "--save-steps", "2", "--monitor-data", str(prompts), "--monitor-every", "1",
                     "--monitor-max-new-tokens", "4", "--monitor-overhead", "off", "--run-label", "probe",
                     "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "run.json").read_text())
    assert summary["train_records"] == 24 and summary["held_out_prompts"] == 2
    curve = read_curve(out / "monitor.jsonl")
    assert [row["step"] for row in curve] == [0, 1, 2]
    assert all(row["pass@1"] is None and row["model"] == "probe" for row in curve)
    assert all(row["strategy"] == "empty:prompt" for row in curve)
