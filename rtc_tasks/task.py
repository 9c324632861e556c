"""``RTCTask``: a ConfigurableTask that measures trace structure on the raw generations.

Flow inside one lm-eval run (lm_eval/evaluator.py):

1. ``build_all_requests``: the format is resolved and the run's settings are checked
   (think_end_token, stop sequences, delimiters lost to decoding) before any generation.
2. The backend generates; each Instance's ``resps`` holds the raw text.
3. ``apply_filters`` (ours): every raw generation is parsed, pre-opened or not as its
   own prompt (``inst.args[0]``) says, and the result is kept per doc. The task's own
   filters then run on the answer segments only; the raw ``resps`` are restored after, so
   ``--log_samples`` logs what the model wrote.
4. ``process_results`` (ours): the task's own metrics (from the answer segment) plus
   ``vr``/``er``/``tr``/``mr``/``rtc_valid_correct``/``rpass@1`` (see rtc_tasks.metrics).
   lm-eval calls it once per filter; the structural values are the same for each.

YAML use: ``class: !function rtc_tasks.task.RTCTask`` (dotted name; see the notes'
pitfall 15). ``rtc_base: NAME`` wraps the built-in lm-eval task NAME under the new
``task:`` name, with trace-safe generation settings.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lm_eval.api.metrics import mean
from lm_eval.api.task import ConfigurableTask

from rtc_metrics.formats import TraceFormat
from rtc_metrics.parsing import ParsedTrace, TraceStatus, parse_trace
from rtc_tasks.diagnostics import TaskDiagnostics
from rtc_tasks.metrics import (
    HIGHER_IS_BETTER,
    RATE_KEYS,
    RPASS_KEY,
    VALID_CORRECT_KEY,
    install_group_pooling,
    rpass_at_1,
)
from rtc_tasks.settings import (
    RTCSettingsError,
    check_backend,
    check_generation_kwargs,
    data_override,
    resolve_format,
    safe_generation_kwargs,
)

__all__ = ["ANSWER_METRICS", "RTCTask", "find_builtin_config"]

log = logging.getLogger(__name__)

install_group_pooling()

#: Metric names taken as "the answer metric" (for rpass@1), in order of preference.
ANSWER_METRICS = ("exact_match", "acc", "pass@1", "acc_norm", "em", "f1")

_STATUS_KEY = {
    TraceStatus.VALID: "vr",
    TraceStatus.EMPTY: "er",
    TraceStatus.TRUNCATED: "tr",
    TraceStatus.MISSING: "mr",
}


_TASK_LINE = re.compile(r"""^["']?task["']?:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$""", re.MULTILINE)


@functools.lru_cache(maxsize=1)
def _builtin_index() -> dict[str, tuple[Path, ...]]:
    """Task name -> built-in YAML files whose top-level ``task:`` line names it (one text scan).

    A text scan, because parsing every YAML (what TaskManager's index does) takes seconds.
    """
    import lm_eval.tasks

    index: dict[str, tuple[Path, ...]] = {}
    for path in sorted(Path(lm_eval.tasks.__file__).parent.rglob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for name in _TASK_LINE.findall(text):
            index[name] = (*index.get(name, ()), path)
    return index


def _builtin_yaml(name: str) -> Path:
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    if name.endswith(".yaml"):
        root = Path(lm_eval.tasks.__file__).parent
        path = Path(name) if Path(name).is_absolute() else root / name
        if not path.is_file():
            raise RTCSettingsError(f"rtc_base {name!r}: no such file ({path})")
        return path
    for path in _builtin_index().get(name, ()):
        try:
            if load_yaml(path).get("task") == name:
                return path
        except (OSError, ValueError):
            continue
    raise RTCSettingsError(
        f"rtc_base {name!r}: no built-in lm-eval task with that name (see `lm_eval ls tasks`); "
        "give its YAML path relative to lm_eval/tasks instead"
    )


def find_builtin_config(name: str) -> dict[str, Any]:
    """The full config (includes merged, functions resolved) of the built-in lm-eval task ``name``."""
    from lm_eval.tasks._yaml_loader import load_yaml

    config = dict(load_yaml(_builtin_yaml(name), resolve_func=True))
    for key in ("group", "tag", "task_list"):  # a wrapper joins none of the built-in's groups
        config.pop(key, None)
    return config


def _wrap_builtin(base: str, local: dict[str, Any]) -> dict[str, Any]:
    config = find_builtin_config(base)
    merged = {**config, **local}
    merged["metadata"] = {**(config.get("metadata") or {}), **(local.get("metadata") or {}), "rtc_base": base}
    if "generation_kwargs" not in local:
        # Built-in stops ("Question:", "Q:", "\n\n") and 256-token budgets cut traces.
        merged["generation_kwargs"] = safe_generation_kwargs(config.get("generation_kwargs"))
    return merged


class RTCTask(ConfigurableTask):
    """A generative task whose results also carry reasoning-trace structure."""

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        download_mode: Any = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        config = dict(config or {})
        config.pop("class", None)
        base = config.pop("rtc_base", None)
        if base:
            config = _wrap_builtin(str(base), config)
        metadata = dict(config.get("metadata") or {})
        task_name = str(config.get("task"))
        splits = [
            config.get(k) for k in ("test_split", "validation_split", "training_split", "fewshot_split")
        ]
        override = data_override(metadata, task_name, list(dict.fromkeys(s for s in splits if s)))
        if override:
            if config.get("num_fewshot") and config.get("fewshot_split") not in (
                None,
                config.get("test_split"),
            ):
                log.warning(
                    "%s: rtc_data_files also serves the few-shot split: examples come from the same file",
                    task_name,
                )
            config.update(override)
        super().__init__(data_dir=data_dir, cache_dir=cache_dir, download_mode=download_mode, config=config)
        if self.OUTPUT_TYPE != "generate_until":
            raise RTCSettingsError(
                f"{task_name}: rtc measures generated traces; output_type is {self.OUTPUT_TYPE!r}, "
                "not generate_until"
            )
        self._rtc_format: TraceFormat | None = None
        self._rtc_answer_metric: str | None = metadata.get("rtc_answer_metric")
        #: doc_id -> the parses of that doc's generations (one per repeat).
        self._rtc_structure: dict[int, tuple[ParsedTrace, ...]] = {}
        #: The doc_id that doc_iterator yielded last (process_results runs inside that loop).
        self._rtc_cursor: int | None = None
        # Budget diagnostics and per-sample records (rtc_tasks.diagnostics).
        live = self.config.metadata if isinstance(self.config.metadata, dict) else metadata
        self._rtc_diag = TaskDiagnostics(live, task_name)
        self._rtc_add_metrics(with_ratio=True)

    # --- metric bookkeeping ----------------------------------------------------------
    def _rtc_add_metrics(self, with_ratio: bool) -> None:
        self._rtc_diag.register(self)
        for key in RATE_KEYS:
            self._aggregation_list[key] = mean
            self._higher_is_better[key] = HIGHER_IS_BETTER[key]
        if with_ratio:
            self._aggregation_list[VALID_CORRECT_KEY] = mean
            self._aggregation_list[RPASS_KEY] = rpass_at_1
            self._higher_is_better[VALID_CORRECT_KEY] = True
            self._higher_is_better[RPASS_KEY] = True

    def override_metric(self, metric_name: str) -> None:
        # --predict_only replaces all metrics with "bypass"; structure needs no gold answer,
        # so the rates stay (rpass@1 needs correctness and goes).
        super().override_metric(metric_name)
        self._rtc_add_metrics(with_ratio=False)

    # --- settings --------------------------------------------------------------------
    @property
    def rtc_format(self) -> TraceFormat:
        """The run's reasoning format (resolved from metadata or the model on first use)."""
        if self._rtc_format is None:
            metadata = self.config.metadata or {}
            fmt = resolve_format(metadata, self.config.task)
            self._rtc_format = fmt
            # Recorded in the results file's config, so `rtc score` can re-score the logs.
            if isinstance(self.config.metadata, dict):
                self.config.metadata["rtc_resolved_format"] = {
                    "name": fmt.name,
                    "open": fmt.open,
                    "close": fmt.close,
                    "open_variants": list(fmt.open_variants),
                    "close_variants": list(fmt.close_variants),
                }
        return self._rtc_format

    def build_all_requests(self, **kwargs: Any) -> None:
        """Check the run's settings before any generation, then build requests as usual."""
        metadata = self.config.metadata or {}
        fmt = self.rtc_format
        check_generation_kwargs(
            self.config.generation_kwargs or {}, fmt, self.config.task, short_budget=metadata.get("rtc_short_budget")
        )
        check_backend(metadata, fmt, self.config.task)
        super().build_all_requests(**kwargs)

    # --- structure ---------------------------------------------------------------------
    def _rtc_parser(self) -> Any:
        fmt = self.rtc_format
        forced = (self.config.metadata or {}).get("rtc_prefixed")
        if forced is None or forced == "auto":
            return lambda text, prompt: parse_trace(
                text, fmt, prompt=prompt if isinstance(prompt, str) else None
            )
        forced_fmt = fmt.with_prefixed(
            str(forced).lower() in {"1", "true", "yes"} if isinstance(forced, str) else bool(forced)
        )
        return lambda text, prompt: parse_trace(text, forced_fmt)

    def apply_filters(self) -> Any:
        """Parse raw generations, run the task's filters on answer segments, restore raw resps."""
        parse = self._rtc_parser()
        raw: list[list[Any]] = []
        self._rtc_structure = {}
        for inst in self._instances:
            prompt = inst.args[0] if inst.args else None
            parses = tuple(parse(r if isinstance(r, str) else "", prompt) for r in inst.resps)
            self._rtc_structure[inst.doc_id] = parses
            raw.append(inst.resps)
            inst.resps = [p.answer for p in parses]
        self._rtc_structure = self._rtc_diag.measure(self._instances, raw, self._rtc_structure)
        try:
            return super().apply_filters()
        finally:
            for inst, resps in zip(self._instances, raw, strict=True):
                inst.resps = resps

    def doc_iterator(self, **kwargs: Any) -> Iterator[tuple[int, Any]]:
        # The evaluator calls process_results inside this loop (evaluator.py), and the
        # doc it passes is a fresh copy: the cursor is how the doc's parse is found.
        for doc_id, doc in super().doc_iterator(**kwargs):
            self._rtc_cursor = doc_id
            yield doc_id, doc

    def _answer_metric(self, results: dict[str, Any]) -> str | None:
        if self._rtc_answer_metric is not None:
            if self._rtc_answer_metric not in results:
                raise RTCSettingsError(
                    f"{self.config.task}: rtc_answer_metric {self._rtc_answer_metric!r} is not among the "
                    f"task's metrics ({', '.join(results)}); set --metadata rtc_answer_metric to one of them"
                )
            return self._rtc_answer_metric
        name = next((k for k in ANSWER_METRICS if k in results), None)
        if name is None:
            name = next((k for k, v in results.items() if isinstance(v, int | float) and 0 <= v <= 1), None)
        self._rtc_answer_metric = name
        if isinstance(self.config.metadata, dict) and name is not None:
            self.config.metadata["rtc_answer_metric_resolved"] = name
        return name

    def _task_metrics(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        """The task's own metrics for one doc (a subclass may take them from a batch it scored)."""
        return super().process_results(doc, results)

    def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        """The task's own metrics plus the structural ones for this doc."""
        out = dict(self._task_metrics(doc, results))
        parses = self._rtc_structure.get(self._rtc_cursor) if self._rtc_cursor is not None else None
        if parses is None:
            raise RuntimeError(
                f"{self.config.task}: no parsed generations for doc {self._rtc_cursor}; "
                "RTCTask.process_results must run inside lm-eval's evaluation loop (after apply_filters)"
            )
        k = len(parses)
        rates = dict.fromkeys(RATE_KEYS, 0.0)
        for p in parses:
            rates[_STATUS_KEY[p.status]] += 1.0 / k
        out.update(rates)
        out.update(self._rtc_diag.doc_metrics(self._rtc_cursor))
        if "bypass" in out:  # --predict_only: no correctness to condition on
            return out
        answer_metric = self._answer_metric(out)
        if answer_metric is None:
            return out
        correct = float(out[answer_metric])
        if not 0.0 <= correct <= 1.0:
            raise RTCSettingsError(
                f"{self.config.task}: metric {answer_metric!r} = {correct} is not a correctness in [0, 1]; "
                'name another with --metadata \'{"rtc_answer_metric": "NAME"}\''
            )
        valid = rates["vr"]
        out[VALID_CORRECT_KEY] = valid * correct
        out.update(self._rtc_diag.class_correct(self._rtc_cursor, correct))
        out[RPASS_KEY] = (valid, valid * correct)
        return out
