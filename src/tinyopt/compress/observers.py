"""Observers: watch values (weights or calibration activations) and choose a quantization range.

scikit-learn style: the constructor stores its keyword arguments; ``fit(x)`` (one array or an iterable of
batches) starts afresh, ``partial_fit(batch)`` accumulates; both return ``self`` and set the learned
attributes ``min_``, ``max_``, ``scale_``, ``zero_point_`` and ``n_samples_seen_``.

Why five: min-max is exact but one outlier wastes the grid; a moving average follows QAT's drifting
activations; percentile, MSE-optimal and KL (entropy) clip the tail on purpose, trading clipping error
for finer resolution of the bulk, which is what decides PTQ accuracy on long-tailed activations.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from tinyopt._suggest import hint
from tinyopt.compress import qmath
from tinyopt.errors import ConfigError, DataError


def _to_tensor(x, where: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to(torch.float32)
    if t.numel() == 0:
        raise DataError("empty calibration batch", where=where, fix="give at least one non-empty batch")
    if not torch.isfinite(t).all():
        raise DataError("NaN or inf in the observed values", where=where,
                        fix="clean the data or the weights (check training for divergence)")
    return t


class Observer:
    """Base: subclasses implement ``_update(t)`` (accumulate) and ``_range()`` -> (min, max)."""

    def __init__(self, bits: int = 8, symmetric: bool = False, narrow_range: bool = False,
                 unsigned: bool = False, axis: int | None = None):
        self.bits = bits
        self.symmetric = symmetric
        self.narrow_range = narrow_range
        self.unsigned = unsigned
        self.axis = axis

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def quant_min(self) -> int:
        return qmath.qrange(self.bits, self.symmetric, self.narrow_range, self.unsigned)[0]

    @property
    def quant_max(self) -> int:
        return qmath.qrange(self.bits, self.symmetric, self.narrow_range, self.unsigned)[1]

    def _reset(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)
        self._state = {}
        self._seen = 0

    def fit(self, x) -> Observer:
        qmath.check_bits(self.bits, where=self.name)
        self._reset()
        many = isinstance(x, (list, tuple)) or (isinstance(x, Iterable)
                                                and not isinstance(x, (np.ndarray, torch.Tensor)))
        batches = x if many else [x]
        for b in batches:
            self.partial_fit(b, refit=False)
        if not self._seen:
            raise DataError("empty calibration set (no batches)", where=self.name,
                            fix="give at least one calibration batch")
        return self.refit()

    def partial_fit(self, x, refit: bool = True) -> Observer:
        """Accumulate one batch. ``refit=False`` defers the (for histogram observers, costly) range
        search to a later ``refit()``, which calibration loops call once at the end."""
        if not hasattr(self, "_state"):
            qmath.check_bits(self.bits, where=self.name)
            self._state = {}
        t = _to_tensor(x, self.name)
        if self.axis is not None and not -t.dim() <= self.axis < t.dim():
            raise ConfigError(f"axis={self.axis} does not exist in a tensor of shape {tuple(t.shape)}",
                              where=self.name, fix="use the channel axis of the tensor")
        self._update(t)
        self._seen = getattr(self, "_seen", 0) + (t.shape[0] if t.dim() else 1)
        return self.refit() if refit else self

    def refit(self) -> Observer:
        """Set the learned attributes from everything observed so far."""
        if not getattr(self, "_seen", 0):
            raise DataError("empty calibration set (nothing observed)", where=self.name,
                            fix="run at least one calibration batch")
        lo, hi = self._range()
        self.n_samples_seen_ = self._seen
        self.min_, self.max_ = lo, hi
        self.scale_, self.zero_point_ = qmath.choose_qparams(lo, hi, self.bits, self.symmetric,
                                                             self.narrow_range, self.unsigned)
        return self

    def _channel_minmax(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.axis is None:
            return t.min(), t.max()
        flat = t.movedim(self.axis, 0).reshape(t.shape[self.axis], -1)
        return flat.min(1).values, flat.max(1).values


class MinMaxObserver(Observer):
    """Running minimum and maximum (per tensor or per channel along ``axis``)."""

    def _update(self, t):
        lo, hi = self._channel_minmax(t)
        if "min" in self._state:
            lo, hi = torch.minimum(lo, self._state["min"]), torch.maximum(hi, self._state["max"])
        self._state.update(min=lo, max=hi)

    def _range(self):
        return self._state["min"], self._state["max"]


class MovingAverageMinMaxObserver(Observer):
    """Exponential moving average of each batch's min and max: ``m += c * (batch_m - m)``."""

    def __init__(self, averaging_constant: float = 0.01, **kw):
        super().__init__(**kw)
        self.averaging_constant = averaging_constant

    def _update(self, t):
        lo, hi = self._channel_minmax(t)
        if "min" in self._state:
            c = self.averaging_constant
            lo = self._state["min"] + c * (lo - self._state["min"])
            hi = self._state["max"] + c * (hi - self._state["max"])
        self._state.update(min=lo, max=hi)

    def _range(self):
        return self._state["min"], self._state["max"]


