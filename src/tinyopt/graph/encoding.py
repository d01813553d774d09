"""Compressed storage of constant int8 tensors (``ir.Encoding``): find the smallest lossless encoding of a
weight, pack it the way TFLM reads it from a ``.tflite``, and decode it back.

Two families, both decoding to the very same int8 values, so the numpy runtime stays the reference of
every kernel that reads them:

- direct: the values themselves as signed ``bits``-wide integers. int4 is TFLite's INT4 tensor type: two
  per byte, the first element in the low nibble (TFLM's ``UnpackDenseInt4IntoInt8``); int2 holds [-2, 1],
  so ternary {-1, 0, 1} and binary {-1, 1} weights fit it.
- codebook: indices into tables of int8 values, TFLM's lookup-table compression (its
  ``COMPRESSION_METADATA``): one table per tensor, or one per channel along the quantization axis when the
  tensor is quantized per channel; each table holds its channel's distinct values in increasing order,
  padded with zeros to the longest; indices are packed high bits first, no gaps, the last byte padded with
  zero bits.

``sparse`` marks a pruned tensor (at least half zeros): the C library may then store only the non-zero
values (``tinyopt.export.c.compressed``); a ``.tflite`` has no sparse form TFLM reads and stores it dense.
"""

from __future__ import annotations

import math

import numpy as np

from tinyopt.errors import ModelFormatError
from tinyopt.graph.ir import Encoding, Tensor

SPARSE_FRACTION = 0.5      # zeros at least this share of the elements: the tensor is marked sparse
MAX_CODEBOOK_BITS = 7      # TFLM's lookup-table index width is 1..7 bits
DIRECT_BITS = (2, 4)       # the direct widths a kernel reads (int2, int4)


def value_range(bits: int) -> tuple[int, int]:
    """The values a ``bits``-wide two's complement integer holds.

    >>> value_range(4), value_range(2)
    ((-8, 7), (-2, 1))
    """
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def index_bits(distinct: int) -> int:
    """Bits of an index into a table of ``distinct`` entries (at least 1).

    >>> index_bits(1), index_bits(2), index_bits(16), index_bits(17)
    (1, 1, 4, 5)
    """
    return max(1, math.ceil(math.log2(max(distinct, 1))))


def channel_view(q: np.ndarray, axis: int | None) -> np.ndarray:
    """``q`` as rows, one per channel along ``axis`` (None: one row, the whole tensor)."""
    q = np.asarray(q)
    if axis is None:
        return q.reshape(1, -1)
    return np.moveaxis(q, axis, 0).reshape(q.shape[axis], -1)


def table_axis(t: Tensor) -> int | None:
    """The axis TFLM looks a codebook value up along: the quantization axis of a per-channel tensor."""
    if t.quant is not None and t.quant.per_channel:
        return int(t.quant.axis or 0)
    return None


def find_encoding(q: np.ndarray, axis: int | None = None) -> Encoding | None:
    """The smallest lossless encoding of int8 values ``q`` (codebooks per channel along ``axis`` when given),
    or None when plain int8 is as small. Ties go to the direct form, which kernels read fastest.

    >>> find_encoding(np.array([[-1, 0, 1, 0], [1, 1, -1, 0]]))
    Encoding(bits=2, codebook=False, sparse=False)
    >>> find_encoding(np.array([[-100, 0, 0, 0], [0, 0, 90, 0]]))
    Encoding(bits=2, codebook=True, sparse=True)
    >>> find_encoding(np.arange(-127, 128)) is None
    True
    """
    q = np.asarray(q)
    if q.size == 0:
        return None
    sparse = bool(np.count_nonzero(q) <= (1 - SPARSE_FRACTION) * q.size)
    lo, hi = int(q.min()), int(q.max())
    direct = next((b for b in DIRECT_BITS if value_range(b)[0] <= lo and hi <= value_range(b)[1]), None)
    distinct = max(len(np.unique(row)) for row in channel_view(q, axis))
    coded = index_bits(distinct)
    if direct is not None and direct <= coded:
        return Encoding(direct, False, sparse)
    if coded <= MAX_CODEBOOK_BITS:
        return Encoding(coded, True, sparse)
    return Encoding(8, False, True) if sparse else None


