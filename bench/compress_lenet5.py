"""Compression I on LeNet-5 (Caffe 20-50-500) and MNIST: what each pruning and quantization step costs in
accuracy and buys in bytes, in one table.

Data: ../shared/datasets/mnist-t10k (the real MNIST test set): the first 8,000 images train, the last
2,000 test; everything seeded. Rows: float baseline; 50 % and 80 % unstructured + fine-tune; 50 %
structured filters + fine-tune; static PTQ int8 with each observer; QAT int8; QAT 4-bit (W4A8);
ternary weights (QAT, A8); mixed precision at the size of uniform 4-bit; and 80 % pruning + QAT 4-bit
set against Deep Compression's LeNet-5 ratio (39x with pruning + 5-bit sharing + Huffman, Han et al.).
Peer for PTQ accuracy: ONNX Runtime's ``quantize_static`` on the same float model and calibration data.
Bytes are exact storage (packed values, cheapest sparse index, per-channel scales, int32 biases).

    .venv/bin/python bench/compress_lenet5.py [--quick] [--out bench/results/compress_lenet5.md]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"
DEEP_COMPRESSION_LENET5_CR = 39.0

# target: allowed drop against float, in percentage points
TARGETS = {"ptq": 0.5, "qat8": 0.3, "qat4": 1.0, "ternary": 2.5, "unstructured80": 0.5}


def load(quick: bool):
    from tinyopt.data.idx import load_mnist

    x, y = load_mnist(MNIST)
    x = torch.from_numpy(x[:, None].astype(np.float32) / 255.0)
    y = torch.from_numpy(y.astype(np.int64))
    n_train, n_test = (2000, 500) if quick else (8000, 2000)
    return x[:n_train], y[:n_train], x[-n_test:], y[-n_test:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000/500 images and 1 epoch: a smoke run")
    ap.add_argument("--out", default=None, help="write the table as Markdown here (atomically)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from tinyopt import zoo
    from tinyopt.compress import ptq, qat
    from tinyopt.compress._steps import Row, measure
    from tinyopt.compress.mixed import mixed_precision
    from tinyopt.compress.observers import OBSERVERS
    from tinyopt.compress.prune import prune_unstructured_
    from tinyopt.compress.prune_structured import prune_structured
    from tinyopt.compress.recipe import StepContext
    from tinyopt.compress.size import model_size
    from tinyopt.compress.train import batches, finetune

    t0, c0 = time.time(), time.process_time()
    xtr, ytr, xte, yte = load(args.quick)
    ep = 1 if args.quick else 3  # baseline epochs
    ft = 1  # fine-tuning epochs after each step
    ctx = StepContext(xtr, ytr, xte, yte, seed=args.seed, batch_size=64)
    torch.manual_seed(args.seed)
    base = zoo.build("lenet5")
    finetune(base, (xtr, ytr), ep, lr=1e-3, batch_size=64, seed=args.seed)
    # one more epoch at the fine-tuning rate, so that rows with fine-tuning do not beat float merely
    # because they trained longer
    finetune(base, (xtr, ytr), ft, lr=5e-4, batch_size=64, seed=args.seed + 10)
    rows = []
    original = model_size(base).original_bytes
    float_row = measure(base, "float32 baseline", ctx)
    rows.append((float_row, None))

    def add(model, name, target=None):
        r = measure(model, name, ctx, float_row.accuracy, original)
        rows.append((r, target))
        print(f"[{time.time() - t0:6.0f}s] {name}: {r.accuracy:.4f}", file=sys.stderr, flush=True)
        return r

    for ratio, scope, key in ((0.5, "layer", None), (0.8, "global", "unstructured80")):
        m = copy.deepcopy(base)
        prune_unstructured_(m, ratio, scope=scope)
        finetune(m, (xtr, ytr), ft, lr=5e-4, seed=args.seed + 1)
        add(m, f"unstructured {int(ratio * 100)} % ({scope}) + fine-tune", TARGETS.get(key))
        if ratio == 0.8:
            pruned80 = m

    m = prune_structured(base, xtr[:1], 0.5, criterion="l1")
    finetune(m, (xtr, ytr), ft, lr=5e-4, seed=args.seed + 2)
    add(m, "structured 50 % filters + fine-tune")

    calib = list(batches(xtr, ytr, 64, args.seed))[:16]
    for obs in OBSERVERS:
        q = ptq.quantize_static(base, calib, ptq.QuantConfig(observer=obs))
        add(q, f"PTQ int8 static, {obs} observer", TARGETS["ptq"])

    peer = ort_ptq(base, calib, xte, yte)
    if peer is not None:
        rows.append((Row("peer: ONNX Runtime PTQ int8 (QDQ, per-channel, minmax)", peer,
                         100 * (peer - float_row.accuracy), None, None, None, None), TARGETS["ptq"]))

    def run_qat(model, bits, lr=1e-4, epochs=ft):
        cfg = ptq.QuantConfig(weight_bits=bits, activation_bits=8, observer="moving_average")
        return qat.quantize_aware_train(model, (xtr, ytr), cfg, epochs, lr=lr, batch_size=64,
                                        seed=args.seed + 3)

    add(run_qat(base, 8), "QAT int8 (W8A8)", TARGETS["qat8"])
    add(run_qat(base, 4, lr=2e-4), "QAT 4-bit (W4A8)", TARGETS["qat4"])
    add(run_qat(base, "ternary", lr=5e-4, epochs=2 * ft), "ternary weights (TWN) QAT, A8", TARGETS["ternary"])

    scan_data = (xtr[:1000], ytr[:1000])  # widths are chosen on training images, never on the test set
    bits, _scan = mixed_precision(base, scan_data, budget_bits=4.0, candidates=(2, 3, 4, 5, 6, 8))
    mp = run_qat(base, bits, lr=2e-4)
    add(mp, "mixed precision " + "/".join(str(b) for b in bits.values()) + " bits (≤ 4-bit size), QAT")

    pq = run_qat(pruned80, 4, lr=2e-4)
    r = add(pq, "unstructured 80 % + QAT 4-bit")

    table = format_markdown(rows)
    elapsed = time.time() - t0
    cpu = time.process_time() - c0
    footer = (f"\nwall time {elapsed:.0f} s (CPU time of this process {cpu:.0f} s; the machine was shared) "
              f"on {torch.get_num_threads()} thread(s); "
              f"{len(xtr)} train / {len(xte)} test images; seed {args.seed}. "
              f"Peer: Deep Compression LeNet-5 {DEEP_COMPRESSION_LENET5_CR:.0f}x (prune + 5-bit sharing + "
              f"Huffman); ours prune 80 % + 4-bit = {r.ratio:.1f}x, i.e. "
              f"{r.ratio / DEEP_COMPRESSION_LENET5_CR:.2f} of it without weight sharing or Huffman coding.\n")
    print(table + footer)
    if args.out:
        from tinyopt._io import atomic_write_text

        cmd = ("cd /work/main && .venv/bin/python bench/compress_lenet5.py"
               + (" --quick" if args.quick else ""))
        atomic_write_text(args.out, f"# Compression I: LeNet-5 on MNIST\n\n`{cmd} --out {args.out}`\n\n"
                          + table + "\n" + footer)
    return 0


def ort_ptq(model, calib, xte, yte) -> float | None:
    """Accuracy of ONNX Runtime's static PTQ (the peer) on the same float model and calibration batches."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        return None
    import logging
    import tempfile
    import warnings

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": xb.numpy()} for xb, _ in calib])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        f, q = Path(d) / "f.onnx", Path(d) / "q.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (xte[:1],), str(f), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}}, dynamo=False)
        logging.disable(logging.WARNING)  # ORT advises shape pre-processing; LeNet-5 needs none
        try:
            quantize_static(str(f), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            logging.disable(logging.NOTSET)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(q), opts, providers=["CPUExecutionProvider"])
        pred = np.concatenate([sess.run(None, {"x": xte[i:i + 500].numpy()})[0].argmax(1)
                               for i in range(0, len(xte), 500)])
    return float((pred == yte.numpy()).mean())


def format_markdown(rows) -> str:
    lines = ["| step | accuracy | Δ vs float (pp) | target | params ≠ 0 | MACs | bytes | CR |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r, target in rows:
        verdict = "" if target is None else (f"≥ −{target} ✅" if r.delta_pp >= -target
                                             else f"≥ −{target} ❌")
        if r.params is None:  # a peer row: accuracy only
            lines.append(f"| {r.step} | {100 * r.accuracy:.2f} % | {r.delta_pp:+.2f} | "
                         f"{verdict} | – | – | – | – |")
            continue
        lines.append(f"| {r.step} | {100 * r.accuracy:.2f} % | {r.delta_pp:+.2f} | {verdict} | {r.params:,} "
                     f"| {r.macs:,} | {r.bytes:,} | {r.ratio:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
