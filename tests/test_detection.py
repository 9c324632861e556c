"""Format detection on the real chat templates in ../shared, names, and decoding checks."""

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rtc_metrics import FormatDetectionError, delimiters_lost_in_decoding, detect_format, explain_detection
from rtc_metrics.cli import main as rtc_main

TEMPLATES = Path(__file__).resolve().parents[1].parent / "shared" / "reasoning-formats" / "chat_templates"

# template file -> (family, prefixed after rendering the generation prompt)
EXPECTED = {
    "ByteDance-Seed__Seed-OSS-36B-Instruct.jinja": ("seed_oss", False),
    "HuggingFaceTB__SmolLM3-3B.jinja": ("smollm3", False),
    "MiniMaxAI__MiniMax-M1.jinja": ("minimax_m1", False),
    "MiniMaxAI__MiniMax-M2.jinja": ("minimax_m2", True),
    "Qwen__QwQ-32B.jinja": ("qwq", True),
    "Qwen__Qwen3-0.6B.jinja": ("qwen3", False),
    "Qwen__Qwen3-4B-Thinking-2507.jinja": ("qwen3_thinking", True),
    "allenai__Olmo-3-Think_olmo_thinker.jinja": ("olmo3", True),
    "deepseek-ai__DeepSeek-R1-0528-Qwen3-8B.jinja": ("deepseek_r1_0528", False),
    "deepseek-ai__DeepSeek-R1-Distill-Llama-8B.jinja": ("deepseek_r1", True),
    "deepseek-ai__DeepSeek-R1-Distill-Qwen-32B.jinja": ("deepseek_r1", True),
    "deepseek-ai__DeepSeek-R1.jinja": ("deepseek_r1", True),
    "ibm-granite__granite-3.3-2b-instruct.jinja": ("granite33", False),
    "llama.cpp__Cohere2MoE.jinja": ("cohere_command", True),
    "microsoft__Phi-4-reasoning.jinja": ("phi4_reasoning", False),
    "mistralai__Ministral-3-14B-Reasoning-2512.jinja": ("magistral", False),
    "moonshotai__Kimi-K2-Thinking.jinja": ("kimi", False),
    "openai__gpt-oss-120b.jinja": ("gpt_oss", False),
    "tencent__Hunyuan-A13B-Instruct.jinja": ("hunyuan", False),
    "zai-org__GLM-4.6.jinja": ("glm45", False),
}

needs_shared = pytest.mark.skipif(not TEMPLATES.is_dir(), reason="../shared chat templates absent")


@needs_shared
def test_every_shared_template_is_covered():
    assert {p.name for p in TEMPLATES.glob("*.jinja")} <= set(EXPECTED)


@needs_shared
@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_detects_real_template(filename):
    path = TEMPLATES / filename
    if not path.exists():
        pytest.skip(f"{filename} absent")
    family, prefixed = EXPECTED[filename]
    from_path = detect_format(str(path))
    from_text = detect_format(path.read_text(encoding="utf-8"))
    assert (from_path.name, from_path.prefixed) == (family, prefixed)
    assert from_text == from_path


@needs_shared
def test_explanation_says_why():
    d = explain_detection(str(TEMPLATES / "Qwen__QwQ-32B.jinja"))
    text = d.explain()
    assert d.confidence == "high"
    assert "open trace" in text and "<think>" in text and d.generation_prompt_tail.endswith("<think>\n")


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-4B-Thinking-2507", "qwen3_thinking"),
        ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "deepseek_r1"),
        ("deepseek-ai/DeepSeek-R1-0528-Qwen3-8B", "deepseek_r1_0528"),
        ("allenai/Olmo-3-7B-Think", "olmo3"),
        ("nvidia/OpenReasoning-Nemotron-7B", "nemotron"),
        ("openai/gpt-oss-20b", "gpt_oss"),
        ("mistralai/Magistral-Small-2509", "magistral"),
    ],
)
def test_detects_from_model_name(name, family):
    assert detect_format(name).name == family


def test_unknown_template_is_a_clear_error_not_a_guess():
    chatml = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(FormatDetectionError, match="--format"):
        detect_format(chatml)
    with pytest.raises(FormatDetectionError, match="--format"):
        detect_format("some-org/plain-llm-7b")


def _tokenizer(special: bool) -> PreTrainedTokenizerFast:
    vocab = {c: i for i, c in enumerate(["[UNK]", "a", "b", "4", " "])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    if special:
        fast.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    else:
        fast.add_tokens(["<think>", "</think>"])
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
        "{# reasoning_content <think></think> #}"
    )
    return fast


@pytest.mark.parametrize("special", [True, False])
def test_special_token_delimiters_are_reported(special):
    tok = _tokenizer(special)
    lost = delimiters_lost_in_decoding(tok, "qwen3")
    assert lost == (("<think>", "</think>") if special else ())
    d = explain_detection(tok)
    assert d.format.name == "qwen3_thinking" and d.format.prefixed
    assert ("WARNING" in d.explain()) is special


@needs_shared
def test_rtc_detect_cli(capsys):
    assert rtc_main(["detect", str(TEMPLATES / "deepseek-ai__DeepSeek-R1.jinja")]) == 0
    out = capsys.readouterr().out
    assert "deepseek_r1" in out and "prefixed=True" in out


def test_rtc_detect_cli_unknown(capsys):
    assert rtc_main(["detect", "{{ messages }}"]) == 2
    assert "--format" in capsys.readouterr().err
