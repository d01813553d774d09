"""Int8 accuracy of our PTQ/QAT against ONNX Runtime's static quantization, and runtime throughput
against TFLM's Python interpreter, on LeNet-5 / MNIST.

    .venv/bin/python bench/ptq_vs_ort.py              # writes bench/results/ptq_vs_ort.md
    .venv/bin/python bench/ptq_vs_ort.py --no-write --epochs 1

Data: ``../shared/datasets/mnist-t10k`` — the first 8,000 images train the float model and calibrate, the
last 2,000 test. Pixels are scaled to [0, 1]. The float LeNet-5 (zoo) is trained with Adam, seeded.

Rows:
- float: the PyTorch model.
- tinyopt PTQ: ``convert_torch`` (min/max calibration on 1,000 training images) → int8 Graph, run in
  our numpy runtime with int8 input and output (the same bits TFLM computes; checked on every test image).
- tinyopt QAT: ``compress.qat.quantize_aware_train`` (``--qat-epochs`` more epochs at lr 1e-4, starting
  from the float model) → ``convert_torch`` → our runtime. Being extra training, it can beat the float row.
- ONNX Runtime: the same model exported to ONNX, ``quantize_static`` (QDQ, per-channel int8 weights,
  int8 activations, min/max calibration on the same 1,000 images), run by ORT.
Throughput: the int8 model on the 2,000 test images, our ``Interpreter.run`` on the whole batch against
TFLM's Python interpreter looping row by row (it takes batch 1); best of ``--runs``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"
RESULTS = ROOT / "bench" / "results" / "ptq_vs_ort.md"


def load_data():
    from tinyopt.data.idx import load_mnist

    x, y = load_mnist(MNIST)
    x = (x.astype(np.float32) / 255.0)[:, None]  # (N, 1, 28, 28)
    return (x[:8000], y[:8000].astype(np.int64)), (x[8000:], y[8000:].astype(np.int64))


def train_float(train, epochs: float, seed: int):
    import torch

    from tinyopt import zoo
    from tinyopt.compress.train import finetune

    torch.manual_seed(seed)
    model = zoo.build("lenet5")
    finetune(model, train, epochs=epochs, lr=1e-3, batch_size=64, seed=seed)
    return model.eval()


def torch_accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        pred = np.concatenate([model(torch.from_numpy(x[i: i + 500])).argmax(1).numpy()
                               for i in range(0, len(x), 500)])
    return float((pred == y).mean())


def quantize_input(g, x_nchw):
    q = g.tensors[g.inputs[0]].quant
    nhwc = x_nchw.transpose(0, 2, 3, 1)
    return np.clip(np.round(nhwc / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)


def int8_accuracy(g, x, y) -> tuple[float, np.ndarray, np.ndarray]:
    from tinyopt.runtime import Interpreter

    xq = quantize_input(g, x)
    out = Interpreter(g).run(xq)[0]
    return float((out.argmax(1) == y).mean()), xq, out


def ort_accuracy(model, calib, x, y) -> float:
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch's legacy ONNX exporter
    with tempfile.TemporaryDirectory() as d:
        fp = Path(d) / "lenet.onnx"
        qp = Path(d) / "lenet_int8.onnx"
        buf = io.BytesIO()
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buf, dynamo=False, input_names=["x"],
                          output_names=["y"], opset_version=13, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        fp.write_bytes(buf.getvalue())

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.rows = iter([{"x": calib[i: i + 1]} for i in range(len(calib))])

            def get_next(self):
                return next(self.rows, None)

        quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        sess = ort.InferenceSession(str(qp), providers=["CPUExecutionProvider"])
        pred = np.concatenate([sess.run(None, {"x": x[i: i + 500]})[0].argmax(1)
                               for i in range(0, len(x), 500)])
    return float((pred == y).mean())


def tflm_rows(model_bytes: bytes, xq: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model_bytes)
    out = []
    for r in range(len(xq)):
        it.set_input(xq[r: r + 1], 0)
        it.invoke()
        out.append(it.get_output(0).copy())
    return np.concatenate(out)


def mlperf_rows(runs: int) -> list[str]:
    """Throughput and bit-exactness on the int8 MLPerf Tiny models, 200 seeded random inputs each."""
    from tinyopt.graph.tflite_import import load_tflite
    from tinyopt.runtime import Interpreter

    lines = []
    for label, fname in (("KWS DS-CNN", "kws_ref_model.tflite"),
                         ("ResNet-8", "pretrainedResnet_quant.tflite")):
        path = ROOT.parent / "shared" / "models" / "mlperf-tiny" / fname
        if not path.exists():
            continue
        g = load_tflite(path)
        it = Interpreter(g)
        shape = g.tensors[g.inputs[0]].shape[1:]
        x = np.random.default_rng(0).integers(-128, 128, (200, *shape)).astype(np.int8)
        data = path.read_bytes()
        ref = tflm_rows(data, x)
        bad = int((it.run(x)[0] != ref.reshape(len(x), -1)).sum())
        ours_s = best_of(lambda it=it, x=x: it.run(x), runs)
        tflm_s = best_of(lambda data=data, x=x: tflm_rows(data, x), max(1, runs - 1))
        lines.append(f"| {label} int8, 200 inputs | {tflm_s:.3f} | {ours_s:.3f} | "
                     f"{tflm_s / ours_s:.2f}× | {bad} |")
    return lines


def best_of(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--qat-epochs", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from tinyopt._io import atomic_write_text
    from tinyopt.convert import convert_torch
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter

    torch.set_num_threads(2)
    train, (xt, yt) = load_data()
    calib = train[0][:1000]
    t0 = time.perf_counter()
    model = train_float(train, args.epochs, args.seed)
    train_s = time.perf_counter() - t0
    acc_float = torch_accuracy(model, xt, yt)

    g = convert_torch(model, calib, (1, 28, 28))
    acc_ptq, xq, ours = int8_accuracy(g, xt, yt)
    model_bytes = graph_to_tflite_bytes(g)
    ref = tflm_rows(model_bytes, xq)
    mismatches = int((ours != ref.reshape(ours.shape)).sum())

    rows = [("float (PyTorch)", acc_float), ("tinyopt PTQ int8 (numpy runtime = TFLM)", acc_ptq)]
    try:
        from tinyopt.compress.qat import quantize_aware_train

        qat = quantize_aware_train(model, train, epochs=args.qat_epochs, lr=1e-4, seed=args.seed)
        g_qat = convert_torch(qat, calib, (1, 28, 28))
        acc_qat = int8_accuracy(g_qat, xt, yt)[0]
        rows.append((f"tinyopt QAT int8 ({args.qat_epochs:g} extra epoch, numpy runtime)", acc_qat))
    except ImportError:
        acc_qat = None
    acc_ort = ort_accuracy(model, calib, xt, yt)
    rows.append(("ONNX Runtime quantize_static (QDQ, per-channel)", acc_ort))

    it = Interpreter(g)
    ours_s = best_of(lambda: it.run(xq), args.runs)
    tflm_s = best_of(lambda: tflm_rows(model_bytes, xq), max(1, args.runs - 1))

    drop_ours = (acc_float - acc_ptq) * 100
    drop_ort = (acc_float - acc_ort) * 100
    lines = ["# PTQ vs ONNX Runtime, and runtime throughput vs TFLM (LeNet-5, MNIST)", "",
             "Command: `.venv/bin/python bench/ptq_vs_ort.py" + (f" --epochs {args.epochs:g}"
                                                                 if args.epochs != 2
                                                                  else "") + "`", "",
             f"Data: mnist-t10k, first 8,000 images train ({args.epochs:g} epochs, Adam, seed {args.seed}; "
             f"{train_s:.0f} s) and calibrate (1,000 images), last 2,000 test.", "",
             "| model | test accuracy | drop vs float (pp) |", "| --- | ---: | ---: |"]
    for name, acc in rows:
        lines.append(f"| {name} | {acc * 100:.2f} % | {(acc_float - acc) * 100:+.2f} |")
    ok_drop = drop_ours <= drop_ort + 1e-9 and drop_ours <= 0.5
    lines += ["",
              f"Target: our PTQ drop ≤ ORT's drop and ≤ 0.5 pp → ours {drop_ours:+.2f} pp, ORT "
              f"{drop_ort:+.2f} pp: {'met' if ok_drop else 'NOT met'}.", "",
              f"Bit-exactness on the 2,000 test images: our runtime vs TFLM, {mismatches} mismatched output "
              f"values of {ours.size}.", "",
              "| runtime (int8 LeNet-5, 2,000 images) | seconds | images/s | ratio vs TFLM |",
              "| --- | ---: | ---: | ---: |",
              f"| TFLM Python interpreter (row by row) | {tflm_s:.3f} | {2000 / tflm_s:,.0f} | 1.00× |",
              f"| tinyopt numpy runtime (batched) | {ours_s:.3f} | {2000 / ours_s:,.0f} | "
              f"{tflm_s / ours_s:.2f}× |",
              "", "MLPerf Tiny int8 models (same measurement, 200 seeded random inputs):", "",
              "| model | TFLM s | tinyopt s | ratio | mismatched values |",
              "| --- | ---: | ---: | ---: | ---: |", *mlperf_rows(args.runs),
              "", f"Best of {args.runs} (TFLM: {max(1, args.runs - 1)}) on a shared 2-core machine."]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if not args.no_write:
        atomic_write_text(RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
