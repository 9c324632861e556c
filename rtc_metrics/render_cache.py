"""Render chats without running the chat template per record: verified skeletons.

Rendering a Jinja chat template costs more than tokenizing its output. For one template
(and its variables), chats with the same turn structure (the same roles in the same
order, ``add_generation_prompt`` the same) differ only in their message contents, so the
template is rendered once with a unique sentinel in place of each content (the
*skeleton*), and each record's text is the skeleton with its contents put back (one
join).

That is only right when the template does not look at the contents, and templates do:
Qwen3 and R1 cut assistant content at ``</think>``, others strip it or test
``'<tool_response>' in content``. So the fast path is taken only where it is safe:

1. **The structure is verified.** A skeleton is trusted only after several probe chats
   of that structure (contents with inner newlines, unicode, quotes, brackets and
   marker-like text such as ``<b>``, different in every message) rendered by the template
   give exactly the substituted text. Probes with leading/trailing whitespace decide
   separately whether such contents may use the skeleton. A structure the template
   rejects or renders otherwise is never cached (its records take the template).
2. **Each record is screened.** A record uses the skeleton only when every message has
   just ``role`` and ``content``, every content is a non-empty string, and no content
   contains a *needle*: a string the template compares contents with. Needles are read
   from the template's syntax tree: the constants in ``in`` / ``==`` tests and the
   arguments of string methods (``split``, ``startswith``, ``replace``, ``strip``, ...)
   and of the ``replace`` filter. Characters a template strips (``strip('\\n')``) may
   not start or end a content (whitespace only when the probes allowed it). When the
   template tests contents against something that is not a constant (a variable, a
   template argument), every string constant of the template (at least two
   characters long after stripping whitespace) and every template variable is a needle.

Anything else takes the template, so output is byte-identical to
``render_jinja_template`` on every record (``tests/test_render_cache.py`` checks it on
real templates and adversarial contents). Templates that read the clock
(``strftime_now``) are rendered once per structure and process, not once per record.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Skeleton", "SkeletonCache"]

#: Renders chats as ``render_jinja_template`` would: ``(chats, add_generation_prompt) -> texts``.
RenderFn = Callable[[Sequence[Sequence[Mapping[str, Any]]], bool], list[str]]

#: String methods whose constant arguments a content is compared with or cut at.
_STR_METHODS = frozenset({
    "split", "rsplit", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex",
    "count", "partition", "rpartition", "removeprefix", "removesuffix",
})
_STRIP_METHODS = frozenset({"strip", "lstrip", "rstrip"})

#: Probe contents: several lines, unicode, quotes, brackets, marker-like text that is not
#: a template marker. Each message of a probe chat gets a different one.
_PLAIN_PROBES = (
    "a",
    "Two words",
    "Line one\nline two\n\nthird: 3 < 4 > 2, so x=1.",
    "x = {y} [z] (w) |v| <b>bold</b> & ' \" \\ # % ~ `code`",
    "Ünïcödé — 数学 ½ 😀 résumé",
    "42",
    "<answer>7</answer> [THINK] ok [/THINK] <|x|> think",
)
#: Probes that start or end with whitespace: a template that strips contents fails them.
_EDGE_PROBES = (" lead", "trail ", "\nboth\n", "\t tabbed \t", "  \n mixed \n  ", "\n\n\nnl")

#: Skeletons kept per template (distinct turn structures seen).
_MAX_STRUCTURES = 256


@dataclass(frozen=True)
class Skeleton:
    """A verified render of one turn structure, as text pieces around message contents."""

    #: ``pieces[0] + content[slots[0]] + pieces[1] + ... + pieces[-1]`` is the render.
    pieces: tuple[str, ...]
    #: The message index each gap between pieces holds (a content may appear 0+ times).
    slots: tuple[int, ...]
    #: True when probes showed contents with leading/trailing whitespace render verbatim.
    edge_space_ok: bool

    def fill(self, contents: Sequence[str]) -> str:
        parts = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            parts.append(contents[slot])
            parts.append(piece)
        return "".join(parts)


@dataclass
class _Screen:
    """What a record's contents must avoid to use a skeleton (from the template's syntax)."""

    #: Substrings a content must not contain.
    needles: tuple[str, ...]
    #: Contents equal to one of these take the template (``content == 'x'`` tests).
    exact: frozenset[str]
    #: Non-whitespace characters the template strips from content edges.
    edge_chars: frozenset[str]

    def allows(self, content: Any) -> bool | None:
        """False: take the template; None: fine if edge whitespace is allowed; True: fine."""
        if not isinstance(content, str) or not content or content in self.exact:
            return False
        for needle in self.needles:
            if needle in content:
                return False
        if content[0] in self.edge_chars or content[-1] in self.edge_chars:
            return False
        return True if not (content[0].isspace() or content[-1].isspace()) else None


def _screen(template: str, kwargs: Mapping[str, Any]) -> _Screen:
    """Needles of ``template`` (see the module docstring); every constant when unsure."""
    from jinja2 import nodes

    everything = _all_constants(template, kwargs)
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        # The environment transformers renders with (its extensions parse {% generation %}).
        tree = _compile_jinja_template(template).environment.parse(template)
    except Exception:  # an API change or a parse error: screen on every constant
        return _Screen(everything, frozenset(), frozenset())

    needles: set[str] = set()
    exact: set[str] = set()
    edge: set[str] = set()
    unsure = False

    def const_strings(node: Any) -> list[str] | None:
        """The strings of a constant or a literal list/tuple of constants, else None."""
        if isinstance(node, nodes.Const):
            return [node.value] if isinstance(node.value, str) else []
        if isinstance(node, (nodes.List, nodes.Tuple)):
            out = []
            for item in node.items:
                sub = const_strings(item)
                if sub is None:
                    return None
                out.extend(sub)
            return out
        return None

    for node in tree.find_all((nodes.Compare, nodes.Call, nodes.Filter)):
        if isinstance(node, nodes.Compare):
            left = node.expr
            for operand in node.ops:
                if operand.op in ("in", "notin"):
                    found = const_strings(left)
                    if found is not None:
                        needles.update(found)  # 'x' in content
                    else:
                        listed = const_strings(operand.expr)
                        if listed is None:  # var in content: unknown needle
                            unsure = True
                        else:  # content in ['a', 'b']
                            exact.update(listed)
                else:
                    for side in (left, operand.expr):
                        exact.update(const_strings(side) or [])
                left = operand.expr
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            args = [const_strings(a) for a in node.args]
            if node.node.attr in _STR_METHODS:
                if any(a is None for a in args) or node.kwargs or node.dyn_args:
                    unsure = True
                for found in args:
                    needles.update(found or [])
            elif node.node.attr in _STRIP_METHODS:
                if any(a is None for a in args) or node.kwargs or node.dyn_args:
                    unsure = True
                for found in args:
                    for chars in found or []:
                        edge.update(c for c in chars if not c.isspace())
        elif isinstance(node, nodes.Filter) and node.name in ("replace", "trim"):
            args = [const_strings(a) for a in node.args]
            if any(a is None for a in args):
                unsure = True
            for found in args[:1] if node.name == "replace" else args:
                if node.name == "replace":
                    needles.update(found or [])
                else:
                    edge.update(c for chars in found or [] for c in chars if not c.isspace())
    if unsure:
        needles.update(everything)
    # An empty needle is in every string (and '' == content is excluded by non-emptiness).
    kept = sorted({n for n in needles if n}, key=len)
    return _Screen(tuple(kept), frozenset(exact), frozenset(edge))


def _all_constants(template: str, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """Every string literal of the template (lexed) and every string template variable."""
    from jinja2 import Environment

    try:
        literals = {tok.value for tok in Environment().lexer.tokenize(template) if tok.type == "string"}
    except Exception:  # an unlexable template fails to render anyway; screen on nothing more
        literals = set()
    literals.update(v for v in kwargs.values() if isinstance(v, str))
    return tuple(sorted({s.strip() for s in literals if len(s.strip()) >= 2}, key=len))


@dataclass
class SkeletonCache:
    """Skeletons of one renderer's turn structures (attach one per template + variables)."""

    _screen: _Screen | None = None
    #: ``(roles, add_generation_prompt) -> Skeleton``, or None where not cacheable.
    _skeletons: dict[tuple[tuple[str, ...], bool], Skeleton | None] = field(default_factory=dict)
    _nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    def fill(
        self, render: RenderFn, template: str, kwargs: Mapping[str, Any],
        chats: Sequence[Sequence[Mapping[str, Any]]], add_generation_prompt: bool,
    ) -> list[str | None]:
        """Each chat's render from its skeleton, or None where the template must render it."""
        screen = self._screen
        if screen is None:
            screen = self._screen = _screen(template, kwargs)
        out: list[str | None] = []
        for chat in chats:
            out.append(self._fill_one(render, screen, chat, add_generation_prompt))
        return out

    def _fill_one(
        self, render: RenderFn, screen: _Screen, chat: Sequence[Mapping[str, Any]], gen: bool
    ) -> str | None:
        contents = []
        edge_space = False
        for message in chat:
            if len(message) != 2:  # reasoning_content, tool_calls, name...: the template decides
                return None
            content = message.get("content")
            verdict = screen.allows(content)
            if verdict is False:
                return None
            edge_space = edge_space or verdict is None
            contents.append(content)
        try:
            key = (tuple(m["role"] for m in chat), gen)
        except (KeyError, TypeError):
            return None
        skeleton = self._skeletons.get(key, False)
        if skeleton is False:
            skeleton = self._build(render, screen, key[0], gen)
            self._skeletons[key] = skeleton
            while len(self._skeletons) > _MAX_STRUCTURES:
                del self._skeletons[next(iter(self._skeletons))]
        if skeleton is None or (edge_space and not skeleton.edge_space_ok):
            return None
        return skeleton.fill(contents)

    def _build(
        self, render: RenderFn, screen: _Screen, roles: tuple[str, ...], gen: bool
    ) -> Skeleton | None:
        """Render the sentinel chat and verify it on probes; None when it does not hold."""
        sentinels = [f"RTCSLOT{i}Z{self._nonce}" for i in range(len(roles))]
        plain = [p for p in _PLAIN_PROBES if screen.allows(p)]
        edge = [p for p in _EDGE_PROBES if screen.allows(p) is not False]

        def chat(contents: Sequence[str]) -> list[dict[str, str]]:
            return [{"role": r, "content": c} for r, c in zip(roles, contents, strict=True)]

        def probe(pool: Sequence[str], k: int) -> list[str]:
            # A different text in each message (rotating the pool), so that a template
            # that drops, repeats or swaps contents is caught.
            return [pool[(k + i) % len(pool)] for i in range(len(roles))]

        plain_probes = [probe(plain, k) for k in range(len(plain))]
        edge_probes = [probe(edge, k) for k in range(len(edge))]
        try:
            rendered = render([chat(c) for c in (sentinels, *plain_probes, *edge_probes)], gen)
        except Exception:  # the template rejects this structure: records render (and fail) slowly
            return None
        split = re.split(f"RTCSLOT(\\d+)Z{self._nonce}", rendered[0])
        skeleton = Skeleton(tuple(split[0::2]), tuple(int(s) for s in split[1::2]), False)
        if len(plain_probes) < 2 or any(
            skeleton.fill(c) != text for c, text in zip(plain_probes, rendered[1:], strict=False)
        ):
            return None
        edge_ok = bool(edge_probes) and all(
            skeleton.fill(c) == text
            for c, text in zip(edge_probes, rendered[1 + len(plain_probes):], strict=True)
        )
        return Skeleton(skeleton.pieces, skeleton.slots, edge_ok)