class _SampleObserver(Observer):
    """Keeps a seeded random subsample of the observed values (per tensor) for range searches."""

    max_samples = 1 << 17

    def __init__(self, seed: int = 0, **kw):
        super().__init__(**kw)
        self.seed = seed

    def _update(self, t):
        if self.axis is not None:
            raise ConfigError(f"{self.name} is per-tensor only", where=self.name,
                              fix="use MinMaxObserver for per-channel ranges")
        flat = t.reshape(-1).numpy()
        rng = self._state.setdefault("rng", np.random.default_rng(self.seed))
        if flat.size > self.max_samples // 4:
            flat = rng.choice(flat, self.max_samples // 4, replace=False)
        vals = np.concatenate([self._state.get("values", np.empty(0, np.float32)), flat])
        if vals.size > self.max_samples:
            vals = rng.choice(vals, self.max_samples, replace=False)
        self._state["values"] = vals
        self._state["min"] = min(self._state.get("min", np.inf), float(t.min()))
        self._state["max"] = max(self._state.get("max", -np.inf), float(t.max()))


class PercentileObserver(_SampleObserver):
    """Range from the ``(100 - p)``-th and ``p``-th percentiles of the values (clips the tails)."""

    def __init__(self, percentile: float = 99.99, **kw):
        super().__init__(**kw)
        self.percentile = percentile

    def _range(self):
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile={self.percentile} is outside (50, 100]", where=self.name,
                              fix="use e.g. 99.9 or 99.99")
        v = self._state["values"]
        lo, hi = np.percentile(v, [100.0 - self.percentile, self.percentile])
        return torch.tensor(float(lo)), torch.tensor(float(hi))


class MSEObserver(_SampleObserver):
    """The clipped range ``[a * min, a * max]`` (``a`` on a grid in (0, 1]) whose quantize-dequantize
    round trip has the least mean squared error on the observed values."""

    def __init__(self, grid: int = 100, **kw):
        super().__init__(**kw)
        self.grid = grid

    def _range(self):
        v = torch.from_numpy(self._state["values"])
        lo0, hi0 = min(self._state["min"], 0.0), max(self._state["max"], 0.0)
        best = (np.inf, lo0, hi0)
        qmin, qmax = self.quant_min, self.quant_max
        for a in np.linspace(1.0, 1.0 / self.grid, self.grid):
            lo, hi = torch.tensor(a * lo0), torch.tensor(a * hi0)
            s, z = qmath.choose_qparams(lo, hi, self.bits, self.symmetric, self.narrow_range, self.unsigned)
            err = float(((qmath.dequantize(qmath.quantize(v, s, z, qmin, qmax), s, z) - v) ** 2).mean())
            if err < best[0] - 1e-12:
                best = (err, a * lo0, a * hi0)
        return torch.tensor(best[1]), torch.tensor(best[2])


class KLObserver(_SampleObserver):
    """Entropy calibration: histogram ``|x|`` into 2048 bins and pick the clipping threshold whose
    ``2^(bits-1)``-level quantized distribution Q is closest to the clipped distribution P in
    Kullback-Leibler divergence (outliers folded into P's last bin)."""

    def __init__(self, bins: int = 2048, **kw):
        super().__init__(**kw)
        self.bins = bins

    def _range(self):
        v = np.abs(self._state["values"])
        amax = float(v.max())
        if amax == 0.0:
            return torch.tensor(0.0), torch.tensor(0.0)
        hist, edges = np.histogram(v, bins=self.bins, range=(0.0, amax))
        hist = hist.astype(np.float64)
        levels = 2 ** (self.bits - 1) if self.bits > 1 else 2
        best_kl, best_i = np.inf, self.bins
        for i in range(levels, self.bins + 1, max(1, (self.bins - levels) // 256)):
            p = hist[:i].copy()
            p[-1] += hist[i:].sum()
            # Merge the i bins into `levels` groups; spread each group's mass over its non-empty bins.
            group = (np.arange(i) * levels) // i
            nonzero = hist[:i] > 0
            mass = np.bincount(group, weights=hist[:i], minlength=levels)
            count = np.bincount(group, weights=nonzero, minlength=levels)
            q = np.where(nonzero, mass[group] / np.maximum(count[group], 1), 0.0)
            if q.sum() == 0:
                continue
            p, q = p / p.sum(), q / q.sum()
            m = p > 0
            kl = float(np.sum(p[m] * np.log(p[m] / np.where(q[m] > 0, q[m], 1e-12))))
            if kl < best_kl:
                best_kl, best_i = kl, i
        t = float(edges[best_i])
        lo, hi = max(self._state["min"], -t), min(self._state["max"], t)
        return torch.tensor(lo), torch.tensor(hi)


OBSERVERS = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
    "kl": KLObserver,
}


def make_observer(name: str, **kw) -> Observer:
    """An observer by its recipe name (``minmax``, ``moving_average``, ``percentile``, ``mse``, ``kl``)."""
    if name not in OBSERVERS:
        raise ConfigError(f"unknown observer '{name}'",
                          fix=f"use one of {sorted(OBSERVERS)}{hint(name, OBSERVERS)}")
    return OBSERVERS[name](**kw)


__all__ = ["KLObserver", "MSEObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "OBSERVERS",
           "Observer", "PercentileObserver", "make_observer"]
