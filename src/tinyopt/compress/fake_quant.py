"""Fake quantization modules: an observer plus quantize-dequantize with the straight-through estimator.

``FakeQuantize`` sits on an activation: while ``observing`` it feeds every batch to its observer; while
``quantizing`` it rounds onto the observer's grid (STE backward), so the float network sees exactly the
values the integer network will compute. ``WeightFakeQuantize`` is a parametrization
(``torch.nn.utils.parametrize``) that rounds a weight every time it is read, with its range recomputed
from the current weight (min-max, per output channel by default), which is what QAT needs.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyopt.compress import qmath
from tinyopt.compress.observers import MovingAverageMinMaxObserver, Observer


class FakeQuantize(nn.Module):
    """Observe and/or fake-quantize one activation tensor (per tensor)."""

    def __init__(self, observer: Observer | None = None):
        super().__init__()
        self.observer = observer if observer is not None else MovingAverageMinMaxObserver()
        self.observing = True
        self.quantizing = False
        self.refit_each_batch = True  # calibration turns this off and refits once at the end

    @property
    def fitted(self) -> bool:
        return hasattr(self.observer, "scale_")

    def qparams(self) -> dict:
        """What the converter reads: scale, zero point, integer range and the observed float range."""
        o = self.observer
        return {"scale": float(o.scale_), "zero_point": int(o.zero_point_), "bits": o.bits,
                "quant_min": o.quant_min, "quant_max": o.quant_max,
                "min": float(o.min_), "max": float(o.max_)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observer.partial_fit(x.detach(), refit=self.refit_each_batch)
        if self.quantizing and self.fitted:
            o = self.observer
            x = qmath.fake_quantize(x, o.scale_, o.zero_point_, o.quant_min, o.quant_max)
        return x

    def extra_repr(self) -> str:
        return f"{self.observer.name}(bits={self.observer.bits}), observing={self.observing}, " \
               f"quantizing={self.quantizing}"


class WeightFakeQuantize(nn.Module):
    """Parametrization: ``weight -> fake_quantize(weight)`` with per-channel symmetric min-max scales.

    ``fold`` (optional callable returning a per-output-channel factor) lets QAT quantize the weight as
    it will be after BatchNorm folding (``w * gamma / sqrt(var + eps)``) and divide the factor back out,
    so the rounding seen in training is the rounding of the deployed, folded weight.
    """

    def __init__(self, bits: int = 8, symmetric: bool = True, narrow_range: bool = True,
                 per_channel: bool = True, axis: int = 0):
        super().__init__()
        self.bits = qmath.check_bits(bits)
        self.symmetric = symmetric
        self.narrow_range = narrow_range
        self.per_channel = per_channel
        self.axis = axis
        self.fold = None

    def qparams(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        qmin, qmax = qmath.qrange(self.bits, self.symmetric, self.narrow_range)
        w = w.detach()
        if self.per_channel:
            s, z = qmath.choose_qparams_per_channel(w, self.axis, self.bits, self.symmetric,
                                                    self.narrow_range)
        else:
            s, z = qmath.choose_qparams(w.min(), w.max(), self.bits, self.symmetric, self.narrow_range)
        return s, z, qmin, qmax

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.fold is not None:
            f = self.fold().detach().reshape([-1] + [1] * (w.dim() - 1))
            wf = w * f
            s, z, qmin, qmax = self.qparams(wf)
            return qmath.fake_quantize(wf, s, z, qmin, qmax, self.axis if self.per_channel else None) / f
        s, z, qmin, qmax = self.qparams(w)
        return qmath.fake_quantize(w, s, z, qmin, qmax, self.axis if self.per_channel else None)


__all__ = ["FakeQuantize", "WeightFakeQuantize"]
