"""Accuracy decomposition (hand computation), per-class accuracy, rtc score --show, rtc compare --decompose,
and the SFT mask audit on crafted records."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from rtc_metrics.cli import main
from rtc_metrics.decompose import ClassCounts, decompose
from rtc_metrics.parsing import parse_trace
from rtc_metrics.stats import summarize


def test_decomposition_matches_a_hand_computation_and_sums_exactly():
    # Before: 80 valid (60 correct), 20 truncated (2 correct): acc 0.62.
    # After: 60 valid (42 correct), 40 truncated (2 correct): acc 0.44.
    a = ClassCounts({"valid": 80, "truncated": 20}, {"valid": 60, "truncated": 2})
    b = ClassCounts({"valid": 60, "truncated": 40}, {"valid": 42, "truncated": 2})
    d = decompose(a, b, draws=500)
    # valid: ΔP −0.2 × mean acc 0.725 = −0.145; Δacc −0.05 × mean P 0.7 = −0.035
    # truncated: ΔP +0.2 × mean acc 0.075 = +0.015; Δacc −0.05 × mean P 0.3 = −0.015
    assert d.by_class["valid"] == pytest.approx((-0.145, -0.035))
    assert d.by_class["truncated"] == pytest.approx((0.015, -0.015))
    assert d.structural == pytest.approx(-0.13) and d.conditional == pytest.approx(-0.05)
    assert d.structural + d.conditional == pytest.approx(d.acc_after - d.acc_before, abs=1e-15)
    assert d.total == pytest.approx(0.44 - 0.62, abs=1e-15)
    assert d.total_ci[0] < d.total < d.total_ci[1]
    text = d.sentence(with_intervals=False)
    assert text == (
        "−18.0 pts: −13.0 from fewer valid traces (VR 80.0% → 60.0%), −3.5 from lower accuracy given a "
        "valid trace, −1.5 from accuracy given an invalid trace (empty/truncated/missing)"
    )


def test_empty_classes_take_the_other_runs_accuracy():
    # "missing" exists only before, "truncated" only after: those terms are all structural.
    a = ClassCounts({"valid": 8, "missing": 2}, {"valid": 6, "missing": 1})
    b = ClassCounts({"valid": 5, "truncated": 5}, {"valid": 5, "truncated": 0})
    d = decompose(a, b, draws=0)
    assert d.by_class["missing"] == pytest.approx((-0.2 * 0.5, 0.0))
    assert d.by_class["truncated"] == pytest.approx((0.5 * 0.0, 0.0))
    assert d.by_class["empty"] == (0.0, 0.0)
    assert d.structural + d.conditional == pytest.approx(0.5 - 0.7, abs=1e-15)
    assert d.total_ci is None


def test_sentence_parts_add_up_to_the_rounded_total():
    a = ClassCounts({"valid": 3, "missing": 4}, {"valid": 1, "missing": 1})
    b = ClassCounts({"valid": 6, "missing": 1}, {"valid": 4, "missing": 1})
    d = decompose(a, b, draws=0)
    found = re.findall(r"([+−]\d+\.\d) (?:pts|from)", d.sentence(with_intervals=False))
    numbers = [float(t.replace("−", "-")) for t in found]
    assert len(numbers) >= 3
    assert round(sum(numbers[1:]), 1) == numbers[0]


def test_per_class_accuracy_in_trace_summary():
    texts = ["<think>a</think> 4", "<think>a</think> 5", "<think></think> 4", "<think>x", "4"]
    s = summarize([parse_trace(t, "qwen3") for t in texts], [1, 0, 1, 0, 1])
    d = s.to_dict()
    assert (d["acc_valid"], d["acc_empty"], d["acc_truncated"], d["acc_missing"]) == (0.5, 1.0, 0.0, 1.0)
    assert d["acc_valid"] == d["rpass@1"]
    assert d["counts"]["class_scored"] == {"valid": 2, "empty": 1, "truncated": 1, "missing": 1}


def _samples(folder, name, lines):
    folder.mkdir(parents=True)
    path = folder / f"samples_rtc_x_2026-11-26T10-00-0{name}.000000.jsonl"
    records = [
        {
            "doc_id": i,
            "doc": {},
            "target": "4",
            "arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": {}}},
            "resps": [[text]],
            "filtered_resps": [text],
            "filter": "none",
            "metrics": ["exact_match"],
            "exact_match": correct,
        }
        for i, (text, correct) in enumerate(lines)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_compare_decompose_from_recounted_samples(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    v, t = "<think>w</think> 4", "<think>w"
    _samples(tmp_path / "base", "1", [(v, 1)] * 8 + [(v, 0)] * 2)
    _samples(tmp_path / "tuned", "2", [(v, 1)] * 4 + [(v, 0)] * 1 + [(t, 0)] * 5)
    code = main(["compare", str(tmp_path / "base"), str(tmp_path / "tuned"), "--format", "qwen3",
                 "--decompose", "base", "tuned", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    # acc 0.8 → 0.4; structural: ΔP_valid −0.5 × 0.8 + ΔP_trunc +0.5 × 0 = −0.4; conditional 0.
    assert "rtc_x: base → tuned: −40.0 pts" in out
    assert "−40.0 from fewer valid traces (VR 100.0% → 50.0%)" in out
    code = main(["compare", str(tmp_path / "base"), str(tmp_path / "tuned"), "--format", "qwen3",
                 "--reference", "base", "--json", str(tmp_path / "rows.json"), "--quiet"])
    rows = {r["model"]: r for r in json.loads((tmp_path / "rows.json").read_text())}
    main(["compare", str(tmp_path / "base"), str(tmp_path / "tuned"), "--format", "qwen3",
          "--reference", "base", "--markdown", str(tmp_path / "t.md"), "--quiet"])
    assert "- rtc_x: base → tuned: −40.0 pts" in (tmp_path / "t.md").read_text()
    assert main(["compare", str(tmp_path / "base"), "--format", "qwen3", "--decompose", "base", "nope"]) == 2
    assert "--decompose 'nope': no such model" in capsys.readouterr().err
    assert rows["tuned"]["acc_change"]["structural"] == pytest.approx(-0.4)
    assert rows["tuned"]["acc_change"]["conditional"] == pytest.approx(0.0, abs=1e-15)
    assert rows["base"]["acc_change"] is None


def test_score_show_prints_examples_side_by_side(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside the example cells
    path = tmp_path / "out.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in ["<think>plan [red]x[/red]</think> 4", "<think>cut", "7"])
    )
    assert main(["score", str(path), "--format", "qwen3", "--show", "truncated"]) == 0
    out = capsys.readouterr().out
    assert "truncated: 1 example(s)" in out and "cut" in out and "valid: " not in out
    assert main(["score", str(path), "--format", "qwen3", "--show", "all", "--show-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "plan [red]x[/red]" in out  # model text is never read as markup
    assert main(["score", str(path), "--format", "qwen3", "--show", "bogus"]) == 2


def test_score_show_reads_lm_eval_samples_with_budget_records(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    path = _samples(tmp_path / "run", "3", [("<think>long", 0), ("<think>a</think> 4", 1)])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0]["rtc_sample"] = {"anomalies": ["no_answer", "truncated_by_budget"], "trace_tokens": 30,
                              "gen_tokens": 32, "budget_hit": True, "max_gen_toks": 32}
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["score", str(path), "--format", "qwen3", "--show", "truncated"]) == 0
    out = capsys.readouterr().out
    assert "truncated_by_budget" in out and "hit max_gen_toks=32" in out


# --- mask audit ----------------------------------------------------------------------------

from sft_support import make_tokenizer, require_templates  # noqa: E402

from rtc_metrics.mask_audit import MaskAuditError, audit, audit_many  # noqa: E402
from rtc_metrics.masking import IGNORE_INDEX, encode, encode_many  # noqa: E402

CHAT = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "The answer is 4."}]
QWEN3 = "Qwen__Qwen3-0.6B"


@pytest.fixture
def qwen3():
    require_templates()
    return make_tokenizer(QWEN3)


def _checks(enc, chat=CHAT, tok=None):
    return [p.check for p in audit(enc, chat, tok)]


def test_presets_pass_the_audit_and_close_only_masks_exactly_the_close(qwen3):
    for strategy in ("bare", "empty", "mask", "respond", "close_only"):
        enc = encode(CHAT, qwen3, strategy)
        assert _checks(enc) == [], strategy
    enc = encode(CHAT, qwen3, "close_only")
    masked = [enc.layout.text[s:e] for (s, e), lab in zip(enc.offsets, enc.labels, strict=True) if lab == IGNORE_INDEX]
    assert masked == ["</think>"]


def test_audit_fails_a_record_that_trains_no_answer_token(qwen3):
    enc = encode(CHAT, qwen3, "respond")
    lo = enc.layout.response_start
    labels = [IGNORE_INDEX if s >= lo else lab for (s, _), lab in zip(enc.offsets, enc.labels, strict=True)]
    assert _checks(dataclasses.replace(enc, labels=labels)) == ["no_answer_token"]


def test_audit_fails_an_open_delimiter_trained_without_its_close(qwen3):
    enc = encode(CHAT, qwen3, "empty")
    cs, ce = enc.layout.close_span
    labels = [IGNORE_INDEX if s < ce and e > cs else lab for (s, e), lab in zip(enc.offsets, enc.labels, strict=True)]
    assert _checks(dataclasses.replace(enc, labels=labels)) == ["open_without_close"]


def test_audit_fails_a_merge_across_a_masked_boundary():
    require_templates()
    tok = make_tokenizer("Qwen__QwQ-32B")
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\n\nHello there.\n"}]
    enc = encode(chat, tok, "bare:prompt")
    assert enc.straddled and _checks(enc, chat) == ["straddled"]
    with pytest.raises(MaskAuditError, match=r"record 0: mask audit failed \(bare:prompt\): straddled"):
        audit_many([enc], [chat])


def test_audit_fails_a_template_that_rewrites_earlier_turns(qwen3):
    # Earlier assistant turns render differently once a later assistant turn follows.
    import copy

    tok = copy.deepcopy(qwen3)
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n"
        "{% if m.role == 'assistant' and messages[-1].role == 'assistant' and not loop.last %}[old] {% endif %}"
        "{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n\n</think>\n\n{% endif %}"
    )
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "And 3*3?"}, {"role": "assistant", "content": "9"}]
    enc = encode_many([chat], tok, "mask", "qwen3")[0]
    assert "turn_shift" in _checks(enc, chat, tok)


def test_sft_data_refuses_a_failing_record_naming_its_line(tmp_path):
    require_templates()
    from rtc_metrics.io import InputError
    from rtc_metrics.sft.data import Record, encode_records

    tok = make_tokenizer("Qwen__QwQ-32B")
    good = Record("data.jsonl:1", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}])
    bad = Record("data.jsonl:2", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\n\nHello."}])
    from rtc_metrics.masking import resolve_strategy

    with pytest.raises(InputError, match=r"data.jsonl:2: mask audit failed .*straddled"):
        encode_records([good, bad], tok, resolve_strategy("bare:prompt"), __import__("rtc_metrics").get_format("qwq"))


def test_close_section_composes_and_unknown_sections_name_it():
    from rtc_metrics.masking import MaskSpec, Section

    assert MaskSpec.parse("close_only").masked == {Section.CLOSE}
    assert MaskSpec.parse("empty:prompt,close").masked == {Section.PROMPT, Section.CLOSE}
    with pytest.raises(ValueError, match="prompt, trace, close"):
        MaskSpec.parse("empty:answer")


def test_decompose_pair_says_which_row_lacks_counts():
    from rtc_metrics.compare.intervals import count_estimate
    from rtc_metrics.compare.leaderboard import decompose_pair
    from rtc_metrics.compare.rows import METRICS, Row

    def row(model, classes):
        metrics = {k: count_estimate(1, 2) for k in METRICS}
        return Row(model, None, "t", metrics, 2, "x", "results", 0.0, model, classes=classes)

    a = row("a", ClassCounts({"valid": 2}, {"valid": 1}))
    b = row("b", None)
    (change,) = decompose_pair([a, b], "a", "b")
    assert change.decomposition is None and "no per-class counts for b" in change.sentence()


def test_rounded_parts_always_add_up_to_the_rounded_total():
    import random

    from rtc_metrics.decompose import _round_summing

    rng = random.Random(0)
    for _ in range(2000):
        parts = [rng.uniform(-0.5, 0.5) for _ in range(3)]
        total, shown = _round_summing(sum(parts), parts)
        assert round(sum(shown), 1) == total
        assert all(abs(100 * p - q) <= 0.1 + 1e-9 for p, q in zip(parts, shown, strict=True))


def test_qwen3_earlier_turn_reasoning_is_stripped_and_the_final_turn_is_masked_alone(qwen3):
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>old plan</think>Hello."},
            {"role": "user", "content": "And 3*3?"}, {"role": "assistant", "content": "9"}]
    for strategy, masked_text in (("mask", "<think>\n\n</think>\n\n"), ("close_only", "</think>")):
        enc = encode(chat, qwen3, strategy)
        assert "old plan" not in enc.layout.text  # the template dropped the earlier reasoning
        assert _checks(enc, chat, qwen3) == []
        pieces = zip(enc.offsets, enc.labels, strict=True)
        assert "".join(enc.layout.text[s:e] for (s, e), lab in pieces if lab == IGNORE_INDEX) == masked_text
