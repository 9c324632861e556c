"""The registry of reasoning-trace formats: one source of truth for delimiters.

Parsing (:mod:`rtc_metrics.parsing`), detection (:mod:`rtc_metrics.detection`) and
SFT loss masking all read the delimiters from here, so a family is described once.
Facts come from the families' chat templates and vLLM's reasoning parsers; entries
marked "unverified" rest on weaker sources (see ``docs/formats.md``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

__all__ = [
    "TraceFormat",
    "UnknownFormatError",
    "get_format",
    "list_formats",
    "register_format",
]


@dataclass(frozen=True)
class TraceFormat:
    """How one model family delimits its reasoning trace.

    Matching is on text, exact and case-sensitive.
    """

    #: Opening delimiter exactly as it appears in decoded text, e.g. ``"<think>"``.
    open: str
    #: Closing delimiter, e.g. ``"</think>"``.
    close: str
    #: True when the family's chat template usually pre-opens the trace in the
    #: generation prompt, so outputs start inside the trace and show only ``close``.
    #: Per generation, the prompt decides (see ``parse_trace(prompt=...)``).
    prefixed: bool = False
    #: Registry name, e.g. ``"qwen3"``; ``"custom"`` for user-made pairs.
    name: str = "custom"
    #: ``(prefix, suffix)`` pairs removed from the answer segment when present,
    #: e.g. ``("<answer>", "</answer>")``; the first matching prefix and the first
    #: matching suffix are removed.
    answer_wrappers: tuple[tuple[str, str], ...] = ()
    #: True when the delimiters are special tokens that
    #: ``decode(..., skip_special_tokens=True)`` deletes.
    special_tokens: bool = False
    #: Other spellings accepted for the opening delimiter (Granite's "Here's ...").
    open_variants: tuple[str, ...] = ()
    #: Other spellings accepted for the closing delimiter.
    close_variants: tuple[str, ...] = ()
    #: Strings that all occur in this family's chat templates (used by detection).
    template_markers: tuple[str, ...] = ()
    #: False for families whose chat template never spells the delimiters (the model
    #: writes them unprompted), so detection may rely on ``template_markers`` alone.
    delimiters_in_template: bool = True
    #: Lower-case substrings of model names that identify the family.
    model_patterns: tuple[str, ...] = ()
    #: Models covered and caveats, for ``rtc formats``.
    description: str = ""
    #: Facts not confirmed from a primary file.
    unverified: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for label, value in (("open", self.open), ("close", self.close)):
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"TraceFormat {label!r} delimiter must be a non-empty string, got {value!r}; "
                    "pass the exact text the model writes, e.g. open='<think>', close='</think>'."
                )
        if self.open == self.close:
            raise ValueError(
                f"TraceFormat open and close delimiters are both {self.open!r}; "
                "they must differ so a trace can be told from its end."
            )

    @property
    def opens(self) -> tuple[str, ...]:
        """Every accepted spelling of the opening delimiter, canonical first."""
        return (self.open, *self.open_variants)

    @property
    def closes(self) -> tuple[str, ...]:
        """Every accepted spelling of the closing delimiter, canonical first."""
        return (self.close, *self.close_variants)

    def with_prefixed(self, prefixed: bool) -> TraceFormat:
        """Return a copy with ``prefixed`` changed."""
        return self if prefixed == self.prefixed else replace(self, prefixed=prefixed)


class UnknownFormatError(ValueError):
    """Raised for a format name that is not in the registry."""


_THINK = ("<think>", "</think>")

_REGISTRY: dict[str, TraceFormat] = {}


def register_format(fmt: TraceFormat) -> TraceFormat:
    """Add ``fmt`` to the registry under ``fmt.name`` and return it.

    Raises ValueError when the name is taken by a different format.
    """
    existing = _REGISTRY.get(fmt.name)
    if existing is not None and existing != fmt:
        raise ValueError(f"a different reasoning format is already registered as {fmt.name!r}")
    _REGISTRY[fmt.name] = fmt
    return fmt


def get_format(name: str | TraceFormat) -> TraceFormat:
    """Return the registered format called ``name`` (a TraceFormat passes through).

    Raises UnknownFormatError naming close matches and how to list the registry.
    """
    if isinstance(name, TraceFormat):
        return name
    if not isinstance(name, str):
        raise TypeError(f"format must be a registry name or a TraceFormat, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    try:
        return _REGISTRY[key]
    except KeyError:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownFormatError(
            f"unknown reasoning format {name!r}.{hint} Run `rtc formats` for the list, "
            "or give custom delimiters (--open/--close, or TraceFormat(open=..., close=...))."
        ) from None


def list_formats() -> tuple[TraceFormat, ...]:
    """Every registered format, in registry order."""
    return tuple(_REGISTRY.values())


def _family(name: str, open_close: tuple[str, str] = _THINK, **kwargs: object) -> None:
    register_format(TraceFormat(open=open_close[0], close=open_close[1], name=name, **kwargs))


# --- The registry. Order matters only for ties in detection (earlier wins). -------------

_family(
    "qwen3",
    template_markers=("<|im_start|>", "enable_thinking", "reasoning_content"),
    model_patterns=("qwen3",),
    description="Qwen3 hybrid (0.6B-235B, Apr 2025); model writes <think> itself. "
    "enable_thinking=False pre-fills a closed empty block.",
)
_family(
    "qwen3_thinking",
    prefixed=True,
    template_markers=("<|im_start|>", "reasoning_content"),
    model_patterns=("qwen3-4b-thinking", "qwen3-30b-a3b-thinking", "qwen3-235b-a22b-thinking", "thinking-2507"),
    description="Qwen3 Thinking-2507; generation prompt ends '<think>\\n'.",
)
_family(
    "qwq",
    prefixed=True,
    template_markers=("<|im_start|>",),
    model_patterns=("qwq",),
    description="QwQ-32B; generation prompt ends '<think>\\n'.",
    unverified=("special flag of <think>",),
)
_family(
    "deepseek_r1",
    prefixed=True,
    template_markers=("<｜Assistant｜>",),
    model_patterns=("deepseek-r1", "r1-distill", "r1-1776"),
    description="DeepSeek-R1 and R1-Distill (Qwen, Llama) after the Feb-2025 template "
    "update: generation prompt ends '<｜Assistant｜><think>\\n'.",
)
_family(
    "deepseek_r1_0528",
    template_markers=("<｜Assistant｜>",),
    model_patterns=("deepseek-r1-0528",),
    description="DeepSeek-R1-0528 (and its Qwen3-8B distill); the model writes <think>.",
)
_family(
    "olmo3",
    prefixed=True,
    template_markers=("<|im_start|>", "function_calls"),
    model_patterns=("olmo-3", "olmo3", "olmo-3.1"),
    description="OLMo-3 Think; plain-text markers, generation prompt ends '<|im_start|>assistant\\n<think>'.",
)
_family(
    "nemotron",
    model_patterns=("openreasoning-nemotron", "nemotron"),
    description="OpenReasoning-Nemotron 7B/14B/32B (Qwen2.5 derivative).",
    unverified=("delimiters", "token flags", "chat template"),
)
_family(
    "phi4_reasoning",
    template_markers=("<|im_sep|>",),
    model_patterns=("phi-4-reasoning", "phi4-reasoning"),
    description="Phi-4-reasoning; <think> block then a free-text solution.",
)
_family(
    "magistral",
    ("[THINK]", "[/THINK]"),
    special_tokens=True,
    template_markers=("[THINK]", "[/INST]"),
    model_patterns=("magistral", "ministral-3", "reasoning-2512"),
    description="Magistral 2507/2509 and Ministral-3 Reasoning: [THINK] control tokens.",
)
_family(
    "magistral_2506",
    model_patterns=("magistral-small-2506", "magistral-medium-2506"),
    description="Magistral 2506: plain-text <think> asked for by the system prompt.",
)
_family(
    "smollm3",
    template_markers=("<|im_start|>", "Reasoning Mode"),
    model_patterns=("smollm3",),
    description="SmolLM3-3B; /think and /no_think switches.",
)
_family(
    "gpt_oss",
    ("<|channel|>analysis<|message|>", "<|end|>"),
    special_tokens=True,
    answer_wrappers=(
        ("<|start|>assistant<|channel|>final<|message|>", "<|return|>"),
        ("<|channel|>final<|message|>", "<|return|>"),
        ("assistant<|channel|>final<|message|>", "<|end|>"),
    ),
    template_markers=("<|channel|>", "<|start|>"),
    model_patterns=("gpt-oss",),
    description="gpt-oss (harmony): the analysis channel is the trace, the final channel "
    "the answer. Decode with special tokens kept.",
)
_family(
    "glm45",
    template_markers=("[gMASK]",),
    model_patterns=("glm-4.5", "glm-4.6", "glm-4.7", "glm4.5", "glm45"),
    description="GLM-4.5 / 4.6; disabled thinking pre-fills '<think></think>'.",
)
_family(
    "granite",
    ("Here is my thought process:", "Here is my response:"),
    open_variants=("Here's my thought process:",),
    close_variants=("Here's my response:",),
    template_markers=("<|start_of_role|>", "Here is my thought process"),
    model_patterns=("granite-3.2",),
    description="IBM Granite 3.2 (thinking=True): plain-text phrases.",
)
_family(
    "granite33",
    answer_wrappers=(("<response>", "</response>"),),
    template_markers=("<|start_of_role|>", "<response>"),
    model_patterns=("granite-3.3",),
    description="IBM Granite 3.3 (thinking=True): <think> then <response>...</response>.",
)
_family(
    "exaone4",
    prefixed=True,
    template_markers=("[|assistant|]", "<think>"),
    model_patterns=("exaone-4",),
    description="EXAONE 4.0 with enable_thinking=True (prompt leaves <think> open).",
    unverified=("chat template",),
)
_family(
    "exaone_deep",
    ("<thought>", "</thought>"),
    prefixed=True,
    template_markers=("[|assistant|]", "<thought>"),
    model_patterns=("exaone-deep",),
    description="EXAONE Deep: generation prompt ends '[|assistant|]<thought>\\n'.",
)
_family(
    "seed_oss",
    ("<seed:think>", "</seed:think>"),
    special_tokens=True,
    template_markers=("<seed:bos>",),
    model_patterns=("seed-oss",),
    description="ByteDance Seed-OSS; <seed:cot_budget_reflect> notes are trace text.",
    unverified=("special flag",),
)
_family(
    "kimi",
    template_markers=("<|im_assistant|>",),
    model_patterns=("kimi-k2-thinking", "kimi-k2.5", "kimi"),
    description="Kimi K2 Thinking.",
)
_family(
    "minimax_m1",
    template_markers=("<beginning_of_sentence>",),
    delimiters_in_template=False,
    model_patterns=("minimax-m1",),
    description="MiniMax-M1: plain-text <think>; the model writes the opener.",
)
_family(
    "minimax_m2",
    prefixed=True,
    template_markers=("]~b]",),
    model_patterns=("minimax-m2",),
    description="MiniMax-M2: generation prompt ends ']~b]ai\\n<think>\\n'.",
)
_family(
    "hunyuan",
    answer_wrappers=(("<answer>", "</answer>"),),
    template_markers=("<|extra_0|>",),
    model_patterns=("hunyuan",),
    description="Hunyuan-A13B: <think> then <answer>...</answer>, plain text.",
)
_family(
    "ernie45",
    prefixed=True,
    answer_wrappers=(("<response>", "</response>"),),
    model_patterns=("ernie-4.5", "ernie4.5", "ernie-x1"),
    description="ERNIE-4.5 Thinking: parsers assume output begins inside the trace.",
    unverified=("chat template", "prefixed"),
)
_family(
    "cohere_command",
    ("<|START_THINKING|>", "<|END_THINKING|>"),
    special_tokens=True,
    answer_wrappers=(
        ("<|START_RESPONSE|>", "<|END_RESPONSE|>"),
        ("<|START_TEXT|>", "<|END_TEXT|>"),
    ),
    template_markers=("<|START_OF_TURN_TOKEN|>", "<|START_THINKING|>"),
    model_patterns=("command-a-reasoning", "c4ai-command", "cohere"),
    description="Cohere Command A Reasoning / Cohere2MoE (the latter pre-opens the trace).",
    unverified=("Command A Reasoning template",),
)
_family(
    "openthoughts",
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    answer_wrappers=(("<|begin_of_solution|>", "<|end_of_solution|>"),),
    template_markers=("<|begin_of_thought|>",),
    model_patterns=("openthinker", "bespoke-stratos", "sky-t1", "openthoughts"),
    description="OpenThoughts / Bespoke-Stratos / Sky-T1 style: thought and solution blocks.",
)
