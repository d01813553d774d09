"""The default trainer of ``tinyopt tune``: a spec → PyTorch model, trained with per-epoch reports,
structurally pruned to the candidate's widths, then quantized at the candidate's bit width.

Training is deliberately small (a few epochs, Adam): the search compares candidates, it does not
produce the final model — ``tinyopt run`` on the written project file does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def build_torch(spec: dict):
    """nn.Sequential with the same layers as the YAML spec (NCHW inside; logits out)."""
    import torch.nn as nn

    shape = list(spec["input"])
    c = shape[-1] if len(shape) == 3 else None
    n = None if len(shape) == 3 else shape[0]
    h, w = (shape[0], shape[1]) if len(shape) == 3 else (None, None)
    mods: list[nn.Module] = []
    for layer in spec["layers"]:
        t = layer["type"]
        if t == "conv2d":
            k = layer["kernel"]
            mods += [nn.Conv2d(c, layer["filters"], k, padding=k // 2)]
            c = layer["filters"]
        elif t == "maxpool2d":
            mods.append(nn.MaxPool2d(layer["pool"]))
            h, w = h // layer["pool"], w // layer["pool"]
        elif t == "flatten":
            mods.append(nn.Flatten())
            n = c * h * w
        elif t == "dense":
            mods.append(nn.Linear(n, layer["units"]))
            n = layer["units"]
        else:
            raise ValueError(f"candidate specs hold no {t} layers")
        if layer.get("activation") == "relu":
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def to_nchw(x: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) images → (N, C, H, W) float32; vectors unchanged."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x.transpose(0, 3, 1, 2)
    return x


class DefaultTrainer:
    """Callable ``(params, spec, report) -> validation accuracy`` for ``tune``."""

    def __init__(self, x_train, y_train, x_val, y_val, epochs: int = 6, batch_size: int = 64,
                 lr: float = 3e-3, seed: int = 0):
        self.x_train, self.y_train = to_nchw(x_train), np.asarray(y_train, dtype=np.int64)
        self.x_val, self.y_val = to_nchw(x_val), np.asarray(y_val, dtype=np.int64)
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed

    def _accuracy(self, model) -> float:
        import torch

        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(self.x_val)).argmax(1).numpy()
        return float((pred == self.y_val).mean())

    def _fit(self, model, epochs: int, report: Callable[[int, float], bool] | None, first_epoch: int = 0):
        import torch

        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        x, y = torch.from_numpy(self.x_train), torch.from_numpy(self.y_train)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), self.batch_size):
                idx = order[i:i + self.batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            if report is not None and report(first_epoch + epoch, self._accuracy(model)):
                return True
        return False

    def __call__(self, params: dict, spec: dict, report) -> float:
        import torch

        from tinyopt.search.candidate import candidate_spec

        torch.manual_seed(self.seed)
        prune = float(params.get("prune", 0.0))
        full = candidate_spec({**params, "prune": 0.0}, tuple(spec["input"]), spec["layers"][-1]["units"])
        model = build_torch(full)
        if self._fit(model, self.epochs, report):
            return self._accuracy(model)
        if prune > 0:
            model = prune_to_spec(model, spec, self.x_train[:1])
            self._fit(model, max(1, self.epochs // 3), None)
        bits = int(params.get("bits", 32))
        if bits < 32:
            model = quantize_model(model, bits, str(params.get("observer", "minmax")), self.x_train[:256])
        return self._accuracy(model)


def prune_to_spec(model, spec: dict, example: np.ndarray):
    """Structured (L1 filter) pruning of the trained full-width model down to the spec's widths."""
    import torch

    from tinyopt.compress.prune import prune_structured

    targets = [layer.get("filters", layer.get("units")) for layer in spec["layers"]
               if layer["type"] in ("conv2d", "dense")][:-1]
    widths = [m.out_channels if hasattr(m, "out_channels") else m.out_features for m in model
              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][:-1]
    amounts = {i: 1 - t / w for i, (t, w) in enumerate(zip(targets, widths))}
    ratio = max(amounts.values()) if amounts else 0.0
    return prune_structured(model, torch.from_numpy(example), ratio, criterion="l1")


def quantize_model(model, bits: int, observer: str, calib: np.ndarray):
    """Post-training quantization at ``bits`` with the chosen activation observer."""
    import torch

    from tinyopt.compress.ptq import quantize_ptq

    return quantize_ptq(model, torch.from_numpy(calib), bits=bits, observer=observer)
