"""Training data by name: one door per source, shared by project files and ``tinyopt compress --data``.

``load_dataset(source, path, **options)`` is the loader a project file's ``data.source`` names
(digits, mnist, npz, wav, csv, images). ``open_data(spec)`` is what the CLI takes, a single word:

    digits                       scikit-learn's 8x8 digits (ships inside its wheel: works offline)
    FILE.npz                     x_train, y_train, x_val, y_val (already split, in the model's own layout,
                                 as PyTorch takes it: (N, C, H, W)), or x, y (channels last, split here)
    FOLDER                       MNIST IDX files, .wav files, or images in one sub-folder per class
    mnist:FOLDER  wav:FOLDER  images:FOLDER  npz:FILE    the same, with the source said explicitly
    PROJECT.yaml                 the data and features sections of a project file (any source and option)

Loader data arrive channels last ((N, H, W, C), (N, T, C), (N, F)), as the pipeline keeps them;
``to_model_layout`` moves the channels first for PyTorch (a transpose, never a reshape across layouts),
and ``fit_samples`` only adds or drops unit axes (or flattens samples with a single channel), so a
layout is never scrambled silently.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset, split
from tinyopt.errors import DataError

SOURCES = ("digits", "mnist", "npz", "wav", "csv", "images")
_PREFIXES = ("mnist", "wav", "images", "npz", "csv")
_SPEC_HELP = ("give digits, a .npz, a folder (MNIST IDX, .wav files, or images in one sub-folder per class), "
              "mnist:/wav:/images:FOLDER, or a project .yaml")


def load_dataset(source: str, path: str | os.PathLike | None = None, *, x_key: str = "x", y_key: str = "y",
                 sample_rate: int | None = None, duration: float | None = None, window: int | None = None,
                 window_stride: int | None = None, columns: list[str] | None = None,
                 label_column: str = "label", image_size: tuple[int, int] | None = None,
                 mnist_split: str | None = None) -> Dataset:
    """The labelled examples of one source (channels last), before any split. MNIST reads
    ``mnist_split`` (default: the training files when the folder has them, else the test set)."""
    if source == "digits":
        from tinyopt.data.sources import load_digits

        return load_digits()
    if path is None:
        raise DataError(f"data source '{source}' needs a path", where="data",
                        fix="give the file or folder (data.path in a project file)")
    if source == "mnist":
        from tinyopt.data.sources import load_mnist_dataset

        return load_mnist_dataset(path, mnist_split or _mnist_split(Path(path)))
    if source == "npz":
        from tinyopt.data.sources import load_npz

        return load_npz(path, x_key, y_key)
    if source == "wav":
        from tinyopt.data.wav import load_wav_folder

        return load_wav_folder(path, sample_rate=sample_rate, duration=duration)
    if source == "csv":
        from tinyopt.data.csv import load_csv_windows

        return load_csv_windows(path, window=window, stride=window_stride, columns=columns,
                                label_column=label_column)
    if source == "images":
        from tinyopt.data.images import load_image_folder

        return load_image_folder(path, size=tuple(image_size) if image_size else None)
    from tinyopt._suggest import hint

    raise DataError(f"unknown data source '{source}'{hint(source, SOURCES)}", where="data",
                    fix=f"use one of {', '.join(SOURCES)}")


def _mnist_split(folder: Path) -> str:
    """The training files when the folder has them, else the test set (all ../shared holds)."""
    return "train" if any((folder / f"train-images-idx3-ubyte{z}").is_file() for z in ("", ".gz")) else "t10k"


@dataclass
class TrainingData:
    """Train and validation arrays; ``channels_last`` says whether ``x`` is in the loaders' layout
    (True) or already in the model's own (False: a pre-split ``.npz``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str]
    source: str
    channels_last: bool = True

    def to_model_layout(self) -> TrainingData:
        """Channels first, as PyTorch modules take them (a no-op for data already in that layout)."""
        if not self.channels_last:
            return self
        return TrainingData(to_model_layout(self.x_train), self.y_train, to_model_layout(self.x_val),
                            self.y_val, self.classes, self.source, False)


