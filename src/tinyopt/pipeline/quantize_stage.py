"""Quantization stage: QAT (or PTQ) of a torch model, conversion to an int8 Graph, saved as ``.tflite``.

QAT fine-tunes with fake quantization (``tinyopt.compress.qat``) so the weights settle on the int8 grid;
the converter then turns the model into an int8 Graph following TFLM's spec, with activation ranges
calibrated on training examples. PTQ skips the fine-tuning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt.pipeline.train import to_torch_layout


def available() -> bool:
    """The converter's pieces are importable (they land in this checkout during development)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in
               ("tinyopt.convert.quantize", "tinyopt.convert.calibrate", "tinyopt.compress.qat"))


def calibration_set(fs, n: int, seed: int) -> np.ndarray:
    """``n`` training examples chosen with the seed (all of them when fewer)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(fs.train.x))[:max(1, int(n))])
    return fs.train.x[idx].astype(np.float32)


def to_int8_graph(model, fs, calib: np.ndarray, name: str):
    """Float torch module (weights already on the int8 grid after QAT) → int8 Graph with int8 I/O."""
    from tinyopt.convert.calibrate import calibrate
    from tinyopt.convert.quantize import quantize_graph
    from tinyopt.pipeline.variants import float_graph

    g = float_graph(model, fs, name)
    x = calib.reshape((len(calib), *g.tensors[g.inputs[0]].shape[1:]))
    return quantize_graph(g, calibrate(g, x), io="int8")


def build(model, fs, qcfg: dict, seed: int, folder: Path, name: str = "model", on_epoch=None) -> dict:
    """Quantize ``model``; write ``model.tflite`` into ``folder`` and return the stage's meta."""
    import copy

    from tinyopt.export.tflite import save_tflite

    calib = calibration_set(fs, qcfg["calibration"], seed)
    meta = {"mode": qcfg["mode"], "calibration": len(calib)}
    if qcfg["mode"] == "qat":
        from tinyopt.compress.ptq import strip
        from tinyopt.compress.qat import quantize_aware_train

        epochs = int(qcfg["epochs"])
        gm = quantize_aware_train(model, (to_torch_layout(fs.train.x), fs.train.y), epochs=epochs,
                                  lr=float(qcfg["lr"]), seed=seed + 7)
        for e in range(epochs):
            if on_epoch is not None:
                on_epoch(e, {})
        deploy = strip(gm).eval()
    else:
        deploy = copy.deepcopy(model).eval()
    graph = to_int8_graph(deploy, fs, calib, name)
    save_tflite(graph, folder / "model.tflite")
    return meta
