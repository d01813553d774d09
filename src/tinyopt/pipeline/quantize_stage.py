"""Quantization stage: QAT (or PTQ) of a torch model, conversion to an int8 Graph, saved as ``.tflite``.

BatchNorm is folded into the preceding conv first; QAT fine-tunes with fake quantization
(``tinyopt.compress.qat``) so the weights settle on the int8 grid; the converter then turns the model into an
int8 Graph following TFLM's spec, with activation ranges calibrated on training examples. PTQ skips the
fine-tuning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt.pipeline.train import to_torch_layout


def calibration_set(fs, n: int, seed: int) -> np.ndarray:
    """``n`` training examples chosen with the seed (all of them when fewer)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(fs.train.x))[:max(1, int(n))])
    return fs.train.x[idx].astype(np.float32)


def to_int8_graph(model, fs, calib: np.ndarray, name: str):
    """Torch module (plain, or prepared by QAT: then its learnt activation ranges are kept) → int8 Graph
    with int8 input and output, named ``name``."""
    from tinyopt.convert import convert_torch
    from tinyopt.pipeline.train import torch_input_shape

    shape = torch_input_shape(fs.train.x)[1:]
    graph = convert_torch(model, to_torch_layout(calib), shape, io="int8")
    graph.name = name
    return graph


def build(model, fs, qcfg: dict, seed: int, folder: Path, name: str = "model", on_epoch=None) -> dict:
    """Quantize ``model``; write ``model.tflite`` into ``folder`` and return the stage's meta."""
    from tinyopt.compress.fuse import fold_bn_model
    from tinyopt.export.tflite import save_tflite

    calib = calibration_set(fs, qcfg["calibration_samples"], seed)
    meta = {"mode": qcfg["mode"], "calibration_samples": len(calib)}
    # BatchNorm folded first, as TFLite deploys it: QAT then learns the rounding of the folded weights
    model = fold_bn_model(model)
    if qcfg["mode"] == "qat":
        from tinyopt.compress.qat import quantize_aware_train

        epochs = int(qcfg["epochs"])
        model = quantize_aware_train(model, (to_torch_layout(fs.train.x), fs.train.y), epochs=epochs,
                                     lr=float(qcfg["lr"]), seed=seed + 7)
        for e in range(epochs):
            if on_epoch is not None:
                on_epoch(e, {})
    save_tflite(to_int8_graph(model, fs, calib, name), folder / "model.tflite")
    return meta
