"""Cost of the budget diagnostics per generation, against parsing alone (the baseline).

RTCTask parses every raw generation (``parse_trace``); the diagnostics then count the
generation and its trace in tokens (two ``tokenizer.encode`` calls) and classify the
budget. This times, on the same long generations:

- baseline: ``parse_trace`` alone;
- ``GenerationInfo.measure`` with a byte-level BPE fast tokenizer (the tests' offline
  Qwen3-style tokenizer: a 400-token vocabulary, so many tokens per character, a worst case);
- ``GenerationInfo.measure`` without a tokenizer (the chars/4 fallback).

Generations are built from the shared GSM8K prompts (skipped without ../shared), each a
``<think>`` trace of about ``--chars`` characters and a short answer.

    python benchmarks/bench_diagnostics.py [--n 200] [--chars 8000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sft_support import SHARED, make_tokenizer  # noqa: E402

from rtc_metrics.diagnostics import GenerationInfo  # noqa: E402
from rtc_metrics.parsing import parse_trace  # noqa: E402


def generations(n: int, chars: int) -> list[str]:
    path = SHARED / "data" / "paper-subsets" / "gsm8k_256.jsonl"
    if not path.is_file():
        sys.exit(f"shared data not found at {path}")
    prompts = [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines()]
    out = []
    for i in range(n):
        body = ""
        k = i
        while len(body) < chars:
            body += prompts[k % len(prompts)] + "\n"
            k += 7
        out.append(f"<think>\n{body[:chars]}\n</think>\n\nThe answer is {i}.")
    return out


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--chars", type=int, default=8000)
    args = parser.parse_args()
    texts = generations(args.n, args.chars)
    tok = make_tokenizer("Qwen__Qwen3-0.6B")
    parses = [parse_trace(t, "qwen3") for t in texts]

    base = best_of(lambda: [parse_trace(t, "qwen3") for t in texts])
    exact = best_of(lambda: [GenerationInfo.measure(t, p, 32768, tok) for t, p in zip(texts, parses, strict=True)])
    approx = best_of(lambda: [GenerationInfo.measure(t, p, 32768) for t, p in zip(texts, parses, strict=True)])
    tokens = sum(GenerationInfo.measure(t, p, 32768, tok).gen_tokens for t, p in zip(texts, parses, strict=True))
    per = 1e6 / len(texts)
    print(f"{len(texts)} generations of ~{args.chars} chars ({tokens / len(texts):.0f} tokens each, tiny BPE)")
    print(f"baseline parse_trace:            {base * per:9.1f} µs/generation")
    print(f"measure, tokenizer (2 encodes):  {exact * per:9.1f} µs/generation  ({exact / base:.1f}× parse)")
    print(f"measure, chars/4 fallback:       {approx * per:9.1f} µs/generation  ({approx / base:.2f}× parse)")


if __name__ == "__main__":
    main()
