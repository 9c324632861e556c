"""Generate with vLLM's ``LLM`` directly (no lm-eval), for comparison with lm-eval's vllm backend.

    python tests/vllm_cpu/direct_generate.py MODEL REQUESTS.json OUT.json

REQUESTS.json: ``[{"prompt": str, "max_tokens": int}, ...]``; OUT.json: ``[{"text", "finish_reason"}]``.
``LLM()`` spawns worker processes, hence the ``__main__`` guard.
"""

import json
import sys

if __name__ == "__main__":
    from vllm import LLM, SamplingParams

    model, requests_path, out_path = sys.argv[1:4]
    with open(requests_path) as fh:
        requests = json.load(fh)
    llm = LLM(model=model, dtype="float32", max_model_len=512, enforce_eager=True, seed=1234)
    params = [
        SamplingParams(
            max_tokens=r["max_tokens"], temperature=0.0, skip_special_tokens=False,
            spaces_between_special_tokens=False,
        )
        for r in requests
    ]  # fmt: skip
    outputs = llm.generate([r["prompt"] for r in requests], params)
    result = [{"text": o.outputs[0].text, "finish_reason": o.outputs[0].finish_reason} for o in outputs]
    with open(out_path, "w") as fh:
        json.dump(result, fh)
