"""Sparse storage as relative indices (Deep Compression, Han et al. 2016, section 3).

Each stored entry keeps the distance ``gap`` from the previous stored entry (the first counts from
position -1), in ``gap_bits`` bits, so gaps run 1 .. 2**gap_bits - 1. A distance longer than that is
bridged by *filler* entries: a zero placed ``max_gap`` further on. With 4-bit gaps (max 15), a distance
of 20 becomes a filler at +15 then the entry at +5. Trailing zeros after the last non-zero are bridged
the same way until fewer than ``max_gap`` remain, so a decoder can bound the tensor size by the number
of entries before allocating anything.
"""

from __future__ import annotations

import numpy as np


def max_gap(gap_bits: int) -> int:
    return (1 << gap_bits) - 1


def to_relative(labels: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat labels (0 = zero weight) -> (gaps, values): one pair per stored entry, fillers included."""
    flat = np.asarray(labels).ravel()
    m = max_gap(gap_bits)
    pos = np.flatnonzero(flat)
    d = np.diff(pos, prepend=-1)
    fillers = (d - 1) // m                    # fillers needed before each non-zero
    tail = (flat.size - 1 - (pos[-1] if pos.size else -1)) // m
    n = int(fillers.sum()) + pos.size + tail
    gaps = np.full(n, m, dtype=np.int64)
    values = np.zeros(n, dtype=np.int64)
    at = np.cumsum(fillers + 1) - 1           # where each real entry lands among all entries
    gaps[at] = d - fillers * m
    values[at] = flat[pos]
    return gaps, values


def from_relative(gaps: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Inverse of ``to_relative``: the flat label array of length ``size``."""
    out = np.zeros(size, dtype=np.int64)
    if len(gaps):
        pos = np.cumsum(gaps) - 1
        out[pos] = values
    return out


def bound_size(n_entries: int, gap_bits: int) -> int:
    """The largest tensor ``n_entries`` can describe (fewer than max_gap trailing zeros remain)."""
    m = max_gap(gap_bits)
    return n_entries * m + m - 1
