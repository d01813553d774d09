"""Exact bytes of a compressed model, and the compression ratio, for any mix of steps.

Two levels:

- ``textbook_bytes(n_params, prune, bits, coding_gain)`` is the seeds' arithmetic: surviving parameters
  times bytes per parameter, times what entropy coding leaves; no index overhead.
- ``tensor_size(w, bits, index=...)`` and ``model_size(model)`` count what a file must really hold:
  packed values (``ceil(n * bits / 8)``; ternary packs 5 trits per byte since 3^5 = 243 <= 256),
  the positions of the non-zeros when storing only those pays off (a bitmask, or Deep Compression's
  relative indices with filler zeros for long gaps), per-channel scales, and codebooks.

A layer's storage format is read from the layer itself, where its quantizer says it (``bits``: an
integer width, "float16", "ternary" or "binary"; per-channel scales), and from the compression state
for what the module cannot say (``state.storage[layer]``: ``codebook`` = k after weight sharing, each
weight a ``ceil(log2 k)``-bit index plus ``k`` float32 centroids; ``record_bytes`` = the exact bytes of
its Huffman-coded record). Anything else is float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tinyopt.compress.prune import check_amount, prunable_layers
from tinyopt.errors import ConfigError

INDEX_FORMATS = ("auto", "dense", "bitmask", "relative")


def value_bits(bits) -> float:
    """Storage bits per weight for a bit width or a named format."""
    named = {"float32": 32, "float16": 16, "binary": 1, "ternary": 8 / 5}
    if isinstance(bits, str):
        if bits not in named:
            raise ConfigError(f"unknown weight format '{bits}'", where="size",
                              fix=f"use an integer 1-32 or one of {sorted(named)}")
        return float(named[bits])
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or not 1 <= bits <= 32:
        raise ConfigError(f"bits={bits!r} is outside 1-32", where="size", fix="use a bit width from 1 to 32")
    return float(bits)


def textbook_bytes(n_params: int, prune: float = 0.0, bits=32, coding_gain: float = 0.0) -> float:
    """``n * (1 - prune) * bits / 8 * (1 - coding_gain)``: the seeds' size of a compressed model."""
    check_amount(prune, "size")
    if not 0.0 <= coding_gain < 1.0:
        raise ConfigError(f"coding_gain {coding_gain} is outside [0, 1)", where="size",
                          fix="give the fraction entropy coding saves, e.g. 0.2")
    return n_params * (1.0 - prune) * value_bits(bits) / 8.0 * (1.0 - coding_gain)


def compression_ratio(original_bytes: float, compressed_bytes: float) -> float:
    if compressed_bytes <= 0:
        raise ConfigError("compressed size must be positive", where="size", fix="check the size accounting")
    return original_bytes / compressed_bytes


