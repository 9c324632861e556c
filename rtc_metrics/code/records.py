"""EvalPlus records (HumanEval+ and MBPP+) -> sandbox jobs.

Assumed hub schemas (they could not be checked offline; see docs/code_tasks.md):

* ``evalplus/humanevalplus``: ``task_id`` ("HumanEval/0"), ``prompt`` (imports, helpers and
  the signature with its docstring), ``canonical_solution``, ``entry_point``, ``test``
  (defines ``check(candidate)``).
* ``evalplus/mbppplus``: ``task_id`` (int), ``prompt`` (the task in words; older dumps call it
  ``text``), ``code`` (reference solution), ``test_imports`` (list of import lines),
  ``test_list`` (the three original MBPP asserts), ``test`` (the MBPP+ tests: top-level code
  calling the function by name).
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtc_metrics.code.sandbox import CodeJob
from rtc_metrics.io import InputError

__all__ = ["CodeProblem", "build_program", "problem_from_record"]


@dataclass(frozen=True)
class CodeProblem:
    """One benchmark problem, normalised across the two datasets."""

    #: The record's ``task_id`` as a string.
    task_id: str
    #: ``"humaneval"`` or ``"mbpp"``.
    kind: str
    #: HumanEval: the code prompt (signature + docstring); MBPP: the task description.
    prompt: str
    #: Function names the tests call.
    entry_points: tuple[str, ...]
    #: Test code (HumanEval: defines ``check(candidate)``; MBPP: top-level calls).
    test: str
    #: Import lines the MBPP tests and solutions assume (empty for HumanEval).
    test_imports: tuple[str, ...] = ()
    #: The reference solution (HumanEval: the body after ``prompt``; MBPP: the full code).
    reference: str = ""

    def job(self, program: str) -> CodeJob:
        """The sandbox job that runs ``program`` (already built) against this problem's tests."""
        if self.kind == "humaneval":
            return CodeJob(program, self.test, "check", self.entry_points, context=self.prompt)
        return CodeJob(program, self.test, "script", self.entry_points, context="\n".join(self.test_imports))


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: field {key!r} must be a non-empty string (fields here: {sorted(record)})")
    return value


def _valid_python(source: str, where: str, what: str) -> str:
    # A broken test would fail every program with the same error; say so up front instead.
    try:
        ast.parse(source)
    except SyntaxError as exc:
        raise InputError(f"{where}: {what} is not valid Python ({exc.msg}, line {exc.lineno})") from exc
    return source


def _toplevel_defs(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.findall(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", source, re.MULTILINE)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _names_used_and_bound(source: str) -> tuple[set[str], set[str]]:
    tree = ast.parse(source)
    used, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return used, bound


def _mbpp_entry_points(record: Mapping[str, Any], test: str, where: str) -> tuple[str, ...]:
    # The tests call the function(s) by name; those names are the reference solution's
    # top-level functions that the tests use and do not define themselves. Never a builtin:
    # binding a proxy over e.g. ``zip`` would let a candidate steer the test loop.
    used, bound = _names_used_and_bound(test)  # the test parses: checked by the caller
    reference = record.get("code") if isinstance(record.get("code"), str) else ""
    candidates = _toplevel_defs(reference) if reference else sorted(used)
    names = [
        n for n in dict.fromkeys(candidates) if n in used and n not in bound and not hasattr(builtins, n)
    ]
    if not names:
        raise InputError(
            f"{where}: cannot tell which function the tests call (no top-level function of 'code' is used "
            "by the tests); give an 'entry_point' field"
        )
    return tuple(names)


def problem_from_record(record: Mapping[str, Any]) -> CodeProblem:
    """Normalise a HumanEval+ or MBPP+ record (decided by the presence of ``entry_point`` +
    ``canonical_solution`` vs ``test_list``/``code``). Raises InputError naming the missing field."""
    if not isinstance(record, Mapping):
        raise InputError(f"code record must be a mapping, got {type(record).__name__}")
    task_id = str(record.get("task_id", "?"))
    where = f"code task {task_id}"
    if "canonical_solution" in record or ("entry_point" in record and "test_list" not in record):
        prompt = _text(record, "prompt", where)
        entry = _text(record, "entry_point", where).strip()
        test = _valid_python(_text(record, "test", where), where, "field 'test'")
        _valid_python(prompt, where, "field 'prompt'")
        if not re.search(r"^def\s+check\s*\(", test, re.MULTILINE):
            raise InputError(f"{where}: HumanEval test code must define check(candidate)")
        return CodeProblem(task_id, "humaneval", prompt, (entry,), test,
                           reference=str(record.get("canonical_solution") or ""))
    if "test_list" in record or "code" in record or "test_imports" in record:
        description = record.get("prompt") if isinstance(record.get("prompt"), str) else record.get("text")
        if not isinstance(description, str) or not description.strip():
            raise InputError(f"{where}: MBPP record needs a 'prompt' (or 'text') field describing the task")
        imports = record.get("test_imports") or []
        if isinstance(imports, str):
            imports = [imports]
        if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
            raise InputError(f"{where}: 'test_imports' must be a list of import lines")
        test = record.get("test") if isinstance(record.get("test"), str) and record["test"].strip() else None
        if test is None:  # no MBPP+ tests: fall back to the original asserts
            asserts = record.get("test_list")
            if not isinstance(asserts, list) or not asserts or not all(isinstance(a, str) for a in asserts):
                raise InputError(f"{where}: MBPP record needs 'test' (MBPP+ tests) or a non-empty test_list")
            test = "\n".join(asserts) + "\n"
        _valid_python(test, where, "the test code")
        _valid_python("\n".join(imports), where, "field 'test_imports'")
        if isinstance(record.get("entry_point"), str) and record["entry_point"].strip():
            entries: tuple[str, ...] = (record["entry_point"].strip(),)
        else:
            entries = _mbpp_entry_points(record, test, where)
        return CodeProblem(task_id, "mbpp", description, entries, test, tuple(imports),
                           reference=str(record.get("code") or ""))
    raise InputError(
        f"{where}: not a HumanEval+ record (prompt, entry_point, test) nor an MBPP+ record "
        f"(prompt/text, code, test_list or test); fields here: {sorted(record)}"
    )


def _defines_toplevel(code: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def build_program(problem: CodeProblem, code: str) -> str:
    """The program to execute for extracted ``code``.

    HumanEval: a full solution (it defines the entry point at top level) runs after the prompt,
    so the prompt's imports and helper functions exist and the solution's definition wins;
    anything else is taken as the body completing the prompt (``prompt + code``).
    MBPP: the test imports, then the code.
    """
    if problem.kind == "humaneval":
        if _defines_toplevel(code, problem.entry_points[0]):
            return problem.prompt.rstrip("\n") + "\n\n\n" + code + "\n"
        return problem.prompt + code + "\n"
    header = "\n".join(problem.test_imports)
    return (header + "\n\n" if header else "") + code + "\n"
