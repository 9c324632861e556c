"""The parser's contract: the four statuses, answers, anomalies, per family."""

import pytest

from rtc_metrics import Anomaly, TraceFormat, TraceStatus, get_format, parse_trace, prompt_opens_trace

V, E, T, M = TraceStatus.VALID, TraceStatus.EMPTY, TraceStatus.TRUNCATED, TraceStatus.MISSING


# (family, output, expected status, expected reasoning, expected answer)
FAMILY_CASES = [
    (
        "qwen3",
        "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.",
        V,
        "Let me add 2 and 2.",
        "The answer is 4.",
    ),
    ("qwen3", "<think>\n\n</think>\n\nThe answer is 4.", E, "", "The answer is 4."),
    ("qwen3", "<think>\nLet me add 2 and 2, which", T, "Let me add 2 and 2, which", ""),
    ("qwen3", "The answer is 4.", M, "", "The answer is 4."),
    ("qwen3_thinking", "Two plus two.\n</think>\n\n4", V, "Two plus two.", "4"),
    ("qwen3_thinking", "Two plus two is", T, "Two plus two is", ""),
    ("qwq", "\n</think>\n\n4", E, "", "4"),
    ("deepseek_r1", "Okay, 2+2=4.\n</think>\n\n**4**", V, "Okay, 2+2=4.", "**4**"),
    ("deepseek_r1", "Okay, 2+2", T, "Okay, 2+2", ""),
    ("deepseek_r1_0528", "<think>\nOkay.\n</think>\n4", V, "Okay.", "4"),
    ("deepseek_r1_0528", "4", M, "", "4"),
    ("olmo3", "I add them.</think>The sum is 4.", V, "I add them.", "The sum is 4."),
    ("nemotron", "<think>sum</think>4", V, "sum", "4"),
    ("phi4_reasoning", "<think>2+2</think>\nSolution: 4", V, "2+2", "Solution: 4"),
    ("magistral", "[THINK]Two and two.[/THINK]The answer is 4.", V, "Two and two.", "The answer is 4."),
    ("magistral", "[THINK]Two and", T, "Two and", ""),
    ("magistral_2506", "<think>x</think>4", V, "x", "4"),
    ("smollm3", "<think>\n\n</think>\n4", E, "", "4"),
    (
        "gpt_oss",
        "<|channel|>analysis<|message|>User asks 2+2. Easy.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>4<|return|>",
        V,
        "User asks 2+2. Easy.",
        "4",
    ),
    ("gpt_oss", "<|channel|>analysis<|message|>User asks 2+2", T, "User asks 2+2", ""),
    ("gpt_oss", "<|channel|>final<|message|>4<|return|>", M, "", "<|channel|>final<|message|>4<|return|>"),
    ("glm45", "<think></think>4", E, "", "4"),
    ("granite", "Here is my thought process: add. Here is my response: 4", V, "add.", "4"),
    ("granite", "Here's my thought process: add. Here's my response: 4", V, "add.", "4"),
    ("granite33", "<think>add</think><response>4</response>", V, "add", "4"),
    ("exaone4", "add\n</think>\n4", V, "add", "4"),
    ("exaone_deep", "add\n</thought>\n4", V, "add", "4"),
    (
        "seed_oss",
        "<seed:think>add<seed:cot_budget_reflect>used 5</seed:cot_budget_reflect></seed:think>4",
        V,
        "add<seed:cot_budget_reflect>used 5</seed:cot_budget_reflect>",
        "4",
    ),
    ("kimi", "<think>add</think>4", V, "add", "4"),
    ("minimax_m1", "<think>\nadd\n</think>\n4", V, "add", "4"),
    ("minimax_m2", "add\n</think>\n\n4", V, "add", "4"),
    ("hunyuan", "<think>\nadd\n</think>\n<answer>\n4\n</answer>", V, "add", "4"),
    ("ernie45", "add\n</think>\n\n<response>\n4\n</response>\n", V, "add", "4"),
    ("cohere_command", "<|START_THINKING|>add<|END_THINKING|><|START_RESPONSE|>4<|END_RESPONSE|>", V, "add", "4"),
    (
        "openthoughts",
        "<|begin_of_thought|>add<|end_of_thought|><|begin_of_solution|>4<|end_of_solution|>",
        V,
        "add",
        "4",
    ),
]


@pytest.mark.parametrize(("family", "text", "status", "reasoning", "answer"), FAMILY_CASES)
def test_family_outputs(family, text, status, reasoning, answer):
    t = parse_trace(text, get_format(family))
    assert (t.status, t.reasoning, t.answer) == (status, reasoning, answer)
    assert parse_trace(text, family) == t  # a registry name works as well as the object


