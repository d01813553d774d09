"""16x8 against int8 quantization (issue #14) on scikit-learn's digits, in one process.

Model: the zoo's ``digits_cnn`` (conv 3x3 8 - max pool - conv 3x3 16 - max pool - dense 10), trained here
for ``--epochs`` epochs (Adam, seeded) on the training part of the split ``tinyopt compress --data digits``
uses (seed 0, 20 % of each class held out: 359 images), once per seed. Each trained model is converted by
``convert_torch`` twice, calibrated on the same 256 training images: int8 (TFLM's int8 spec) and 16x8
(``activations="int16"``: int16 activations, int8 weights, int64 biases). Peer: the float PyTorch model.

Columns, on the 359 held-out images:
- accuracy, and its change against the float model in percentage points;
- agreement: the share of images whose predicted class equals the float model's;
- logit error: the mean |dequantized output - float logit| over all outputs, and the 16x8/int8 ratio;
- activation error: the same against the float model run with the int8 weights (dequantized, per channel,
  as both conversions store them): what is left is the activations' rounding, which 16 bits shrink;
- TFLM: outputs of tflite-micro's interpreter on the written .tflite that differ from our runtime's
  (which computes every accuracy here);
- C arena: ``TINYOPT_ARENA_BYTES`` of the generated library (16x8 activations take twice the bytes;
  its int16 kernels do not run in place yet), and the .tflite size.
Below the table, the cost on a Cortex-M4: estimated cycles of one inference of each library (seed 0's
model; the cycles hardly depend on the weights), built for the MPS2-AN386 and traced under qemu
(``export.c.board.estimate_graph``); skipped without arm-none-eabi-gcc and qemu-system-arm.

    .venv/bin/python bench/int16_accuracy.py [--seeds 5] [--epochs 8] [--no-m4] [--out
    bench/results/int16_accuracy.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def train(d, epochs: int, seed: int):
    from tinyopt import zoo

    torch.manual_seed(seed)
    net = zoo.build("digits_cnn")
    x, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            j = torch.from_numpy(order[i:i + 64])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[j]), y[j]).backward()
            opt.step()
    return net.eval()


def int8_weight_logits(net, shape, xg: np.ndarray) -> np.ndarray:
    """The float graph's outputs with every conv/dense weight replaced by its int8 value times its scale."""
    from tinyopt import ops
    from tinyopt.convert.convert import prepare_float_graph
    from tinyopt.convert.quantize import quantize_weight
    from tinyopt.graph.torch_import import from_torch
    from tinyopt.runtime import Interpreter

    g = prepare_float_graph(from_torch(net, shape))
    for n in g.nodes:
        rec = ops.get(n.op)
        if rec.weight_axis is not None:
            t = g.tensors[n.inputs[1]]
            q, s = quantize_weight(t.data, rec.weight_axis)
            shape_s = [1] * t.data.ndim
            shape_s[rec.weight_axis] = -1
            t.data = (q.astype(np.float32) * s.reshape(shape_s)).astype(np.float32)
    return Interpreter(g).run(xg)[0].reshape(len(xg), -1).astype(np.float64)


def evaluate(g, xg: np.ndarray, logits: np.ndarray, y: np.ndarray, wq_logits: np.ndarray) -> dict:
    """Accuracy, agreement with the float model, mean logit errors; TFLM mismatches; arena and file bytes."""
    from runtime._reference import run_tflm
    from tinyopt.export.c import generate_sources
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter

    t = g.tensors[g.inputs[0]]
    lo, hi = (-32768, 32767) if t.dtype == "int16" else (-128, 127)
    xq = np.clip(np.round(xg / t.quant.scale[0]) + t.quant.zero_point[0], lo, hi).astype(t.dtype)
    out = Interpreter(g).run(xq)[0].reshape(len(y), -1)
    model = graph_to_tflite_bytes(g)
    tflm = run_tflm(model, [xq])[0].reshape(out.shape)
    o = g.tensors[g.outputs[0]].quant
    deq = (out.astype(np.float64) - o.zero_point[0]) * o.scale[0]
    return dict(acc=float((out.argmax(1) == y).mean()),
                agree=float((out.argmax(1) == logits.argmax(1)).mean()),
                err=float(np.abs(deq - logits).mean()), act_err=float(np.abs(deq - wq_logits).mean()),
                tflm=int((out != tflm).sum()), arena=generate_sources(g).arena_bytes, file=len(model))


