"""Throughput of the code sandbox vs a plain unsandboxed subprocess, on the same programs.

Run: python benchmarks/bench_sandbox.py [--problems 96] [--workers 2] [--rounds 8]
Prints problems/s for each and the ratio (sandbox / plain) from one run.

Both sides run every problem in a fresh ``python`` subprocess, ``workers`` at a time. The
baseline is the classic HumanEval harness shape: one ``python -c`` per problem executing
program + tests + ``check(entry_point)`` in a single process, with no limits, namespaces or
second process (same interpreter, and the same single-threaded BLAS and hash seed as the
sandbox). The programs are the reference solutions of the hand-written HumanEval+ and MBPP+
fixtures in tests/fixtures/, half of them broken so that both outcomes are timed.
Running model code requires the opt-in; this script only runs the fixtures' own solutions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rtc_metrics.code import build_program, isolation_layers, problem_from_record, run_jobs

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def load_jobs(n: int):
    records = []
    for name in ("humanevalplus_sample.jsonl", "mbppplus_sample.jsonl"):
        records += [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]
    jobs, plain = [], []
    for i in range(n):
        record = records[i % len(records)]
        problem = problem_from_record(record)
        code = record["canonical_solution"] if problem.kind == "humaneval" else record["code"]
        if (i // len(records)) % 2:
            code = code.replace("return ", "return None and ", 1)
        program = build_program(problem, code)
        job = problem.job(program)
        jobs.append(job)
        if job.mode == "check":
            script = f"{program}\n\n{job.test}\n\ncheck({job.entry_points[0]})\n"
        else:
            script = f"{program}\n\n{job.context}\n{job.test}\n"
        plain.append(script)
    return jobs, plain


def run_plain(scripts: list[str], workers: int, timeout: float) -> list[bool]:
    # Same single-threaded BLAS and hash seed as the sandbox, so only the isolation differs.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONHASHSEED"] = "0"

    def one(script: str) -> bool:
        try:
            command = [sys.executable, "-c", script]
            done = subprocess.run(command, capture_output=True, timeout=timeout, env=env)
            return done.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, scripts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=8, help="alternations between the two sides")
    args = parser.parse_args()
    jobs, scripts = load_jobs(args.problems)

    # Alternate the two in rounds so that a change in machine load hits both alike.
    plain, sandboxed, plain_s, sandbox_s = [], [], 0.0, 0.0
    size = max(1, args.problems // args.rounds)
    for lo in range(0, args.problems, size):
        start = time.perf_counter()
        plain += run_plain(scripts[lo : lo + size], args.workers, args.timeout)
        plain_s += time.perf_counter() - start
        start = time.perf_counter()
        sandboxed += run_jobs(jobs[lo : lo + size], confirm_run_unsafe_code=True, workers=args.workers)
        sandbox_s += time.perf_counter() - start

    agree = sum(p == s.passed for p, s in zip(plain, sandboxed, strict=True))
    print(f"problems: {args.problems}, workers: {args.workers}, cpus: {os.cpu_count()}, "
          f"python {sys.version.split()[0]}")
    print(f"sandbox layers: {', '.join(sandboxed[0].layers) or ', '.join(isolation_layers())}")
    print(f"plain subprocess : {args.problems / plain_s:7.2f} problems/s  ({plain_s:.2f} s)")
    print(f"sandbox          : {args.problems / sandbox_s:7.2f} problems/s  ({sandbox_s:.2f} s)")
    print(f"ratio sandbox/plain: {plain_s / sandbox_s:.2f}x throughput")
    passed = sum(r.passed for r in sandboxed)
    print(f"verdicts agree: {agree}/{args.problems} (passed: plain {sum(plain)}, sandbox {passed})")


if __name__ == "__main__":
    main()
