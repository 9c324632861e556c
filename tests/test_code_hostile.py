"""Hostile programs: every case must end "failed" with the evaluator process and machine unharmed.

Each program attacks and then defines a CORRECT ``add``, so a case passes only if the attack
succeeded. Network attacks target 127.0.0.1 only. Cases also run with the Python guard off
(``python_guard=False``) where an OS layer is meant to stop them on its own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import uuid

import pytest

from rtc_metrics.code import CodeJob, SandboxLimits, run_jobs

CHECK = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-4, 4) == 0\n"
ADD = "\ndef add(a, b):\n    return a + b\n"
# RTC_TEST_SANDBOX_NAMESPACES=0 reruns the suite without namespaces (Landlock/rlimits/guard only).
_NS = os.environ.get("RTC_TEST_SANDBOX_NAMESPACES", "1") != "0"
FAST = SandboxLimits(timeout_s=2, memory_mb=1024, file_size_mb=4, namespaces=_NS)
NO_GUARD = SandboxLimits(timeout_s=2, memory_mb=1024, file_size_mb=4, python_guard=False, namespaces=_NS)


def _patient(limits: SandboxLimits) -> SandboxLimits:
    # Cases that must PASS get a long wall limit, so a loaded CI machine cannot fail them.
    return dataclasses.replace(limits, timeout_s=30)


def _run(program: str, limits: SandboxLimits = FAST):
    job = CodeJob(program, CHECK, "check", ("add",))
    (result,) = run_jobs([job], confirm_run_unsafe_code=True, limits=limits)
    return result


def _runner_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "rtc_metrics/code/_runner.py" in line]


def _sleepers() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "time.sleep(60)" in line and "ps -eo" not in line]


@pytest.fixture(autouse=True)
def _machine_unharmed():
    yield
    # The evaluator is alive (we are running) and no sandbox process outlived its run.
    assert _runner_processes() == []


def test_the_control_program_passes():
    # Guards the suite itself: the same harness passes the plain correct program.
    assert _run(ADD, _patient(FAST)).passed
    assert _run(ADD, _patient(NO_GUARD)).passed


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
@pytest.mark.parametrize(
    "attack",
    [
        pytest.param("while True:\n    pass\n", id="infinite-loop-at-import"),
        pytest.param("x = bytearray(8 * 1024 ** 3)\n", id="memory-hog-one-block"),
        pytest.param(
            "hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 ** 2))\n", id="memory-hog-growing"
        ),
        pytest.param("while True:\n    print('x' * 65536)\n", id="huge-stdout"),
        pytest.param("import sys\nwhile True:\n    sys.stderr.write('y' * 65536)\n", id="huge-stderr"),
        pytest.param("def boom(n):\n    return boom(n + 1)\nboom(0)\n", id="recursion-bomb"),
        pytest.param(
            "import sys\nsys.setrecursionlimit(10 ** 7)\ndef boom(n):\n    return boom(n + 1) + 1\nboom(0)\n",
            id="recursion-bomb-c-stack",
        ),
        pytest.param("import sys\nsys.exit(0)\n", id="sys-exit-0"),
        pytest.param("import os\nos._exit(0)\n", id="os-exit-0"),
        pytest.param("raise SystemExit(0)\n", id="raise-systemexit"),
    ],
)
def test_resource_and_exit_attacks_fail(attack, limits):
    result = _run(attack + ADD, limits)
    assert not result.passed, result
    assert len(result.stderr_tail) <= limits.output_bytes


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_attacks_inside_the_tested_call_fail(limits):
    for body in ("import sys; sys.exit(0)", "import os; os._exit(0)", "while True: pass",
                 "import time; time.sleep(30)", "return add(a, b)"):
        program = f"def add(a, b):\n    {body}\n"
        assert not _run(program, limits).passed


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_fork_bomb_fails_and_leaves_no_process(limits):
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = _run(program + ADD, limits)
    assert not result.passed
    # (the autouse fixture checks that nothing survived)


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_setsid_escapes_are_killed(limits):
    spawn = (
        "import os, subprocess, sys\n"
        "for _ in range(5):\n"
        "    subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(60)'])\n"
    )
    forked = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
    hang = "import os, time\nos.setsid()\nwhile True:\n    time.sleep(1)\n"
    for attack in (spawn, forked, hang):
        result = _run(attack + ADD, limits)
        # The guard refuses to start processes; without it starting a few is allowed (the
        # program is correct), but none of them may outlive the run: the autouse fixture
        # checks that, and here the sleepers themselves.
        assert not result.passed or not limits.python_guard
        assert not _sleepers()
    assert not _run(hang + ADD, limits).passed


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_writing_outside_the_working_directory_fails(tmp_path, limits):
    # A directory the evaluator owns, and the world-writable /tmp (file permissions alone do
    # not protect that one).
    targets = [tmp_path / "pwned.txt", f"/tmp/rtc-pwned-{uuid.uuid4().hex}"]
    for target in targets:
        program = f"open({str(target)!r}, 'w').write('pwned')\n" + ADD
        result = _run(program, limits)
        assert not result.passed, result
        assert not os.path.exists(target)
    # Writing inside its own working directory is allowed (and does not make a wrong program pass).
    assert _run("open('scratch.txt', 'w').write('ok')\n" + ADD, _patient(limits)).passed


def test_deleting_and_renaming_outside_fails(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    for attack in (
        f"import os\nos.remove({str(victim)!r})\n",
        f"import os\nos.rename({str(victim)!r}, 'x')\n",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n",
    ):
        assert not _run(attack + ADD, NO_GUARD).passed
        assert victim.read_text() == "precious"


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_parent_environment_secrets_are_invisible(monkeypatch, limits):
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("RTC_FAKE_SECRET", secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    # Correct only if the secret leaked into its environment.
    program = (
        "import os\n"
        "def add(a, b):\n"
        f"    return a + b if {secret!r} in repr(dict(os.environ)) else None\n"
    )
    assert not _run(program, limits).passed


def test_parent_environment_via_proc_is_invisible(monkeypatch):
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("RTC_FAKE_SECRET", secret)
    program = (
        "import os\n"
        "def leaked():\n"
        f"    pids = [{os.getpid()}, {os.getppid()}]\n"
        "    for pid in pids + [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
        "        try:\n"
        f"            if {secret!r}.encode() in open(f'/proc/{{pid}}/environ', 'rb').read():\n"
        "                return True\n"
        "        except OSError:\n"
        "            pass\n"
        "    return False\n"
        "LEAKED = leaked()\n"
        "def add(a, b):\n"
        "    return a + b if LEAKED else None\n"
    )
    result = _run(program, NO_GUARD)
    # Any of these stops it: a private /proc, another uid, or Landlock (no ptrace-class
    # access to processes outside the sandbox's domain).
    protected = {"private-proc", "uid-nobody", "userns"} & set(result.layers)
    if not protected and not any(layer.startswith("landlock") for layer in result.layers):
        pytest.skip(f"no /proc isolation here (layers: {result.layers}); documented as unprotected")
    assert not result.passed, result


@pytest.fixture
def loopback_server():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.3)
    yield server
    server.close()


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_network_connections_fail(loopback_server, limits):
    port = loopback_server.getsockname()[1]
    for attack in (
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'pwned')\n",
        f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1)\n",
    ):
        assert not _run(attack + ADD, limits).passed
    with pytest.raises(TimeoutError):
        loopback_server.accept()  # nobody ever connected
    # UDP: Landlock covers TCP only, so without the guard only a network namespace stops it.
    udp = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    udp += f"s.sendto(b'x', ('127.0.0.1', {port}))\n"
    result = _run(udp + ADD, limits)
    if limits.python_guard or "netns" in result.layers:
        assert not result.passed, result


@pytest.mark.parametrize("limits", [FAST, NO_GUARD], ids=["guard", "os-only"])
def test_killing_the_parent_and_the_evaluator_fails(limits):
    evaluator = os.getpid()
    for attack in (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "import os, signal\nos.killpg(os.getpgid(0), signal.SIGKILL)\n",
        "import os, signal\nos.kill(0, signal.SIGKILL)\n",
        f"import os, signal\nos.kill({evaluator}, signal.SIGTERM)\n",
        "import os, signal\nos.kill(1, signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n",
    ):
        assert not _run(attack + ADD, limits).passed
    assert os.getpid() == evaluator  # still here


@pytest.mark.parametrize(
    "program",
    [
        pytest.param(
            "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
            "def add(a, b):\n    return a - b\n",
            id="replace-AssertionError",
        ),
        pytest.param("def check(candidate):\n    pass\ndef add(a, b):\n    return 0\n", id="redefine-check"),
        pytest.param(
            "import builtins\nbuiltins.zip = lambda *a: []\nbuiltins.enumerate = lambda *a: []\n"
            "builtins.range = lambda *a: []\ndef add(a, b):\n    return 0\n",
            id="patch-builtins",
        ),
        pytest.param(
            "class Same:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
            "def add(a, b):\n    return Same()\n",
            id="always-equal-object",
        ),
        pytest.param(
            "class Same(int):\n    def __eq__(self, other):\n        return True\n"
            "def add(a, b):\n    return Same(7)\n",
            id="always-equal-int-subclass",
        ),
        pytest.param(
            "import sys\ndef add(a, b):\n    f = sys._getframe(1)\n    while f is not None:\n"
            "        f.f_globals['check'] = lambda c: None\n        f.f_globals['candidate'] = None\n"
            "        f = f.f_back\n    return 0\n",
            id="frame-walking",
        ),
        pytest.param(
            "import sys\nsys.settrace(lambda *a: None)\nimport numpy\nnumpy.allclose = lambda *a, **k: True\n"
            "def add(a, b):\n    return 0.0\n",
            id="patch-numpy-and-trace",
        ),
        pytest.param(
            "import os, json\nfor fd in range(1, 64):\n    try:\n"
            "        fake = {'nonce': '', 'passed': True, 'reason': 'x', 'layers': []}\n"
            "        os.write(fd, b'\\n' + json.dumps(fake).encode() + b'\\n')\n"
            "    except OSError:\n        pass\n"
            "os._exit(0)\n",
            id="forge-verdict-on-every-fd",
        ),
        pytest.param(
            "import gc\nleaks = [o for o in gc.get_objects() if isinstance(o, dict) and 'test' in o]\n"
            "def add(a, b):\n    return 0 if not leaks else a + b\n",
            id="look-for-the-tests-in-memory",
        ),
    ],
)
def test_tampering_with_the_tests_fails(program):
    result = _run(program)
    assert not result.passed, result


def test_huge_return_values_and_hangs_after_tests_are_handled():
    assert not _run("def add(a, b):\n    return 'x' * (200 * 1024 ** 2)\n").passed
    # A correct program that starts a lingering thread still passes, and nothing survives it.
    lingering = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
    assert _run(lingering + ADD, _patient(FAST)).passed