def to_model_layout(x: np.ndarray) -> np.ndarray:
    """NHWC → NCHW, NTC → NCT; (N, F) stays as is."""
    if x.ndim == 4:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 1))
    return np.ascontiguousarray(x)


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def fit_samples(x: np.ndarray, shape: tuple[int, ...], source: str) -> np.ndarray:
    """``x`` (N, ...) in the model's layout, shaped ``(N, *shape)``: unit axes added or dropped, or a
    single-channel sample flattened for a model that takes a vector. Anything else would reorder
    values, and is refused naming the source and both shapes."""
    have, want = tuple(x.shape[1:]), tuple(int(d) for d in shape)
    if have == want:
        return x
    if _squeeze(have) == _squeeze(want):
        return x.reshape(len(x), *want)
    if len(want) == 1 and math.prod(have) == want[0]:
        if len(have) <= 1 or have[0] == 1:  # one channel: every flatten order is the same
            return x.reshape(len(x), -1)
        raise DataError(f"samples have shape {have} ({have[0]} channels) and the model takes {want[0]} "
                        "features: the order to flatten them in is ambiguous", path=source,
                        fix="put nn.Flatten() first in the model (it flattens channels first) so it takes "
                            f"{have}, or give samples already flat")
    raise DataError(f"samples have shape {have} (channels first), the model takes {want}", path=source,
                    fix="give data shaped for the model, or a model for this data (its input_shape)")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """(source, path) for a ``--data`` word; folders are told apart by what they hold."""
    text = str(spec)
    head, sep, rest = text.partition(":")
    if sep and head in _PREFIXES and rest and not (len(head) == 1 and os.name == "nt"):
        return head, rest
    if text == "digits":
        return "digits", None
    p = Path(os.path.expanduser(text))
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "project", text
    if suffix == ".npz":
        return "npz", text
    if suffix == ".csv":
        raise DataError("CSV sensor logs need a window length", path=text,
                        fix="name them in a project file (data: {source: csv, path: ..., window: 128}) and "
                            "give --data project.yaml")
    if p.is_dir():
        return _folder_source(p), text
    if not p.exists():
        raise DataError("no such file or folder, and not a data source name", path=text, fix=_SPEC_HELP)
    raise DataError(f"cannot tell what data '{p.name}' holds", path=text, fix=_SPEC_HELP)


def _folder_source(p: Path) -> str:
    """What a folder holds: MNIST IDX files, .wav files, or class sub-folders of images."""
    if any(p.glob("*-images-idx3-ubyte*")):
        return "mnist"
    if next(p.rglob("*.wav"), None) is not None:
        return "wav"
    from tinyopt.data.images import image_files

    if image_files(p):
        return "images"
    raise DataError("the folder holds no MNIST IDX files, .wav files or class sub-folders of images",
                    path=str(p), fix=_SPEC_HELP)


def open_data(spec: str, *, seed: int = 0, val: float = 0.2) -> TrainingData:
    """The training and validation data a ``--data`` word names (see the module docstring); loader data
    are split stratified with ``seed``, ``val`` of each class kept for validation."""
    source, path = parse_spec(spec)
    if source == "project":
        return _project_data(path)
    if source == "npz":
        from tinyopt.data.sources import NPZ_KEYS

        keys = _npz_keys(path)
        if set(NPZ_KEYS) <= keys:
            from tinyopt.data.sources import read_split_npz

            xt, yt, xv, yv = read_split_npz(path)
            n = int(max(yt.max(), yv.max())) + 1
            return TrainingData(xt, yt, xv, yv, [str(i) for i in range(n)], str(spec), channels_last=False)
        if not {"x", "y"} <= keys:
            raise DataError(f"the archive has arrays {sorted(keys)}", path=path,
                            fix=f"save either {', '.join(NPZ_KEYS)} (split, in the model's layout) or x, y "
                                "(channels last; split here)")
    ds = load_dataset(source, path)
    parts = split(ds, val=val, test=0.0, seed=seed)
    return TrainingData(parts.train.x.astype(np.float32), parts.train.y, parts.val.x.astype(np.float32),
                        parts.val.y, list(ds.classes), str(spec))


def _npz_keys(path: str) -> set[str]:
    import zipfile

    p = Path(path)
    if not p.is_file():
        raise DataError("data file not found", path=path, fix="check the path")
    try:
        with np.load(p, allow_pickle=False) as z:
            return set(z.files)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"not a readable .npz of plain arrays ({str(e)[:100]})", path=path,
                        fix="save it with numpy.savez (no pickled objects)") from None


def _project_data(path: str) -> TrainingData:
    """The project's data source, split (with the project's seed) and feature block: train and validation."""
    from tinyopt.pipeline import stages
    from tinyopt.pipeline.config import load_project

    cfg = load_project(path)
    splits = stages.load_data(cfg["data"], cfg.get("_file"), int(cfg["seed"]))
    splits, _ = stages.features(splits, cfg["features"])
    return TrainingData(splits.train.x.astype(np.float32), splits.train.y, splits.val.x.astype(np.float32),
                        splits.val.y, list(splits.train.classes), str(path))


__all__ = ["SOURCES", "TrainingData", "fit_samples", "load_dataset", "open_data", "parse_spec",
           "to_model_layout"]
