"""Throughput of rtc_metrics.parse_trace vs thinkpack.parse on the same corpus of long traces.

Run: python benchmarks/bench_parse.py [--n 2000] [--trace-chars 20000]
Prints MB/s for each and the ratio (rtc / thinkpack) from one run. The baseline is
ThinkPack (PyPI `thinkpack`, the study authors' library; `pip install -e ".[bench]"`).
rtc also computes anomalies, which ThinkPack does not.
"""

from __future__ import annotations

import argparse
import random
import time

from rtc_metrics import get_format, parse_trace

WORDS = [
    "so",
    "the",
    "sum",
    "is",
    "then",
    "we",
    "carry",
    "one",
    "and",
    "check",
    "again",
    "wait",
    "maybe",
    "not",
    "let",
    "me",
    "verify",
]


def make_corpus(n: int, trace_chars: int, seed: int = 0) -> list[str]:
    """Outputs in all four classes (60% valid), each with a trace of about trace_chars."""
    rng = random.Random(seed)
    corpus = []
    for i in range(n):
        words = []
        size = 0
        target = rng.randint(trace_chars // 2, trace_chars * 3 // 2)
        while size < target:
            w = rng.choice(WORDS)
            words.append(w)
            size += len(w) + 1
        trace = " ".join(words)
        kind = i % 10
        if kind < 6:
            corpus.append(f"<think>\n{trace}\n</think>\n\nThe answer is {i}.")
        elif kind == 6:
            corpus.append("<think>\n\n</think>\n\nThe answer is 4.")
        elif kind < 9:
            corpus.append(f"<think>\n{trace}")
        else:
            corpus.append(f"The answer is {i}.")
    return corpus


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trace-chars", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import thinkpack

    corpus = make_corpus(args.n, args.trace_chars)
    megabytes = sum(len(t.encode()) for t in corpus) / 1e6
    fmt = get_format("qwen3")
    info = thinkpack.ModelInfo(prefixed=False)

    ours = [parse_trace(t, fmt) for t in corpus]
    theirs = [thinkpack.parse(t, model_info=info) for t in corpus]
    for a, b in zip(ours, theirs, strict=True):  # same classification on this corpus
        assert a.status == (
            "valid"
            if b.has_valid_reasoning
            else "empty"
            if b.has_empty_reasoning
            else "truncated"
            if b.has_truncated_reasoning
            else "missing"
        )

    t_rtc = best_of(args.repeats, lambda: [parse_trace(t, fmt) for t in corpus])
    t_tp = best_of(args.repeats, lambda: [thinkpack.parse(t, model_info=info) for t in corpus])
    print(f"corpus: {args.n} outputs, {megabytes:.1f} MB (best of {args.repeats})")
    print(f"rtc parse_trace (with anomalies): {megabytes / t_rtc:8.1f} MB/s")
    print(f"thinkpack.parse:                  {megabytes / t_tp:8.1f} MB/s")
    print(f"ratio rtc / thinkpack:            {t_tp / t_rtc:8.2f}x")


if __name__ == "__main__":
    main()
