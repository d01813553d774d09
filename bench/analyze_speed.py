"""`tinyopt analyze` wall time per MLPerf Tiny model, as a whole process, against the 1 s target.

    .venv/bin/python bench/analyze_speed.py              # 5 runs per model, writes
    bench/results/analyze_speed.md .venv/bin/python bench/analyze_speed.py --runs 3 --no-write

Each run is a fresh process: `tinyopt analyze MODEL --device stm32l4r5 --json` (interpreter start, imports,
parsing, analysis, JSON). Peer: TFLM's Python interpreter answering the nearest question it can, the
arena size, as a fresh process too: import `tflite_micro`, `Interpreter.from_file` (load + AllocateTensors)
and `print_allocations()`. We report the median and the best of N runs; the machine is shared, so the
best run is the fairest estimate of the cost and the median shows the load. No torch or onnx is imported
for .tflite and .yaml models (checked here with `-X importtime`).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mlperf-tiny"
TARGET_S = 1.0
CASES = [
    ("exam (YAML spec)", ROOT / "examples" / "specs" / "exam.yaml"),
    ("KWS DS-CNN int8", MODELS / "kws_ref_model.tflite"),
    ("KWS DS-CNN float", MODELS / "kws_ref_model_float32.tflite"),
    ("ResNet-8 int8", MODELS / "pretrainedResnet_quant.tflite"),
    ("ResNet-8 float", MODELS / "pretrainedResnet.tflite"),
]
TFLM = ("import sys\nfrom tflite_micro.python.tflite_micro import runtime\n"
        "runtime.Interpreter.from_file(sys.argv[1]).print_allocations()\n")


def wall(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_profile(model: Path) -> dict[str, float]:
    """Self import time (s) per top-level package of one analyze process, from ``-X importtime``."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "from tinyopt.cli import run; run()",
                        "analyze", str(model), "--json"], capture_output=True, text=True)
    out: dict[str, float] = {}
    for line in r.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or "self" in parts[0]:
            continue
        top = parts[2].strip().split(".")[0]
        out[top] = out.get(top, 0.0) + int(parts[0].split(":")[1]) / 1e6
    return out


def heavy_imports(model: Path) -> list[str]:
    """Heavy packages the analyze process imports (must be none for .tflite/.yaml)."""
    return sorted(p for p in import_profile(model) if p in ("torch", "onnx", "onnxruntime", "matplotlib",
                                                            "scipy",
                                                          "sklearn", "tflite_micro", "tensorflow"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    exe = [sys.executable, "-c", "from tinyopt.cli import run; run()"]
    rows = []
    for label, path in CASES:
        if not path.exists():
            print(f"skip {label}: {path} is absent")
            continue
        ours = [wall([*exe, "analyze", str(path), "--device", "stm32l4r5",
                      "--json"]) for _ in range(args.runs)]
        int8 = path.name in ("kws_ref_model.tflite", "pretrainedResnet_quant.tflite")
        peer = [wall([sys.executable, "-c", TFLM, str(path)]) for _ in range(args.runs)] if int8 else []
        rows.append((label, [w for w, _ in ours], [c for _, c in ours], [w for w, _ in peer],
                     [c for _, c in peer], heavy_imports(path)))
    head = ("| model | analyze wall best (s) | wall median (s) | analyze CPU best (s) | target (s) | CPU "
            "best / target | TFLM load+allocate wall best (s) | TFLM CPU best (s) | ours / TFLM "
            "(CPU) | heavy imports |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for label, ow, oc, pw, pc, heavy in rows:
        peer = f"{min(pw):.3f} | {min(pc):.3f} | {min(oc) / min(pc):.2f}×" if pw else "- | - | -"
        lines.append(f"| {label} | {min(ow):.3f} | {statistics.median(ow):.3f} | {min(oc):.3f} | "
                     f"{TARGET_S:.1f} | {min(oc) / TARGET_S:.2f} | {peer} | {', '.join(heavy) or 'none'} |")
    prof = (import_profile(MODELS / "kws_ref_model.tflite") if (MODELS / "kws_ref_model.tflite").exists()
            else {})
    if prof:
        total = sum(prof.values())
        lines += ["",
                  "Where an analyze process spends its import time (KWS int8, one run, `-X importtime` self "
                  f"times, total {total:.3f} s):", "", "| package | import s | share |",
                  "| --- | ---: | ---: |"]
        for name, sec in sorted(prof.items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f"| {name} | {sec:.3f} | {sec / total:.0%} |")
    load = os.getloadavg()
    table = "\n".join(lines) + (f"\n\nLoad average during the run: {load[0]:.1f} / {load[1]:.1f} / "
                                f"{load[2]:.1f} on {os.cpu_count()} CPUs.")
    print(table)
    if not args.no_write:
        from tinyopt._io import atomic_write_text

        cmd = f".venv/bin/python bench/analyze_speed.py --runs {args.runs}"
        text = (f"# `tinyopt analyze` speed (whole process)\n\nCommand: `{cmd}` "
                f"({args.runs} fresh processes per model, device stm32l4r5, `--json`).\n"
                "Peer: TFLM's Python interpreter, fresh process: import + `Interpreter.from_file` (load and "
                "AllocateTensors) + `print_allocations()` (int8 models only; TFLM does not run the float "
                "ones here). Target: < 1 s wall per model. The machine is shared by several engineers: wall "
                "time includes waiting for a CPU, so CPU time (user + sys of the child) is the fairer cost; "
                "best-of-N of each, median wall shows the load.\n\n" + table + "\n")
        out = ROOT / "bench" / "results" / "analyze_speed.md"
        atomic_write_text(out, text)
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
