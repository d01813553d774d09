"""`tinyopt analyze`'s arena per runtime against the smallest arena TFLM really accepts.

    .venv/bin/python bench/arena_vs_tflm.py            # prints the table, writes
    bench/results/arena_vs_tflm.md .venv/bin/python bench/arena_vs_tflm.py --no-torchvision --no-write

Peer: tflite-micro's Python package. For each int8 model, a binary search over ``arena_size`` finds the
smallest arena with which ``runtime.Interpreter.from_bytes(model, arena_size=N)`` allocates and invokes;
each probe runs in a forked child (a too small arena can crash the interpreter rather than fail cleanly).
Models: MLPerf Tiny's int8 KWS and ResNet-8 (../shared), every zoo model converted by tinyopt (seed 0, 8
random calibration samples), and torchvision architectures (weights=None, 1000 classes, 2 calibration
samples) when torchvision imports. Columns:

- liveness plan: the activation plan alone, what `analyze` reported before (issue #20);
- TFLM predicted: `analyze --runtime tflm-reference` (head + tail, as the Python package allocates it);
- bare metal / CMSIS-NN: the same model's arena for a 32-bit Cortex-M build with reference kernels, and with
  CMSIS-NN's kernels (Python build layout); not measurable here (no such build on this machine);
- tinyopt-c: the generated C library's TINYOPT_ARENA_BYTES.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT.parent / "shared" / "models" / "mlperf-tiny"
TORCHVISION = [("mnasnet0_5", 96, {}), ("mobilenet_v2", 96, {"width_mult": 0.35}),
               ("mobilenet_v3_small", 96, {}), ("mobilenet_v3_large", 64, {}), ("efficientnet_b0", 64, {}),
               ("squeezenet1_1", 64, {}), ("shufflenet_v2_x0_5", 64, {}), ("googlenet", 64, {}),
               ("mnasnet1_0", 64, {})]


def tflm_accepts(model: bytes, n: int) -> bool:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1), os.dup2(fd, 2)
            from tflite_micro.python.tflite_micro import runtime

            it = runtime.Interpreter.from_bytes(model, arena_size=n)
            d = it.get_input_details(0)
            it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            it.invoke()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest_arena(model: bytes, guess: int) -> int | None:
    """Binary search for the smallest accepted arena (None if TFLM refuses every size up to 64 MB)."""
    lo, hi = 0, max(guess, 16)
    while not tflm_accepts(model, hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 26:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if tflm_accepts(model, mid) else (mid, hi)
    return hi


def models(torchvision: bool):
    import torch

    import tinyopt
    from tinyopt import zoo
    from tinyopt.convert import convert_torch
    from tinyopt.export.tflite import graph_to_tflite_bytes

    torch.set_num_threads(1)
    for name in ("kws_ref_model.tflite", "pretrainedResnet_quant.tflite"):
        path = MLPERF / name
        if path.exists():
            yield f"MLPerf {name}", tinyopt.load(str(path)).graph, path.read_bytes()
    for name in sorted(zoo.ZOO):
        torch.manual_seed(0)
        m, shape = zoo.build(name).eval(), zoo.input_shape(name)
        g = convert_torch(m, np.random.default_rng(1).normal(0, 1, (8, *shape)).astype(np.float32), shape)
        yield f"zoo {name}", g, graph_to_tflite_bytes(g)
    if not torchvision:
        return
    try:
        for op, schema in [("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
                           ("qnms", "(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")]:
            try:  # its PyPI wheel is a CUDA build: declare the two schemas its import looks up
                torch.library.define(f"torchvision::{op}", schema)
            except RuntimeError:
                pass
        from torchvision import models as tv
    except Exception as e:  # any import failure means: skip this family
        print(f"torchvision not importable ({e}); skipped", file=sys.stderr)
        return
    for name, size, kw in TORCHVISION:
        torch.manual_seed(0)
        m = getattr(tv, name)(weights=None, **kw).eval()
        shape = (3, size, size)
        g = convert_torch(m, np.random.default_rng(1).normal(0, 1, (2, *shape)).astype(np.float32), shape)
        label = name + (f"-{kw['width_mult']}" if kw else "")
        yield f"torchvision {label} @{size}", g, graph_to_tflite_bytes(g)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-torchvision", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from tinyopt.analysis.arena import runtime_arena
    from tinyopt.analysis.memory import plan_arena
    from tinyopt.errors import TinyoptError

    header = ("| model | ops | liveness plan (B) | TFLM predicted (B) | TFLM smallest (B) | predicted / TFLM "
              "| liveness / TFLM | bare metal (B) | CMSIS-NN (B) | tinyopt-c (B) |")
    rows = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    print(header, flush=True)
    ratios, t0 = [], time.time()
    for label, g, model in models(not args.no_torchvision):
        tflm, cmsis = (runtime_arena(g, rt) for rt in ("tflm-reference", "cmsis-nn"))
        try:
            c_bytes = f"{runtime_arena(g, 'tinyopt-c').bytes:,}"
        except TinyoptError as e:  # the C library cannot compile every model
            c_bytes = f"- ({e.message[:40]})"
        live = plan_arena(g).peak_bytes
        meas = smallest_arena(model, tflm.bytes)
        ratio = tflm.bytes / meas if meas else float("nan")
        ratios.append(ratio)
        row = (f"| {label} | {len(g.nodes)} | {live:,} | {tflm.bytes:,} | {meas:,} | {ratio:.4f} | "
               f"{live / meas:.3f} | {tflm.bare_metal_bytes:,} | {cmsis.bytes:,} | {c_bytes} |")
        rows.append(row)
        print(row, flush=True)
    summary = (f"{len(ratios)} models: predicted / TFLM from {min(ratios):.4f} to {max(ratios):.4f} "
               f"(target ±5 %); {time.time() - t0:.0f} s")
    print(summary)
    if not args.no_write:
        out = ROOT / "bench" / "results" / "arena_vs_tflm.md"
        text = ["# Arena per runtime: `analyze` against the smallest arena TFLM accepts", "",
                "Command: `.venv/bin/python bench/arena_vs_tflm.py` (one process; tflite-micro "
                f"{_version()}, the peer).", "", *rows, "", summary, ""]
        out.write_text("\n".join(text))
        print(f"wrote {out.relative_to(ROOT)}")


def _version() -> str:
    from importlib.metadata import version

    return version("tflite-micro")


if __name__ == "__main__":
    main()
