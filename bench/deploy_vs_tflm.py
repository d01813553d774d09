"""tinyopt's C library against TFLM on the MLPerf Tiny int8 models: RAM, flash, host latency, M4
instructions.

Run from the repo root:
``.venv/bin/python bench/deploy_vs_tflm.py [--runs 200] [--qemu-inputs 5] [--skip-zoo] [--mlperf DIR]``.

- ``--mlperf DIR``: every int8 ``.tflite`` in DIR joins the two MLPerf models of ``../shared`` (the same
  file twice counts once), e.g. the other MLPerf Tiny reference models (visual wake words, anomaly
  detection) kept outside the repo; the last table gives the geomean of RAM ratios over the MLPerf models
  per plan mode (issue #16's target).

- Plans: the library of each plan mode (``--optimize speed|balanced|ram``; the first table is the default,
  balanced), each checked against TFLM on the host on every input and on the M4 on ``--qemu-inputs``;
  its RAM as below and M4 instructions against speed mode's. MobileNetV2-0.35 at 96x96 is torchvision's
  architecture (weights=None, BN re-estimated on seeded images) converted by tinyopt with 32 seeded
  calibration images.

- TFLM arena: ``tflite_micro`` ``print_allocations()`` (total of head and tail).
- Our RAM: ``.data + .bss`` of the library's Cortex-M4 objects (``arm-none-eabi-size``) plus the caller's
  output buffer if it needs one; the input and a single output live in the arena
  (``tinyopt_input_buffer()``, ``tinyopt_output_buffer()``), as TFLM keeps them in its arena.
- Our flash: ``.text + .rodata`` of the same objects, against the ``.tflite`` file size.
- Host latency: our library built ``-O2`` as a shared object, called through ctypes, against TFLM's
  interpreter (``set_input`` + ``invoke``), same process, same inputs, timed alternately; median and
  minimum of ``--runs`` (the minimum is the figure least disturbed by other work on a shared machine).
- M4: instructions per inference under ``qemu-system-arm -M mps2-an386 -icount shift=3`` (SysTick, see
  ``tinyopt.export.c.board``), and per MAC; outputs compared with the host build and with TFLM.
- Zoo: every ``tinyopt.zoo`` model converted to int8, host library against TFLM on the same seeded
  inputs, M4 build against the host build.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mlperf-tiny"
CASES = {"KWS (DS-CNN)": MODELS / "kws_ref_model.tflite",
         "ResNet-8": MODELS / "pretrainedResnet_quant.tflite"}
MODES = ("speed", "balanced", "ram")


def mobilenet_v2(tmp: Path) -> Path:
    """torchvision's MobileNetV2 (width 0.35, 96x96, weights=None, BN statistics from seeded images)
    converted to int8 by tinyopt (32 seeded calibration images in [-1, 1]), as bench/real_models.py does."""
    import torch

    import tinyopt
    from tinyopt.export.tflite import save_tflite

    sys.path.insert(0, str(Path(__file__).parent))
    from real_models import reestimate_bn, torchvision_models

    torch.manual_seed(0)
    m = reestimate_bn(torchvision_models().mobilenet_v2(width_mult=0.35, weights=None), (3, 96, 96))
    model = tinyopt.load(m, example_input=torch.zeros(1, 3, 96, 96))
    calib = np.random.default_rng(0).uniform(-1, 1, size=(32, 3, 96, 96)).astype(np.float32)
    q = tinyopt.convert(model, calib=calib)
    path = tmp / "mobilenet_v2_0.35_96.tflite"
    save_tflite(q.graph if hasattr(q, "graph") else q, path)
    return path


def more_mlperf(folder: Path) -> dict:
    """Name -> path of the int8 models in ``folder`` that are not already ``CASES``."""
    from tinyopt.graph import load_model

    known = {p.read_bytes() for p in CASES.values() if p.is_file()}
    out = {}
    for p in sorted(folder.glob("*.tflite")):
        g = load_model(p)
        if p.read_bytes() not in known and g.tensors[g.inputs[0]].dtype == "int8":
            out[p.stem] = p
    return out


def mode_rows(name: str, path: Path, xs: np.ndarray, ref: np.ndarray, qemu_inputs: int, tmp: Path,
              arena: int) -> list[dict]:
    """Each plan mode's library: host outputs against TFLM's ``ref`` on every input, the M4 build against
    TFLM on the first ``qemu_inputs``, RAM (M4 .data + .bss + the output buffer) and M4 instructions."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu
    from tinyopt.graph import load_model

    graph = load_model(path)
    rows = []
    for mode in MODES:
        lib = generate_sources(graph, optimize=mode)
        d = tmp / f"{path.stem}-{mode}"
        write_library(lib.files, d)
        host = run_host(build_host(d, tmp / f"{path.stem}-{mode}.exe"), xs.reshape(len(xs), -1),
                        lib.output_bytes)
        m4 = build_m4(d, tmp / f"{path.stem}-{mode}-m4", xs[:qemu_inputs].reshape(qemu_inputs, -1))
        m4_out, counts = run_qemu(m4.elf, lib.output_bytes)
        ram = m4.ram_bytes + lib.caller_output_bytes
        rows.append(dict(model=name, mode=mode, ram=ram, ratio=ram / arena, instr=int(np.median(counts)),
                         flash=m4.flash_bytes, segments=len(lib.plan.segments),
                         host_equal=int((host == ref.reshape(len(xs), -1)).all(axis=1).sum()), runs=len(xs),
                         m4_equal=bool(np.array_equal(m4_out, ref[:qemu_inputs].reshape(qemu_inputs, -1))),
                         qemu_inputs=qemu_inputs))
    speed = rows[0]["instr"]
    for r in rows:
        r["vs_speed"] = r["instr"] / speed
    return rows


