"""TFLite import and export speed and size on the MLPerf Tiny models, against named peers.

    .venv/bin/python bench/tflite_io.py                # 30 runs per model, writes bench/results/tflite_io.md
    .venv/bin/python bench/tflite_io.py --runs 5 --no-write

Import: ``load_tflite`` (bounds-checked reader, full validation, shape re-inference, data copied) against
the ``tflite`` package's generated bindings doing the least a loader must do without any checks: visit
every used tensor (shape, type, quantization, buffer bytes as numpy) and every operator (inputs, outputs,
options type). Export: ``graph_to_tflite_bytes`` (which includes reading its own output back with the strict
importer) against the time LiteRT needs to load and allocate the same file (the first thing a user does with
it). Size: our file against the converter's original; the difference is metadata we do not write
(min_runtime_version, shape signatures, min/max statistics). TFLM's arena for the written file is read from
``print_allocations`` in a child process and must equal the original's. Best of N is reported (the machine is
shared); the median shows the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mlperf-tiny"
CASES = [("KWS DS-CNN int8", "kws_ref_model.tflite"), ("KWS DS-CNN float", "kws_ref_model_float32.tflite"),
         ("ResNet-8 int8", "pretrainedResnet_quant.tflite"), ("ResNet-8 float", "pretrainedResnet.tflite")]
ARENA = ("import sys\nfrom tflite_micro.python.tflite_micro import runtime\n"
         "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read()).print_allocations()\n")


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def bindings_walk(data: bytes) -> int:
    import tflite

    m = tflite.Model.GetRootAsModel(data, 0)
    sg = m.Subgraphs(0)
    n = 0
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape, q = t.ShapeAsNumpy(), t.Quantization()
        if q is not None and q.ScaleLength():
            q.ScaleAsNumpy(), q.ZeroPointAsNumpy(), q.QuantizedDimension()
        b = m.Buffers(t.Buffer())
        if b.DataLength():
            n += b.DataAsNumpy().copy().size
        n += len(t.Name()) + int(np.size(shape)) + t.Type()
    for j in range(sg.OperatorsLength()):
        op = sg.Operators(j)
        n += op.InputsAsNumpy().size + op.OutputsAsNumpy().size + op.BuiltinOptionsType()
    return n


def litert_load(data: bytes) -> None:
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_content=data).allocate_tensors()


def arena(path: Path) -> int:
    r = subprocess.run([sys.executable, "-c", ARENA, str(path)], capture_output=True, text=True)
    out = r.stdout + r.stderr
    line = next(x for x in out.splitlines() if "Arena allocation total" in x)
    return int(line.split("total")[1].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from tinyopt.export.tflite import graph_to_tflite_bytes, save_tflite
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    rows = []
    tmp = ROOT / "bench" / "results" / ".tflite_io_tmp.tflite"
    for label, name in CASES:
        path = MODELS / name
        data = path.read_bytes()
        g = tflite_bytes_to_graph(data, str(path))
        ours_in = timed(lambda: tflite_bytes_to_graph(data, str(path)), args.runs)  # noqa: B023
        peer_in = timed(lambda: bindings_walk(data), args.runs)  # noqa: B023
        written = graph_to_tflite_bytes(g)
        ours_out = timed(lambda: graph_to_tflite_bytes(g), args.runs)  # noqa: B023
        peer_out = timed(lambda: litert_load(written), args.runs)  # noqa: B023
        arenas = "-"
        if "int8" in label:
            save_tflite(g, tmp)
            arenas = f"{arena(path):,} / {arena(tmp):,}"
        rows.append((label, len(data), len(written), ours_in, peer_in, ours_out, peer_out, arenas))
    tmp.unlink(missing_ok=True)

    head = ("| model | file B (orig / ours) | import ms ours (median) | bindings walk ms | import ratio | "
            "write ms ours (median) | LiteRT load ms | write ratio | TFLM arena B (orig / ours) |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [head]
    for label, n0, n1, oi, pi, oo, po, arenas in rows:
        lines.append(f"| {label} | {n0:,} / {n1:,} ({n1 / n0:.2f}x) | {oi[0] * 1e3:.2f} ({oi[1] * 1e3:.2f}) "
                     f"| {pi[0] * 1e3:.2f} | {oi[0] / pi[0]:.2f}x | {oo[0] * 1e3:.2f} ({oo[1] * 1e3:.2f}) | "
                     f"{po[0] * 1e3:.2f} | {oo[0] / po[0]:.2f}x | {arenas} |")
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        cmd = f".venv/bin/python bench/tflite_io.py --runs {args.runs}"
        (ROOT / "bench" / "results" / "tflite_io.md").write_text(
            f"# TFLite import / export\n\n`{cmd}` (best of {args.runs}; median in brackets; shared 2-core "
            f"machine)\n\n{table}\n\nRatios are ours / peer (below 1 = faster). Peers: the `tflite` "
            "package's generated bindings walking the model without any checks; LiteRT loading and "
            "allocating the written file. Our write time includes re-importing the written bytes (the "
            f"self-check). Load average during the run: {os.getloadavg()[0]:.1f} on 2 cores.\n")


if __name__ == "__main__":
    main()
