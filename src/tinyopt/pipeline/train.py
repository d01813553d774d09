"""Seeded, single-threaded-deterministic training and evaluation of a PyTorch classifier.

Data arrive channels-last (NHWC images, NTC sensor windows) as the IR and TFLite store them; PyTorch
modules take channels-first, so ``to_torch_layout`` transposes once at the door.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def to_torch_layout(x: np.ndarray) -> np.ndarray:
    """NHWC → NCHW, NTC → NCT; (N, F) stays as is."""
    if x.ndim == 4:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 1))
    return np.ascontiguousarray(x)


def torch_input_shape(x: np.ndarray) -> tuple[int, ...]:
    """The batch-1 channels-first shape a module expects for examples like ``x``."""
    return (1, *to_torch_layout(x[:1]).shape[1:])


def predict(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class scores (N, K) of a torch module on channels-last data, in eval mode, without gradients."""
    import torch

    model.eval()
    xt = to_torch_layout(x.astype(np.float32))
    outs = []
    with torch.no_grad():
        for i in range(0, len(xt), batch_size):
            outs.append(model(torch.from_numpy(xt[i:i + batch_size])).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x).argmax(1) == y).mean()) if len(y) else float("nan")


def fit(model, x: np.ndarray, y: np.ndarray, *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 64,
        weight_decay: float = 0.0, seed: int = 0, x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None, on_epoch: Callable[[int, dict], None] | None = None,
        augment: Callable | None = None) -> list[dict]:
    """Adam with cosine learning-rate decay; returns one dict per epoch (loss, train/val accuracy).

    Seeded shuffling from ``np.random.default_rng(seed)`` and ``torch.manual_seed(seed)`` for anything
    random inside the module (dropout), so the same call gives the same weights.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xt = torch.from_numpy(to_torch_layout(x.astype(np.float32)))
    yt = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, epochs * int(np.ceil(len(y) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(y)))
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            xb = xt[idx]
            if augment is not None:
                xb = augment(xb, rng)
            opt.zero_grad()
            loss = loss_fn(model(xb), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        row = {"epoch": epoch + 1, "loss": total / len(y)}
        if x_val is not None and y_val is not None and len(y_val):
            row["val_accuracy"] = accuracy(model, x_val, y_val)
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    model.eval()
    return history
