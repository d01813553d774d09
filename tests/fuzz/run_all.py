"""``make fuzz``: every atheris harness for a bounded number of executions, then a table.

    python -m tests.fuzz.run_all [--runs 100000] [--max-time 0] [--jobs 1] [--only tflite,yaml]

Each target gets its own process (libFuzzer owns the process and exits it), a growing corpus in
``build/fuzz/<target>/`` seeded from ``tests/corpus/files``, ``-timeout=2`` (a slower input is a
failure) and crash files in ``build/fuzz/crashes/``. Exit status 1 if any harness found a crash,
timeout or out-of-memory input; every such input belongs in the corpus with a regression test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.fuzz.harness import BUILD, ROOT, SLOW_S, TARGETS, seeds, target


def run_one(name: str, runs: int, max_time: int = 0, rss_mb: int = 2048) -> dict:
    corpus = BUILD / name
    corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds(name):
        (corpus / hashlib.sha1(s).hexdigest()).write_bytes(s)
    crashes = BUILD / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tests.fuzz.atheris_main", name, f"-runs={runs}", "-timeout=60",
           f"-rss_limit_mb={rss_mb}", f"-artifact_prefix={crashes}/{name}-", "-print_final_stats=1",
           str(corpus)]
    if max_time:
        cmd.insert(4, f"-max_total_time={max_time}")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if name == "pipeline":
        env["TINYOPT_FUZZ_ACCEPTED"] = str(BUILD / "accepted")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = r.stderr
    (BUILD / f"{name}.log").write_text(log)
    inited = re.search(r"INITED cov: (\d+)", log)
    done = re.findall(r"#(\d+)\s+(?:DONE|NEW|REDUCE|pulse)\s+cov: (\d+)", log)
    execs = re.search(r"stat::number_of_executed_units: (\d+)", log)
    failed = r.returncode != 0 or re.search(r"ERROR: libFuzzer|Uncaught Python exception", log) is not None
    slow = retime_slow(name)
    known = len(list((BUILD / "known").glob(f"{name}-*"))) if (BUILD / "known").is_dir() else 0
    return {"target": name, "executions": int(execs.group(1)) if execs else (int(done[-1][0]) if done else 0),
            "seconds": round(wall, 1), "cov_start": int(inited.group(1)) if inited else 0,
            "cov_end": int(done[-1][1]) if done else (int(inited.group(1)) if inited else 0),
            "corpus": len(list(corpus.iterdir())), "failed": failed or bool(slow), "slow": slow,
            "known": known, "error": _first_error(log, r.returncode) if failed
            else (f"{len(slow)} inputs > {SLOW_S} s" if slow else "")}


def retime_slow(name: str) -> list[str]:
    """Inputs that took > 2 s inside the fuzzer, timed again alone (best of 3): the ones still slow."""
    folder = BUILD / "slow"
    if not folder.is_dir():
        return []
    fn, still = target(name), []
    for p in sorted(folder.glob(f"{name}-*")):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                fn(p.read_bytes())
            except Exception:  # only the time matters here; exceptions are the fuzzer's job
                pass
            best = min(best, time.perf_counter() - t0)
        if best > SLOW_S:
            still.append(f"{p.name} ({best:.2f} s)")
    return still


def _first_error(log: str, code: int) -> str:
    """The exception line above libFuzzer's report, or its own error line (timeout, rss, signal)."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "ERROR: libFuzzer" in line:
            exc = next((x for x in reversed(lines[:i]) if re.match(r"^[A-Za-z_.]+(Error|Exception|Exit)\b",
                                                                   x)), "")
            return (exc or line.split("ERROR: ", 1)[1]).strip()[:200]
    return "killed by SIGALRM (libFuzzer -timeout)" if code == 142 else f"exit status {code}"


def table(rows: list[dict]) -> str:
    out = ["| target | executions | time (s) | exec/s | coverage start → end (edges) | corpus | known-bug "
           "inputs | result |", "|---|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        rate = r["executions"] / max(r["seconds"], 1e-9)
        out.append(f"| {r['target']} | {r['executions']:,} | {r['seconds']} | {rate:.0f} | {r['cov_start']} "
                   f"→ {r['cov_end']} (+{r['cov_end'] - r['cov_start']}) | {r['corpus']} | {r['known']} | "
                   f"{'FAIL ' + r['error'] if r['failed'] else 'ok'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--max-time", type=int, default=0, help="seconds per target (0: no limit)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default=",".join(TARGETS))
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(",") if n]
    with ThreadPoolExecutor(a.jobs) as pool:
        rows = []
        for r in pool.map(lambda n: run_one(n, a.runs, a.max_time), names):
            print(f"{r['target']}: {r['executions']} executions in {r['seconds']} s, cov {r['cov_start']} -> "
                  f"{r['cov_end']}, {'FAIL ' + r['error'] if r['failed'] else 'ok'}", flush=True)
            rows.append(r)
    print(table(rows))
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
