"""Property tests: on arbitrary text with random delimiter insertions the rules always hold."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rtc_metrics import TraceStatus, get_format, is_blank, list_formats, parse_trace

FORMATS = list_formats()
PIECES = st.sampled_from(["", " ", "\n", "\u200b", "a", "42", "x y", "<", ">", "think", "/", "é"])


@st.composite
def outputs(draw):
    fmt = draw(st.sampled_from(FORMATS))
    tokens = fmt.opens + fmt.closes
    parts = draw(st.lists(st.one_of(PIECES, st.text(max_size=5), st.sampled_from(tokens)), max_size=12))
    return fmt, "".join(parts), draw(st.one_of(st.none(), st.booleans()))


def reference_status(text, fmt, prefixed):
    """A slow, literal transcription of the contract (single-spelling formats)."""
    close = text.find(fmt.close)
    if close >= 0:
        open_ = text.find(fmt.open, 0, close)
        start = open_ + len(fmt.open) if open_ >= 0 and open_ + len(fmt.open) <= close else 0
        return TraceStatus.EMPTY if is_blank(text[start:close]) else TraceStatus.VALID
    if fmt.open in text or prefixed:
        return TraceStatus.TRUNCATED
    return TraceStatus.MISSING


@settings(max_examples=400, deadline=None)
@given(outputs())
def test_exactly_one_status_and_the_rules_hold(case):
    fmt, text, prefixed = case
    if prefixed is not None:
        fmt = fmt.with_prefixed(prefixed)
    t = parse_trace(text, fmt)
    assert t.status in set(TraceStatus)
    if not fmt.open_variants and not fmt.close_variants:
        assert t.status is reference_status(text, fmt, fmt.prefixed)
    has_close = any(c in text for c in fmt.closes)
    has_open = any(o in text for o in fmt.opens)
    if t.status is TraceStatus.MISSING:
        assert not has_close and not has_open and not fmt.prefixed
        assert t.answer == text.strip() and t.reasoning == ""
    if t.status is TraceStatus.TRUNCATED:
        assert not has_close and (has_open or fmt.prefixed) and t.answer == ""
    if t.status in (TraceStatus.VALID, TraceStatus.EMPTY):
        assert has_close
        assert (t.status is TraceStatus.EMPTY) == is_blank(t.reasoning)
        # the answer never contains a closing delimiter: it follows the last one
        assert not any(c in t.answer for c in fmt.closes)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_prompt_pre_opening_matches_last_delimiters(prompt, output):
    fmt = get_format("qwen3")
    t = parse_trace(output, fmt, prompt=prompt)
    last_open, last_close = prompt.rfind("<think>"), prompt.rfind("</think>")
    assert t.prefixed == (last_open >= 0 and last_open > last_close)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_valid_trace_round_trip(reasoning, between, answer):
    fmt = get_format("qwen3")
    clean = [s.replace("<think>", "").replace("</think>", "") for s in (reasoning, between, answer)]
    reasoning, _, answer = clean
    t = parse_trace(f"<think>{reasoning}</think>{answer}", fmt)
    assert t.status is (TraceStatus.EMPTY if is_blank(reasoning) else TraceStatus.VALID)
    assert t.reasoning == reasoning.strip() and t.answer == answer.strip()
