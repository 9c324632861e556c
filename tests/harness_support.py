"""Test helpers for the lm-eval harness tests: a deterministic tiny model and a scripted LM.

The tiny model is a 1-layer Llama whose attention and MLP outputs are zeroed, with one-hot
embeddings and an ``lm_head`` that is a successor table: greedy decoding emits, from the
prompt's last token on, a fixed chain of tokens. So the expected output of every prompt is
known exactly, through lm-eval's real hf backend on CPU.

Chains (the prompt's last word selects one):

- anything unknown, ``<|assistant|>``: ``<think>Let me think</think> The answer is 42``
- ``\\n`` (a template that pre-opens the trace with ``<think>\\n``):
  ``Let me think</think> The answer is 42``
- `` beta``: ``<think></think> The answer is 42`` (empty; plain-text tag pieces)
- `` gamma``: ``<think>Hmm hmm hmm ...`` until the budget (truncated; plain-text pieces)
- `` delta``: `` The answer is 42`` (missing)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: A qwen3-looking chat template (detection reads its markers) that pre-opens the trace.
PREFIXED_TEMPLATE = (
    "{# <|im_start|> enable_thinking reasoning_content </think> #}"
    "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}"
)
#: A template that does not open the trace.
PLAIN_TEMPLATE = (
    "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_WORDS = [
    "Let",
    " me",
    " think",
    " The",
    " answer",
    " is",
    " 42",
    "Hmm",
    " hmm",
    "<th",
    "ink>",
    "</",
    "think>",
    "<t",
    "hink>",
    " beta",
    " gamma",
    " delta",
    "\n",
]
_SUCCESSOR = {
    "<unk>": "<think>",
    "<|assistant|>": "<think>",
    "\n": "Let",
    "<think>": "Let",
    "Let": " me",
    " me": " think",
    " think": "</think>",
    "</think>": " The",
    " The": " answer",
    " answer": " is",
    " is": " 42",
    " 42": "</s>",
    " beta": "<th",
    "<th": "ink>",
    "ink>": "</",
    "</": "think>",
    "think>": " The",
    " gamma": "<t",
    "<t": "hink>",
    "hink>": "Hmm",
    "Hmm": " hmm",
    " hmm": " hmm",
    " delta": " The",
}


def build_tiny_model(path: Path, *, special_tags: bool, chat_template: str | None = None) -> Path:
    """Write a tiny deterministic Llama + tokenizer to ``path`` and return it.

    ``special_tags``: ``<think>``/``</think>`` are special added tokens (deleted by
    ``skip_special_tokens=True``) or ordinary added tokens.
    """
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
    vocab = {tok: i for i, tok in enumerate([*specials, *_WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[^\s]+|\n|\s+"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tags = [AddedToken(t, special=special_tags, normalized=False) for t in ("<think>", "</think>")]
    if special_tags:
        tok.add_special_tokens(tags)
    else:
        tok.add_tokens(tags)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    if chat_template is not None:
        hf_tok.chat_template = chat_template
    ids = {t: hf_tok.convert_tokens_to_ids(t) for t in [*specials, *_WORDS, "<think>", "</think>"]}
    n_vocab = len(hf_tok)
    hidden = 64
    assert n_vocab <= hidden, n_vocab
    config = LlamaConfig(
        vocab_size=n_vocab,
        hidden_size=hidden,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        rms_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, :n_vocab] = torch.eye(n_vocab)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        for i in range(n_vocab):
            model.lm_head.weight[ids["</s>"], i] = 1.0  # default: stop
        for src, dst in _SUCCESSOR.items():
            model.lm_head.weight[:, ids[src]] = 0.0
            model.lm_head.weight[ids[dst], ids[src]] = 1.0
    model.generation_config.pad_token_id = ids["<pad>"]
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


#: A test task: the doc's prompt verbatim (so its last word picks the tiny model's chain).
PROBE_TASK_YAML = """\
task: rtc_probe
class: !function rtc_tasks.task.RTCTask
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: answer
process_docs: !function rtc_tasks.docs.process_gsm8k
process_results: !function rtc_tasks.docs.results_number
generation_kwargs:
  until: []
  do_sample: false
  max_gen_toks: 24
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def scripted_lm_class() -> type:
    """An lm-eval ``LM`` whose generate_until returns ``doc["scripted"]`` (a str or a list per repeat)."""
    from lm_eval.api.model import LM

    class ScriptedLM(LM):
        def __init__(self) -> None:
            super().__init__()
            self.calls: dict[int, int] = {}

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            out = []
            for req in requests:
                scripted = req.doc["scripted"]
                if isinstance(scripted, list):  # one text per repeat, in order
                    k = self.calls.get(id(req), 0)
                    self.calls[id(req)] = k + 1
                    scripted = scripted[k]
                out.append(scripted)
            return out

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise NotImplementedError

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise NotImplementedError

    return ScriptedLM


#: A scripted-LM task: prompt verbatim, gold in "answer", the LM's text in "scripted".
SCRIPTED_TASK_YAML = """\
task: {name}
class: !function rtc_tasks.task.RTCTask
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: answer
process_results: !function rtc_tasks.docs.results_number
generation_kwargs:
  until: []
  do_sample: false
  max_gen_toks: 4096
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
{extra}"""


def write_scripted_task(
    folder: Path, name: str, docs: list[tuple[str, str]], extra: str = "", prompt: str = "Q"
) -> Path:
    """A task whose doc i has gold ``docs[i][1]`` and whose scripted output is ``docs[i][0]``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(
        folder / f"{name}.jsonl",
        [
            {"prompt": f"{prompt} {i}", "answer": gold, "scripted": text}
            for i, (text, gold) in enumerate(docs)
        ],
    )
    path = folder / f"{name}.yaml"
    path.write_text(SCRIPTED_TASK_YAML.format(name=name, data=data, extra=extra), encoding="utf-8")
    return path


def recount(samples: list[dict[str, Any]], fmt: Any, metric: str = "exact_match") -> dict[str, float | None]:
    """Independent recount of one filter's logged samples: rates and rpass@1 from raw resps.

    Uses the core parser directly (not rtc_tasks), one generation per doc.
    """
    from rtc_metrics.parsing import parse_trace

    counts = {"valid": 0, "empty": 0, "truncated": 0, "missing": 0}
    valid = valid_correct = correct = 0.0
    for s in samples:
        prompt = (
            s["arguments"][0][0]
            if isinstance(s["arguments"], list | tuple)
            else s["arguments"]["gen_args_0"]["arg_0"]
        )
        status = parse_trace(s["resps"][0][0], fmt, prompt=prompt).status.value
        counts[status] += 1
        c = float(s[metric])
        correct += c
        if status == "valid":
            valid += 1
            valid_correct += c
    n = len(samples)
    return {
        "vr": counts["valid"] / n,
        "er": counts["empty"] / n,
        "tr": counts["truncated"] / n,
        "mr": counts["missing"] / n,
        metric: correct / n,
        "rpass@1": valid_correct / valid if valid else None,
    }
