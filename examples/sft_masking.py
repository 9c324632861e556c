"""Fine-tune a chat model with one of the study's loss-masking strategies.

Same flags as `rtc sft` (see docs/sft.md), e.g.

    python examples/sft_masking.py --model Qwen/Qwen3-0.6B --data train.jsonl --strategy mask --dry-run
"""

import sys

from rtc_metrics.cli.sft import main

if __name__ == "__main__":
    sys.exit(main())
