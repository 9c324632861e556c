"""``rtc detect``: explain which reasoning format a template, tokenizer or model uses."""

from __future__ import annotations

import argparse
import dataclasses

from rtc_metrics.cli._common import print_json
from rtc_metrics.detection import explain_detection


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "detect",
        help="detect a model's reasoning format and explain why",
        description="PATH_OR_TEMPLATE: a .jinja file, a tokenizer_config.json, a model folder, "
        "a chat template string, or a model name.",
    )
    parser.add_argument("source", metavar="PATH_OR_TEMPLATE")
    parser.add_argument(
        "--tokenizer",
        action="store_true",
        help="load the folder with transformers.AutoTokenizer to also check decoding",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source = args.source
    if args.tokenizer:
        from transformers import AutoTokenizer

        source = AutoTokenizer.from_pretrained(args.source)
    detection = explain_detection(source)
    if args.json:
        data = dataclasses.asdict(detection)
        print_json(data)
    else:
        print(detection.explain())
    return 0
