"""Reading the arrays users hand in by file: ``.npy`` inputs, ``.npz``/``.npy`` calibration samples.

Both are read with ``allow_pickle=False``; an ``.npy`` header is checked against the file size before
numpy allocates anything (a 40-byte file may declare a 909 TiB array).
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
from pathlib import Path

import numpy as np

from tinyopt.errors import DataError

_READ_ERRORS = (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, SyntaxError,
                tokenize.TokenError)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def check_npy_size(f, size: int, path: str | os.PathLike) -> None:
    """The header's shape x dtype must equal the bytes that follow (checked before allocating)."""
    fmt = np.lib.format
    if f.read(6) != fmt.MAGIC_PREFIX:
        f.seek(0)
        return  # not .npy (maybe .npz): np.load decides
    f.seek(0)
    version = fmt.read_magic(f)
    read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read is not None:
        shape, _, dtype = read(f, max_header_size=10_000)
        need = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and need != size - f.tell():
            raise DataError(f"the header declares shape {shape} {dtype} ({need} bytes) but {size - f.tell()} "
                            "bytes follow", path=path,
                            fix="save the input again with numpy.save(path, array)")
    f.seek(0)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """One array from an ``.npy`` file, or a ``DataError`` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path of the input .npy")
    try:
        with p.open("rb") as f:
            check_npy_size(f, p.stat().st_size, path)
            arr = np.load(f, allow_pickle=False)
    except _READ_ERRORS as e:  # BadZipFile: .npz magic, broken archive; TokenError: a header parsed as Python
        raise DataError(f"not a readable .npy array ({_first_line(e)})", path=path,
                        fix="save the input with numpy.save(path, array)") from None
    if not isinstance(arr, np.ndarray):
        raise DataError("holds several arrays (.npz), not one", path=path,
                        fix="save the input with numpy.save(path, array)")
    return arr


def load_calibration(path: str | os.PathLike) -> np.ndarray:
    """Calibration samples, batch first: an ``.npz`` (key ``x``, or its only array) or an ``.npy``."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path of the calibration .npz")
    with p.open("rb") as f:
        if f.read(6) == np.lib.format.MAGIC_PREFIX:
            return load_npy(p)
    try:
        with np.load(p, allow_pickle=False) as data:
            keys = list(data.keys())
            if not keys:
                raise DataError("the archive holds no arrays", path=path,
                                fix="save samples with numpy.savez(path, x=...)")
            key = "x" if "x" in keys else keys[0]
            if key != "x" and len(keys) > 1:
                raise DataError(f"the archive has arrays {keys} but none named 'x'", path=path,
                                fix="name the calibration samples x: numpy.savez(path, x=samples)")
            return data[key]
    except _READ_ERRORS as e:
        raise DataError(f"not a readable .npz/.npy file ({_first_line(e)})", path=path,
                        fix="save samples with numpy.savez(path, x=samples)") from None


__all__ = ["check_npy_size", "load_calibration", "load_npy"]