def m4_cycles(net, calib, shape) -> dict | None:
    """Estimated Cortex-M4 cycles of the int8 and the 16x8 library, or None without the toolchain."""
    from tinyopt.convert import convert_torch
    from tinyopt.errors import TinyoptError
    from tinyopt.export.c.board import estimate_graph

    try:
        return {a: int(estimate_graph(convert_torch(net, calib, shape, activations=a))[0].cycles)
                for a in ("int8", "int16")}
    except TinyoptError:  # no arm-none-eabi-gcc or qemu here
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=None, help="write the table as Markdown here (atomically)")
    ap.add_argument("--no-m4", action="store_true", help="skip the Cortex-M4 cycle estimates")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from tinyopt import zoo
    from tinyopt.convert import convert_torch, torch_to_graph_layout
    from tinyopt.data.doors import open_data

    d = open_data("digits", seed=0).to_model_layout()
    shape = zoo.input_shape("digits_cnn")
    xg = torch_to_graph_layout(d.x_val, shape)
    calib = d.x_train[:256]
    rows, t0, cycles = [], time.perf_counter(), None
    for seed in range(args.seeds):
        net = train(d, args.epochs, seed)
        if seed == 0 and not args.no_m4:
            cycles = m4_cycles(net, calib, shape)
        with torch.no_grad():
            logits = net(torch.from_numpy(d.x_val)).numpy().astype(np.float64)
        acc = float((logits.argmax(1) == d.y_val).mean())
        wq = int8_weight_logits(net, shape, xg)
        res = {a: evaluate(convert_torch(net, calib, shape, activations=a), xg, logits, d.y_val, wq)
               for a in ("int8", "int16")}
        rows.append((seed, acc, res))
    seconds = time.perf_counter() - t0
    lines = ["| seed | float acc | int8 acc (Δ pp) | 16x8 acc (Δ pp) | agreement int8 / 16x8 | logit error "
             "int8 | logit error 16x8 | 16x8 / int8 | activation error int8 | activation error 16x8 | 16x8 / "
             "int8 | TFLM mismatches int8 / 16x8 | C arena int8 / 16x8 (B) | .tflite int8 / 16x8 (B) |",
             "| ---: " * 14 + "|"]
    for seed, acc, r in rows:
        a8, a16 = r["int8"], r["int16"]
        lines.append(f"| {seed} | {acc:.4f} | {a8['acc']:.4f} ({(a8['acc'] - acc) * 100:+.2f}) | "
                     f"{a16['acc']:.4f} ({(a16['acc'] - acc) * 100:+.2f}) | {a8['agree']:.4f} / "
                     f"{a16['agree']:.4f} | {a8['err']:.5f} | {a16['err']:.5f} | "
                     f"{a16['err'] / a8['err']:.3f} | {a8['act_err']:.5f} | {a16['act_err']:.6f} | "
                     f"{a16['act_err'] / a8['act_err']:.4f} | {a8['tflm']} / {a16['tflm']} | {a8['arena']:,} "
                     f"/ {a16['arena']:,} | {a8['file']:,} / {a16['file']:,} |")
    mean = {k: np.mean([(r[k]["acc"] - acc) * 100 for _, acc, r in rows]) for k in ("int8", "int16")}
    ratio = np.mean([r["int16"]["err"] / r["int8"]["err"] for _, _, r in rows])
    act = np.mean([r["int16"]["act_err"] / r["int8"]["act_err"] for _, _, r in rows])
    summary = (f"Mean over {len(rows)} seeds: int8 {mean['int8']:+.2f} pp, 16x8 {mean['int16']:+.2f} pp "
               f"against the float model; 16x8 logit error {ratio:.3f}x int8's, its activation error "
               f"{act:.4f}x (the int8 weights, common to both, dominate what is left). {len(d.y_val)} "
               f"held-out images; {seconds:.0f} s (training included, 1 torch thread).")
    if cycles:
        summary += ("\n\nCortex-M4 (MPS2-AN386, qemu, estimated cycles of one inference): int8 "
                    f"{cycles['int8']:,}, 16x8 {cycles['int16']:,} ({cycles['int16'] / cycles['int8']:.2f}x; "
                    "the 16x8 kernels are portable reference loops, the int8 ones SIMD assembly).")
    table = "\n".join(lines)
    print(table)
    print(summary)
    if args.out:
        from tinyopt._io import atomic_write_text

        atomic_write_text(args.out, "# 16x8 against int8 on digits\n\nCommand: `.venv/bin/python "
                          f"bench/int16_accuracy.py --seeds {args.seeds} --epochs {args.epochs} "
                          f"--out {args.out}`\n\n"
                          + __doc__.split("\n\n", 1)[1].split("    .venv")[0].strip() + "\n\n" + table
                          + "\n\n"
                          + summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