def check(t: Tensor, where: str | None = None, path: str | None = None) -> None:
    """A tensor's values must fit its encoding (a writer would otherwise store other values)."""
    e = t.encoding
    if e is None:
        return
    loc = where or f"tensor '{t.name}'"
    fix = "encode it again from its values (tinyopt.graph.encoding.find_encoding) or drop the encoding"
    if t.dtype != "int8" or t.data is None:
        raise ModelFormatError(f"has an encoding but is a {t.dtype} "
                               f"{'constant' if t.data is not None else 'tensor'} (only int8 constants are "
                               "stored compressed)", path=path, where=loc, fix=fix)
    if not 1 <= e.bits <= 8:
        raise ModelFormatError(f"encoding width {e.bits} bits is outside 1..8", path=path, where=loc, fix=fix)
    q = np.asarray(t.data)
    if e.codebook:
        worst = max(len(np.unique(row)) for row in channel_view(q, table_axis(t)))
        if worst > 1 << e.bits:
            raise ModelFormatError(f"a table needs {worst} values, more than {e.bits}-bit indices reach",
                                   path=path, where=loc, fix=fix)
    elif e.bits < 8:
        lo, hi = value_range(e.bits)
        if q.size and (q.min() < lo or q.max() > hi):
            raise ModelFormatError(f"holds values in [{q.min()}, {q.max()}], outside "
                                   f"int{e.bits}'s [{lo}, {hi}]",
                                   path=path, where=loc, fix=fix)


# -- TFLite's INT4 ------------------------------------------------------------------------------------------

def pack_int4(q: np.ndarray) -> bytes:
    """Two values per byte, element 2i in the low nibble, 2i+1 in the high one; an odd last one alone.

    >>> pack_int4(np.array([1, -1, -8])).hex()
    'f108'
    """
    flat = np.asarray(q, np.int64).reshape(-1) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(raw, count: int) -> np.ndarray:
    """The ``count`` int8 values of a packed int4 buffer (sign-extended nibbles).

    >>> unpack_int4(bytes.fromhex('f108'), 3).tolist()
    [1, -1, -8]
    """
    b = np.frombuffer(bytes(raw), np.uint8).astype(np.int16)
    nib = np.stack([b & 0xF, b >> 4], axis=1).reshape(-1)[:count]
    return np.where(nib > 7, nib - 16, nib).astype(np.int8)


# -- TFLM's lookup-table compression ----------------------------------------------------------------------

def pack_bits(indices: np.ndarray, bits: int) -> bytes:
    """Unsigned ``bits``-wide fields, high bits first, back to back; zero bits pad the last byte.

    >>> pack_bits(np.array([7, 0, 3, 2]), 3).hex()  # 111 000 011 010 (0000)
    'e1a0'
    """
    idx = np.asarray(indices, np.int64).reshape(-1)
    fields = (idx[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return np.packbits(fields.astype(np.uint8).reshape(-1)).tobytes()


def unpack_bits(raw, count: int, bits: int) -> np.ndarray:
    """The first ``count`` fields of ``pack_bits`` output.

    >>> unpack_bits(bytes.fromhex('e1a0'), 4, 3).tolist()
    [7, 0, 3, 2]
    """
    flat = np.unpackbits(np.frombuffer(bytes(raw), np.uint8))[: count * bits].reshape(count, bits)
    return flat.astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1))