def tflm_arena(path: Path) -> int:
    """TFLM's arena total, read from print_allocations() (it prints from C++, not through Python)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(path))
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            interp.print_allocations()
            ctypes.CDLL(None).fflush(None)  # MicroPrintf goes through C stdio buffers
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        f.seek(0)
        text = f.read().decode(errors="replace")
    return int(re.search(r"Arena allocation total (\d+) bytes", text).group(1))


def interleaved_seconds(fns, runs: int) -> list[tuple[float, float]]:
    """(median, min) seconds of each function, timed alternately so that load on a shared machine hits
    both sides alike."""
    times = [[] for _ in fns]
    for _ in range(runs):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [(float(np.median(ts)), float(np.min(ts))) for ts in times]


def measure(name: str, path: Path, runs: int, qemu_inputs: int, tmp: Path) -> dict:
    from tflite_micro.python.tflite_micro import runtime

    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_qemu
    from tinyopt.graph import load_model

    lib = generate_sources(load_model(path))
    d = tmp / path.stem
    write_library(lib.files, d)
    so = build_host(d, tmp / f"{path.stem}.so", shared=True)
    c = ctypes.CDLL(str(so))
    c.tinyopt_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    interp = runtime.Interpreter.from_file(str(path))
    shape = tuple(interp.get_input_details(0)["shape"])
    rng = np.random.default_rng(0)
    xs = rng.integers(-128, 128, size=(runs, *shape), dtype=np.int8)
    out = np.zeros(lib.output_bytes, np.int8)
    mismatches = 0
    it = iter(range(runs))

    def ours():
        x = xs[next(it) % runs]
        c.tinyopt_invoke(x.ctypes.data, out.ctypes.data)

    def tflm():
        x = xs[next(it) % runs]
        interp.set_input(x, 0)
        interp.invoke()

    for x in xs:  # correctness on every timed input
        c.tinyopt_invoke(x.ctypes.data, out.ctypes.data)
        interp.set_input(x, 0)
        interp.invoke()
        mismatches += int(not np.array_equal(out, interp.get_output(0).reshape(-1)))
    it = iter(range(10**9))
    (t_ours, m_ours), (t_tflm, m_tflm) = interleaved_seconds([ours, tflm], runs)
    m4 = build_m4(d, tmp / f"{path.stem}-m4", xs[:qemu_inputs].reshape(qemu_inputs, -1))
    m4_out, counts = run_qemu(m4.elf, lib.output_bytes)
    m4_ok = all(np.array_equal(m4_out[i], _tflm_out(interp, xs[i])) for i in range(qemu_inputs))
    arena = tflm_arena(path)
    ram = m4.ram_bytes + lib.caller_output_bytes
    instr = int(np.median(counts))
    ref = np.stack([_tflm_out(interp, x) for x in xs])
    modes = mode_rows(name, path, xs, ref, qemu_inputs, tmp, arena)
    return dict(model=name, tflm_arena=arena, our_ram=ram, ram_ratio=ram / arena, our_flash=m4.flash_bytes,
                tflite_bytes=path.stat().st_size, flash_ratio=m4.flash_bytes / path.stat().st_size,
                ours_ms=t_ours * 1e3, tflm_ms=t_tflm * 1e3, speedup=t_tflm / t_ours,
                min_speedup=m_tflm / m_ours,
                ours_min_ms=m_ours * 1e3, tflm_min_ms=m_tflm * 1e3, m4_instructions=instr,
                macs=lib.macs, instr_per_mac=instr / lib.macs, host_mismatches=mismatches, runs=runs,
                m4_matches_tflm=m4_ok, qemu_inputs=qemu_inputs, modes=modes)


def zoo_row(name: str, runs: int, qemu_inputs: int, tmp: Path) -> dict:
    """A zoo model converted to int8 (torch seed 0, 16 random calibration inputs): host library against
    TFLM on ``runs`` seeded inputs (against tinyopt's numpy runtime where TFLM's Python interpreter cannot
    prepare the model), the M4 build against the host on ``qemu_inputs``, and M4 instructions per MAC."""
    import torch
    from tflite_micro.python.tflite_micro import runtime

    from tinyopt.convert.convert import convert_torch
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter
    from tinyopt.zoo import build

    torch.manual_seed(0)
    model = build(name).eval()
    shape = tuple(model.input_shape)
    graph = convert_torch(model, torch.randn(16, *shape), shape)
    lib = generate_sources(graph)
    d = tmp / f"zoo-{name}"
    write_library(lib.files, d)
    x_t = graph.tensors[graph.inputs[0]]
    xs = np.random.default_rng(1).integers(-128, 128, size=(runs, x_t.size), dtype=np.int8)
    host = run_host(build_host(d, tmp / f"zoo-{name}.exe"), xs, lib.output_bytes)
    try:
        interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(graph))
        ref = np.stack([_tflm_out(interp, x.reshape(x_t.shape)) for x in xs])
        peer, n_ref = "TFLM", runs
    except RuntimeError:  # TFLM's Python interpreter fails to prepare some layers (see RESULTS)
        n_ref = min(runs, 10)
        ref = Interpreter(graph).run(xs[:n_ref].reshape(n_ref, *x_t.shape[1:]))[0].reshape(n_ref, -1)
        peer = "tinyopt runtime"
    m4 = build_m4(d, tmp / f"zoo-{name}-m4", xs[:qemu_inputs])
    m4_out, counts = run_qemu(m4.elf, lib.output_bytes)
    instr = int(np.median(counts))
    return dict(model=name, ops=", ".join(sorted({n.op for n in graph.nodes})), arena=lib.arena_bytes,
                peer=peer, mismatches=int((host[:n_ref] != ref.reshape(n_ref, -1)).any(axis=1).sum()),
                n_ref=n_ref,
                m4_equal=bool(np.array_equal(m4_out, host[:qemu_inputs])), qemu_inputs=qemu_inputs,
                macs=lib.macs, instr_per_mac=instr / max(lib.macs, 1))


def _tflm_out(interp, x):
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0).reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--qemu-inputs", type=int, default=5)
    ap.add_argument("--skip-zoo", action="store_true", help="only the MLPerf models and MobileNetV2")
    ap.add_argument("--mlperf", type=Path, help="a folder of more MLPerf Tiny int8 .tflite models")
    a = ap.parse_args()
    from tinyopt.zoo import ZOO

    mlperf = {**CASES, **(more_mlperf(a.mlperf) if a.mlperf else {})}
    with tempfile.TemporaryDirectory(prefix="tinyopt-bench-") as tmp:
        cases = {**mlperf, "MobileNetV2-0.35 96x96": mobilenet_v2(Path(tmp))}
        rows = [measure(n, p, a.runs, a.qemu_inputs, Path(tmp)) for n, p in cases.items()]
        zoo = [] if a.skip_zoo else [zoo_row(n, a.runs, a.qemu_inputs, Path(tmp)) for n in ZOO]
    print("| model | TFLM arena B | our RAM B | RAM ratio | our flash B | .tflite B | flash ratio "
          "| ours ms (min) | TFLM ms (min) | host speedup (min) | M4 instructions | MACs | instr/MAC "
          "| host = TFLM | M4 = TFLM |")
    print("|" + " --- |" * 15)
    for r in rows:
        print(f"| {r['model']} | {r['tflm_arena']:,} | {r['our_ram']:,} | {r['ram_ratio']:.3f}x "
              f"| {r['our_flash']:,} | {r['tflite_bytes']:,} | {r['flash_ratio']:.3f}x "
              f"| {r['ours_ms']:.3f} ({r['ours_min_ms']:.3f}) | {r['tflm_ms']:.3f} ({r['tflm_min_ms']:.3f}) "
              f"| {r['speedup']:.1f}x ({r['min_speedup']:.1f}x) "
              f"| {r['m4_instructions']:,} | {r['macs']:,} | {r['instr_per_mac']:.3f} "
              f"| {r['runs'] - r['host_mismatches']}/{r['runs']} | {'yes' if r['m4_matches_tflm'] else 'NO'} "
              f"({r['qemu_inputs']}) |")
    print("\n| model | plan | our RAM B | RAM ratio to TFLM | M4 instructions | vs speed | flash B "
          "| segments | host = TFLM | M4 = TFLM |")
    print("|" + " --- |" * 10)
    for r in (m for row in rows for m in row["modes"]):
        print(f"| {r['model']} | {r['mode']} | {r['ram']:,} | {r['ratio']:.3f}x | {r['instr']:,} "
              f"| {r['vs_speed']:.3f}x | {r['flash']:,} | {r['segments']} | {r['host_equal']}/{r['runs']} "
              f"| {'yes' if r['m4_equal'] else 'NO'} ({r['qemu_inputs']}) |")
    print(f"\n| plan | geomean RAM ratio to TFLM over the {len(mlperf)} MLPerf models | each |")
    print("|" + " --- |" * 3)
    for mode in MODES:
        ratios = [m["ratio"] for row in rows if row["model"] in mlperf
                  for m in row["modes"] if m["mode"] == mode]
        print(f"| {mode} | {float(np.exp(np.mean(np.log(ratios)))):.3f}x "
              f"| {', '.join(f'{x:.3f}x' for x in ratios)} |")
    if zoo:
        print("\n| zoo model | operators | arena B | host vs peer | M4 = host | MACs | M4 instr/MAC |")
        print("|" + " --- |" * 7)
    for r in zoo:
        print(f"| {r['model']} | {r['ops']} | {r['arena']:,} "
              f"| {r['n_ref'] - r['mismatches']}/{r['n_ref']} equal ({r['peer']}) "
              f"| {'yes' if r['m4_equal'] else 'NO'} ({r['qemu_inputs']}) | {r['macs']:,} "
              f"| {r['instr_per_mac']:.3f} |")


if __name__ == "__main__":
    main()