def test_status_is_a_str_enum():
    t = parse_trace("<think>a</think>b", "qwen3")
    assert t.status == "valid" and isinstance(t.status, str) and str(t.status) == "valid"


def test_blank_includes_format_characters():
    # zero-width space, zero-width joiner, BOM, left-to-right mark, non-breaking space
    blank = "\u200b\u200d\ufeff\u200e\u00a0\n\t "
    assert parse_trace(f"<think>{blank}</think>4", "qwen3").status is E
    assert parse_trace(f"<think>{blank}x</think>4", "qwen3").status is V


def test_answer_after_last_close_and_first_trace_only():
    t = parse_trace("<think>one</think>mid<think>two</think> final ", "qwen3")
    assert (t.status, t.reasoning, t.answer) == (V, "one", "final")
    assert Anomaly.MULTIPLE_BLOCKS in t.anomalies


def test_first_open_before_first_close_starts_the_trace():
    t = parse_trace("<think>a<think>b</think>c", "qwen3")
    assert t.reasoning == "a<think>b"
    assert Anomaly.REPEATED_OPEN in t.anomalies


def test_close_without_open_in_non_prefixed_format_runs_from_start():
    t = parse_trace("reasoning here</think>4", "qwen3")
    assert (t.status, t.reasoning, t.answer) == (V, "reasoning here", "4")
    assert Anomaly.STRAY_CLOSE in t.anomalies
    # the same output under a pre-opening prompt is regular
    t2 = parse_trace("reasoning here</think>4", "qwen3", prompt="<|im_start|>assistant\n<think>\n")
    assert t2.status is V and t2.anomalies == () and t2.prefixed


def test_prompt_decides_prefixed_over_format_default():
    r1 = get_format("deepseek_r1")
    assert r1.prefixed
    # the old R1 template ends at the assistant tag: no pre-opened trace
    assert parse_trace("4", r1, prompt="<｜User｜>q<｜Assistant｜>").status is M
    assert parse_trace("4", r1).status is T
    # Qwen3 enable_thinking=False pre-fills a CLOSED block: the output is outside any trace
    closed = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert not prompt_opens_trace(closed, "qwen3")
    assert parse_trace("4", "qwen3", prompt=closed).status is M
    assert prompt_opens_trace("<think>a</think><think>\n", "qwen3")


def test_text_before_trace_and_no_answer():
    t = parse_trace("Sure! <think>x</think>", "qwen3")
    assert set(t.anomalies) == {Anomaly.TEXT_BEFORE_TRACE, Anomaly.NO_ANSWER}
    assert t.answer == "" and not t.has_answer


def test_trailing_open_and_stray_close():
    t = parse_trace("<think>x</think>4<think>more", "qwen3")
    assert t.status is V and Anomaly.TRAILING_OPEN in t.anomalies
    t = parse_trace("<think>x</think>4</think>", "qwen3")
    assert Anomaly.STRAY_CLOSE in t.anomalies and t.answer == ""


def test_truncated_answer_is_empty_and_missing_answer_is_whole_output():
    assert parse_trace("<think>abc", "qwen3").answer == ""
    assert parse_trace("  plain answer \n", "qwen3").answer == "plain answer"


def test_custom_delimiters_and_case_sensitivity():
    fmt = TraceFormat(open="<reasoning>", close="</reasoning>")
    assert parse_trace("<reasoning>r</reasoning>a", fmt).status is V
    assert parse_trace("<REASONING>r</REASONING>a", fmt).status is M
    prefixed = TraceFormat(open="<reasoning>", close="</reasoning>", prefixed=True)
    assert parse_trace("r</reasoning>a", prefixed).status is V


def test_answer_wrappers_only_stripped_after_a_trace():
    assert parse_trace("<think>x</think><answer>4</answer>", "hunyuan").answer == "4"
    # missing: the answer is the whole output, stripped, as the contract says
    assert parse_trace("<answer>4</answer>", "hunyuan").answer == "<answer>4</answer>"


@pytest.mark.parametrize(
    "kwargs",
    [{"open": "", "close": "</t>"}, {"open": "<t>", "close": ""}, {"open": "<t>", "close": "<t>"}],
)
def test_bad_custom_format_is_a_clear_error(kwargs):
    with pytest.raises(ValueError, match="delimiter"):
        TraceFormat(**kwargs)


def test_non_string_output_is_a_clear_error():
    with pytest.raises(TypeError, match="str"):
        parse_trace(None, "qwen3")
