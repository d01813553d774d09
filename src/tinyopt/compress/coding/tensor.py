"""One weight-shared tensor <-> one self-describing bit record, with the exact size of every part.

Record layout (MSB first, padded with zeros to a whole byte at the end):

    ndim:4  dims:32*ndim  huffman:1  codebook_dtype:2  index_bits:5  gap_bits:5  k:17  n_entries:32
    codebook: k values at their dtype (float32 or float16, IEEE bits)
    [index Huffman table]  [gap Huffman table, if gap_bits]     (only if huffman)
    index codes for the n entries, then gap codes for the n entries (gap_bits > 0 only)

``gap_bits = 0`` stores every element's cluster index (dense); ``gap_bits > 0`` stores only non-zero
entries plus fillers as relative indices (see ``sparse.py``), with cluster index 0 meaning 0.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinyopt.compress.coding import sparse
from tinyopt.compress.coding.bits import BitReader, BitWriter
from tinyopt.compress.coding.huffman import HuffmanCode
from tinyopt.errors import ConfigError

CODEBOOK_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}
_DTYPE_CODE = {np.dtype(v).name: k for k, v in CODEBOOK_DTYPES.items()}
MAX_NDIM = 15
HEADER_FIXED_BITS = 4 + 1 + 2 + 5 + 5 + 17 + 32


@dataclass
class EncodedTensor:
    """A coded tensor: ``payload`` is the record bytes; ``sizes`` the exact bits of each part."""

    shape: tuple[int, ...]
    index_bits: int
    gap_bits: int
    huffman: bool
    n_entries: int
    payload: bytes
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def n_bytes(self) -> int:
        return len(self.payload)


def check_bits(bits: int, what: str, layer: str, *, allow_zero: bool = False) -> int:
    lo = 0 if allow_zero else 1
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not lo <= bits <= 16:
        raise ConfigError(f"{what} = {bits!r} is outside {lo}..16", where=layer or None,
                          fix=f"choose {what} between {max(lo, 1)} and 16 (Deep "
                              "Compression: conv 8, dense 5)")
    return int(bits)


def encode_shared(codebook, labels, index_bits: int, gap_bits: int = 0, *, huffman: bool = True,
                  layer: str = "") -> EncodedTensor:
    """Code a tensor given as ``codebook[labels]``.

    ``codebook`` is float32 or float16 (stored at that dtype). With ``gap_bits > 0`` the tensor is
    stored sparse and ``codebook[0]`` must be 0.0: label 0 marks the pruned weights and the fillers.
    """
    index_bits = check_bits(index_bits, "index_bits", layer)
    gap_bits = check_bits(gap_bits, "gap_bits", layer, allow_zero=True)
    codebook = np.asarray(codebook)
    labels = np.asarray(labels)
    if codebook.dtype.name not in _DTYPE_CODE or codebook.ndim != 1:
        raise ConfigError(f"codebook must be a 1-D float32 or float16 array, got {codebook.dtype} "
                          f"{codebook.shape}", where=layer or None, fix="cast the codebook")
    k = len(codebook)
    if k > 1 << index_bits:
        raise ConfigError(f"{k} clusters do not fit {index_bits}-bit indices", where=layer or None,
                          fix=f"use at most {1 << index_bits} clusters or more index bits")
    if labels.ndim > MAX_NDIM or labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ConfigError(f"labels must index the {k}-entry codebook", where=layer or None,
                          fix="pass the labels_ of the fitted clusterer")
    if gap_bits and (k == 0 or codebook[0] != 0):
        raise ConfigError("sparse storage needs codebook[0] == 0.0 for pruned weights", where=layer or None,
                          fix="cluster with sparse=True so index 0 is reserved for zero")
    flat = labels.ravel().astype(np.int64)
    if gap_bits:
        gaps, values = sparse.to_relative(flat, gap_bits)
    else:
        gaps, values = np.zeros(0, dtype=np.int64), flat
    n = len(values)

    w = BitWriter()
    sizes = {}
    w.write(labels.ndim, 4)
    for d in labels.shape:
        w.write(int(d), 32)
    w.write(int(huffman), 1)
    w.write(_DTYPE_CODE[codebook.dtype.name], 2)
    w.write(index_bits, 5)
    w.write(gap_bits, 5)
    w.write(k, 17)
    w.write(n, 32)
    sizes["header"] = w.n_bits
    item_bits = 8 * codebook.dtype.itemsize
    raw = codebook.astype(codebook.dtype.newbyteorder("<")).tobytes()
    w.write(int.from_bytes(raw, "big"), item_bits * k) if k else None
    sizes["codebook"] = w.n_bits - sum(sizes.values())
    if huffman:
        hv = HuffmanCode().fit(values, 1 << index_bits)
        mark = w.n_bits
        hv.write_table(w)
        sizes["index_table"] = w.n_bits - mark
        if gap_bits:
            hg = HuffmanCode().fit(gaps, 1 << gap_bits)
            mark = w.n_bits
            hg.write_table(w)
            sizes["gap_table"] = w.n_bits - mark
        mark = w.n_bits
        hv.encode(values, w)
        sizes["index_codes"] = w.n_bits - mark
        if gap_bits:
            mark = w.n_bits
            hg.encode(gaps, w)
            sizes["gap_codes"] = w.n_bits - mark
    else:
        fmt = f"0{index_bits}b"
        w.write_codes([format(v, fmt) for v in values.tolist()])
        sizes["index_codes"] = n * index_bits
        if gap_bits:
            fmt = f"0{gap_bits}b"
            w.write_codes([format(v, fmt) for v in gaps.tolist()])
            sizes["gap_codes"] = n * gap_bits
    payload = w.to_bytes()
    sizes["padding"] = 8 * len(payload) - w.n_bits
    return EncodedTensor(tuple(int(d) for d in labels.shape), index_bits, gap_bits, huffman, n, payload,
                         sizes)


def decode_shared(payload: bytes, *, where: str = "", path: str | None = None) -> np.ndarray:
    """Inverse of ``encode_shared``: the float tensor ``codebook[labels]`` at the codebook's dtype.

    Every count is checked against the bits left before anything is allocated, so a corrupt record
    raises ``ModelFormatError`` instead of hanging or allocating gigabytes.
    """
    r = BitReader(payload, where=where, path=path)
    ndim = r.read(4)
    shape = tuple(r.read(32) for _ in range(ndim))
    huffman = bool(r.read(1))
    dt = r.read(2)
    if dt not in CODEBOOK_DTYPES:
        r.fail(f"unknown codebook dtype code {dt}")
    index_bits, gap_bits, k, n = r.read(5), r.read(5), r.read(17), r.read(32)
    if not 1 <= index_bits <= 16 or gap_bits > 16 or k > 1 << index_bits:
        r.fail(f"invalid header (index_bits {index_bits}, gap_bits {gap_bits}, {k} clusters)")
    dtype = CODEBOOK_DTYPES[dt]
    cb_bits = 8 * dtype.itemsize * k
    if cb_bits > r.remaining:
        r.fail(f"codebook of {k} values is longer than the record")
    codebook = np.frombuffer(r.read(cb_bits).to_bytes(cb_bits // 8, "big"), dtype=dtype) if k else \
        np.zeros(0, dtype)
    min_bits_each = 1 if huffman else index_bits + gap_bits
    if n * min_bits_each > r.remaining:  # every entry costs at least this many bits
        r.fail(f"{n} entries declared but only {r.remaining} bits remain")
    size = math.prod(shape)  # exact (Python ints): hostile dims must not wrap around
    if gap_bits and size > sparse.bound_size(n, gap_bits):
        r.fail(f"shape {shape} is larger than {n} relative-index entries can describe")
    if not gap_bits and size != n:
        r.fail(f"shape {shape} has {size} elements but {n} dense entries are stored")
    if huffman:
        hv = HuffmanCode.read_table(r, 1 << index_bits)
        hg = HuffmanCode.read_table(r, 1 << gap_bits) if gap_bits else None
        values = hv.decode(r, n)
        gaps = hg.decode(r, n) if gap_bits else None
    else:
        values = np.asarray([r.read(index_bits) for _ in range(n)], dtype=np.int64)
        gaps = np.asarray([r.read(gap_bits) for _ in range(n)], dtype=np.int64) if gap_bits else None
    if r.remaining >= 8 or r.bits[r.pos:].count("1"):
        r.fail(f"{r.remaining} unexpected bits after the last code")
    if n and values.max() >= k:
        r.fail(f"cluster index {int(values.max())} outside the {k}-entry codebook")
    if gap_bits:
        if n and (gaps.min() < 1 or int(gaps.sum()) > size):
            r.fail("relative indices run outside the tensor")
        flat = sparse.from_relative(gaps, values, size)
    else:
        flat = values
    if k == 0:
        return np.zeros(shape, dtype)
    return codebook[flat].reshape(shape)
