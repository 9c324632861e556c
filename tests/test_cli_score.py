"""`rtc score` / `rtc formats` on JSONL files, including bad input and streaming."""

import json
import tracemalloc
from pathlib import Path

import pytest

from rtc_metrics import list_formats
from rtc_metrics.cli import main as rtc_main
from rtc_metrics.scoring import score_jsonl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "qwen3_outputs.jsonl"


def run(capsys, *argv):
    code = rtc_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_score_example_json(capsys):
    code, out, _ = run(capsys, "score", str(EXAMPLE), "--format", "qwen3", "--correct-field", "correct", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n"] == 8
    assert (data["vr"], data["er"], data["tr"], data["mr"]) == (0.5, 0.25, 0.125, 0.125)
    assert data["rpass@1"] == 0.75 and data["pass@1"] == 0.625
    assert data["vr_ci"][0] < 0.5 < data["vr_ci"][1]


def test_score_table(capsys):
    code, out, _ = run(capsys, "score", str(EXAMPLE), "--format", "qwen3", "--correct-field", "correct")
    assert code == 0 and "Rpass@1" in out and "75.0" in out


def test_custom_delimiters_and_prefixed(tmp_path, capsys):
    f = tmp_path / "o.jsonl"
    f.write_text('{"text": "r</R>a"}\n{"text": "r"}\n')
    code, out, _ = run(capsys, "score", str(f), "--open", "<R>", "--close", "</R>", "--prefixed", "--json")
    data = json.loads(out)
    assert code == 0 and (data["vr"], data["tr"]) == (0.5, 0.5)


def test_prompt_field_decides_per_line(tmp_path):
    f = tmp_path / "o.jsonl"
    rows = [{"output": "x", "prompt": "A:<think>\n"}, {"output": "x", "prompt": "A:"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = score_jsonl(f, list_formats()[0], prompt_field="prompt")
    assert (s.n_truncated, s.n_missing) == (1, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a"}\n{"text": "b"\n', ":2: not valid JSON"),
        ('{"text": "a"}\n[1, 2]\n', ":2: expected a JSON object"),
        ('{"text": 3}\n', ":1: field 'text' must be a string"),
        ('{"foo": "a"}\n', ":1: no output field found"),
        ("", "no records"),
    ],
)
def test_bad_input_is_reported_with_line_number(tmp_path, capsys, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    code, _, err = run(capsys, "score", str(f), "--format", "qwen3")
    assert code == 2 and message in err and "Traceback" not in err


def test_bad_correct_field(tmp_path, capsys):
    f = tmp_path / "o.jsonl"
    f.write_text('{"text": "a", "ok": "maybe"}\n')
    code, _, err = run(capsys, "score", str(f), "--format", "qwen3", "--correct-field", "ok")
    assert code == 2 and ":1: field 'ok'" in err


def test_format_argument_errors(capsys):
    code, _, err = run(capsys, "score", str(EXAMPLE))
    assert code == 2 and "--format" in err
    code, _, err = run(capsys, "score", str(EXAMPLE), "--open", "<a>")
    assert code == 2 and "--close" in err


def test_streaming_memory_is_flat(tmp_path):
    """Peak memory does not grow with the file: lines are parsed one at a time."""
    line = json.dumps({"text": "<think>" + "reasoning " * 200 + "</think>42"}) + "\n"

    def peak(n_lines):
        f = tmp_path / f"big{n_lines}.jsonl"
        f.write_text(line * n_lines)
        tracemalloc.start()
        score_jsonl(f, list_formats()[0])
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(200), peak(4000)  # the large file is ~8 MB
    assert large < small * 2 + 200_000


def test_formats_lists_registry(capsys):
    code, out, _ = run(capsys, "formats", "--json")
    names = {f["name"] for f in json.loads(out)}
    assert code == 0 and len(names) >= 20 and {"qwen3", "gpt_oss", "olmo3", "openthoughts"} <= names


def test_tokenizer_counts_trace_tokens(tmp_path, capsys):
    from rtc_metrics.demo.toy import build_tokenizer

    tok_dir = tmp_path / "tok"
    build_tokenizer().save_pretrained(tok_dir)  # character-level: tokens == characters
    f = tmp_path / "o.jsonl"
    f.write_text('{"text": "<think>abcd</think>x"}\n{"text": "<think>ab</think>y"}\n{"text": "z"}\n')
    code, out, _ = run(capsys, "score", str(f), "--format", "qwen3", "--tokenizer", str(tok_dir), "--json")
    data = json.loads(out)
    assert code == 0 and data["mean_trace_tokens"] == 3 and data["mean_trace_chars"] == 3
    code, _, err = run(capsys, "score", str(f), "--format", "qwen3", "--tokenizer", str(tmp_path / "nope"))
    assert code == 2 and "--tokenizer" in err


def test_atomic_write_leaves_no_temp_file_and_normal_permissions(tmp_path):
    import os

    from rtc_metrics.io import atomic_write

    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_write(target) as handle:
        handle.write("done")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "done" and (target.stat().st_mode & 0o777) == (0o666 & ~umask)
