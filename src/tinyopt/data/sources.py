"""Small in-memory sources: scikit-learn's bundled digits, MNIST IDX folders, and ``.npz`` files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset
from tinyopt.data.idx import load_mnist
from tinyopt.errors import DataError


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8×8 digits (inside its wheel: works offline), scaled to [0, 1], (N, 8, 8, 1)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    return Dataset(x, d.target.astype(np.int64), [str(i) for i in range(10)], "sklearn:digits")


def load_mnist_dataset(folder: str | os.PathLike, split: str = "t10k") -> Dataset:
    """MNIST images as (N, 28, 28, 1) float32 in [0, 1], in file order (projects cut them with
    ``data.split: tail``)."""
    x, y = load_mnist(folder, split)
    x = (x.astype(np.float32) / 255.0)[..., None]
    return Dataset(x, y.astype(np.int64), [str(i) for i in range(10)], str(folder))


def load_npz(path: str | os.PathLike, x_key: str = "x", y_key: str = "y",
             classes: list[str] | None = None) -> Dataset:
    """Arrays ``x`` (N, ...) and integer ``y`` (N,) from a ``.npz``; class names from a ``classes`` array
    in the file, the argument, or the label values. Pickled object arrays are refused."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            for k in (x_key, y_key):
                if k not in keys:
                    raise DataError(f"no array '{k}' (it has {sorted(keys)})", path=path,
                                    fix=f"save the arrays as np.savez(path, {x_key}=..., {y_key}=...)")
            x, y = z[x_key], z[y_key]
            names = [str(c) for c in z["classes"]] if "classes" in keys else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise DataError(f"not a readable .npz file ({e})", path=path,
                        fix="save it again with numpy.savez (no pickled objects)") from None
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"'{y_key}' must be a 1-D integer array, got {y.dtype} {y.shape}", path=path,
                        fix="store class indices 0..K-1")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"'{x_key}' must be numeric, got {x.dtype}", path=path, fix="store numbers")
    names = names or classes or [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    return Dataset(x.astype(np.float32), y.astype(np.int64), names, str(path))