def lut_tables(q: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(tables [channels][stride] int8, indices with ``q``'s shape): each channel's distinct values in
    increasing order, zero-padded to the longest table (TFLM reads channel c's table at c * stride).

    >>> t, i = lut_tables(np.array([[5, -3, 5], [2, 2, 2]]), 0)
    >>> t.tolist(), i.tolist()
    ([[-3, 5], [2, 0]], [[1, 0, 1], [0, 0, 0]])
    """
    q = np.asarray(q)
    rows = channel_view(q, axis)
    uniq = [np.unique(r) for r in rows]
    stride = max(len(u) for u in uniq)
    tables = np.zeros((len(rows), stride), np.int8)
    idx = np.zeros(rows.shape, np.int64)
    for c, (u, r) in enumerate(zip(uniq, rows)):
        tables[c, :len(u)] = u
        idx[c] = np.searchsorted(u, r)
    if axis is None:
        return tables, idx.reshape(q.shape)
    moved = list(np.moveaxis(q, axis, 0).shape)
    return tables, np.moveaxis(idx.reshape(moved), 0, axis)


def decode_lut(raw, values, shape: tuple[int, ...], bits: int, axis: int | None) -> np.ndarray:
    """int8 values of a lookup-table compressed tensor: packed indices ``raw``, tables ``values`` (one per
    channel along ``axis``, or one), decoded as TFLM decodes them. Raises ValueError on bad indices."""
    count = math.prod(shape)
    if len(raw) * 8 < count * bits:
        raise ValueError(f"{len(raw)} bytes hold fewer than {count} indices of {bits} bits")
    idx = unpack_bits(raw, count, bits)
    values = np.frombuffer(bytes(values), np.int8)
    channels = 1 if axis is None else shape[axis]
    if channels == 0 or len(values) % channels:
        raise ValueError(f"{len(values)} table values do not split into {channels} channel tables")
    stride = len(values) // channels
    if idx.size and idx.max() >= stride:
        raise ValueError(f"index {int(idx.max())} is past the {stride}-entry table")
    if axis is None:
        return values[idx].reshape(shape)
    moved = np.moveaxis(np.arange(count).reshape(shape), axis, 0).reshape(channels, -1)
    out = np.empty(count, np.int8)
    for c in range(channels):
        out[moved[c]] = values[c * stride + idx[moved[c]]]
    return out.reshape(shape)


def tflite_form(t: Tensor, users: list[str]) -> tuple[str, int]:
    """How a ``.tflite`` stores ``t`` so that TFLM reads it: (``int8`` | ``int4`` | ``lut``, index bits).
    ``users``: the operators taking ``t`` as their weight. INT4 goes to CONV_2D and DEPTHWISE_CONV_2D, and to
    a per-tensor FULLY_CONNECTED (TFLM's dense kernel refuses per-channel int4); other encodings below 8
    bits become lookup tables (TFLM reads 1- to 7-bit indices); the rest stays int8."""
    from tinyopt.ops.conv_2d import Conv2D
    from tinyopt.ops.depthwise_conv_2d import DepthwiseConv2D
    from tinyopt.ops.fully_connected import FullyConnected

    e = t.encoding
    if e is None or t.data is None or t.dtype != "int8" or not users:
        return "int8", 8
    per_channel = t.quant is not None and t.quant.per_channel
    int4_users = {Conv2D.name, DepthwiseConv2D.name} | (set() if per_channel else {FullyConnected.name})
    if not e.codebook and e.bits <= 4 and all(u in int4_users for u in users):
        return "int4", 4
    tables, _ = lut_tables(np.asarray(t.data), table_axis(t))
    bits = index_bits(tables.shape[1])
    if bits <= MAX_CODEBOOK_BITS and tflite_bytes(t, "lut", bits) < t.size:
        return "lut", bits
    return "int8", 8


def tflite_bytes(t: Tensor, form: str, bits: int | None = None) -> int:
    """Bytes a ``.tflite`` stores for ``t`` in ``form`` (``int4``, ``lut`` indices + tables, or ``int8``)."""
    if form == "int4":
        return (t.size + 1) // 2
    if form == "lut":
        tables, _ = lut_tables(np.asarray(t.data), table_axis(t))
        return (t.size * (bits or index_bits(tables.shape[1])) + 7) // 8 + tables.size
    return t.size


def lut_metadata(entries: list[tuple[int, int, int]]) -> bytes:
    """TFLM's ``COMPRESSION_METADATA`` flatbuffer (tflite.micro.compression.Metadata, schema version 1) for
    one subgraph's lookup-table tensors, given as (tensor index, value buffer index, index bits)."""
    import flatbuffers

    b = flatbuffers.Builder(64 + 16 * len(entries))
    luts = []
    for tensor, buffer, bits in entries:
        b.StartObject(3)
        b.PrependUint8Slot(2, bits, 0)       # index_bitwidth
        b.PrependUint32Slot(1, buffer, 0)    # value_buffer
        b.PrependInt32Slot(0, tensor, 0)     # tensor
        luts.append(b.EndObject())
    b.StartVector(4, len(luts), 4)
    for off in reversed(luts):
        b.PrependUOffsetTRelative(off)
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)  # Subgraph.lut_tensors
    sub = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sub)
    subs = b.EndVector()
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, subs, 0)  # Metadata.subgraphs
    b.PrependUint32Slot(0, 1, 0)               # schema_version, written although it is the default
    b.Finish(b.EndObject())
    return bytes(b.Output())


METADATA_NAME = "COMPRESSION_METADATA"


__all__ = ["DIRECT_BITS", "MAX_CODEBOOK_BITS", "METADATA_NAME", "lut_metadata", "tflite_form",
           "SPARSE_FRACTION", "channel_view", "check", "decode_lut", "find_encoding", "index_bits",
           "lut_tables", "pack_bits", "pack_int4", "table_axis", "tflite_bytes", "unpack_bits", "unpack_int4",
           "value_range"]
