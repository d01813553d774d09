"""Model stages: build a zoo model sized for the features, train it, save/load it (``weights_only``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Splits
from tinyopt.errors import ConfigError
from tinyopt.pipeline.train import fit, to_torch_layout


def zoo_kwargs(cfg: dict, fs: Splits) -> dict:
    """Builder arguments: the user's ``model.args`` plus what the data decide (classes, input size)."""
    from tinyopt import zoo

    name = cfg["model"]["zoo"]
    fn = zoo._builder(name)
    params = inspect.signature(fn).parameters
    kw = dict(cfg["model"].get("args") or {})
    shape = to_torch_layout(fs.train.x[:1]).shape[1:]  # channels first, no batch
    kw.setdefault("num_classes", len(fs.train.classes))
    if "input_hw" in params and len(shape) == 3:
        kw.setdefault("input_hw", tuple(int(s) for s in shape[1:]))
    if "input_size" in params and name == "mlp":
        kw.setdefault("input_size", int(np.prod(shape)))
    if "in_channels" in params and len(shape) == 2:
        kw.setdefault("in_channels", int(shape[0]))
        kw.setdefault("length", int(shape[1]))
    return kw


def build_model(cfg: dict, fs: Splits):
    import torch

    from tinyopt import zoo

    torch.manual_seed(int(cfg["seed"]))
    model = zoo.build(cfg["model"]["zoo"], **zoo_kwargs(cfg, fs))
    want = tuple(model.input_shape)
    have = tuple(to_torch_layout(fs.train.x[:1]).shape[1:])
    if int(np.prod(want)) != int(np.prod(have)):
        raise ConfigError(f"zoo model '{cfg['model']['zoo']}' takes input {want} but the features are {have}",
                          where="model.zoo", fix="choose a model for this input size, or change the feature "
                          "parameters (frame length/stride, filters, coefficients)")
    return model


def _augment(xb, rng):
    """Shift each example by at most one step along time: rows of an image or spectrogram (NCHW dim 2),
    samples of a sensor window (NCT dim 2), padding with zeros."""
    import torch

    shifts = rng.integers(-1, 2, size=len(xb))
    out = torch.zeros_like(xb)
    for s in (-1, 0, 1):
        m = torch.from_numpy(shifts == s)
        if not m.any():
            continue
        part = xb[m]
        if s == 0:
            out[m] = part
        elif s > 0:
            out[m, :, s:] = part[:, :, :-s]
        else:
            out[m, :, :s] = part[:, :, -s:]
    return out


def train_float(cfg: dict, fs: Splits, folder: Path, on_epoch=None) -> dict:
    """Train the float model; write ``model.pt`` (a state dict) and return the history and accuracies."""


    t = cfg["training"]
    model = build_model(cfg, fs)
    history = fit(model, fs.train.x, fs.train.y, epochs=int(t["epochs"]), lr=float(t["lr"]),
                  batch_size=int(t["batch_size"]), weight_decay=float(t["weight_decay"]),
                  seed=int(cfg["seed"]), x_val=fs.val.x, y_val=fs.val.y, on_epoch=on_epoch,
                  augment=_augment if t.get("augment") else None)
    from tinyopt.compress.checkpoint import save_state_dict

    save_state_dict(folder / "model.pt", model.state_dict())  # in memory first: same bytes for same weights
    return {"history": history, "zoo": cfg["model"]["zoo"], "zoo_kwargs": zoo_kwargs(cfg, fs)}


def load_model(cfg: dict, fs: Splits, path: Path):
    import torch

    model = build_model(cfg, fs)
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    return model


def classify(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (``tinyopt.metrics``)."""
    from tinyopt.metrics import classification_metrics

    return classification_metrics(y_true, y_pred, num_classes=len(classes)).to_dict()
