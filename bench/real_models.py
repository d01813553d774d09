"""Real networks end to end: torchvision architectures and models shipped inside public packages.

Run: ``.venv/bin/python bench/real_models.py [--models DIR] [--inputs 20] [--qemu] [--write]`` from the repo
root (one process). Each row is one model through one door:

- **torchvision** (weights=None, BN statistics re-estimated on seeded random images, 96x96 input):
  MobileNetV2-0.35, MobileNetV3 small and large, MnasNet-0.5, EfficientNet-B0, SqueezeNet 1.1,
  ShuffleNetV2-0.5, ResNet-18, each through the ONNX door (``torch.onnx.export``) and the PyTorch door;
- **package models**: every ``.tflite`` / ``.onnx`` in ``--models DIR``. Nothing is committed or downloaded
  at run time; fill the folder once with the files the wheels ship, e.g.::

      pip download --no-deps mediapipe==0.10.21 silero-vad==6.2.3 rapidocr-onnxruntime==1.4.4 -d wheels
      for w in wheels/*.whl; do unzip -o -q "$w" '*.tflite' '*.onnx' -d unpacked; done
      find unpacked \\( -name '*.tflite' -o -name '*.onnx' \\) -exec cp {} DIR \\;

  A file whose inputs are dynamic needs its size: ``--shape FILE=3,48,192`` (the model's own layout, no
  batch; several inputs separated by ``;``), and an input that selects a mode its value:
  ``--input-value FILE:sr=16000``; the defaults below cover the packages above.

Columns: **analyze** (opaque operators listed, the rest counted), **convert** (float → int8 with 32 seeded
calibration samples, TFLM spec; a file shipped int8 is taken as it is), **int8 = TFLM** (our numpy runtime
against tflite-micro on ``--inputs`` seeded int8 inputs, every value of every output; a model with state
invoked on them in turn), **C = TFLM** (the generated C library, host build, every input back to back in its
one input buffer, on the same inputs, every output), **M4 instr/MAC** (``--qemu``:
the Cortex-M4 build under qemu, one input, instructions per MAC, its outputs checked against the host build's;
only where the weights and the arena fit the MPS2-AN386 board's 4 MB of flash and RAM), **RAM vs TFLM** (the
library's arena + output buffer, + input buffer with several inputs, against TFLM's arena for the same
.tflite: the total of ``print_allocations()``). A failing step shows its first words.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TORCHVISION = {
    "mobilenet_v2_0.35": ("mobilenet_v2", {"width_mult": 0.35}),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}),
    "mnasnet0_5": ("mnasnet0_5", {}),
    "efficientnet_b0": ("efficientnet_b0", {}),
    "squeezenet1_1": ("squeezenet1_1", {}),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", {}),
    "resnet18": ("resnet18", {}),
}
# Bench configuration for package models whose inputs the file leaves dynamic (own layout, no batch; the
# inputs left after the fixed ones below, in the file's order).
DEFAULT_SHAPES = {
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": [(3, 48, 192)],
    "ch_PP-OCRv4_det_infer.onnx": [(3, 96, 96)],
    "ch_PP-OCRv4_rec_infer.onnx": [(3, 48, 160)],
    # silero-vad: 512 samples at 16 kHz (576 with the 64-sample context the sequence exports take) and the
    # recurrent state [2, batch, 128], whose batch is its middle axis ("1,128" gives what follows axis 0)
    "silero_vad.onnx": [(512,), (1, 128)],
    "silero_vad_16k_op15.onnx": [(512,), (1, 128)],
    "silero_vad_half.onnx": [(512,), (1, 128)],
    "silero_vad_op18_ifless.onnx": [(512,), (1, 128)],
    "silero_vad_16k_sequence.onnx": [(576,), (1, 128), (1, 128)],
    "silero_vad_openvino_16k.onnx": [(576,), (1, 128)],
}
# Inputs fixed at a value (they become constants: the If on the sample rate folds).
DEFAULT_VALUES = {name: {"sr": 16000} for name in ("silero_vad.onnx", "silero_vad_16k_op15.onnx",
                                                   "silero_vad_op18_ifless.onnx")}


def torchvision_models():
    import torch

    for op, schema in (("nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
                       ("qnms", "(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")):
        try:
            torch.library.define(f"torchvision::{op}", schema)  # the CPU wheel lacks the CUDA build's ops
        except RuntimeError:
            pass
    from torchvision import models

    return models


def reestimate_bn(m, shape, seed: int = 0, batches: int = 4):
    """BN running statistics from seeded random images (weights=None leaves them at 0/1)."""
    import torch

    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over the batches
    g = torch.Generator().manual_seed(seed)
    m.train()
    with torch.no_grad():
        for _ in range(batches):
            m(torch.rand(8, *shape, generator=g))
    return m.eval()


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
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        f.seek(0)
        text = f.read().decode(errors="replace")
    return int(re.search(r"Arena allocation total (\d+) bytes", text).group(1))


def short(e: BaseException) -> str:
    text = str(e).replace("|", "/").replace("\n", " ")
    text = re.sub(r"^/\S+: ", "", text)
    return f"{type(e).__name__}: {text[:90]}"


def packed_inputs(xs: list[np.ndarray]) -> np.ndarray:
    """The C library's one input buffer per row: every input's bytes back to back, in graph order."""
    return np.concatenate([x.reshape(len(x), -1).view(np.int8) for x in xs], axis=1)


def packed_outputs(outs: list[np.ndarray]) -> np.ndarray:
    """TFLM's outputs of one row as the C library's one output buffer (back to back, in graph order)."""
    return np.concatenate([np.ascontiguousarray(o).reshape(-1).view(np.int8) for o in outs])


M4_FLASH = M4_RAM = 4 << 20  # the MPS2-AN386 board's code and data memories


def m4_fits(graph, lib) -> bool:
    """Whether the constants and the arena fit the board with room to spare for code and the harness."""
    weights = sum(t.nbytes for t in graph.tensors.values() if t.data is not None)
    return weights < M4_FLASH - (512 << 10) and lib.arena_bytes + lib.output_bytes < M4_RAM - (256 << 10)


def run_row(label: str, door: str, load, tmp: Path, n_inputs: int, qemu: bool) -> dict:
    """One model through analyze → convert → int8 vs TFLM → C vs TFLM (→ M4) → RAM."""
    import tinyopt
    from tinyopt import ops
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu
    from tinyopt.export.tflite import save_tflite
    from tinyopt.runtime import Interpreter

    row = {"model": label, "door": door}
    t0 = time.perf_counter()
    try:
        model = load(opaque=True)
        rep = tinyopt.analyze(model).to_dict()
        unknown = sorted({n.op for n in model.graph.nodes if ops.is_opaque(n.op)})
        row["macs"] = rep["macs"]
        row["analyze"] = "ok" + (f" ({len(unknown)} unknown: {', '.join(unknown)[:60]})" if unknown else "")
    except Exception as e:  # a bench row records any failure and goes on
        row["analyze"] = short(e)
        return row
    try:
        model = load(opaque=False)
        rng = np.random.default_rng(0)
        from tinyopt.analysis.cost import model_dtype

        if model_dtype(model.graph) in ("int8", "int16"):  # shipped quantized: nothing to convert
            graph = model.graph
            row["convert"] = f"ok ({model_dtype(graph)} file)"
        else:
            calib = [rng.uniform(-1, 1, size=(32, *d["shape"])).astype(np.float32) for d in model.inputs]
            q = tinyopt.convert(model, calib=calib if len(calib) > 1 else calib[0])
            graph = q.graph if hasattr(q, "graph") else q
            row["convert"] = "ok"
    except Exception as e:
        row["convert"] = short(e)
        return row
    path = tmp / f"{label}-{door}.tflite"
    try:
        save_tflite(graph, path)
        from tflite_micro.python.tflite_micro import runtime

        xs = [rng.integers(-128, 128, size=(n_inputs, *graph.tensors[t].shape[1:])).astype(np.int8)
              for t in graph.inputs]
        ours = Interpreter(graph).run(xs)
        interp = runtime.Interpreter.from_file(str(path))
        equal = 0
        ref = []
        for r in range(n_inputs):
            for k, x in enumerate(xs):
                interp.set_input(x[r: r + 1], k)
            interp.invoke()
            outs = [interp.get_output(k) for k in range(len(graph.outputs))]
            ref.append(outs)
            equal += all(np.array_equal(o.reshape(-1), ours[k][r].reshape(-1)) for k, o in enumerate(outs))
        row["int8_tflm"] = f"{equal}/{n_inputs}"
    except Exception as e:
        row["int8_tflm"] = short(e)
        return row
    try:
        row["tflm_arena"] = tflm_arena(path)
    except Exception as e:
        row["tflm_arena"] = short(e)
    try:
        lib = generate_sources(graph)
        out = tmp / f"{label}-{door}-c"
        write_library(lib.files, out, force=True)
        packed = packed_inputs(xs)
        host = run_host(build_host(out, tmp / f"{label}-{door}.exe"), packed, lib.output_bytes)
        equal = sum(np.array_equal(host[r], packed_outputs(ref[r])) for r in range(n_inputs))
        row["c_tflm"] = f"{equal}/{n_inputs}"
        # RAM counted whole: the arena, the caller's output buffer (none when the arena's output slot holds
        # it), and the input buffer unless the arena's input slot takes the input (one input)
        state = graph.state_bytes  # static buffers
        row["ram"] = (lib.arena_bytes + lib.caller_output_bytes + (lib.input_bytes if len(xs) > 1 else 0)
                      + state)
        if isinstance(row.get("tflm_arena"), int):
            row["ram_ratio"] = row["ram"] / row["tflm_arena"]
        if qemu and not m4_fits(graph, lib):
            weights = sum(t.nbytes for t in graph.tensors.values() if t.data is not None)
            row["m4_note"] = f"does not fit ({weights / 2**20:.1f} MB weights)"
        elif qemu:
            m4 = build_m4(out, tmp / f"{label}-{door}-m4", packed[:1])
            m4_out, counts = run_qemu(m4.elf, lib.output_bytes)
            row["instr_per_mac"] = int(counts[0]) / max(lib.macs, 1)
            row["m4_host"] = bool(np.array_equal(m4_out[0], host[0]))
    except Exception as e:
        row["c_tflm"] = short(e)
    row["seconds"] = time.perf_counter() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, help="folder of package .tflite/.onnx files")
    ap.add_argument("--inputs", type=int, default=20)
    ap.add_argument("--qemu", action="store_true", help="also build for Cortex-M4 and count instructions")
    ap.add_argument("--skip-torchvision", action="store_true")
    ap.add_argument("--only", help="run the rows whose label contains this text")
    ap.add_argument("--shape", action="append", default=[],
                    help="FILE=d1,d2,...;d1,... sizes of its inputs (without the batch)")
    ap.add_argument("--input-value", action="append", default=[], help="FILE:NAME=V fixes an ONNX input")
    ap.add_argument("--write", action="store_true", help="write bench/results/real_models.md")
    a = ap.parse_args()
    import torch

    import tinyopt

    torch.manual_seed(0)
    torch.set_num_threads(1)
    shapes = dict(DEFAULT_SHAPES)
    for s in a.shape:
        name, dims = s.split("=", 1)
        shapes[name] = [tuple(int(d) for d in part.split(",") if d) for part in dims.split(";")]
    values = {k: dict(v) for k, v in DEFAULT_VALUES.items()}
    for s in a.input_value:
        file, rest = s.split(":", 1)
        name, v = rest.split("=", 1)
        values.setdefault(file, {})[name] = float(v) if "." in v else int(v)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not a.skip_torchvision:
            models = torchvision_models()
            for label, (fn, kw) in TORCHVISION.items():
                if a.only and a.only not in label:
                    continue
                m = reestimate_bn(getattr(models, fn)(weights=None, **kw), (3, 96, 96))
                onnx_path = tmp / f"{label}.onnx"
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(m, torch.zeros(1, 3, 96, 96), str(onnx_path), dynamo=False,
                                      opset_version=13)
                for door, load in (
                        ("onnx", lambda opaque, p=onnx_path: tinyopt.load(str(p), opaque=opaque)),
                        ("torch", lambda opaque, m=m: tinyopt.load(m, torch.zeros(1, 3, 96, 96)))):
                    rows.append(run_row(label, door, load, tmp, a.inputs, a.qemu))
                    print(rows[-1], flush=True)
        if a.models:
            for p in sorted(a.models.iterdir()):
                if p.suffix not in (".tflite", ".onnx") or (a.only and a.only not in p.name):
                    continue
                shape = shapes.get(p.name)

                def load(opaque, p=p, shape=shape):
                    return tinyopt.load(str(p),
                                        input_shape=shape if shape is None or len(shape) > 1 else shape[0],
                                        opaque=opaque, input_values=values.get(p.name))

                rows.append(run_row(p.stem, p.suffix[1:], load, tmp, a.inputs, a.qemu))
                print(rows[-1], flush=True)
    table = ["| model | door | MACs | analyze | convert | int8 = TFLM | C = TFLM | M4 instr/MAC | RAM B | "
             "TFLM arena B | RAM vs TFLM |", "|" + " --- |" * 11]
    for r in rows:
        ratio = f"{r['ram_ratio']:.3f}x" if "ram_ratio" in r else "-"
        ipm = f"{r['instr_per_mac']:.3f}" + ("" if r["m4_host"]
                                             else " (M4 != host)") if "instr_per_mac" in r else \
            r.get("m4_note", "-")
        table.append(f"| {r['model']} | {r['door']} | {r.get('macs', '-'):,} | {r.get('analyze', '-')} | "
                     f"{r.get('convert', '-')} | {r.get('int8_tflm', '-')} | {r.get('c_tflm', '-')} | {ipm} "
                     f"| {r.get('ram', '-')} | {r.get('tflm_arena', '-')} | {ratio} |"
                     if isinstance(r.get("macs"), int) else
                     f"| {r['model']} | {r['door']} | - | {r.get('analyze', '-')} | - | - "
                     "| - | - | - | - | - |")
    n = len(rows)

    def count(key):
        return sum(1 for r in rows if str(r.get(key, "")).startswith("ok") or
                   (re.fullmatch(r"(\d+)/(\d+)", str(r.get(key, ""))) and
                    re.fullmatch(r"(\d+)/(\d+)", r[key]).group(1)
                    == re.fullmatch(r"(\d+)/(\d+)", r[key]).group(2)))

    summary = (f"{n} rows: analyze {count('analyze')}/{n}, convert {count('convert')}/{n}, "
               f"int8 = TFLM on every input {count('int8_tflm')}/{n}, C = TFLM on every input "
               f"{count('c_tflm')}/{n}")
    print("\n".join(table))
    print(summary)
    if a.write:
        cmd = "bench/real_models.py " + " ".join(sys.argv[1:])
        text = (f"# Real networks end to end\n\nCommand: `.venv/bin/python {cmd}`\n\n" + "\n".join(table)
                + f"\n\n{summary}\n")
        (ROOT / "bench" / "results" / "real_models.md").write_text(text)
    if any("Traceback" in str(r) for r in rows):
        traceback.print_exc()


if __name__ == "__main__":
    main()
