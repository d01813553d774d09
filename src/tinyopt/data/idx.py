"""IDX files (MNIST's format): big-endian header with magic, dimension sizes, then the array.

Checked at the door: gzip detected by its magic, the magic's dtype byte, the header length, and that
the declared dimensions match the bytes actually present.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from tinyopt.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_BYTES = 1 << 30


def load_idx(path: str | os.PathLike) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        chunks, total = [], 0
        try:  # in 1 MiB steps: read(MAX_BYTES + 1) would allocate 1 GiB up front even for a 20-byte file
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                while chunk := g.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_BYTES:
                        raise DataError("decompresses to more than 1 GiB", path=path,
                                        fix="give a real IDX file")
                    chunks.append(chunk)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"corrupt gzip stream ({e})", path=path, fix="download the file again") from None
        raw = b"".join(chunks)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError("not an IDX file (bad magic)", path=path,
                        fix="give an IDX file such as t10k-images-idx3-ubyte(.gz)")
    if raw[2] not in _DTYPES:
        raise DataError(f"unknown IDX element type 0x{raw[2]:02x}", path=path, fix="give a real IDX file")
    ndim = raw[3]
    if ndim > 32:  # numpy arrays have at most 64 dimensions; MNIST-style files have 1 to 4
        raise DataError(f"header declares {ndim} dimensions", path=path,
                        fix="give a real IDX file (1 to 4 dimensions)")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"header declares {ndim} dimensions but is truncated", path=path,
                        fix="download the file again")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_DTYPES[raw[2]])
    count = math.prod(dims)  # Python ints: four dimensions of 65536 would wrap int64 to 0
    body = len(raw) - 4 - 4 * ndim
    if count * dtype.itemsize != body:
        raise DataError(f"header declares {dims} ({count * dtype.itemsize} bytes) but {body} bytes follow",
                        path=path, fix="download the file again; it is truncated or padded")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(folder: str | os.PathLike, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) from an MNIST folder (gzipped or not)."""
    folder = Path(folder)

    def find(stem):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"no {stem}(.gz) in the folder", path=folder, fix="point at the MNIST folder")

    x = load_idx(find(f"{split}-images-idx3-ubyte"))
    y = load_idx(find(f"{split}-labels-idx1-ubyte"))
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"images {x.shape} and labels {y.shape} do not match", path=folder,
                        fix="use images and labels from the same split")
    return x, y
