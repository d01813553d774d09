"""Small in-memory sources: scikit-learn's bundled digits, MNIST IDX folders, and ``.npz`` files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset
from tinyopt.data.idx import load_mnist
from tinyopt.errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val")  # the training data file of `tinyopt compress --data`


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


def read_split_npz(path: str | os.PathLike,
                   input_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, ...]:
    """``x_train, y_train, x_val, y_val`` (float32 inputs, int64 labels) from the ``.npz`` that
    ``tinyopt compress --data`` takes, checked without torch. uint8 inputs are scaled to [0, 1]; inputs
    whose per-sample size matches ``input_shape`` are reshaped to it (e.g. (N, 28, 28) -> (N, 1, 28, 28))."""
    p = Path(path)
    if not p.is_file():
        raise DataError("data file not found", path=path, fix="check the path")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"not a readable .npz of plain arrays ({str(e)[:100]})", path=path,
                        fix="save with numpy.savez(path, x_train=..., y_train=..., "
                            "x_val=..., y_val=...)") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"missing array '{missing[0]}' (has {sorted(arrays)})", path=path,
                        fix=f"save arrays named {', '.join(NPZ_KEYS)}")
    out = []
    for split in ("train", "val"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) == 0:
            raise DataError(f"x_{split} is empty", path=path, where=f"x_{split}",
                            fix="give at least one sample")
        if len(x) != len(y) or y.ndim != 1:
            raise DataError(f"x_{split} has {len(x)} samples but y_{split} has shape {y.shape}", path=path,
                            where=f"y_{split}", fix="give one integer label per sample")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DataError(f"y_{split} must hold non-negative integer class indices", path=path,
                            where=f"y_{split}", fix="store labels as integers 0..C-1")
        xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if not np.isfinite(xf).all():
            raise DataError(f"x_{split} contains NaN or inf", path=path, where=f"x_{split}",
                            fix="clean the data")
        if input_shape is not None and tuple(xf.shape[1:]) != tuple(input_shape):
            if int(np.prod(xf.shape[1:])) != int(np.prod(input_shape)):
                raise DataError(f"x_{split} samples have shape {tuple(xf.shape[1:])}, the model takes "
                                f"{tuple(input_shape)}", path=path, where=f"x_{split}",
                                fix="give samples in the model's input shape (PyTorch order, no batch)")
            xf = xf.reshape(len(xf), *input_shape)
        out += [np.ascontiguousarray(xf), y.astype(np.int64)]
    return tuple(out)
