"""Weight formats below (and beside) int8: 2-8 and 16-bit integers, float16, ternary, binary.

Each is a parametrization that rounds the weight every time it is read and passes gradients straight
through, so the same object serves post-training rounding and quantization-aware fine-tuning.

- ``n`` bits: symmetric per output channel, narrow range ``[-(2^(n-1) - 1), 2^(n-1) - 1]`` (zero exact,
  the grid symmetric about it: at 2 bits this is {-s, 0, s}).
- ternary (Li & Liu, Ternary Weight Networks): threshold ``delta = 0.7 * mean|w|`` per output channel,
  ``alpha`` = mean of the ``|w|`` above it, ``w_t = alpha * sign(w) * [|w| > delta]``; log2(3) = 1.58
  bits of information, stored 5 per byte.
- binary (BinaryConnect / XNOR-Net's scaling): ``w_b = mean|w| * sign(w)`` per output channel.
- float16: IEEE half precision (round to nearest even).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from tinyopt._suggest import hint
from tinyopt.compress import qmath
from tinyopt.compress.configs import WEIGHT_FORMATS  # one list, shared with the configs
from tinyopt.compress.fake_quant import WeightFakeQuantize
from tinyopt.compress.prune import check_finite, prunable_layers
from tinyopt.errors import ConfigError


def _ste(w: torch.Tensor, wq: torch.Tensor) -> torch.Tensor:
    """Forward ``wq``, backward identity (straight-through)."""
    return w + (wq - w).detach()


def _per_channel_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    dims = list(range(1, x.dim()))
    if mask is None:
        return x.mean(dim=dims, keepdim=True)
    return (x * mask).sum(dim=dims, keepdim=True) / mask.sum(dim=dims, keepdim=True).clamp(min=1)


class Float16(nn.Module):
    def forward(self, w):
        return _ste(w, w.half().float())


class Ternary(nn.Module):
    def __init__(self, threshold: float = 0.7):
        super().__init__()
        self.threshold = threshold

    def forward(self, w):
        a = w.detach().abs()
        delta = self.threshold * _per_channel_mean(a)
        keep = (a > delta).to(w.dtype)
        alpha = _per_channel_mean(a, keep)
        return _ste(w, alpha * torch.sign(w.detach()) * keep)


class Binary(nn.Module):
    def forward(self, w):
        a = w.detach().abs()
        return _ste(w, _per_channel_mean(a) * torch.where(w.detach() >= 0, 1.0, -1.0))


def weight_quantizer(bits, per_channel: bool = True) -> nn.Module:
    """The parametrization for a weight format: an int bit width 1-16, 'float16', 'ternary', 'binary'."""
    if isinstance(bits, bool):
        raise ConfigError(f"bits={bits!r} is outside 1-16", where="quantize", fix="use an integer bit width")
    if bits == "float16":
        return Float16()
    if bits == "ternary":
        return Ternary()
    if bits == "binary" or bits == 1:
        return Binary()
    if isinstance(bits, str):
        raise ConfigError(f"unknown weight format '{bits}'", where="quantize",
                          fix=f"use an integer 2-16 or one of {', '.join(WEIGHT_FORMATS)}")
    return WeightFakeQuantize(qmath.check_bits(bits), symmetric=True, narrow_range=True,
                              per_channel=per_channel)


def quantize_weights_(model: nn.Module, bits=8, layers: list[str] | None = None,
                      per_channel: bool = True) -> nn.Module:
    """Weight-only quantization in place (activations stay float). ``bits`` may be a ``{layer: bits}``
    dict. Size accounting reads each layer's format from its quantizer (``weight_format``)."""
    check_finite(model)
    all_layers = prunable_layers(model)
    per_layer = bits if isinstance(bits, dict) else dict.fromkeys(layers or list(all_layers), bits)
    for name, b in per_layer.items():
        if name not in all_layers:
            raise ConfigError(f"no quantizable layer '{name}'", where="quantize",
                              fix=f"use one of {list(all_layers)}{hint(name, all_layers)}")
        q = weight_quantizer(b, per_channel)
        m = all_layers[name]
        parametrize.register_parametrization(m, "weight", q)
    return model


def weight_format(q: nn.Module) -> dict:
    """How a quantizer stores a weight: ``{"bits": n | "float16" | "ternary" | "binary", "per_channel"}``
    (ternary and binary keep one scale per output channel; float16 needs none)."""
    if isinstance(q, WeightFakeQuantize):
        return {"bits": q.bits, "per_channel": q.per_channel}
    named = {Float16: "float16", Ternary: "ternary", Binary: "binary"}
    for cls, name in named.items():
        if isinstance(q, cls):
            return {"bits": name, "per_channel": cls is not Float16}
    return {}


def distinct_levels(w: torch.Tensor) -> int:
    """Distinct values per output channel, maximised over channels (a ternary layer gives 3)."""
    w = w.detach().reshape(w.shape[0], -1)
    return max(int(torch.unique(row).numel()) for row in w)


__all__ = ["WEIGHT_FORMATS", "Binary", "Float16", "Ternary", "distinct_levels", "quantize_weights_",
           "weight_format", "weight_quantizer"]
