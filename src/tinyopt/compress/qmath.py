"""The arithmetic of uniform (affine) quantization, in one place.

``real = scale * (q - zero_point)`` with ``q`` an integer in ``[qmin, qmax]``. Everything else in
``tinyopt.compress`` (observers, fake quantization, PTQ, QAT, low-bit) calls these functions, and the
converter reads the scales they produce, so the int8 deployment scheme is decided here:

- weights: signed, symmetric, per output channel, narrow range ``[-127, 127]``, zero point 0;
- activations: signed, asymmetric, per tensor, ``[-128, 127]``, with the range widened to include 0 so
  that real 0 (padding, ReLU) is exactly representable.

Rounding is half-to-even (``torch.round``), as in PyTorch and TFLite's converter.
"""

from __future__ import annotations

import math

import torch

from tinyopt.errors import ConfigError, DataError

EPS = torch.finfo(torch.float32).eps


def check_bits(bits: int, where: str | None = None) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ConfigError(f"bits={bits!r} is outside 1-16", where=where,
                          fix="use an integer bit width from 1 to 16 (or 'float16', 'ternary', 'binary')")
    return bits


def qrange(bits: int = 8, symmetric: bool = False, narrow_range: bool = False,
           unsigned: bool = False) -> tuple[int, int]:
    """Integer range: signed ``[-2^(b-1), 2^(b-1)-1]`` or unsigned ``[0, 2^b-1]``; narrow drops qmin."""
    check_bits(bits)
    qmin, qmax = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if narrow_range:
        qmin += 1
    return qmin, qmax


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


def choose_qparams(min, max, bits: int = 8, symmetric: bool = False, narrow_range: bool = False,
                   unsigned: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point covering ``[min, max]`` (scalars or per-channel tensors).

    Asymmetric: ``scale = (max - min) / (qmax - qmin)``, ``zp = qmin - round(min / scale)``, after
    widening the range to include 0 (so ``zp`` is an integer in range: zero is exact).
    Symmetric: ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)`` and ``zp = 0`` (signed) or the middle
    of the range (unsigned); with ``narrow_range`` int8 this is TFLite's ``amax / 127``.
    """
    qmin, qmax = qrange(bits, symmetric, narrow_range, unsigned)
    lo = torch.clamp(_as_tensor(min), max=0.0)
    hi = torch.clamp(_as_tensor(max), min=0.0)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise DataError("quantization range is not finite (NaN or inf in the observed values)",
                        fix="remove NaN/inf from the weights or calibration data")
    if symmetric:
        amax = torch.maximum(-lo, hi)
        scale = torch.clamp(amax / ((qmax - qmin) / 2), min=EPS)
        zp = torch.full_like(scale, 0 if not unsigned else (qmin + qmax + 1) // 2)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=EPS)
        zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    return scale, zp.to(torch.int64)


def choose_qparams_per_channel(x, axis: int = 0, bits: int = 8, symmetric: bool = True,
                               narrow_range: bool = True, unsigned: bool = False):
    """Per-channel scales along ``axis`` from the channel's min and max (defaults: TFLite weights)."""
    x = _as_tensor(x)
    flat = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    return choose_qparams(flat.min(1).values, flat.max(1).values, bits, symmetric, narrow_range, unsigned)


def _broadcast(p: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None or p.numel() == 1:
        return p.reshape(())
    shape = [1] * x.dim()
    shape[axis] = -1
    return p.reshape(shape)


def quantize(x, scale, zero_point, qmin: int, qmax: int, axis: int | None = None) -> torch.Tensor:
    """``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int64."""
    x = _as_tensor(x)
    s = _broadcast(_as_tensor(scale), x, axis)
    z = _broadcast(torch.as_tensor(zero_point), x, axis)
    return torch.clamp(torch.round(x / s) + z, qmin, qmax).to(torch.int64)


def dequantize(q, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """``real = scale * (q - zero_point)``."""
    q = torch.as_tensor(q)
    s = _broadcast(_as_tensor(scale), q, axis)
    z = _broadcast(torch.as_tensor(zero_point), q, axis)
    return s * (q.to(torch.float32) - z.to(torch.float32))


class _FakeQuantSTE(torch.autograd.Function):
    """Quantize-dequantize forward; the straight-through estimator backward passes the gradient
    where ``x`` fell inside the representable range and zeroes it where it was clamped."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x / scale) + zero_point
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return (torch.clamp(q, qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def fake_quantize(x: torch.Tensor, scale, zero_point, qmin: int, qmax: int,
                  axis: int | None = None) -> torch.Tensor:
    """Round ``x`` onto the quantization grid and back to float, differentiably (STE)."""
    s = _broadcast(_as_tensor(scale).to(x.device), x, axis)
    z = _broadcast(torch.as_tensor(zero_point).to(device=x.device, dtype=torch.float32), x, axis)
    return _FakeQuantSTE.apply(x, s, z, qmin, qmax)


def quantize_symmetric(x, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The textbook symmetric rule ``clamp(round(x / s), -2^(b-1), 2^(b-1) - 1)`` with
    ``s = max|x| / (2^(b-1) - 1)``; returns ``(q, s)``."""
    x = _as_tensor(x)
    qmin, qmax = qrange(bits)
    s = torch.clamp(x.abs().max() / qmax, min=EPS)
    return torch.clamp(torch.round(x / s), qmin, qmax).to(torch.int64), s


def bits_per_level(levels: int) -> float:
    """Information content of one weight drawn from ``levels`` values: ``log2(levels)`` bits
    (ternary {-1, 0, 1}: log2(3) = 1.585)."""
    if levels < 1:
        raise ConfigError(f"levels={levels} must be at least 1", fix="give the number of distinct values")
    return math.log2(levels)


__all__ = [
    "EPS", "bits_per_level", "check_bits", "choose_qparams", "choose_qparams_per_channel", "dequantize",
    "fake_quantize", "qrange", "quantize", "quantize_symmetric",
]
