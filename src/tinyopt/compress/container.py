"""The compressed-model file: a small versioned binary container of per-layer records.

Layout (little-endian):

    b"TOPZ"  version:u8  n_records:u32
    per record:  name_len:u16  name:utf-8  kind:u8  body_len:u32  body  crc32:u32
        kind 0 (raw):    dtype:u8  ndim:u8  dims:u32*ndim  data          (float32/float16/int8/int32)
        kind 1 (shared): an ``encode_shared`` record (codebook, Huffman tables, codes, gaps)
        kind 2 (meta):   UTF-8 JSON object (version 2 only; at most one, named ``tinyopt``): what
                         ``tinyopt convert`` / ``deploy`` need to rebuild the model (``compress.artifact``)

A file without metadata is written as version 1, byte for byte as before; version 2 adds the meta kind.

The CRC32 covers name, kind and body. Every length is checked against the bytes left in the file
before it is used, so a corrupt, truncated or hostile file raises ``ModelFormatError`` naming the file
and the record; it never hangs or allocates more than the file could describe.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tinyopt._io import atomic_write_bytes
from tinyopt.compress.coding.tensor import EncodedTensor, decode_shared
from tinyopt.errors import ConfigError, ModelFormatError

MAGIC = b"TOPZ"
VERSION = 1
META_VERSION = 2  # the version that allows a metadata record
META_NAME = "tinyopt"
MAX_META_BYTES = 1 << 20
MAX_FILE_BYTES = 1 << 31
_RAW_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 2: np.dtype("i1"), 3: np.dtype("<i4")}
_RAW_CODE = {v.name: k for k, v in _RAW_DTYPES.items()}
_FIX = "the file is corrupt or truncated; write it again with save_compressed"


def _raw_body(name: str, arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    if arr.dtype.name not in _RAW_CODE:
        raise ConfigError(f"dtype {arr.dtype} cannot be stored raw", where=name,
                          fix="cast to float32, float16, int8 or int32")
    if arr.ndim > 255:
        raise ConfigError(f"{arr.ndim} dimensions", where=name, fix="reshape to at most 255 dimensions")
    head = struct.pack("<BB", _RAW_CODE[arr.dtype.name], arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
    return head + arr.astype(_RAW_DTYPES[_RAW_CODE[arr.dtype.name]]).tobytes()


def pack(layers: Mapping[str, EncodedTensor | np.ndarray],
         meta: dict | None = None) -> tuple[bytes, dict[str, int]]:
    """The container bytes and the exact byte count of each layer's record (overhead included).
    ``meta`` (a JSON-serialisable dict) becomes the version-2 metadata record, written first."""
    items = list(layers.items())
    if meta is not None:
        if META_NAME in layers:
            raise ConfigError(f"a layer is named '{META_NAME}', the metadata record's name", where=META_NAME,
                              fix="rename the layer")
        body = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8")
        items.insert(0, (META_NAME, _Meta(body)))
    out = [MAGIC, struct.pack("<BI", VERSION if meta is None else META_VERSION, len(items))]
    sizes = {}
    for name, layer in items:
        nb = name.encode("utf-8")
        if not nb or len(nb) > 0xFFFF:
            raise ConfigError(f"layer name of {len(nb)} bytes", where=name or "<empty>",
                              fix="use a non-empty name shorter than 65536 bytes")
        if isinstance(layer, _Meta):
            kind, body = 2, layer.body
        elif isinstance(layer, EncodedTensor):
            kind, body = 1, layer.payload
        else:
            kind, body = 0, _raw_body(name, layer)
        rec = struct.pack("<H", len(nb)) + nb + struct.pack("<BI", kind, len(body)) + body
        crc = zlib.crc32(rec[2:])
        rec += struct.pack("<I", crc)
        out.append(rec)
        if not isinstance(layer, _Meta):
            sizes[name] = len(rec)
    return b"".join(out), sizes


class _Meta:
    __slots__ = ("body",)

    def __init__(self, body: bytes):
        self.body = body


def save_compressed(path: str | os.PathLike, layers: Mapping[str, EncodedTensor | np.ndarray],
                    meta: dict | None = None) -> int:
    """Write the container atomically; returns its exact size in bytes."""
    data, _ = pack(layers, meta)
    atomic_write_bytes(path, data)
    return len(data)


def load_compressed(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every layer's weights, exactly as they were coded."""
    return read_container(path)[0]