def relative_index_entries(flat_nonzero: np.ndarray, index_bits: int) -> int:
    """Entries Deep Compression's relative indexing stores: one per non-zero, plus a filler zero each time
    a run of zeros is longer than ``2^index_bits - 1`` (a filler covers ``2^index_bits`` positions)."""
    pos = np.flatnonzero(flat_nonzero)
    if pos.size == 0:
        return 0
    gaps = np.diff(np.concatenate([[-1], pos])) - 1  # zeros before each non-zero
    return int(pos.size + np.sum(gaps // (1 << index_bits)))


@dataclass
class TensorSize:
    name: str
    numel: int
    nonzero: int
    bits: float
    index: str
    value_bytes: int
    index_bytes: int
    meta_bytes: int

    @property
    def total(self) -> int:
        return self.value_bytes + self.index_bytes + self.meta_bytes


def tensor_size(w, bits=32, index: str = "auto", relative_bits: int = 4, scales: int = 0,
                zero_points: bool = False, codebook: int | None = None, coded_bytes: int | None = None,
                name: str = "") -> TensorSize:
    """Exact bytes of one weight tensor stored at ``bits`` with the cheapest (or the given) index format."""
    if index not in INDEX_FORMATS:
        raise ConfigError(f"unknown index format '{index}'", where="size", fix=f"use one of {INDEX_FORMATS}")
    a = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    flat = a.reshape(-1) != 0
    numel, nnz = int(a.size), int(flat.sum())
    meta = 0
    if codebook is not None:
        meta += codebook * 4
        bits = max(1, math.ceil(math.log2(max(codebook, 2))))
    vb = value_bits(bits)
    meta += scales * 4 + (scales * math.ceil(vb / 8) if zero_points else 0)
    options = {"dense": (math.ceil(numel * vb / 8), 0)}
    if bits != "ternary":  # ternary's zero is one of its three levels: no index can beat packing it
        options["bitmask"] = (math.ceil(nnz * vb / 8), math.ceil(numel / 8))
        entries = relative_index_entries(flat, relative_bits)
        options["relative"] = (math.ceil(entries * vb / 8), math.ceil(entries * relative_bits / 8))
    if index == "auto":
        index = min(options, key=lambda k: sum(options[k]))
    elif index not in options:
        raise ConfigError(f"index format '{index}' does not apply to ternary weights", where=name or "size",
                          fix="use index: dense")
    values, idx = options[index]
    if coded_bytes is not None:
        values = int(coded_bytes)
    return TensorSize(name, numel, nnz, vb, index, values, idx, meta)


@dataclass
class SizeReport:
    rows: list[TensorSize]
    params: int
    original_bytes: int

    @property
    def bytes(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def nonzero(self) -> int:
        return sum(r.nonzero for r in self.rows)

    @property
    def ratio(self) -> float:
        return compression_ratio(self.original_bytes, self.bytes)


def model_size(model: nn.Module, index: str = "auto", relative_bits: int = 4, *, state=None) -> SizeReport:
    """Bytes of every parameter of ``model`` as its layers are stored (see the module docstring);
    ``state`` is a ``CompressionState`` (weight sharing and coding record their formats there).

    Weights of quantized layers use their bits and per-channel float32 scales; their biases are int32
    (TFLM: bias scale = input scale x weight scale), float16 layers keep float16 biases; every other
    parameter (BatchNorm, unquantized layers) is float32. The original is all parameters at float32.
    """
    rows: list[TensorSize] = []
    done: set[int] = set()
    from tinyopt.compress.lowbit import weight_format
    from tinyopt.compress.ptq import weight_quantizers

    quantizers = weight_quantizers(model)
    storage = state.storage if state is not None else {}
    for lname, m in prunable_layers(model).items():
        info = {**(weight_format(quantizers[lname]) if lname in quantizers else {}), **storage.get(lname, {})}
        bits = info.get("bits", 32)
        w = m.weight.detach()
        quantized = bits not in (32, "float32", "float16")
        scales = (w.shape[0] if info.get("per_channel", True)
                  else 1) if quantized or "codebook" in info else 0
        if "record_bytes" in info:  # Huffman-coded: the exact bytes of its record in the container
            nnz = int((w != 0).sum())
            rows.append(TensorSize(f"{lname}.weight", w.numel(), nnz, info.get("bits", 0), "huffman",
                                   int(info["record_bytes"]), 0, 0))
        else:
            rows.append(tensor_size(w, bits, index, relative_bits, scales=scales,
                                    codebook=info.get("codebook"), coded_bytes=info.get("coded_bytes"),
                                    name=f"{lname}.weight"))
        done.add(id(_stored(m, "weight")))
        if m.bias is not None:
            bb = 16 if bits == "float16" else 32
            rows.append(tensor_size(m.bias.detach(), bb, "dense", name=f"{lname}.bias"))
            done.add(id(m.bias))
    for pname, p in model.named_parameters():
        if id(p) not in done:
            rows.append(tensor_size(p.detach(), 32, "dense", name=pname))
    params = sum(r.numel for r in rows)
    return SizeReport(rows, params, params * 4)


def _stored(m: nn.Module, name: str):
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(m, name):
        return getattr(m.parametrizations, name).original
    return getattr(m, name)


__all__ = ["INDEX_FORMATS", "SizeReport", "TensorSize", "compression_ratio", "model_size",
           "relative_index_entries", "tensor_size", "textbook_bytes", "value_bits"]
