"""The example recipes on the README walkthrough's model: what each one buys, measured in one process.

Model: examples/walkthrough/net.py (3,706 parameters, 25,408 MACs), trained here for 8 epochs on the
training part of scikit-learn's digits (the split ``tinyopt compress --data digits`` uses: seed 0, 20 %
of each class held out), so every accuracy below is on the 359 held-out images. Each recipe of
examples/recipes/ runs through ``tinyopt compress`` exactly as a user runs it; its output is then
converted to int8 from its record alone (``tinyopt.convert``) and run with the numpy runtime, which is
bit-exact with TFLM. Peer: the uncompressed float model (accuracy, MACs, bytes); Deep Compression's
published ratio (39x on LeNet-5, a network 116 times larger) is the reference for that recipe.

    .venv/bin/python bench/recipes.py [--out bench/results/recipes.md]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "examples" / "walkthrough" / "net.py"
RECIPES = sorted((ROOT / "examples" / "recipes").glob("*.yaml"))


def train(out: Path, seed: int = 0) -> float:
    """The walkthrough net trained on the training split; returns its held-out accuracy."""
    from tinyopt._modelref import ModelRef
    from tinyopt.data.doors import open_data

    d = open_data("digits", seed=seed).to_model_layout()
    torch.manual_seed(seed)
    net = ModelRef.parse(f"{NET}:make").build()
    x, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        net.train()
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            j = torch.from_numpy(order[i:i + 64])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[j]), y[j]).backward()
            opt.step()
    torch.save(net.state_dict(), out)
    with torch.no_grad():
        return float((net.eval()(torch.from_numpy(d.x_val)).argmax(1).numpy() == d.y_val).mean())


def int8_accuracy(path: Path) -> float:
    """Accuracy of the int8 model convert makes from the output (numpy runtime = TFLM bit for bit)."""
    import tinyopt
    from tinyopt.convert.convert import torch_to_graph_layout
    from tinyopt.data.doors import open_data

    m = tinyopt.convert(str(path))
    d = open_data("digits", seed=0).to_model_layout()
    g = m.graph
    q = g.tensors[g.inputs[0]].quant
    xg = torch_to_graph_layout(d.x_val, (1, 8, 8))
    xq = np.clip(np.round(xg / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    y = tinyopt.infer(m, xq)
    return float((np.asarray(y).reshape(len(d.y_val), -1).argmax(1) == d.y_val).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the table as Markdown here (atomically)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from tinyopt.cli import main as cli

    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyopt-recipes-") as tmp:
        tmp = Path(tmp)
        float_acc = train(tmp / "net.pt")
        for recipe in RECIPES:
            out = tmp / (recipe.stem + (".topz" if recipe.stem == "deep-compression" else ".pt"))
            t0 = time.perf_counter()
            with redirect_stdout(io.StringIO()):
                code = cli(["compress", f"{NET}:make", "--checkpoint", str(tmp / "net.pt"), "--data",
                            "digits", "--recipe", str(recipe), "--out", str(out), "--json",
                            str(tmp / "t.json"), "--no-progress"])
            seconds = time.perf_counter() - t0
            if code != 0:
                print(f"{recipe.stem}: compress failed ({code})", file=sys.stderr)
                return 1
            t = json.loads((tmp / "t.json").read_text())
            first, last = t["rows"][0], t["rows"][-1]
            rows.append({"recipe": recipe.stem, "float": first["accuracy"], "compressed": last["accuracy"],
                         "int8": int8_accuracy(out), "params": last["params"],
                         "macs": first["macs"] / last["macs"], "cr": last["ratio"], "bytes": last["bytes"],
                         "file": os.path.getsize(out), "seconds": seconds})
    head = ("| recipe | accuracy: float → compressed (Δ pp) | int8 after convert | params ≠ 0 | MACs: × "
            "fewer | weights: bytes (× smaller) | output file | compress time |")
    lines = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['float']:.4f} → {r['compressed']:.4f} "
                     f"({100 * (r['compressed'] - r['float']):+.1f}) | {r['int8']:.4f} | {r['params']:,} | "
                     f"{r['macs']:.2f}× | {r['bytes']:,} B ({r['cr']:.2f}×) | {r['file']:,} B | "
                     f"{r['seconds']:.1f} s |")
    table = "\n".join(lines)
    print(f"walkthrough net on digits: float held-out accuracy {float_acc:.4f}; torch threads {args.threads}")
    print(table)
    if args.out:
        from tinyopt._io import atomic_write_text

        atomic_write_text(args.out, "# Example recipes on the walkthrough's model\n\n"
                          f"Command: `.venv/bin/python bench/recipes.py --out {args.out}` (one process, "
                          f"{args.threads} torch thread). {__doc__.split(chr(10) + chr(10))[1]}\n\n"
                          f"Float model: held-out accuracy {float_acc:.4f}, 3,706 parameters, 25,408 MACs, "
                          "14,824 bytes (float32).\n\n" + table + "\n\n"
                          "Weights bytes: exact storage as the table of `tinyopt compress` counts it (packed "
                          "values, cheapest sparse index, per-channel scales, codebooks; Huffman rows the "
                          "coded records). Output file: the `.pt` (float weights + record) or `.topz` that "
                          "convert and deploy read. The int8 column is what runs on the board.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
