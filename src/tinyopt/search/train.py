"""The default trainer of ``tinyopt tune``: a spec → PyTorch model, trained with per-epoch reports,
structurally pruned to the candidate's widths, then quantized at the candidate's bit width.

Training is deliberately small (a few epochs, Adam): the search compares candidates, it does not
produce the final model — ``tinyopt run`` on the written project file does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def build_torch(params: dict, input_shape: tuple[int, ...], num_classes: int, prune: bool = True):
    """The candidate as a zoo module (the same network ``candidate_spec`` describes)."""
    from tinyopt import zoo
    from tinyopt.search.candidate import candidate_model

    name, args = candidate_model(params, input_shape, num_classes, prune=prune)
    return zoo.build(name, **args)


FEATURE_PREFIX = "features."


class ProjectTrainer:
    """Callable ``(params, spec, report) -> validation accuracy`` for ``tune``, on a project's data.

    Raw data are loaded and split once; features are computed once per distinct set of searched
    feature parameters (``features.<key>`` in the space) and cached.
    """

    def __init__(self, cfg: dict, epochs: int = 6, batch_size: int = 64, lr: float = 3e-3, seed: int = 0):
        from tinyopt.pipeline.stages import load_data

        self.cfg, self.epochs, self.batch_size, self.lr, self.seed = cfg, epochs, batch_size, lr, seed
        self.raw = load_data(cfg["data"], cfg.get("_file"), seed)
        self.num_classes = len(self.raw.train.classes)
        self._features: dict = {}

    def splits(self, params: dict):
        from tinyopt.pipeline.stages import features

        fcfg = dict(self.cfg["features"])
        fcfg.update({k[len(FEATURE_PREFIX):]: v for k, v in params.items() if k.startswith(FEATURE_PREFIX)})
        key = tuple(sorted(fcfg.items(), key=lambda kv: kv[0]))
        if key not in self._features:
            self._features[key] = features(self.raw, fcfg)[0]
        return self._features[key]

    def input_shape(self, params: dict) -> tuple[int, ...]:
        """Channels-last shape of one example, as the spec wants it (H, W, C) or (N,)."""
        x = self.splits(params).train.x
        return tuple(x.shape[1:]) if x.ndim in (2, 4) else (*x.shape[1:], 1)

    def _xy(self, ds):
        from tinyopt.pipeline.train import to_torch_layout

        x = ds.x if ds.x.ndim != 3 else ds.x[..., None]
        return to_torch_layout(x.astype(np.float32)), ds.y.astype(np.int64)

    def _accuracy(self, model, ds) -> float:
        import torch

        x, y = self._xy(ds)
        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(x)).argmax(1).numpy()
        return float((pred == y).mean())

    def _fit(self, model, fs, epochs: int, report: Callable[[int, float], bool] | None) -> bool:
        import torch

        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        x, y = (torch.from_numpy(a) for a in self._xy(fs.train))
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), self.batch_size):
                idx = order[i:i + self.batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            if report is not None and report(epoch, self._accuracy(model, fs.val)):
                return True
        return False

    def __call__(self, params: dict, spec: dict, report) -> float:
        import torch

        torch.manual_seed(self.seed)
        fs = self.splits(params)
        prune = float(params.get("prune", 0.0))
        model = build_torch(params, tuple(spec["input"]), self.num_classes, prune=False)
        if self._fit(model, fs, self.epochs, report):
            return self._accuracy(model, fs.val)
        if prune > 0:
            model = prune_to_spec(model, spec, self._xy(fs.train)[0][:1])
            self._fit(model, fs, max(1, self.epochs // 3), None)
        bits = int(params.get("bits", 32))
        if bits < 32:
            calib = torch.from_numpy(self._xy(fs.train)[0][:256])
            model = quantize_model(model, bits, str(params.get("observer", "minmax")), calib)
        return self._accuracy(model, fs.val)


def prune_to_spec(model, spec: dict, example: np.ndarray):
    """Structured (L1 filter) pruning of the trained full-width model to the spec's pruning ratio.

    The candidate's widths are ``round(width × 2^i × (1 − prune))``; the pruner removes the same share of
    every prunable layer but the classifier, so the pruned model has the spec's architecture.
    """
    import torch

    from tinyopt.compress.prune import prune_structured

    keep = [layer.get("filters", layer.get("units")) for layer in spec["layers"]
            if layer["type"] in ("conv2d", "dense")][:-1]
    full = [m.out_channels if hasattr(m, "out_channels") else m.out_features for m in model.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][:-1]
    ratio = 1 - keep[0] / full[0] if keep else 0.0
    return prune_structured(model, torch.from_numpy(example), ratio, criterion="l1")


def quantize_model(model, bits: int, observer: str, calib):
    """Post-training quantization (weights at ``bits``, activations int8) with the chosen observer."""
    from tinyopt.compress.ptq import QuantConfig, quantize_static

    cfg = QuantConfig(weight_bits=bits, activation_bits=8, observer=observer)
    return quantize_static(model, [calib], cfg)
