"""Sandbox runner: the script the evaluator starts for ONE problem (never imported by the evaluator).

Two processes, so that the verdict never depends on code the candidate can touch:

* the *test process* (this script's main process, trusted) reads the job from stdin, runs the
  dataset's test code, and decides pass/fail;
* the *candidate process* (forked before the job is read, so the tests and expected outputs
  never exist in its memory) locks itself down, executes the generated program, and then only
  answers calls: the test process's ``candidate`` is a proxy that sends the arguments over a
  pipe and gets back the return value as tagged JSON, decoded as plain data. Patching
  builtins, ``assert``, the test function or returning an "equals everything" object therefore
  cannot influence the test process; exiting early just ends the conversation (a failure).

The test process reads the evaluator's random nonce from stdin only after the candidate
process has been killed and reaped, and prints it with the verdict as its last stdout line.
Standard library only; Python >= 3.10.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import pickle
import resource
import signal
import struct
import sys
import traceback

_HEADER = struct.Struct("<Q")
#: Cap on one reply from the candidate process (a return value), bytes.
_MAX_REPLY = 64 * 1024 * 1024
#: The candidate process's output (prints, tracebacks) goes here, in its working directory.
CANDIDATE_OUTPUT = "candidate_output.txt"


class CandidateError(Exception):
    """The candidate raised, returned something unsupported, or its process is gone."""


# --------------------------------------------------------------------------- framing
def _send(fd: int, payload: bytes) -> None:
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(fd: int, limit: int | None = None) -> bytes:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    if limit is not None and n > limit:
        raise CandidateError(f"reply of {n} bytes exceeds the {limit}-byte cap")
    return _read_exact(fd, n)


# --------------------------------------------------------------------------- value codec
def encode_value(value, depth: int = 0):
    """Plain data -> tagged JSON-able structure; anything else raises TypeError."""
    if depth > 100:
        raise TypeError("return value nested deeper than 100 levels")
    d = depth + 1
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", bool(value)]
    if isinstance(value, int):
        return ["i", int(value)]
    if isinstance(value, float):
        return ["f", float(value).hex()]
    if isinstance(value, complex):
        return ["c", value.real.hex(), value.imag.hex()]
    if isinstance(value, str):
        return ["s", str(value)]
    if isinstance(value, bytes | bytearray):
        return ["y", bytes(value).decode("latin-1")]
    if isinstance(value, tuple):
        return ["t", [encode_value(v, d) for v in value]]
    if isinstance(value, list):
        return ["l", [encode_value(v, d) for v in value]]
    if isinstance(value, frozenset):
        return ["F", [encode_value(v, d) for v in value]]
    if isinstance(value, set):
        return ["S", [encode_value(v, d) for v in value]]
    if isinstance(value, dict):
        return ["d", [[encode_value(k, d), encode_value(v, d)] for k, v in value.items()]]
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return encode_value(value.item(), d)  # numpy scalars compare like Python numbers
    raise TypeError(f"unsupported return type {type(value).__name__!r} (only plain data can be checked)")


def decode_value(node, depth: int = 0):
    """Inverse of encode_value, validating every node (the input is untrusted)."""
    if depth > 101 or not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise CandidateError("malformed reply from the candidate process")
    tag, rest, d = node[0], node[1:], depth + 1
    try:
        if tag == "n" and not rest:
            return None
        if tag == "b" and isinstance(rest[0], bool):
            return rest[0]
        if tag == "i" and type(rest[0]) is int:
            return rest[0]
        if tag == "f":
            return float.fromhex(rest[0])
        if tag == "c":
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "s" and isinstance(rest[0], str):
            return rest[0]
        if tag == "y" and isinstance(rest[0], str):
            return rest[0].encode("latin-1")
        if tag in "tlFS" and isinstance(rest[0], list):
            items = [decode_value(v, d) for v in rest[0]]
            return {"t": tuple, "l": list, "F": frozenset, "S": set}[tag](items)
        if tag == "d" and isinstance(rest[0], list):
            return {decode_value(k, d): decode_value(v, d) for k, v in rest[0]}
    except CandidateError:
        raise
    except Exception as exc:  # wrong arity, bad hex, unhashable key...
        raise CandidateError(f"malformed reply from the candidate process ({exc!r})") from None
    raise CandidateError("malformed reply from the candidate process")


# --------------------------------------------------------------------------- lockdown
def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return ctypes, libc


def _prctl(option: int, arg: int) -> bool:
    ctypes, libc = _libc()
    zero = ctypes.c_ulong(0)
    return libc.prctl(option, ctypes.c_ulong(arg), zero, zero, zero) == 0


def _landlock(workdir: str) -> int:
    """Restrict writes to ``workdir``, deny TCP bind/connect, scope signals; returns the ABI (0: none).

    Landlock is unprivileged, so it also protects runs without namespaces; reads stay allowed.
    Syscall numbers 444-446 are the same on x86-64 and the generic (arm64) table.
    """
    ctypes, libc = _libc()
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs = 2 | 16 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096  # write file, remove, make *
    if abi >= 2:
        fs |= 8192  # refer (cross-directory rename/link)
    if abi >= 3:
        fs |= 16384  # truncate
    net = 1 | 2 if abi >= 4 else 0  # TCP bind, TCP connect: no rule allows any port
    scoped = 1 | 2 if abi >= 6 else 0  # abstract unix sockets, signals outside the domain
    fields = [fs] + ([net] if abi >= 4 else []) + ([scoped] if abi >= 6 else [])
    attr = (ctypes.c_uint64 * len(fields))(*fields)
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    dirfd = os.open(".", os.O_PATH | os.O_CLOEXEC)  # the cwd; its parents may be unsearchable
    beneath = struct.pack("<Qi", fs, dirfd)  # struct landlock_path_beneath_attr is packed
    buf = ctypes.create_string_buffer(beneath, len(beneath))
    ok = libc.syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), buf, ctypes.c_uint32(0)) == 0
    os.close(dirfd)
    ok = ok and _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS, required by landlock_restrict_self
    ok = ok and libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
    os.close(ruleset)
    return abi if ok else 0


_PATH_EVENTS = {
    "os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.symlink", "os.link", "os.chmod",
    "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "os.mkfifo", "os.mknod",
}
_BLOCKED_EVENTS = (
    "socket.", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
    "os.kill", "os.killpg", "subprocess.Popen", "ctypes.dlopen", "os.setuid", "os.setgid",
    "pty.spawn", "os.startfile",
)


def _install_guard(workdir: str) -> None:
    """Python-level guard (second layer; the OS limits above are the authority).

    Audit hooks cannot be removed from Python code; everything the hook needs is bound
    here so later monkey-patching of os/os.path does not change its decisions.
    """
    prefix = os.path.realpath(workdir) + os.sep
    realpath, fspath, startswith = os.path.realpath, os.fspath, str.startswith
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    perm_error = PermissionError

    def inside(path) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        try:
            p = fspath(path)
            p = p.decode() if isinstance(p, bytes) else p
            return startswith(realpath(p) + "/", prefix)
        except Exception:
            return False

    def hook(event: str, args: tuple) -> None:
        if startswith(event, _BLOCKED_EVENTS):
            raise perm_error(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags
            )
            if writing and not inside(path):
                raise perm_error(f"sandbox: writing outside the working directory: {path!r}")
        elif event in _PATH_EVENTS and not all(inside(a) for a in args[:2] if isinstance(a, str | bytes)):
            raise perm_error(f"sandbox: {event} outside the working directory")

    sys.addaudithook(hook)


def _set_limits(cfg: dict) -> None:
    limits = [
        (resource.RLIMIT_CPU, cfg["cpu_s"]),
        (resource.RLIMIT_AS, cfg["memory_bytes"]),
        (resource.RLIMIT_FSIZE, cfg["file_size_bytes"]),
        (resource.RLIMIT_CORE, 0),
    ]
    if cfg.get("nproc"):
        limits.append((resource.RLIMIT_NPROC, cfg["nproc"]))
    for kind, value in limits:
        _soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


# --------------------------------------------------------------------------- candidate side
def _candidate_main(req_fd: int, rep_fd: int, cfg: dict) -> None:
    """Runs in the forked candidate process; never returns."""
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        out = os.open(CANDIDATE_OUTPUT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        keep = {0, 1, 2, req_fd, rep_fd}
        for fd in map(int, os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ()):
            if fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        workdir = os.getcwd()
        layers = []
        abi = _landlock(workdir) if cfg.get("landlock", True) else 0
        if abi:
            layers.append(f"landlock-abi{abi}")
        elif _prctl(38, 1):  # PR_SET_NO_NEW_PRIVS: no privilege gain through exec
            layers.append("no_new_privs")
        if cfg.get("python_guard", True):
            _install_guard(workdir)
            layers.append("python-guard")
        program = _recv(req_fd).decode("utf-8")
    except BaseException as exc:  # setup failed: report, never run the program
        _safe_send(rep_fd, ["setup_error", f"{type(exc).__name__}: {exc}"])
        os._exit(3)

    namespace: dict = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(compile(program, "<candidate>", "exec"), namespace)
    except BaseException as exc:
        _safe_send(rep_fd, ["load_error", layers, _describe(exc)])
        os._exit(4)
    _safe_send(rep_fd, ["ready", layers])
    while True:
        try:
            name, args, kwargs = pickle.loads(_recv(req_fd))
        except EOFError:
            os._exit(0)
        try:
            func = namespace.get(name)
            if not callable(func):
                raise NameError(f"the program does not define a function {name!r}")
            reply = ["ok", encode_value(func(*args, **kwargs))]
        except BaseException as exc:
            reply = ["exc", _describe(exc)]
        _safe_send(rep_fd, reply)


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:2000]
    except BaseException:
        return type(exc).__name__


def _safe_send(fd: int, message) -> None:
    try:
        _send(fd, json.dumps(message).encode("utf-8"))
    except BaseException as exc:  # unencodable (e.g. huge) or the test side is gone
        try:
            _send(fd, json.dumps(["exc", f"unsendable reply: {type(exc).__name__}"]).encode())
        except BaseException:
            os._exit(5)


# --------------------------------------------------------------------------- test side
class _Conversation:
    def __init__(self, req_fd: int, rep_fd: int) -> None:
        self.req_fd, self.rep_fd = req_fd, rep_fd

    def receive(self) -> list:
        try:
            message = json.loads(_recv(self.rep_fd, _MAX_REPLY))
        except (EOFError, OSError):
            raise CandidateError("the candidate process ended before the tests finished") from None
        except ValueError:
            raise CandidateError("malformed reply from the candidate process") from None
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            raise CandidateError("malformed reply from the candidate process")
        return message

    def proxy(self, name: str):
        def candidate(*args, **kwargs):
            try:
                _send(self.req_fd, pickle.dumps((name, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                raise CandidateError("the candidate process ended before the tests finished") from None
            reply = self.receive()
            if reply[0] == "ok" and len(reply) == 2:
                return decode_value(reply[1])
            if reply[0] == "exc" and len(reply) == 2:
                raise CandidateError(f"the candidate raised {reply[1]}")
            raise CandidateError("malformed reply from the candidate process")

        candidate.__name__ = name
        return candidate


class _Terminated(BaseException):
    """SIGTERM from the evaluator (wall-time limit)."""


def _on_terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup must not be interrupted
    raise _Terminated


def _children() -> list[int]:
    me, kids = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == me:  # field 4: ppid
                kids.append(int(name))
    return kids


def _kill_descendants(budget_s: float = 2.0) -> None:
    """SIGKILL every child until none is left; grandchildren are re-parented to us as their
    parents die (we are a subreaper), so this reaches the whole tree, setsid() or not."""
    import time

    deadline = time.monotonic() + budget_s
    while True:
        kids = _children()
        for kid in kids:
            with contextlib.suppress(OSError):
                os.kill(kid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        if not kids or time.monotonic() > deadline:
            return
        time.sleep(0.002)


def _drop_capabilities() -> bool:
    """Root that cannot become ``nobody`` keeps uid 0 but loses every capability (so, e.g., it
    cannot read other root processes' /proc entries or override file permissions)."""
    ctypes, libc = _libc()
    for cap in range(64):
        libc.prctl(24, ctypes.c_ulong(cap), 0, 0, 0)  # PR_CAPBSET_DROP: no regaining via exec
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    return libc.capset(header, data) == 0


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("could not drop root privileges")


def _verdict(passed: bool, reason: str, layers: list) -> None:
    # Read only now: the candidate process is dead and never had this fd open.
    nonce = sys.stdin.buffer.readline().decode("ascii", "replace").strip()
    line = json.dumps({"nonce": nonce, "passed": passed, "reason": reason[:4000], "layers": layers})
    sys.stdout.write("\n" + line + "\n")
    sys.stdout.flush()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    layers = list(cfg.get("outer_layers", []))
    if cfg.get("drop_to_uid") is not None:
        _drop_privileges(cfg["drop_to_uid"])
        layers.append("uid-nobody")
    elif os.geteuid() == 0 and _drop_capabilities():
        layers.append("no-capabilities")
    _set_limits(cfg)
    layers.append("rlimits")
    _prctl(4, 0)  # PR_SET_DUMPABLE=0: same-uid processes cannot ptrace or read our memory
    # Orphans of the candidate's descendants (even ones that setsid() away) become our
    # children, so the cleanup below finds them without a PID namespace too.
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGTERM, _on_terminate)  # the evaluator's timeout: clean up, then exit
    to_candidate_r, to_candidate_w = os.pipe()
    from_candidate_r, from_candidate_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_candidate_w)
        os.close(from_candidate_r)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the test process
        _candidate_main(to_candidate_r, from_candidate_w, cfg)
        os._exit(6)
    os.close(to_candidate_r)
    os.close(from_candidate_w)

    # The job arrives only now, after the fork: the candidate never holds the tests.
    stdin = sys.stdin.buffer
    job = json.loads(stdin.read(int(stdin.readline())))
    conversation = _Conversation(to_candidate_w, from_candidate_r)
    passed, reason = False, ""
    try:
        _send(to_candidate_w, job["program"].encode("utf-8"))
        first = conversation.receive()
        if first[0] == "ready":
            layers += [str(x) for x in first[1]] if len(first) > 1 and isinstance(first[1], list) else []
            test_ns: dict = {"__name__": "__test__"}
            if job["mode"] == "check":
                exec(compile(job["context"], "<context>", "exec"), test_ns)
                exec(compile(job["test"], "<test>", "exec"), test_ns)
                if not callable(test_ns.get("check")):
                    raise RuntimeError("the test code defines no check(candidate) function")
                test_ns["check"](conversation.proxy(job["entry_points"][0]))
            else:
                exec(compile(job["context"], "<context>", "exec"), test_ns)
                for name in job["entry_points"]:
                    test_ns[name] = conversation.proxy(name)
                exec(compile(job["test"], "<test>", "exec"), test_ns)
            passed, reason = True, "all tests passed"
        elif first[0] == "load_error":
            layers += [str(x) for x in first[1]] if len(first) > 1 and isinstance(first[1], list) else []
            reason = f"the program failed to load: {first[2] if len(first) > 2 else '?'}"
        else:
            reason = f"sandbox setup failed: {first[1] if len(first) > 1 else '?'}"
    except CandidateError as exc:
        reason = str(exc)
    except AssertionError as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in tb if f.filename == "<test>"]
        where = f"line {lines[-1]} of the test" if lines else "the test"
        reason = f"assertion failed at {where}" + (f": {exc}" if str(exc) else "")
    except BaseException as exc:
        reason = f"test raised {_describe(exc)}"
    finally:
        _kill_descendants()
    _verdict(passed, reason, layers)


if __name__ == "__main__":
    main()