def read_container(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict | None]:
    """Every layer's weights and the metadata record (``None`` in a file without one)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError("file not found", path=path, fix="check the path")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ModelFormatError("larger than 2 GiB, not a tinyopt compressed model", path=path,
                               fix="give a file written by save_compressed")
    return unpack_all(p.read_bytes(), path=str(path))


def unpack(data: bytes, *, path: str | None = None) -> dict[str, np.ndarray]:
    return unpack_all(data, path=path)[0]


def unpack_all(data: bytes, *, path: str | None = None) -> tuple[dict[str, np.ndarray], dict | None]:
    def fail(what, where=None):
        raise ModelFormatError(what, path=path, where=where, fix=_FIX)

    if data[:4] != MAGIC:
        fail("not a tinyopt compressed model (bad magic)")
    if len(data) < 9:
        fail("header truncated")
    version, n = struct.unpack_from("<BI", data, 4)
    if version not in (VERSION, META_VERSION):
        raise ModelFormatError(f"container version {version}, this tinyopt reads versions {VERSION} and "
                               f"{META_VERSION}", path=path, fix="upgrade tinyopt or write the file again")
    pos, out, meta = 9, {}, None
    for i in range(n):
        name, kind, start, end, where = _record_frame(data, pos, i, n, fail)
        if name in out or (kind == 2 and meta is not None):
            fail("duplicate layer name" if name in out else "a second metadata record", where)
        body = data[start:end]
        if kind == 2 and version == META_VERSION:
            meta = _read_meta(body, name, fail, where)
        elif kind == 0:
            out[name] = _read_raw(body, fail, where)
        elif kind == 1:
            out[name] = decode_shared(body, where=where, path=path)
        else:
            fail(f"unknown record kind {kind}", where)
        pos = end + 4
    if pos != len(data):
        fail(f"{len(data) - pos} unexpected bytes after the last record")
    return out, meta


def _record_frame(data: bytes, pos: int, i: int, n: int, fail) -> tuple[str, int, int, int, str]:
    """Record ``i`` of ``n`` at ``pos``: its name, kind, body start and end, and how messages name it;
    the lengths are checked against the file and the CRC32 against the bytes."""
    where = f"record {i}"
    if len(data) - pos < 2 + 1 + 4 + 4:
        fail(f"file ends before record {i} of {n}", where)
    (name_len,) = struct.unpack_from("<H", data, pos)
    if name_len > len(data) - pos - 11:
        fail(f"name length {name_len} exceeds the remaining {len(data) - pos - 11} bytes", where)
    try:
        name = data[pos + 2:pos + 2 + name_len].decode("utf-8")
    except UnicodeDecodeError:
        fail("layer name is not UTF-8", where)
    where = f"record {i} ({name!r})"
    kind, body_len = struct.unpack_from("<BI", data, pos + 2 + name_len)
    start = pos + 2 + name_len + 5
    if body_len > len(data) - start - 4:
        fail(f"body length {body_len} exceeds the remaining {max(len(data) - start - 4, 0)} bytes", where)
    end = start + body_len
    (crc,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[pos + 2:end]) != crc:
        fail("CRC32 mismatch", where)
    return name, kind, start, end, where


def _read_meta(body: bytes, name: str, fail, where) -> dict:
    if name != META_NAME:
        fail(f"metadata record named {name!r}, not {META_NAME!r}", where)
    if len(body) > MAX_META_BYTES:
        fail(f"metadata record of {len(body)} bytes (at most {MAX_META_BYTES})", where)
    try:
        meta = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        fail("metadata record is not UTF-8 JSON", where)
    if not isinstance(meta, dict):
        fail("metadata record is not a JSON object", where)
    return meta


def _read_raw(body: bytes, fail, where) -> np.ndarray:
    if len(body) < 2:
        fail("raw record header truncated", where)
    code, ndim = body[0], body[1]
    if code not in _RAW_DTYPES:
        fail(f"unknown raw dtype code {code}", where)
    if len(body) < 2 + 4 * ndim:
        fail("raw record dimensions truncated", where)
    shape = struct.unpack_from(f"<{ndim}I", body, 2)
    dtype = _RAW_DTYPES[code]
    count = math.prod(shape)  # exact (Python ints): hostile dims must not wrap around
    if count * dtype.itemsize != len(body) - 2 - 4 * ndim:
        fail(f"shape {shape} needs {count * dtype.itemsize} bytes but {len(body) - 2 - 4 * ndim} follow",
             where)
    return np.frombuffer(body, dtype=dtype, offset=2 + 4 * ndim).reshape(shape).copy()
