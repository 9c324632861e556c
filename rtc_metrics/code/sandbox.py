"""Run generated programs against tests, isolated from the evaluating process.

Each problem gets a fresh ``python`` subprocess (:mod:`rtc_metrics.code._runner`) in its own
session/process group and a private temporary working directory, with a scrubbed
environment and resource limits. Where the platform allows it, the process also gets new
network and PID namespaces (the ``unshare`` tool from util-linux), drops root to ``nobody``,
and the candidate locks itself down with Landlock; a Python audit-hook guard comes on top.
On timeout the whole process group is killed; with a PID namespace the kernel also kills
every process the program left behind. See docs/code_tasks.md for the threat model.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rtc_metrics.code.optin import require_unsafe_code_confirmation

__all__ = [
    "CodeJob",
    "ExecutionResult",
    "SandboxLimits",
    "isolation_layers",
    "run_job",
    "run_jobs",
]

_RUNNER = str(Path(__file__).with_name("_runner.py"))
_NOBODY = 65534
#: Seconds the test process gets to clean up after the wall-time limit, before SIGKILL.
_TERM_GRACE_S = 1.0


@dataclass(frozen=True)
class CodeJob:
    """One program and the tests that judge it."""

    #: The full program to execute (extracted code, already joined with the prompt/imports).
    program: str
    #: Test code, run in the trusted test process (never in the candidate's process).
    test: str
    #: ``"check"``: ``test`` defines ``check(candidate)``, called with ``entry_points[0]``
    #: (HumanEval style). ``"script"``: ``test`` calls the functions by name at top level
    #: (MBPP style); each name in ``entry_points`` is bound to the candidate's function.
    mode: str
    #: Function names the tests call on the candidate.
    entry_points: tuple[str, ...]
    #: Trusted code run in the test namespace before ``test`` (the HumanEval prompt, which
    #: may define helpers the tests use; the MBPP ``test_imports``).
    context: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("check", "script"):
            raise ValueError(f"CodeJob.mode must be 'check' or 'script', got {self.mode!r}")
        if not self.entry_points:
            raise ValueError("CodeJob.entry_points must name at least one function")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-problem limits (each applies to the test and the candidate process separately)."""

    #: Wall-clock limit for the whole problem, seconds; then the process group is killed.
    timeout_s: float = 10.0
    #: CPU-seconds limit (RLIMIT_CPU); default: the wall limit rounded up, plus one.
    cpu_s: int | None = None
    #: Address-space limit (RLIMIT_AS), MiB.
    memory_mb: int = 2048
    #: Largest file the program may write (RLIMIT_FSIZE), MiB; also caps its captured output.
    file_size_mb: int = 16
    #: Extra processes/threads the sandbox user may start (RLIMIT_NPROC headroom).
    max_processes: int = 32
    #: Bytes kept from the runner's stdout and stderr (the rest is discarded unread).
    output_bytes: int = 64 * 1024
    #: Use network/PID namespaces when available.
    namespaces: bool = True
    #: Use Landlock (write only in the working directory, no TCP, no signals out) when available.
    landlock: bool = True
    #: Install the Python audit-hook guard in the candidate process.
    python_guard: bool = True

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"SandboxLimits.timeout_s must be > 0, got {self.timeout_s}")
        for name in ("memory_mb", "file_size_mb", "max_processes", "output_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ExecutionResult:
    """The verdict for one job."""

    #: True only when the trusted test process finished every test and reported it with
    #: the evaluator's nonce as its last stdout line, and exited 0.
    passed: bool
    #: Why (``"all tests passed"``, ``"timeout after 3.0 s"``, the failing assertion, ...).
    reason: str
    #: The wall-time limit was hit and the process group was killed.
    timed_out: bool = False
    #: Isolation layers that were actually in force (e.g. ``netns``, ``pidns``, ``uid-nobody``,
    #: ``rlimits``, ``landlock-abi7``, ``python-guard``); empty when no verdict came back.
    layers: tuple[str, ...] = ()
    #: Seconds from start to verdict.
    duration_s: float = 0.0
    #: Tail of the runner's stderr (capped), for debugging.
    stderr_tail: str = field(default="", repr=False)


@lru_cache(maxsize=1)
def _namespace_prefix() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``unshare`` command prefix that works here, and the layers it gives (cached)."""
    tool = shutil.which("unshare")
    if tool is None or not sys.platform.startswith("linux"):
        return (), ()
    # --kill-child: if unshare dies (the evaluator's killpg), the namespace's init gets
    # SIGKILL, and the kernel then kills every process left in the namespace.
    # --mount-proc: a /proc that shows only the sandbox's own processes.
    full = (tool, "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc")
    # As root no user namespace is needed; unprivileged users need one to get the others.
    user = () if os.geteuid() == 0 else ("--map-root-user",)
    for prefix in ((*full[:1], *user, *full[1:]), (*full[:1], *user, *full[1:5])):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, env={})
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            layers = ("netns", "pidns") + (("private-proc",) if "--mount-proc" in prefix else ())
            return prefix, layers + (("userns",) if user else ())
    return (), ()


def isolation_layers(limits: SandboxLimits | None = None) -> tuple[str, ...]:
    """The outer layers a run gets on this machine (Landlock and the guard are reported per run)."""
    limits = limits or SandboxLimits()
    layers = ["process-group", "tmpdir", "scrubbed-env"]
    if limits.namespaces:
        layers += _namespace_prefix()[1]
    if _drop_uid() is not None:
        layers.append("uid-nobody")
    elif _pids_cgroup_parent() is not None:
        layers.append("pids-cgroup")
    return tuple(layers)


@lru_cache(maxsize=1)
def _python_usable_by_others() -> bool:
    """Whether another user could run this interpreter and import its libraries.

    Dropping root to ``nobody`` is only possible then (an interpreter installed under a
    private home, e.g. /root/.pyenv, is not); the check reads permission bits, no probe run.
    """
    paths = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    paths.add(os.path.realpath(sys.executable))
    for path in paths:
        parts = Path(path).parts
        for i in range(1, len(parts) + 1):
            try:
                mode = os.stat(os.path.join(*parts[:i])).st_mode
            except OSError:
                return False
            needed = stat.S_IXOTH | (stat.S_IROTH if i == len(parts) else 0)
            if mode & needed != needed:
                return False
    return True


def _drop_uid() -> int | None:
    """The uid the sandbox runs as when the evaluator is root (None: stay as we are)."""
    return _NOBODY if os.geteuid() == 0 and _python_usable_by_others() else None


@lru_cache(maxsize=1)
def _pids_cgroup_parent() -> str | None:
    """A cgroup-v1 ``pids`` directory we may create children in (root only), else None.

    RLIMIT_NPROC does not bind uid 0, so a root sandbox that cannot drop to ``nobody`` caps
    its process count with a pids cgroup instead.
    """
    if os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/pids"):
        return None
    try:
        with open("/proc/self/cgroup") as handle:
            rel = next(line.split(":", 2)[2].strip() for line in handle if line.split(":")[1] == "pids")
        parent = os.path.join("/sys/fs/cgroup/pids", rel.lstrip("/"))
        probe = os.path.join(parent, f"rtc-probe-{os.getpid()}")
        os.mkdir(probe)
        try:
            with open(os.path.join(probe, "pids.max"), "w") as handle:
                handle.write("8")
        finally:
            os.rmdir(probe)
        return parent
    except (OSError, StopIteration, IndexError):
        return None


def _remove_cgroup(path: str) -> None:
    for _ in range(50):  # the kernel frees a cgroup a moment after its last task exits
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            try:
                with open(os.path.join(path, "cgroup.procs")) as handle:
                    for pid in handle.read().split():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.01)


def _tasks_of_uid(uid: int) -> int:
    """Processes+threads owned by ``uid`` (RLIMIT_NPROC counts all of them, not just ours)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:  # /proc/<pid> belongs to the process's effective uid
                continue
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue
        start = status.find(b"\nThreads:")
        if start >= 0:
            count += int(status[start + 9 : status.index(b"\n", start + 1)])
    return count


def _import_path() -> str:
    # The evaluator's own import path (not a secret), so the tests find numpy & co. even when
    # the evaluator got its packages through PYTHONPATH rather than its interpreter's prefix.
    return os.pathsep.join(p for p in sys.path if os.path.isabs(p) and os.path.exists(p))


def _scrubbed_env(workdir: str) -> dict[str, str]:
    # Nothing from the parent environment: API keys and tokens live there.
    return {
        "PYTHONPATH": _import_path(),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # A fixed hash seed: set/dict order of strings must not change pass/fail between runs.
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _tail(handle, limit: int) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    return handle.read(limit).decode("utf-8", "replace")


def _private_file(root: str, name: str):
    return os.fdopen(os.open(os.path.join(root, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "w+b")


def _force_rmtree(path: str) -> None:
    def unlock(func, target, _exc):
        # The program may have made its own directories unreadable.
        try:
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            os.chmod(target, stat.S_IRWXU)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)


def _kill_group(pgid: int, budget_s: float = 1.0) -> None:
    """SIGKILL the process group until it is empty (a process forking during the first
    kill can slip through it); zombies count as gone once the group has none alive."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _wait_exit(proc: subprocess.Popen, deadline: float) -> bool:
    """Wait for ``proc`` until ``deadline``; True if it exited.

    A pidfd wakes us the moment it exits; ``Popen.wait(timeout)`` would poll with sleeps of
    up to 50 ms, a large share of a ~100 ms run.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or already reaped
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        os.close(pidfd)
    if ready:
        proc.wait()
    return bool(ready)


def _feed_and_wait(proc: subprocess.Popen, payload: bytes, deadline: float) -> bool:
    """Write ``payload`` to the child's stdin without ever blocking past ``deadline``, close
    it, and wait for the exit; True if the child exited in time."""
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    os.set_blocking(fd, False)
    view = memoryview(payload)
    try:
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                return False
            with contextlib.suppress(BlockingIOError):
                view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass  # it exited early (a crash); the verdict check reports it
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    return _wait_exit(proc, deadline)


def run_job(job: CodeJob, limits: SandboxLimits | None = None) -> ExecutionResult:
    """Run one job in a fresh sandbox and return its verdict (never raises for bad programs).

    Callers must have checked the opt-in (:func:`run_jobs` does).
    """
    limits = limits or SandboxLimits()
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="rtc-sandbox-")
    cgroup = None
    try:
        workdir = os.path.join(root, "work")
        os.mkdir(workdir, 0o700)
        drop_uid = _drop_uid()
        sandbox_uid = os.getuid() if drop_uid is None else drop_uid
        if drop_uid is not None:
            os.chown(workdir, _NOBODY, _NOBODY)
            os.chmod(root, 0o711)  # nobody may pass through to work/, not list or open the rest
        prefix, outer = _namespace_prefix() if limits.namespaces else ((), ())
        cgroup_parent = _pids_cgroup_parent() if drop_uid is None else None
        if cgroup_parent is not None:
            cgroup = os.path.join(cgroup_parent, os.path.basename(root))
            os.mkdir(cgroup)
            with open(os.path.join(cgroup, "pids.max"), "w") as handle:
                handle.write(str(limits.max_processes))
            # The shell joins the cgroup before exec'ing anything, so every descendant is in it.
            prefix = ("/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *prefix)
            outer = (*outer, "pids-cgroup")
        cfg = {
            "cpu_s": limits.cpu_s or math.ceil(limits.timeout_s) + 1,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "file_size_bytes": limits.file_size_mb * 1024 * 1024,
            # RLIMIT_NPROC never binds uid 0 (the pids cgroup does that job there).
            "nproc": None if sandbox_uid == 0 else _tasks_of_uid(sandbox_uid) + limits.max_processes,
            "drop_to_uid": drop_uid,
            "landlock": limits.landlock,
            "python_guard": limits.python_guard,
            "outer_layers": ["process-group", "tmpdir", "scrubbed-env", *outer],
        }
        nonce = secrets.token_hex(16)
        body = json.dumps(
            {
                "program": job.program,
                "test": job.test,
                "mode": job.mode,
                "entry_points": list(job.entry_points),
                "context": job.context,
            }
        ).encode("utf-8")
        payload = f"{len(body)}\n".encode() + body + f"{nonce}\n".encode()
        # The runner's output goes to files in the private root (not the program's workdir),
        # so nothing can fill a pipe or the evaluator's memory; only the tails are read back.
        with _private_file(root, "stdout") as out, _private_file(root, "stderr") as err:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-s", "-B", _RUNNER, json.dumps(cfg)],
                cwd=workdir,
                env=_scrubbed_env(workdir),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            timed_out = not _feed_and_wait(proc, payload, started + limits.timeout_s)
            if timed_out:
                # SIGTERM first: the test process then kills every descendant it reaped
                # (without a PID namespace, nothing else finds the ones that left the group).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                _wait_exit(proc, time.monotonic() + _TERM_GRACE_S)
            _kill_group(proc.pid)  # stragglers too (without a PID namespace nothing else reaps them)
            proc.wait()
            stdout, stderr = _tail(out, limits.output_bytes), _tail(err, limits.output_bytes)
        duration = time.monotonic() - started
        if timed_out:
            return ExecutionResult(False, f"timeout after {limits.timeout_s:g} s", True, (), duration, stderr)
        verdict = _parse_verdict(stdout, nonce)
        if verdict is None:
            code = proc.returncode
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            reason = f"no verdict from the test process ({how})"
            return ExecutionResult(False, reason, False, (), duration, stderr)
        passed = bool(verdict.get("passed")) and proc.returncode == 0
        layers = tuple(str(x) for x in verdict.get("layers", []))
        return ExecutionResult(passed, str(verdict.get("reason", "")), False, layers, duration, stderr)
    finally:
        if cgroup is not None:
            _remove_cgroup(cgroup)
        _force_rmtree(root)


def _parse_verdict(stdout: str, nonce: str) -> dict | None:
    lines = stdout.rstrip("\n").rsplit("\n", 1)
    try:
        verdict = json.loads(lines[-1])
    except ValueError:
        return None
    if not isinstance(verdict, dict) or not secrets.compare_digest(str(verdict.get("nonce", "")), nonce):
        return None
    return verdict


def run_jobs(
    jobs: Sequence[CodeJob],
    *,
    confirm_run_unsafe_code: bool | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
) -> list[ExecutionResult]:
    """Run ``jobs`` in parallel (``workers`` at a time, default: CPU count), results in input order.

    Raises :class:`~rtc_metrics.code.optin.UnsafeCodeNotConfirmed` unless the caller opted in
    (see :func:`~rtc_metrics.code.optin.unsafe_code_confirmed`).
    """
    require_unsafe_code_confirmation(confirm_run_unsafe_code)
    if not sys.platform.startswith("linux"):
        # prctl, /proc, Landlock and the namespaces are Linux; a weaker sandbox is not offered.
        raise RuntimeError(f"the code sandbox needs Linux (this is {sys.platform}); run code tasks on Linux")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = workers or os.cpu_count() or 1
    if not jobs:
        return []
    if workers == 1 or len(jobs) == 1:
        return [run_job(job, limits) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(lambda job: run_job(job, limits), jobs))
