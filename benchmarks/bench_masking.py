"""Label building speed: rtc's encode_example / encode_many vs thinkpack.apply_mask.

Same records, same tokenizer (a byte-level BPE fast tokenizer with a real chat template,
built offline), same strategy (the trace masked). Prints records/s of each and the ratio
from this one run, then checks that the labels agree wherever ThinkPack's are right:
over the tokens both sequences share (the longest common prefix of input_ids), and
whole records when ThinkPack rendered the same text.

    python benchmarks/bench_masking.py [--n 512] [--template Qwen__Qwen3-0.6B] [--repeat 3]

Needs ../shared (the chat templates; prompts from gsm8k_256 when present) and thinkpack
(the `bench` extra).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the offline tokenizer builder the tests use

from sft_support import SHARED, TOKENIZER_SPECS, make_tokenizer  # noqa: E402

from rtc_metrics.io import iter_jsonl  # noqa: E402
from rtc_metrics.masking import IGNORE_INDEX, encode_example, encode_many  # noqa: E402
from rtc_metrics.token_offsets import encode_texts  # noqa: E402


def records(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Chats from the gsm8k subset (prompt, then a short worked answer), cycled to ``n``."""
    path = SHARED / "data" / "paper-subsets" / "gsm8k_256.jsonl"
    rows = [r for _, r in iter_jsonl(path)] if path.is_file() else [
        {"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in ((3, 4), (10, 32), (7, 8))
    ]
    rng = random.Random(seed)
    chats = []
    for i in range(n):
        row = rows[i % len(rows)]
        answer = f"Working through it step by step gives {row['answer']}. The answer is {row['answer']}."
        system = [{"role": "system", "content": "Answer briefly."}] if rng.random() < 0.5 else []
        turns = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
        chats.append([*system, *turns])
    return chats


def best_of(repeat: int, fns: dict) -> dict:
    """``{name: (best seconds, last result)}``; the contenders take turns in each round, so
    a load change on the machine hits all of them alike."""
    best = {name: (float("inf"), None) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn()
            best[name] = (min(best[name][0], time.perf_counter() - start), out)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--template", default="Qwen__Qwen3-0.6B", choices=sorted(TOKENIZER_SPECS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import thinkpack
    except ImportError:
        print("thinkpack is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    logging.getLogger("thinkpack").setLevel(logging.ERROR)
    tok = make_tokenizer(args.template)
    chats = records(args.n)
    encode_example(chats[0], tok, "mask")  # warm caches (template compile, probe, detection)
    thinkpack.apply_mask(chats[:1], tok, masked=thinkpack.MaskType.THINK)

    texts = [enc.layout.text for enc in encode_many(chats, tok, "mask")]
    runs = best_of(args.repeat, {
        "thinkpack": lambda: thinkpack.apply_mask(chats, tok, masked=thinkpack.MaskType.THINK),
        "one": lambda: [encode_example(c, tok, "mask") for c in chats],
        "many": lambda: encode_many(chats, tok, "mask"),
        # Tokenization alone, as each side does it (ThinkPack: one tokenizer call with
        # offsets per record; rtc: one batch), on rtc's texts: the floor under both.
        "tok_thinkpack": lambda: [tok(t, add_special_tokens=False, return_offsets_mapping=True) for t in texts],
        "tok_rtc": lambda: encode_texts(tok.backend_tokenizer, texts),
    })
    (t_tp, ds), (t_one, _), (t_many, ours) = runs["thinkpack"], runs["one"], runs["many"]
    t_tok_tp, t_tok_ours = runs["tok_thinkpack"][0], runs["tok_rtc"][0]

    n = len(chats)
    print(f"template {args.template}, {n} records, strategy mask, best of {args.repeat} interleaved rounds")
    print(f"  thinkpack.apply_mask       {n / t_tp:9.0f} records/s")
    print(f"  rtc encode_example (loop)  {n / t_one:9.0f} records/s   x{t_tp / t_one:.2f} vs thinkpack")
    print(f"  rtc encode_many (batch)    {n / t_many:9.0f} records/s   x{t_tp / t_many:.2f} vs thinkpack")
    print(f"  tokenization only: thinkpack-style {n / t_tok_tp:9.0f} records/s, rtc {n / t_tok_ours:9.0f} "
          f"records/s ({100 * t_tok_ours / t_many:.0f}% of encode_many's time)")

    same_text = agree_tokens = shared_tokens = disagree_records = 0
    first = None
    for i, (enc, row) in enumerate(zip(ours, ds, strict=True)):
        ids, labels = row["input_ids"], row["labels"]
        k = 0
        while k < min(len(ids), len(enc.input_ids)) and ids[k] == enc.input_ids[k]:
            k += 1
        same_text += ids == enc.input_ids
        shared_tokens += k
        agree = sum(1 for a, b in zip(labels[:k], enc.labels[:k], strict=True)
                    if (a == IGNORE_INDEX) == (b == IGNORE_INDEX))
        agree_tokens += agree
        if agree < k:
            disagree_records += 1
            first = first if first is not None else i
    print(f"  identical token sequences: {same_text}/{n} records")
    print(f"  label agreement on shared tokens: {agree_tokens}/{shared_tokens} "
          f"({100 * agree_tokens / max(shared_tokens, 1):.2f}%), records with a disagreement: "
          f"{disagree_records}")
    if first is not None:
        print(f"  first disagreement: record {first}")
    if same_text < n:  # say how ThinkPack's text differs, on the first record
        theirs = tok.decode(ds[0]["input_ids"], skip_special_tokens=False)
        ours_text = ours[0].layout.text
        k = next((i for i, (a, b) in enumerate(zip(theirs, ours_text, strict=False)) if a != b), len(theirs))
        print(f"  record 0 texts part at char {k}: thinkpack {theirs[k - 20 : k + 20]!r} "
              f"vs rtc {ours[0].layout.text[k - 20 : k + 20]!r}")
    return 0 if disagree_records == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
